"""Benchmark: what ``sipharness analyze`` computes (decode + flows + checks), vs tshark.

Generates the capture of ``bench/bench_decode.py`` (``--messages`` SIP messages,
default 100,000: INVITE dialogs and REGISTER exchanges, 80 % UDP with RTP in
between, 20 % TCP coalesced and split), then measures:

* harness: ``decode_capture`` + ``build_flows`` + ``run_checks`` (the whole catalogue,
  with a number file when ``--number`` is given) in a fresh process, each stage
  timed, peak RSS (``ru_maxrss``) of that process;
* the real command ``sipharness analyze FILE --no-rtp --out DIR`` under
  ``/usr/bin/time -v`` (wall time and "Maximum resident set size"), report
  rendering included;
* tshark: ``tshark -n -r FILE -Y sip -o sdp.establish_conversation:FALSE -T fields
  -e sip.Call-ID``;
* pyshark: a 2,000-message slice, extrapolated to messages/s.

Run from the repository root: ``.venv/bin/python bench/bench_analyze.py``.
Nothing is sent on any network; the capture is a file.
"""

from __future__ import annotations

import argparse
import json
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


def run_command(path: Path, out: Path, number: Path | None) -> dict[str, float] | None:
    """``sipharness analyze`` under ``/usr/bin/time -v``: wall seconds and peak RSS."""
    timer = shutil.which("time") or "/usr/bin/time"
    if not Path(timer).exists() or not SIPHARNESS.exists():
        return None
    argv = [timer, "-v", str(SIPHARNESS), "analyze", str(path), "--no-rtp", "--out", str(out)]
    if number is not None:
        argv += ["--number", str(number)]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: some check failed, still a complete run
        raise SystemExit(f"sipharness analyze exited {done.returncode}: {done.stderr[-500:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    rss = int(found.group(1)) / 1024 if found else float("nan")
    return {"seconds": elapsed, "rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--pyshark-messages", type=int, default=2_000)
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

        # Best of --repeat runs: the machine is shared, the minimum is the least disturbed.
        runs = []
        for _ in range(args.repeat):
            argv = [sys.executable, __file__, "--analyze-only", str(path)]
            if args.number:
                argv += ["--number", str(args.number)]
            child = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=3600)
            runs.append(json.loads(child.stdout))
        ours = min(runs, key=lambda run: run["seconds"])
        rate = ours["messages"] / ours["seconds"]
        print(
            f"harness decode+flows+checks: {ours['messages']} messages, {ours['calls']} calls "
            f"in {ours['seconds']:.2f} s (decode {ours['decode']:.2f}, flows "
            f"{ours['flows']:.2f}, checks {ours['checks']:.2f}) = {rate:,.0f} msg/s; "
            f"peak RSS {ours['rss_mib']:.0f} MiB; {ours['results']} results, "
            f"failed: {', '.join(ours['failed']) or 'none'}"
        )

        commands = [run_command(path, Path(tmp) / f"out{i}", args.number) for i in range(2)]
        measured = [c for c in commands if c is not None]
        if measured:
            best = min(measured, key=lambda c: c["seconds"])
            print(
                f"sipharness analyze --no-rtp (report included): {best['seconds']:.2f} s, "
                f"Maximum resident set size {best['rss_mib']:.0f} MiB"
            )

        sharks = [r for r in (run_tshark(path) for _ in range(args.repeat)) if r is not None]
        shark = min(sharks) if sharks else None
        if shark is None:
            print("tshark: not installed")
        else:
            print(
                f"tshark -Y sip: {shark[1]} messages in {shark[0]:.2f} s "
                f"= {shark[1] / shark[0]:,.0f} msg/s"
            )
            print(f"harness / tshark: {rate / (shark[1] / shark[0]):.2f}x")

        small = Path(tmp) / "slice.pcap"
        generate(small, args.pyshark_messages)
        py = run_pyshark(small)
        if py is None:
            print("pyshark: unavailable")
        else:
            print(
                f"pyshark (slice): {py[1]} messages in {py[0]:.2f} s = {py[1] / py[0]:,.0f} "
                f"msg/s; harness / pyshark: {rate / (py[1] / py[0]):.0f}x"
            )


if __name__ == "__main__":
    main()
