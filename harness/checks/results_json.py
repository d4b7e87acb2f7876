"""The ``results.json`` document that ``analyze`` (and later ``run``) writes.

Shape (``schema_version`` 1)::

    {
      "schema_version": 1,
      "generator": "sipharness 0.1.0",
      "records": [
        {"scenario": "analyze", "profile": "capture", "verdict": "pass" | "fail",
         "duration_s": 12.5, "events": [],
         "findings": [<Finding.to_dict()>, ...],      # every check, with its outcome
         "messages": [<message record>, ...]}           # every SIP message decoded
      ]
    }

A message record is ``{index, frame, timestamp, src, dst, transport, label,
call_id, cseq, size}`` (``label`` is ``INVITE`` or ``200 OK``). Nothing in the
document holds a number's password: findings see only the redacted number, and
:func:`dumps` masks any secret it is given wherever it would appear.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from harness import __version__
from harness.capture.decode import CapturedMessage
from harness.capture.flows import label
from harness.checks.registry import Finding, Outcome
from harness.numbers.model import PASSWORD_MASK

SCHEMA_VERSION: Final = 1


def message_record(captured: CapturedMessage) -> dict[str, Any]:
    cseq = captured.message.cseq
    return {
        "index": captured.index,
        "frame": captured.frame,
        "timestamp": captured.timestamp,
        "src": str(captured.src),
        "dst": str(captured.dst),
        "transport": captured.transport,
        "label": label(captured.message),
        "call_id": captured.call_id,
        "cseq": None if cseq is None else f"{cseq[0]} {cseq[1]}",
        "size": captured.size,
    }


def verdict(findings: Iterable[Finding]) -> str:
    """``fail`` when a check failed or errored, else ``pass``."""
    bad = (Outcome.FAIL, Outcome.ERROR)
    return "fail" if any(f.outcome in bad for f in findings) else "pass"


def run_record(
    *,
    scenario: str,
    profile: str,
    findings: Sequence[Finding],
    messages: Iterable[CapturedMessage],
    duration_s: float,
    events: Iterable[dict[str, Any]] = (),
    verdict_override: str | None = None,
) -> dict[str, Any]:
    """One record of the document (one scenario run, or one analysed capture)."""
    return {
        "scenario": scenario,
        "profile": profile,
        "verdict": verdict_override or verdict(findings),
        "duration_s": round(duration_s, 6),
        "events": list(events),
        "findings": [f.to_dict() for f in findings],
        "messages": [message_record(m) for m in messages],
    }


def document(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"sipharness {__version__}",
        "records": list(records),
    }


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by the password mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, PASSWORD_MASK)
    return text


def dumps(payload: Any, *, secrets: Iterable[str | None] = ()) -> str:
    """JSON text of ``payload`` (indented), secrets masked."""
    chosen = [s for s in secrets if s]
    text = json.dumps(payload, indent=2)
    # A secret may be JSON-escaped inside the text: mask both spellings.
    escaped = [json.dumps(s)[1:-1] for s in chosen]
    return redact(text, [*chosen, *escaped])


def write_results(
    path: Path, payload: dict[str, Any], *, secrets: Iterable[str | None] = ()
) -> Path:
    """Write ``payload`` as JSON to ``path`` (parents created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(payload, secrets=secrets) + "\n", encoding="utf-8")
    return path
