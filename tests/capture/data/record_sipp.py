"""Record the real-traffic captures in this folder: SIPp UAC against SIPp UAS on loopback.

Makes two files (run as root, with ``sipp`` and ``dumpcap`` installed)::

    sipp_udp_lo.pcapng  - 5 calls over UDP, captured on "lo" (pcapng, Ethernet)
    sipp_tcp_any.pcap   - 5 calls over TCP, captured on "any" (pcap, Linux cooked)

Traffic stays on 127.0.0.61 (UAS) and 127.0.0.62 (UAC). Usage, from the repo root::

    .venv/bin/python tests/capture/data/record_sipp.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
UAS_IP = "127.0.0.61"
UAC_IP = "127.0.0.62"
DEADLINE = 60.0


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def record(output: Path, *, transport: str, interface: str, pcap: bool, port: int) -> None:
    capture = [
        "dumpcap",
        "-q",
        "-i",
        interface,
        "-f",
        f"host {UAS_IP}",
        "-w",
        str(output),
    ] + (["-P"] if pcap else [])
    sipp_t = "u1" if transport == "udp" else "t1"
    dumper = subprocess.Popen(capture, stderr=subprocess.DEVNULL)
    uas = None
    try:
        time.sleep(1.5)  # dumpcap needs a moment before it sees packets
        uas = subprocess.Popen(
            ["sipp", "-sn", "uas", "-i", UAS_IP, "-p", str(port), "-t", sipp_t, "-nostdin"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        subprocess.run(
            [
                "sipp",
                "-sn",
                "uac",
                f"{UAS_IP}:{port}",
                "-i",
                UAC_IP,
                "-t",
                sipp_t,
                "-m",
                "5",
                "-r",
                "5",
                "-d",
                "200",
                "-nostdin",
                "-timeout",
                "30s",
                "-timeout_error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=DEADLINE,
        )
        time.sleep(1.0)
    finally:
        if uas is not None:
            _stop(uas)
        _stop(dumper)
    print(f"wrote {output} ({output.stat().st_size} bytes)")


def main() -> int:
    record(HERE / "sipp_udp_lo.pcapng", transport="udp", interface="lo", pcap=False, port=5071)
    record(HERE / "sipp_tcp_any.pcap", transport="tcp", interface="any", pcap=True, port=5072)
    return 0


if __name__ == "__main__":
    sys.exit(main())
