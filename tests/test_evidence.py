"""From a real capture (SIPp against SIPp on loopback) to a results record."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.capture.pcapfile import CaptureError
from harness.evidence import analyze_capture, fill_record, scrub
from harness.results import ScenarioRecord, Verdict

DATA = Path(__file__).parent / "capture" / "data"


@pytest.mark.parametrize("name", ["sipp_udp_lo.pcapng", "sipp_tcp_any.pcap"])
def test_record_gets_messages_ladder_and_findings(name: str) -> None:
    analysis = analyze_capture(DATA / name, rtp=False)
    record = ScenarioRecord(scenario="s", profile="p", verdict=Verdict.PASS)
    fill_record(record, analysis, pcap="s.pcap")
    assert len(record.messages) == len(analysis.decoded.messages) == 30
    assert len(record.ladder.arrows) == 30
    assert len(record.ladder.participants) == 2
    assert record.messages[0].time == 0.0
    assert record.messages[0].label == "INVITE"
    assert record.messages[0].text.startswith("INVITE sip:")
    assert record.pcap == "s.pcap"
    # Not-applicable findings are left out; the rest name a check id and an outcome.
    assert record.findings
    assert all(f.outcome in {"pass", "fail", "error"} for f in record.findings)
    assert {"TXN-005", "HDR-002"} <= {f.id for f in record.findings}
    # Every arrow points at a message of the record.
    indexes = {m.index for m in record.messages}
    assert all(a.message in indexes for a in record.ladder.arrows)


def test_secrets_are_scrubbed_from_message_texts() -> None:
    analysis = analyze_capture(DATA / "sipp_udp_lo.pcapng", rtp=False)
    call_id = analysis.decoded.messages[0].call_id
    assert call_id
    record = ScenarioRecord(scenario="s", profile="p", verdict=Verdict.PASS)
    fill_record(record, analysis, secrets=[call_id])  # pretend the Call-ID were a password
    dumped = json.dumps(asdict(record))
    assert call_id not in dumped
    assert "********" in dumped


def test_scrub_ignores_empty_secrets() -> None:
    assert scrub("abc", [None, ""]) == "abc"


def test_not_a_capture_is_an_input_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.pcap"
    bogus.write_bytes(b"not a capture at all")
    with pytest.raises(CaptureError):
        analyze_capture(bogus)


def test_huge_captures_are_cut_in_the_record_not_in_the_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness import evidence

    monkeypatch.setattr(evidence, "MAX_RECORD_MESSAGES", 10)
    monkeypatch.setattr(evidence, "MAX_EVIDENCE", 2)
    analysis = analyze_capture(DATA / "sipp_udp_lo.pcapng", rtp=False)
    record = ScenarioRecord(scenario="s", profile="p", verdict=Verdict.PASS)
    fill_record(record, analysis)
    assert len(record.messages) == len(record.ladder.arrows) == 10
    assert "holds 30 SIP messages" in record.steps[-1].detail
    assert all(len(f.evidence) <= 2 for f in record.findings)
    # The checks saw everything: a finding's evidence can point past the cut.
    assert any("evidence: the first 2 of" in f.detail for f in record.findings)
