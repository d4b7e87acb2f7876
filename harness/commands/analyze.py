"""``sipharness analyze CAPTURE [--number FILE] [--out DIR] [--json]``: check a capture.

Contract (scripts rely on it):

* exit 0: no check failed; exit 1: at least one check failed (or a check itself
  errored); exit 2: the capture (or the number file) cannot be used, with one
  line ``error: ...`` on stderr.
* ``DIR`` (default ``reports/out/`` under the current directory) gets the four
  reports of :func:`harness.report.render_all`: ``results.json`` (the
  :mod:`harness.results` shape, one record: scenario ``analyze``, profile
  ``capture``), ``index.html``, ``junit.xml`` and ``summary.md``.
* With ``--json`` stdout is exactly one JSON object: ``messages`` (SIP messages
  decoded), ``calls`` (distinct Call-IDs), ``registrations``, ``verdict``,
  ``findings`` (the checks that failed, each with ``id``, ``severity``, ``title``,
  ``reference``, ``remediation``, ``outcome``, ``evidence`` and ``results``),
  ``checks`` (every check id and its outcome) and ``results`` (the file written).
* The number's password never appears on stdout, stderr or in results.json.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.capture.decode import Decoded
from harness.capture.flows import Flows
from harness.checks.registry import Finding, Outcome
from harness.checks.results_json import dumps, redact, verdict
from harness.checks.run import CheckRun
from harness.commands.common import EXIT_FAILURE, EXIT_OK, user_errors
from harness.evidence import analyze_capture, fill_record
from harness.numbers import NumberConfig, load_number_file
from harness.report import render_all
from harness.results import RunResults, ScenarioRecord, Verdict

DEFAULT_OUT = Path("reports") / "out"
_EVIDENCE_LINES = 5


def register(app: typer.Typer) -> None:
    """Add the ``analyze`` command to ``app``."""
    app.command("analyze")(analyze)


def analyze(
    capture: Annotated[
        Path, typer.Argument(help="A pcap or pcapng capture of SIP traffic.", show_default=False)
    ],
    *,
    number: Annotated[
        Path | None,
        typer.Option("--number", help="The number file (YAML) the traffic should follow."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json.")] = DEFAULT_OUT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of the summary.")
    ] = False,
    local: Annotated[
        list[str] | None,
        typer.Option(
            "--local",
            help="The platform's own address (ip or ip:port); repeatable. Default: inferred.",
        ),
    ] = None,
    rtp: Annotated[
        bool, typer.Option("--rtp/--no-rtp", help="Measure RTP streams with tshark.")
    ] = True,
) -> None:
    """Decode a capture, run every conformance check, print findings with their evidence.

    Exit 0 no check failed, 1 some check failed, 2 the capture or number file is unusable.
    """
    with user_errors():
        code = run_analyze(
            capture=capture, number_file=number, out=out, as_json=as_json, local=local, rtp=rtp
        )
    if code != EXIT_OK:
        raise typer.Exit(code=code)


def run_analyze(
    *,
    capture: Path,
    number_file: Path | None,
    out: Path,
    as_json: bool,
    local: list[str] | None = None,
    rtp: bool = True,
) -> int:
    """Analyse ``capture``; print the outcome; return 0 or 1.

    Raises :class:`~harness.errors.InputError` (exit 2) for an unusable capture or
    number file.
    """
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    config = load_number_file(number_file) if number_file is not None else None
    analysis = analyze_capture(capture, config, local_addresses=local, rtp=rtp)
    decoded, flows, run = analysis.decoded, analysis.flows, analysis.checks
    secrets = _secrets(config)
    failed = run.failed
    record = ScenarioRecord(
        scenario="analyze",
        profile="capture",
        verdict=Verdict.PASS if run.ok else Verdict.FAIL,
        title=f"Capture {capture.name}",
        reason=(f"{failed[0].check.id} {failed[0].check.title}" if failed else ""),
        started_at=started_at,
    )
    pcap_link = os.path.relpath(capture.resolve(), out.resolve())
    fill_record(record, analysis, secrets=secrets, pcap=pcap_link)
    record.duration_s = round(time.monotonic() - started, 3)
    results = RunResults(
        command="analyze",
        started_at=started_at,
        duration_s=record.duration_s,
        number=config.to_public_dict() if config is not None else None,
        profiles=["capture"],
        records=[record],
    )
    path = render_all(results, out, secrets=[s for s in secrets if s]).results_json
    if as_json:
        typer.echo(dumps(_json_summary(decoded, flows, run, path), secrets=secrets))
    else:
        typer.echo(redact(_text_summary(decoded, flows, run, path), secrets))
    return EXIT_OK if run.ok else EXIT_FAILURE


def _secrets(config: NumberConfig | None) -> list[str | None]:
    return [] if config is None else [config.password]


def _registrations(flows: Flows) -> list[tuple[str, int | None]]:
    return [(c.call_id, c.final_status) for c in flows.calls if c.method == "REGISTER"]


def _finding_json(finding: Finding) -> dict[str, Any]:
    data = finding.to_dict()
    data["results"] = [r.to_dict() for r in finding.failures]
    return data


def _json_summary(decoded: Decoded, flows: Flows, run: CheckRun, path: Path) -> dict[str, Any]:
    return {
        "capture": decoded.source,
        "format": decoded.format,
        "frames": decoded.frames,
        "messages": len(decoded.messages),
        "calls": len(flows.calls),
        "registrations": len(_registrations(flows)),
        "decode_issues": len(decoded.issues),
        "verdict": verdict(run.findings),
        "counts": run.counts(),
        "findings": [_finding_json(f) for f in run.failed],
        "checks": {f.check.id: f.outcome.value for f in run.findings},
        "results": str(path),
    }


def _text_summary(decoded: Decoded, flows: Flows, run: CheckRun, path: Path) -> str:
    lines = [
        f"capture: {decoded.source} ({decoded.format}, {decoded.frames} frames, "
        f"{len(decoded.messages)} SIP messages, {len(decoded.issues)} decode issues)"
    ]
    by_method: dict[str, int] = {}
    for call in flows.calls:
        by_method[call.method] = by_method.get(call.method, 0) + 1
    kinds = ", ".join(f"{n} {m}" for m, n in sorted(by_method.items())) or "none"
    lines.append(f"calls: {len(flows.calls)} ({kinds})")
    for call in flows.calls:
        if call.method == "INVITE":
            lines.append(
                f"  call {call.call_id}: final {call.final_status or 'none'}, "
                f"{len(call.messages)} messages, {call.duration:.1f} s"
            )
    regs = _registrations(flows)
    lines.append(f"registrations: {len(regs)}")
    lines.extend(f"  {cid}: final {status or 'none'}" for cid, status in regs)
    counts = run.counts()
    lines.append(
        f"findings: {counts['error']} error, {counts['warning']} warning, {counts['info']} info"
        f" ({counts[Outcome.PASS.value]} checks passed,"
        f" {counts[Outcome.NOT_APPLICABLE.value]} not applicable)"
    )
    for finding in run.failed:
        check = finding.check
        lines.append(f"FAIL {check.severity.value} {check.id} {check.title} [{check.reference}]")
        failures = finding.failures
        for result in failures[:_EVIDENCE_LINES]:
            where = ", ".join(
                f"#{e.index} frame {e.frame}" if e.index is not None else f"frame {e.frame}"
                for e in result.evidence[:3]
            )
            lines.append(f"  - {result.reason}" + (f" ({where})" if where else ""))
        if len(failures) > _EVIDENCE_LINES:
            lines.append(f"  - ... and {len(failures) - _EVIDENCE_LINES} more")
        lines.append(f"  fix: {check.remediation}")
    state = "FAIL" if run.failed else "PASS"
    lines.append(f"verdict: {state}; results written to {path}")
    return "\n".join(_one_line(line) for line in lines)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")
