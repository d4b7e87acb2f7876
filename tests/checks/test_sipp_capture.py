"""Real SIPp traffic on loopback, captured with dumpcap, then ``analyze``d."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app

UAC_IP = "127.0.0.201"
UAS_IP = "127.0.0.202"
CALLS = 2

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("sipp") is None or shutil.which("dumpcap") is None,
        reason="needs sipp (sip-tester) and dumpcap",
    ),
]


def _wait_for_capture_start(proc: subprocess.Popen[bytes], deadline: float) -> None:
    """dumpcap writes 'Capturing on' to stderr once it listens."""
    assert proc.stderr is not None
    seen = b""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if b"Capturing on" in line:
            return
    pytest.skip(f"dumpcap did not start: {seen.decode(errors='replace').strip()}")


def _record(pcap: Path, tmp_path: Path) -> None:
    dumpcap = subprocess.Popen(
        ["dumpcap", "-q", "-i", "lo", "-f", f"host {UAS_IP}", "-w", str(pcap), "-a", "duration:20"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_capture_start(dumpcap, time.monotonic() + 10)
        uas = subprocess.Popen(
            ["sipp", "-sn", "uas", "-i", UAS_IP, "-p", "5060", "-m", str(CALLS), "-nostdin"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )
        try:
            time.sleep(0.3)  # let the UAS bind before the first INVITE
            subprocess.run(
                [
                    "sipp",
                    "-sn",
                    "uac",
                    f"{UAS_IP}:5060",
                    "-i",
                    UAC_IP,
                    "-p",
                    "5070",
                    "-m",
                    str(CALLS),
                    "-r",
                    "10",
                    "-d",
                    "100",
                    "-nostdin",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tmp_path,
                timeout=30,
                check=True,
            )
            uas.wait(timeout=10)
        finally:
            if uas.poll() is None:
                uas.terminate()
                uas.wait(timeout=10)
        time.sleep(0.3)  # the last BYE/200 reach the capture buffer
    finally:
        dumpcap.terminate()
        dumpcap.wait(timeout=10)
        if dumpcap.stderr is not None:
            dumpcap.stderr.close()


def test_sipp_call_passes_analyze(tmp_path: Path) -> None:
    pcap = tmp_path / "sipp.pcapng"
    _record(pcap, tmp_path)
    result = CliRunner().invoke(
        app, ["analyze", str(pcap), "--out", str(tmp_path / "out"), "--json", "--no-rtp"]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    payload = json.loads(result.stdout)
    assert result.exit_code == 0, payload["findings"]
    assert payload["calls"] == CALLS
    assert payload["messages"] == CALLS * 6  # SIPp uas: INVITE 180 200 ACK BYE 200
    expected = ["INV-001", "INV-004", "INV-006", "TXN-001", "TXN-002", "TXN-003", "TXN-004"]
    expected += ["TXN-005", "HDR-001", "HDR-002", "HDR-004", "TRN-001", "TRN-002", "DEC-001"]
    for check_id in expected:
        assert payload["checks"][check_id] == "pass", check_id
