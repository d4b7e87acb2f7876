"""From a capture to the evidence of a results record.

``run``, ``probe`` and ``analyze`` all end the same way: decode the capture,
build the flows, run the checks, and put messages, ladder, findings and RTP
figures into a :class:`~harness.results.ScenarioRecord`. This module is that one
path, so that the three commands cannot drift apart.

Passwords: the checks only ever see the redacted number; :func:`fill_record`
also scrubs the given secrets from every message text it copies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.capture.decode import CapturedMessage, Decoded, decode_capture
from harness.capture.flows import Flows, Ladder, build_flows, label
from harness.capture.rtp import RtpStream, analyze_rtp, attach_streams
from harness.checks.registry import Evidence, Finding, Outcome
from harness.checks.results_json import redact as scrub
from harness.checks.run import CheckRun, run_checks
from harness.numbers.model import NumberConfig
from harness.results import (
    Arrow,
    EvidenceRef,
    FindingRecord,
    LadderRecord,
    MessageRecord,
    ScenarioRecord,
    Step,
)

#: Message texts longer than this are cut in records (the pcap keeps them whole).
MAX_TEXT = 8000
#: A record keeps at most this many messages (and ladder arrows): a report is read
#: by a person, and a customer's capture can hold 100,000 messages. Findings still
#: come from every message; their evidence names capture frames.
MAX_RECORD_MESSAGES = 2000
#: Evidence items kept per finding (the first ones; the count of the rest is said).
MAX_EVIDENCE = 20


@dataclass(frozen=True)
class CaptureAnalysis:
    """A decoded capture with its flows, check results and RTP streams."""

    path: Path
    decoded: Decoded
    flows: Flows
    checks: CheckRun
    rtp: Mapping[str, tuple[RtpStream, ...]] | None
    rtp_note: str | None = None


def analyze_capture(
    path: Path,
    number: NumberConfig | None = None,
    *,
    local_addresses: Iterable[str] | None = None,
    rtp: bool = True,
) -> CaptureAnalysis:
    """Decode ``path``, build flows, measure RTP (tshark) and run every check.

    Raises :class:`~harness.capture.pcapfile.CaptureError` (an InputError) when
    ``path`` is not a readable capture; anything a peer sent becomes findings.
    """
    decoded = decode_capture(path)
    flows = build_flows(decoded)
    streams: Mapping[str, tuple[RtpStream, ...]] | None = None
    note: str | None = None
    if rtp and decoded.rtp_candidates:
        measured = analyze_rtp(path)
        if measured.available:
            streams = attach_streams(flows, measured.streams)
        else:
            note = measured.reason
    checks = run_checks(
        flows,
        number,
        issues=decoded.issues,
        tls_streams=decoded.tls_streams,
        rtp=streams,
        local_addresses=local_addresses,
        unreachable=decoded.unreachable,
    )
    return CaptureAnalysis(path, decoded, flows, checks, streams, note)


def message_text(captured: CapturedMessage, secrets: Iterable[str | None] = ()) -> str:
    """The message as text (head and body), secrets scrubbed, cut at :data:`MAX_TEXT`."""
    raw = captured.message.to_bytes().decode("utf-8", errors="replace")
    if len(raw) > MAX_TEXT:
        raw = raw[:MAX_TEXT] + f"\n[... {len(raw) - MAX_TEXT} more characters in the pcap]"
    return scrub(raw, secrets)


def message_records(
    messages: Iterable[CapturedMessage], secrets: Iterable[str | None] = ()
) -> list[MessageRecord]:
    """Records for the messages, times relative to the first one."""
    chosen = list(messages)
    secrets = list(secrets)
    start = chosen[0].timestamp if chosen else 0.0
    out = []
    for captured in chosen:
        text = message_text(captured, secrets)
        first_line = text.split("\r\n", 1)[0]
        out.append(
            MessageRecord(
                index=captured.index,
                time=round(captured.timestamp - start, 6),
                src=str(captured.src),
                dst=str(captured.dst),
                transport=captured.transport,
                label=label(captured.message),
                summary=first_line,
                text=text,
                frame=captured.frame,
            )
        )
    return out


def ladder_record(ladder: Ladder, *, limit: int | None = None) -> LadderRecord:
    """The ladder as recorded; with ``limit``, only its first ``limit`` arrows."""
    arrows = ladder.arrows if limit is None else ladder.arrows[:limit]
    return LadderRecord(
        participants=list(ladder.participants),
        arrows=[
            Arrow(
                src=a.src,
                dst=a.dst,
                label=a.label,
                time=round(a.offset, 6),
                transport=a.transport,
                message=a.index,
            )
            for a in arrows
        ],
    )


def _evidence_ref(item: Evidence, start: float) -> EvidenceRef:
    time = None if item.timestamp is None else round(item.timestamp - start, 6)
    return EvidenceRef(index=item.index, frame=item.frame, time=time, summary=item.summary)


def finding_record(
    finding: Finding, secrets: Iterable[str | None] = (), *, start: float = 0.0
) -> FindingRecord:
    """A finding as recorded; evidence times are seconds from ``start`` (the capture's
    first message, as for the record's messages)."""
    check = finding.check
    secrets = list(secrets)
    chosen = finding.failures or finding.results
    detail = "; ".join(dict.fromkeys(r.reason for r in chosen[:3]))
    evidence = finding.evidence
    if len(evidence) > MAX_EVIDENCE:
        detail += f" (evidence: the first {MAX_EVIDENCE} of {len(evidence)} messages)"
        evidence = evidence[:MAX_EVIDENCE]
    return FindingRecord(
        id=check.id,
        title=check.title,
        severity=check.severity.value,
        outcome=finding.outcome.value,
        rfc=check.reference,
        remediation=check.remediation,
        detail=scrub(detail, secrets),
        evidence=[
            dataclasses.replace(_evidence_ref(e, start), summary=scrub(e.summary, secrets))
            for e in evidence
        ],
    )


def rtp_records(analysis: CaptureAnalysis) -> list[dict[str, object]]:
    """tshark's figures per stream, with the Call-ID they belong to."""
    if analysis.rtp is None:
        return []
    out: list[dict[str, object]] = []
    for call_id, streams in analysis.rtp.items():
        for stream in streams:
            data = {
                k: (str(v) if not isinstance(v, int | float | str | bool | None) else v)
                for k, v in dataclasses.asdict(stream).items()
            }
            out.append({"source": "capture", "call_id": call_id, **data})
    return out


def fill_record(
    record: ScenarioRecord,
    analysis: CaptureAnalysis,
    *,
    secrets: Iterable[str | None] = (),
    pcap: str | None = None,
) -> None:
    """Put the capture's messages, ladder, findings and RTP figures into ``record``.

    Findings that are not applicable are left out (they say nothing about this
    scenario); RTP figures the agent measured stay and tshark's are appended.
    """
    secrets = list(secrets)
    messages = analysis.decoded.messages
    kept = messages[:MAX_RECORD_MESSAGES]
    record.messages = message_records(kept, secrets)
    record.ladder = ladder_record(analysis.flows.ladder, limit=len(kept))
    if len(messages) > len(kept):
        record.steps.append(
            Step(
                name="capture",
                status="pass",
                detail=(
                    f"the capture holds {len(messages)} SIP messages; this report shows the "
                    f"first {len(kept)} (the pcap has them all, the checks saw them all)"
                ),
            )
        )
    start = messages[0].timestamp if messages else 0.0
    record.findings = [
        finding_record(f, secrets, start=start)
        for f in analysis.checks.findings
        if f.outcome is not Outcome.NOT_APPLICABLE
    ]
    record.rtp = [*record.rtp, *rtp_records(analysis)]
    if pcap is not None:
        record.pcap = pcap
