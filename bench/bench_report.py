"""Report rendering: ``render_all`` on a large synthetic run.

Run from the repository root::

    .venv/bin/python bench/bench_report.py [--records 500] [--rounds 3]

The run has ``--records`` scenario records (default 500) over five profiles, each
with 20 captured SIP messages (INVITE with SDP, 407 challenge, digest
Proxy-Authorization, 180, 200, ACK, BYE...: 300-700 bytes each), the matching
20-event agent stream, a 20-arrow ladder, 10 findings with evidence, three steps
and RTP figures for calls; verdicts are mixed (fail, error, pass, skip). It
renders all four files (index.html, junit.xml, summary.md, results.json) with one
password to scrub and prints the time of each round (best and median), the sizes of
the files and the process's peak RSS. Target: under 2 s for 500 records.
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.report import render_all
from tests.report.builders import sample_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    build_start = time.perf_counter()
    results = sample_results(count=args.records, messages=20, findings=10)
    build_s = time.perf_counter() - build_start
    messages = sum(len(r.messages) for r in results.records)
    findings = sum(len(r.findings) for r in results.records)
    print(
        f"python {platform.python_version()} on {platform.machine()}; "
        f"{len(results.records)} records, {messages} messages, {findings} findings "
        f"(built in {build_s:.2f} s)"
    )
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            gc.collect()
            out = Path(tmp) / f"round-{n}"
            start = time.perf_counter()
            paths = render_all(results, out, secrets=["hunter2-bench"])
            times.append(time.perf_counter() - start)
        sizes = {p.name: p.stat().st_size for p in paths}
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        f"render_all: best {min(times):.2f} s, "
        f"median {statistics.median(times):.2f} s over {len(times)} rounds"
    )
    print("sizes: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items()))
    print(f"peak RSS: {peak_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
