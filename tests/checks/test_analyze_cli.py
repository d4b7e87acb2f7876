"""``sipharness analyze``: exit codes, JSON keys, results.json, no password leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.checks import Outcome
from harness.checks.registry import REGISTRY, CheckRegistry, Severity, check
from harness.checks.run import run_checks
from harness.cli import app
from tests.capture.builders import CaptureBuilder
from tests.checks.builders import (
    AUTH_USER,
    CARRIER,
    DOMAIN,
    NUMBER,
    PLATFORM,
    PROXY,
    SECRET,
    USERNAME,
    Trace,
    call,
    good_trace,
    options,
)


def _pcap(trace: Trace, path: Path, *, garbage: bytes | None = None) -> Path:
    cap = CaptureBuilder()
    for captured in trace.messages:
        cap.udp(tuple(captured.src), tuple(captured.dst), captured.message.to_bytes())
    if garbage is not None:
        cap.udp(CARRIER, PLATFORM, garbage)
    return cap.save(path)


def _number_file(path: Path) -> Path:
    lines = [
        f'phone_number: "{NUMBER}"',
        f"sip_domain: {DOMAIN}",
        f'username: "{USERNAME}"',
        f'password: "{SECRET}"',
        f'auth_username: "{AUTH_USER}"',
        f'outbound_proxy: "{PROXY}"',
        f'origination_uri: "sip:{PLATFORM[0]}:{PLATFORM[1]}"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"analyze raised {result.exception!r}") from result.exception
    return result.exit_code, result.stdout, result.stderr


def test_good_capture_exits_0_and_writes_results(tmp_path: Path) -> None:
    trace = good_trace()
    # The password also appears in the capture itself: it must still never be printed.
    options(trace, call_id=f"leak-{SECRET}")
    pcap = _pcap(trace, tmp_path / "good.pcap")
    number = _number_file(tmp_path / "number.yaml")
    out = tmp_path / "out"
    code, stdout, stderr = _invoke(
        ["analyze", str(pcap), "--number", str(number), "--out", str(out)]
    )
    assert code == 0, stdout + stderr
    assert "verdict: PASS" in stdout
    assert "calls: 5 " in stdout
    results = (out / "results.json").read_text(encoding="utf-8")
    assert SECRET not in stdout
    assert SECRET not in results
    doc = json.loads(results)
    assert doc["schema_version"] == 1
    (record,) = doc["records"]
    assert record["scenario"] == "analyze"
    assert record["profile"] == "capture"
    assert record["verdict"] == "pass"
    assert record["events"] == []
    assert len(record["messages"]) == len(trace.messages)
    # Findings that did not apply are left out of the record; the rest are all there.
    ids = {f["id"] for f in record["findings"]}
    assert ids <= {c.id for c in REGISTRY}
    assert {"ID-001", "TXN-005", "HDR-002"} <= ids
    assert all(f["outcome"] != "not_applicable" for f in record["findings"])
    assert (out / "index.html").is_file()
    assert (out / "junit.xml").is_file()


def test_failing_capture_exits_1_with_json_findings(tmp_path: Path) -> None:
    trace = Trace()
    call(trace, from_uri=f"sip:15550100001@{DOMAIN}")
    pcap = _pcap(trace, tmp_path / "bad.pcap")
    number = _number_file(tmp_path / "number.yaml")
    code, stdout, _ = _invoke(
        ["analyze", str(pcap), "--number", str(number), "--out", str(tmp_path), "--json"]
    )
    assert code == 1
    payload = json.loads(stdout)
    assert payload["messages"] == len(trace.messages)
    assert payload["calls"] == 1
    ids = {f["id"] for f in payload["findings"]}
    assert "ID-001" in ids
    finding = next(f for f in payload["findings"] if f["id"] == "ID-001")
    assert finding["severity"] == "error"
    assert finding["remediation"].startswith("Set phone_number")
    assert finding["title"]
    assert finding["evidence"][0]["frame"] == trace.messages[0].frame
    assert SECRET not in stdout


def test_text_summary_names_finding_evidence_and_fix(tmp_path: Path) -> None:
    trace = Trace()
    call(trace, from_uri=f"sip:15550100001@{DOMAIN}")
    pcap = _pcap(trace, tmp_path / "bad.pcap")
    number = _number_file(tmp_path / "number.yaml")
    code, stdout, _ = _invoke(
        ["analyze", str(pcap), "--number", str(number), "--out", str(tmp_path)]
    )
    assert code == 1
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("FAIL error ID-001"))
    assert "frame" in lines[head + 1]
    assert any(line.startswith("  fix: Set phone_number") for line in lines[head:])


def test_not_a_capture_exits_2_with_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, not a pcap\n", encoding="utf-8")
    code, stdout, stderr = _invoke(["analyze", str(bogus), "--out", str(tmp_path)])
    assert code == 2
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert stderr.startswith("error: ")
    assert not (tmp_path / "results.json").exists()


def test_missing_capture_exits_2(tmp_path: Path) -> None:
    code, _, stderr = _invoke(["analyze", str(tmp_path / "nope.pcap"), "--out", str(tmp_path)])
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1


def test_garbage_in_capture_is_a_dec_001_finding(tmp_path: Path) -> None:
    trace = Trace()
    options(trace)
    pcap = _pcap(
        trace, tmp_path / "garbage.pcap", garbage=b"INVITE sip:x@y SIP/2.0\r\n\x00\xff\r\n"
    )
    code, stdout, _ = _invoke(["analyze", str(pcap), "--out", str(tmp_path), "--json"])
    assert code == 1
    payload = json.loads(stdout)
    assert payload["messages"] == 2
    dec = next(f for f in payload["findings"] if f["id"] == "DEC-001")
    assert dec["evidence"][0]["frame"] == 3


def test_default_out_dir_is_reports_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = Trace()
    options(trace)
    pcap = _pcap(trace, tmp_path / "ping.pcap")
    monkeypatch.chdir(tmp_path)
    code, _, _ = _invoke(["analyze", str(pcap)])
    assert code == 0
    assert (tmp_path / "reports" / "out" / "results.json").is_file()


def test_a_crashing_check_is_an_error_result_not_a_crash() -> None:
    registry = CheckRegistry()

    @check(
        "XXX-001",
        title="boom",
        reference="test",
        severity=Severity.INFO,
        remediation="None.",
        topic="test",
        registry=registry,
    )
    def boom(ctx: object) -> list[object]:
        raise ZeroDivisionError("on purpose")

    trace = good_trace()
    run = run_checks(trace.flows(), checks=[*registry, REGISTRY.get("OPT-001")])
    assert run.finding("XXX-001").outcome is Outcome.ERROR
    assert "ZeroDivisionError" in run.finding("XXX-001").results[0].reason
    assert run.finding("OPT-001").outcome is Outcome.PASS
    assert not run.ok


def test_checks_needing_a_number_are_not_applicable_without_one() -> None:
    run = good_trace().run(None)
    assert run.finding("ID-001").outcome is Outcome.NOT_APPLICABLE
    assert run.finding("ROUTE-003").outcome is Outcome.NOT_APPLICABLE
    assert run.finding("AUTH-002").outcome is Outcome.PASS
    assert run.ok
