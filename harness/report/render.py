"""Render a run's results into the four report files.

:func:`render_all` is what ``run``, ``probe``, ``analyze`` and ``report`` call. It
writes into ``out_dir``:

* ``index.html`` — one self-contained page (inline CSS and SVG, a few lines of
  inline script, no external asset; a Content-Security-Policy forbids fetching
  any), failures first;
* ``junit.xml`` — one testcase per record, readable by Jenkins, GitLab and GitHub;
* ``summary.md`` — a short Markdown summary for a pull request or chat message;
* ``results.json`` — the results themselves, re-written with ``schema_version``.

The HTML and Markdown come from Jinja2 templates (autoescaped HTML) in the
top-level ``reports/`` folder; ``templates_dir`` points at a user's copies, each
missing file falling back to the bundled one. JUnit is built with ElementTree.

Secrets: every string of ``secrets`` is replaced by ``********`` in all four files;
digest ``response``/``nonce``/``cnonce`` values and non-digest credentials are
masked in HTML, Markdown and JUnit (see :mod:`harness.report.redact`). Values of
number fields whose name says password, secret or token are masked everywhere.
"""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, NamedTuple
from urllib.parse import quote

import jinja2

from harness import __version__
from harness.errors import InputError
from harness.report.ladder import LadderLayout, effective_ladder, ladder_lines, layout_ladder
from harness.report.redact import MASK, mask_auth_text, scrub_data
from harness.resources import data_dir
from harness.results import (
    VERDICT_ORDER,
    FindingRecord,
    MessageRecord,
    RunResults,
    ScenarioRecord,
    Verdict,
)

#: Where reports go when a command is given no ``--out`` (relative to the working
#: directory, never inside the installed package).
DEFAULT_OUT_DIR: Final = Path("reports") / "out"

HTML_TEMPLATE: Final = "index.html.j2"
MARKDOWN_TEMPLATE: Final = "summary.md.j2"
#: Templates a ``--templates`` folder may override, each falling back to the bundled one.
TEMPLATE_NAMES: Final = (
    HTML_TEMPLATE,
    MARKDOWN_TEMPLATE,
    "partials/style.css",
    "partials/record.html.j2",
    "partials/ladder.svg.j2",
)

#: Lines the Markdown summary lists failures on, at most (the page has them all).
SUMMARY_MAX_FAILURES: Final = 12

_SEVERITY_ORDER: Final = {"error": 0, "warning": 1, "info": 2}
_OUTCOME_ORDER: Final = {"fail": 0, "error": 1, "pass": 2, "not_applicable": 3}
# Number fields whose value is a credential: password, sip_password, api-token...
_SECRET_FIELD: Final = re.compile(r"(?:.*[_-])?(?:password|passwd|secret|token)", re.IGNORECASE)
_ANCHOR_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")
# Characters XML 1.0 cannot carry at all (control characters but tab, LF, CR).
_XML_INVALID: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ReportPaths(NamedTuple):
    """The files :func:`render_all` wrote."""

    index_html: Path
    junit_xml: Path
    summary_md: Path
    results_json: Path


# --- the view the templates see ---------------------------------------------------------


@dataclass
class RecordView:
    """One record as the templates show it (already redacted).

    ``findings_failed`` are ordered by severity then outcome; the first is the "top"
    finding. ``messages`` maps a message index to its record; ``message_anchor``
    gives the HTML id of each.
    """

    record: ScenarioRecord
    anchor: str
    layout: LadderLayout
    findings_failed: list[FindingRecord]
    findings_other: list[FindingRecord]
    messages: dict[int, MessageRecord]
    pcap_href: str | None = None
    pcap_redacted_href: str | None = None
    rtp_columns: list[str] = field(default_factory=list)
    rtp_rows: list[list[str]] = field(default_factory=list)

    @property
    def top_finding(self) -> FindingRecord | None:
        return self.findings_failed[0] if self.findings_failed else None

    def message_anchor(self, index: int | None) -> str:
        return f"{self.anchor}-m{index}" if index is not None else ""


@dataclass
class MatrixView:
    """Scenarios × profiles; ``cells[(scenario, profile)]`` is a record's view."""

    scenarios: list[str]
    profiles: list[str]
    cells: dict[tuple[str, str], RecordView]

    def cell(self, scenario: str, profile: str) -> RecordView | None:
        return self.cells.get((scenario, profile))


@dataclass
class ReportView:
    """Everything a template gets, as ``report``."""

    results: RunResults
    counts: dict[str, int]
    ok: bool
    number: list[tuple[str, str]]
    records: list[RecordView]
    matrix: MatrixView
    renderer_version: str
    failures: list[RecordView]


def _sort_findings(findings: Iterable[FindingRecord]) -> list[FindingRecord]:
    return sorted(
        findings,
        key=lambda f: (_OUTCOME_ORDER.get(f.outcome, 9), _SEVERITY_ORDER.get(f.severity, 9)),
    )


def _anchor(record: ScenarioRecord, taken: set[str]) -> str:
    base = "r-" + _ANCHOR_UNSAFE.sub("-", f"{record.scenario}--{record.profile}").strip("-")
    anchor, n = base, 1
    while anchor in taken:
        n += 1
        anchor = f"{base}-{n}"
    taken.add(anchor)
    return anchor


def _href(path: str, *, base: Path, out_dir: Path) -> str:
    """A relative URL from ``out_dir`` to ``path`` (relative to ``base``, or absolute)."""
    target = Path(path)
    if not target.is_absolute():
        target = base / target
    rel = os.path.relpath(target, out_dir)
    return quote(Path(rel).as_posix(), safe="/._-~")


def _cell(value: Any) -> str:
    """A value as a short table cell: ``—`` for None, yes/no, trimmed decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def _rtp_table(rtp: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    columns: list[str] = []
    for item in rtp:
        for key in item:
            if key not in columns:
                columns.append(key)
    rows = [[_cell(item.get(key)) for key in columns] for item in rtp]
    return columns, rows


def _public_number(number: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if number is None:
        return None
    return {k: (MASK if _SECRET_FIELD.fullmatch(k) and v else v) for k, v in number.items()}


def _number_rows(number: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not number:
        return []
    return [(str(k), _cell(v)) for k, v in number.items() if v not in (None, "", [], {})]


def build_view(
    results: RunResults,
    *,
    out_dir: Path,
    pcap_base: Path | None = None,
    redacted_pcaps: Mapping[str, Path] | None = None,
) -> ReportView:
    """The template context for ``results`` (which the caller has already redacted).

    ``pcap_base`` is the folder record pcap paths are relative to (default
    ``out_dir``); ``redacted_pcaps`` maps a record's ``pcap`` to its redacted copy.
    """
    base = pcap_base if pcap_base is not None else out_dir
    redacted = redacted_pcaps or {}
    taken: set[str] = set()
    views: list[RecordView] = []
    for record in results.records:
        findings = _sort_findings(record.findings)
        failed = [f for f in findings if f.outcome in ("fail", "error")]
        other = [f for f in findings if f.outcome not in ("fail", "error")]
        columns, rows = _rtp_table(record.rtp)
        copy = redacted.get(record.pcap) if record.pcap else None
        views.append(
            RecordView(
                record=record,
                anchor=_anchor(record, taken),
                layout=layout_ladder(effective_ladder(record)),
                findings_failed=failed,
                findings_other=other,
                messages={m.index: m for m in record.messages},
                pcap_href=_href(record.pcap, base=base, out_dir=out_dir) if record.pcap else None,
                pcap_redacted_href=(
                    _href(str(copy), base=out_dir, out_dir=out_dir) if copy is not None else None
                ),
                rtp_columns=columns,
                rtp_rows=rows,
            )
        )
    scenarios: list[str] = []
    profiles: list[str] = list(results.profiles)
    cells: dict[tuple[str, str], RecordView] = {}
    for view in views:
        rec = view.record
        if rec.scenario not in scenarios:
            scenarios.append(rec.scenario)
        if rec.profile not in profiles:
            profiles.append(rec.profile)
        cells.setdefault((rec.scenario, rec.profile), view)
    ordered = sorted(views, key=lambda v: VERDICT_ORDER.get(v.record.verdict, 9))
    return ReportView(
        results=results,
        counts=results.counts(),
        ok=results.ok,
        number=_number_rows(results.number),
        records=ordered,
        matrix=MatrixView(scenarios, [p for p in profiles if _used(p, views)], cells),
        renderer_version=__version__,
        failures=[v for v in ordered if v.record.verdict in (Verdict.FAIL, Verdict.ERROR)],
    )


def _used(profile: str, views: Sequence[RecordView]) -> bool:
    return any(v.record.profile == profile for v in views) or not views


# --- filters ------------------------------------------------------------------------------


def duration(value: float | None) -> str:
    """A duration for people: ``12 ms``, ``1.23 s``, ``2 min 03 s``."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell or list item: one line, no HTML, no ``|``."""
    text = " ".join(str(value).split())
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("`", "'")
    )


_VERDICT_MARK: Final = {"pass": "✅ pass", "fail": "❌ FAIL", "error": "⚠️ ERROR", "skip": "⏭️ skip"}


def verdict_mark(verdict: str) -> str:
    """A verdict with a symbol, for Markdown."""
    return _VERDICT_MARK.get(str(verdict), str(verdict))


# --- the environment ----------------------------------------------------------------------


def _autoescape(name: str | None) -> bool:
    # HTML (and anything else) is escaped; Markdown is escaped by the md filter instead.
    return name is None or not (name.endswith(".md.j2") or name.endswith(".md"))


def template_environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """A Jinja2 environment over ``templates_dir`` (if given) then the bundled templates.

    Raises :class:`~harness.errors.InputError` when ``templates_dir`` is not a folder
    or holds none of :data:`TEMPLATE_NAMES`.
    """
    search: list[Path] = []
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise InputError(f"{templates_dir}: templates folder not found (not a directory)")
        if not any((templates_dir / name).is_file() for name in TEMPLATE_NAMES):
            raise InputError(
                f"{templates_dir}: holds none of the report templates ({', '.join(TEMPLATE_NAMES)})"
            )
        search.append(templates_dir)
    search.append(data_dir("reports"))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search]),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["duration"] = duration
    env.filters["md"] = md_cell
    env.filters["verdict_mark"] = verdict_mark
    env.filters["cell"] = _cell
    env.globals["max_failures"] = SUMMARY_MAX_FAILURES
    return env


def _render(env: jinja2.Environment, name: str, view: ReportView) -> str:
    try:
        return env.get_template(name).render(report=view)
    except jinja2.TemplateSyntaxError as err:
        where = err.filename or err.name or name
        raise InputError(f"template {where}, line {err.lineno}: {err.message}") from None
    except jinja2.TemplateError as err:
        raise InputError(f"template {name}: {err.message or err!s}") from None


# --- JUnit ---------------------------------------------------------------------------------


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _failure_text(view: RecordView) -> tuple[str, str, str]:
    """(type, message, text) of a failed or errored record."""
    record, top = view.record, view.top_finding
    if top is None:
        message = record.reason or f"{record.verdict}"
        return (str(record.verdict), message, record.reason)
    lines = [f"{top.id}: {top.title}"]
    if top.remediation:
        lines.append(f"Remediation: {top.remediation}")
    if top.detail:
        lines.append(f"Detail: {top.detail}")
    if top.rfc:
        lines.append(f"Reference: {top.rfc}")
    for evidence in top.evidence:
        where = f"frame {evidence.frame}" if evidence.frame is not None else "message"
        lines.append(f"Evidence ({where}): {evidence.summary}")
    if record.reason:
        lines.append(f"Reason: {record.reason}")
    others = view.findings_failed[1:]
    if others:
        lines.append("Other failed findings: " + ", ".join(f.id for f in others))
    message = f"{top.id}: {top.title}"
    if top.remediation:
        message += f" — {top.remediation}"
    return (top.id, message, "\n".join(lines))


def render_junit(view: ReportView) -> str:
    """JUnit XML of ``view``: one ``testsuite`` of one ``testcase`` per record.

    ``classname`` is ``sipharness.<profile>``, ``name`` the scenario; a failed record
    carries a ``failure`` with its top failed finding (type = finding id, message =
    id, title and remediation), an errored one an ``error``, a skipped one
    ``skipped``; ``system-out`` holds the ladder as text (see
    :func:`~harness.report.ladder.ladder_lines`).
    """
    results, counts = view.results, view.counts
    total_time = results.duration_s or sum(r.duration_s for r in results.records)
    name = f"sipharness.{results.command or 'run'}"
    root = ET.Element(
        "testsuites",
        {
            "name": "sip-harness",
            "tests": str(counts["total"]),
            "failures": str(counts["fail"]),
            "errors": str(counts["error"]),
            "time": _seconds(total_time),
        },
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": name,
            "tests": str(counts["total"]),
            "failures": str(counts["fail"]),
            "errors": str(counts["error"]),
            "skipped": str(counts["skip"]),
            "time": _seconds(total_time),
            "timestamp": _xml_text(results.started_at),
        },
    )
    props = ET.SubElement(suite, "properties")
    prop_items = [
        ("sip-harness.version", results.tool_version),
        ("command", results.command),
        ("profiles", ",".join(results.profiles)),
    ]
    prop_items += [(f"number.{k}", v) for k, v in view.number]
    prop_items += [
        (f"peer.{p.profile}.{p.role}", " ".join(x for x in (p.kind, p.version) if x))
        for p in results.peers
    ]
    for key, value in prop_items:
        ET.SubElement(props, "property", {"name": _xml_text(key), "value": _xml_text(value)})
    by_record = {id(v.record): v for v in view.records}
    for record in results.records:
        rv = by_record[id(record)]
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _xml_text(f"sipharness.{record.profile}"),
                "name": _xml_text(record.scenario),
                "time": _seconds(record.duration_s),
            },
        )
        if record.verdict in (Verdict.FAIL, Verdict.ERROR):
            kind, message, text = _failure_text(rv)
            tag = "failure" if record.verdict == Verdict.FAIL else "error"
            element = ET.SubElement(
                case, tag, {"type": _xml_text(kind), "message": _xml_text(message)}
            )
            element.text = _xml_text(text)
        elif record.verdict == Verdict.SKIP:
            ET.SubElement(case, "skipped", {"message": _xml_text(record.reason)})
        lines = ladder_lines(record)
        if lines:
            out = ET.SubElement(case, "system-out")
            out.text = _xml_text("\n".join(lines) + "\n")
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


# --- entry point ------------------------------------------------------------------------------


def _plain(obj: Any) -> Any:
    # json.dumps hook: a dataclass of the results model as its fields.
    return vars(obj)


def _contains_secret(results: RunResults, secrets: Sequence[str]) -> bool:
    """Whether any secret occurs anywhere in ``results`` (keys included), raw or as JSON
    escapes it: one C-speed serialisation instead of a walk over every string."""
    blob = json.dumps(results, ensure_ascii=False, default=_plain)
    return any(
        secret in blob or json.dumps(secret, ensure_ascii=False)[1:-1] in blob
        for secret in secrets
        if secret
    )


def _masked(record: ScenarioRecord) -> ScenarioRecord:
    """A copy of ``record`` with digest values and credentials masked in every field
    that can quote SIP; unchanged parts are shared, not copied."""
    m = mask_auth_text
    return replace(
        record,
        title=m(record.title),
        reason=m(record.reason),
        steps=[replace(s, detail=m(s.detail)) for s in record.steps],
        events=[replace(e, summary=m(e.summary), text=m(e.text)) for e in record.events],
        findings=[
            replace(
                f,
                title=m(f.title),
                detail=m(f.detail),
                remediation=m(f.remediation),
                evidence=[replace(e, summary=m(e.summary)) for e in f.evidence],
            )
            for f in record.findings
        ],
        messages=[replace(x, summary=m(x.summary), text=m(x.text)) for x in record.messages],
        peer_logs={k: m(v) for k, v in record.peer_logs.items()},
    )


def _prepared(
    results: RunResults, *, secrets: Sequence[str], out_dir: Path, pcap_base: Path | None
) -> tuple[RunResults, RunResults]:
    """(results to write as JSON, results to show): secrets scrubbed in both, auth
    values masked in the second; pcap paths made relative to ``out_dir``. The
    caller's ``results`` is not modified."""
    stored = replace(results, number=_public_number(results.number))
    if pcap_base is not None and pcap_base.resolve() != out_dir.resolve():
        records = []
        for record in stored.records:
            pcap = record.pcap
            if pcap and not Path(pcap).is_absolute():
                pcap = Path(os.path.relpath(pcap_base / pcap, out_dir)).as_posix()
            records.append(replace(record, pcap=pcap))
        stored = replace(stored, records=records)
    if secrets and _contains_secret(stored, secrets):
        stored = RunResults.from_dict(scrub_data(stored.to_dict(), secrets))
    shown = replace(stored, records=[_masked(r) for r in stored.records])
    return stored, shown


def render_all(
    results: RunResults,
    out_dir: Path,
    templates_dir: Path | None = None,
    *,
    secrets: Sequence[str] = (),
    pcap_base: Path | None = None,
    redacted_pcaps: Mapping[str, Path] | None = None,
) -> ReportPaths:
    """Write ``index.html``, ``junit.xml``, ``summary.md`` and ``results.json`` into
    ``out_dir`` (created if needed) and return their paths.

    ``secrets`` (passwords the caller knows) never appear in any of the four files.
    ``pcap_base`` is the folder the records' pcap paths are relative to when it is
    not ``out_dir`` (``sipharness report`` passes the results file's folder); the
    written ``results.json`` then holds paths relative to ``out_dir``.
    ``redacted_pcaps`` maps a record's ``pcap`` to a redacted copy to link as well.
    Raises :class:`~harness.errors.InputError` for a bad ``templates_dir`` or a
    template that does not render.
    """
    env = template_environment(templates_dir)
    stored, shown = _prepared(results, secrets=secrets, out_dir=out_dir, pcap_base=pcap_base)
    # Links are computed from the written results, whose pcap paths are relative to
    # out_dir; the redacted-copy map is keyed by the caller's original paths.
    redacted: dict[str, Path] = {}
    for original, shown_record in zip(results.records, shown.records, strict=True):
        copy = (redacted_pcaps or {}).get(original.pcap or "")
        if copy is not None and shown_record.pcap is not None:
            redacted[shown_record.pcap] = copy
    view = build_view(shown, out_dir=out_dir, redacted_pcaps=redacted)
    html = _render(env, HTML_TEMPLATE, view)
    markdown = _render(env, MARKDOWN_TEMPLATE, view)
    junit = render_junit(view)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(
        index_html=out_dir / "index.html",
        junit_xml=out_dir / "junit.xml",
        summary_md=out_dir / "summary.md",
        results_json=out_dir / "results.json",
    )
    for path, text in (
        (paths.index_html, html),
        (paths.junit_xml, junit),
        (paths.summary_md, markdown),
    ):
        _write_text(path, text)
    stored.write(paths.results_json)
    return paths


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
