"""JSON helpers for what the checks print: the verdict of a set of findings, and
JSON text with secrets masked.

The ``results.json`` shape itself is :mod:`harness.results`; the capture-to-record
path is :mod:`harness.evidence`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from harness.checks.registry import Finding, Outcome
from harness.report.redact import scrub_secrets


def verdict(findings: Iterable[Finding]) -> str:
    """``fail`` when a check failed or errored, else ``pass``."""
    bad = (Outcome.FAIL, Outcome.ERROR)
    return "fail" if any(f.outcome in bad for f in findings) else "pass"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by the password mask.

    The reports' scrubber does the work (longest secret first, so a secret inside
    another leaves nothing of the longer one behind); this accepts None entries.
    """
    return scrub_secrets(text, [s for s in secrets if s])


def dumps(payload: Any, *, secrets: Iterable[str | None] = ()) -> str:
    """JSON text of ``payload`` (indented), secrets masked."""
    chosen = [s for s in secrets if s]
    text = json.dumps(payload, indent=2)
    # A secret may be JSON-escaped inside the text: mask both spellings.
    escaped = [json.dumps(s)[1:-1] for s in chosen]
    return redact(text, [*chosen, *escaped])
