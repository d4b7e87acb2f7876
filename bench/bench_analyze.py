"""Benchmark: what ``sipharness analyze`` computes (decode + flows + checks), vs tshark.

Generates the capture of ``bench/bench_decode.py`` (``--messages`` SIP messages,
default 100,000: INVITE dialogs and REGISTER exchanges, 80 % UDP with RTP in
between, 20 % TCP coalesced and split), then measures:

* harness: ``decode_capture`` + ``build_flows`` + ``run_checks`` (the whole catalogue,
  with a number file when ``--number`` is given) in a fresh process, each stage
  timed, peak RSS (``ru_maxrss``) of that process; with the compiled modules (when
  built, see harness/accel.py) and in pure Python (``SIPHARNESS_PURE_PYTHON=1``);
* the real command ``sipharness analyze FILE --no-rtp --out DIR`` under
  ``/usr/bin/time -v`` (wall time and "Maximum resident set size"), report
  rendering included, both ways too;
* tshark, two ways: ``tshark -n -r FILE -Y sip`` (its summary lines, the literal
  command) and ``tshark -n -r FILE -Y sip -o sdp.establish_conversation:FALSE -T
  fields -e sip.Call-ID`` (reads a SIP field of every message, and counts them);
* pyshark: a 10,000-message slice (its tshark start-up amortised), as messages/s.

Run from the repository root: ``.venv/bin/python bench/bench_analyze.py``.
Nothing is sent on any network; the capture is a file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_decode import generate, run_pyshark, run_tshark

SIPHARNESS = Path(sys.executable).with_name("sipharness")


def analyze_only(path: str, number: str | None) -> None:
    """Child process: decode, build flows, run every check; print JSON figures."""
    from harness.capture import build_flows, decode_capture
    from harness.checks import run_checks
    from harness.numbers import load_number_file

    config = load_number_file(Path(number)) if number else None
    start = time.perf_counter()
    decoded = decode_capture(path)
    decoded_at = time.perf_counter()
    flows = build_flows(decoded)
    flows_at = time.perf_counter()
    run = run_checks(
        flows,
        config,
        issues=decoded.issues,
        tls_streams=decoded.tls_streams,
        unreachable=decoded.unreachable,
    )
    done = time.perf_counter()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": done - start,
                "decode": decoded_at - start,
                "flows": flows_at - decoded_at,
                "checks": done - flows_at,
                "messages": len(decoded.messages),
                "calls": len(flows.calls),
                "results": sum(len(f.results) for f in run.findings),
                "failed": [f.check.id for f in run.failed],
                "rss_mib": rss_kib / 1024,
            }
        )
    )


def run_command(
    path: Path, out: Path, number: Path | None, env: dict[str, str]
) -> dict[str, float] | None:
    """``sipharness analyze`` under ``/usr/bin/time -v``: wall seconds and peak RSS."""
    timer = shutil.which("time") or "/usr/bin/time"
    if not Path(timer).exists() or not SIPHARNESS.exists():
        return None
    argv = [timer, "-v", str(SIPHARNESS), "analyze", str(path), "--no-rtp", "--out", str(out)]
    if number is not None:
        argv += ["--number", str(number)]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: some check failed, still a complete run
        raise SystemExit(f"sipharness analyze exited {done.returncode}: {done.stderr[-500:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    rss = int(found.group(1)) / 1024 if found else float("nan")
    return {"seconds": elapsed, "rss_mib": rss}


def run_tshark_plain(path: Path) -> float | None:
    """Seconds of ``tshark -n -r FILE -Y sip`` (its one-line summaries, discarded)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        return None
    start = time.perf_counter()
    subprocess.run(
        [tshark, "-n", "-r", str(path), "-Y", "sip"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=3600,
    )
    return time.perf_counter() - start


def modes() -> list[tuple[str, dict[str, str]]]:
    """(label, environment) of each way to run: compiled when built, and pure Python."""
    from harness import accel

    pure = {**os.environ, accel.PURE_ENV: "1"}
    base = {k: v for k, v in os.environ.items() if k != accel.PURE_ENV}
    found: list[tuple[str, dict[str, str]]] = []
    if accel.status().active:
        found.append(("compiled (mypyc)", base))
    found.append(("pure Python", pure))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--pyshark-messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (best kept)")
    parser.add_argument("--number", type=Path, help="number file for the checks")
    parser.add_argument("--keep", type=Path, help="write the capture here and keep it")
    parser.add_argument("--analyze-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.analyze_only:
        analyze_only(args.analyze_only, str(args.number) if args.number else None)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.pcap"
        total = generate(path, args.messages)
        size_mib = path.stat().st_size / 2**20
        print(f"capture: {total} SIP messages, {size_mib:.1f} MiB")

        rates: dict[str, float] = {}
        for label, env in modes():
            # Best of --repeat runs: the machine is shared, the minimum is the least disturbed.
            runs = []
            for _ in range(args.repeat):
                argv = [sys.executable, __file__, "--analyze-only", str(path)]
                if args.number:
                    argv += ["--number", str(args.number)]
                child = subprocess.run(
                    argv, capture_output=True, text=True, check=True, timeout=3600, env=env
                )
                runs.append(json.loads(child.stdout))
            ours = min(runs, key=lambda run: run["seconds"])
            rates[label] = ours["messages"] / ours["seconds"]
            print(
                f"harness {label} decode+flows+checks: {ours['messages']} messages, "
                f"{ours['calls']} calls in {ours['seconds']:.2f} s (decode {ours['decode']:.2f}, "
                f"flows {ours['flows']:.2f}, checks {ours['checks']:.2f}) = "
                f"{rates[label]:,.0f} msg/s; peak RSS {ours['rss_mib']:.0f} MiB; "
                f"{ours['results']} results, failed: {', '.join(ours['failed']) or 'none'}"
            )
            commands = [
                run_command(path, Path(tmp) / f"out{i}", args.number, env) for i in range(2)
            ]
            measured = [c for c in commands if c is not None]
            if measured:
                best = min(measured, key=lambda c: c["seconds"])
                print(
                    f"  sipharness analyze --no-rtp, {label} (report included): "
                    f"{best['seconds']:.2f} s, Maximum resident set size {best['rss_mib']:.0f} MiB"
                )

        sharks = [r for r in (run_tshark(path) for _ in range(args.repeat)) if r is not None]
        plains = [r for r in (run_tshark_plain(path) for _ in range(args.repeat)) if r is not None]
        if not sharks or not plains:
            print("tshark: not installed")
        else:
            shark = min(sharks)
            plain = min(plains)
            print(
                f"tshark -n -Y sip (summary lines): {plain:.2f} s = {shark[1] / plain:,.0f} msg/s"
            )
            print(
                f"tshark -n -Y sip -T fields -e sip.Call-ID: {shark[1]} messages in "
                f"{shark[0]:.2f} s = {shark[1] / shark[0]:,.0f} msg/s"
            )
            for label, rate in rates.items():
                print(
                    f"harness {label} / tshark: {rate / (shark[1] / plain):.2f}x (summary), "
                    f"{rate / (shark[1] / shark[0]):.2f}x (fields)"
                )

        small = Path(tmp) / "slice.pcap"
        generate(small, args.pyshark_messages)
        py = run_pyshark(small)
        if py is None:
            print("pyshark: unavailable")
        else:
            py_rate = py[1] / py[0]
            print(f"pyshark (slice): {py[1]} messages in {py[0]:.2f} s = {py_rate:,.0f} msg/s")
            for label, rate in rates.items():
                print(f"harness {label} / pyshark: {rate / py_rate:.1f}x")


if __name__ == "__main__":
    main()
