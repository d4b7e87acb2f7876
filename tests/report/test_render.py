"""render_all: the four files, their schemas, ordering, masking and templates."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from harness.errors import InputError
from harness.report import render_all
from harness.report.redact import MASK
from harness.resources import data_dir
from harness.results import (
    VERDICT_ORDER,
    Event,
    EvidenceRef,
    FindingRecord,
    RunResults,
    Step,
    Verdict,
    load_results,
)
from tests.report.builders import (
    CNONCE,
    NONCE,
    PROFILES,
    RESPONSE,
    SCENARIOS,
    results_from_capture,
    sample_results,
)

DATA = Path(__file__).resolve().parent / "data"
JUNIT_XSD = DATA / "junit-10.xsd"
SCHEMA = data_dir("reports") / "results.schema.json"

# Anything a browser would fetch or navigate to: src=, href=, xlink:href=, url(, @import.
_REFERENCE = re.compile(
    r"""(?:\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["']?([^"'\s>]*))"""
    r"""|(?:url\(\s*["']?([^"')]*))|(?:@import\s+["']?([^"';\s]*))""",
    re.IGNORECASE,
)


def external_references(page: str) -> list[str]:
    """References in ``page`` that are not a fragment, a data: URL or a relative link."""
    bad = []
    for match in _REFERENCE.finditer(page):
        target = html.unescape(next(g for g in match.groups() if g is not None))
        if target.startswith("#") or target.startswith("data:"):
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            bad.append(target)  # any scheme (http:, https:, file:, ftp:...) or protocol-relative
        elif target.startswith("/"):
            bad.append(target)  # absolute path: would resolve against file:///
    return bad


def schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def matrix_results() -> RunResults:
    return sample_results()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, matrix_results: RunResults) -> Path:
    out = tmp_path_factory.mktemp("report")
    render_all(matrix_results, out)
    return out


def test_render_all_writes_the_four_files(tmp_path: Path, matrix_results: RunResults) -> None:
    paths = render_all(matrix_results, tmp_path / "out")
    assert [p.name for p in paths] == ["index.html", "junit.xml", "summary.md", "results.json"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert not list((tmp_path / "out").glob("*.tmp"))


# --- results.json --------------------------------------------------------------------------


def test_results_json_validates_and_round_trips(rendered: Path, matrix_results: RunResults) -> None:
    data = json.loads((rendered / "results.json").read_text())
    schema_validator().validate(data)
    assert data["schema_version"] == 1
    assert data["summary"] == matrix_results.counts()
    back = load_results(rendered / "results.json")
    assert back.to_dict() == matrix_results.to_dict()


def test_schema_rejects_drift_from_the_model(matrix_results: RunResults) -> None:
    validator = schema_validator()
    data = matrix_results.to_dict()
    data["records"][0]["unexpected"] = 1
    assert not validator.is_valid(data)
    data = matrix_results.to_dict()
    data["records"][0]["verdict"] = "maybe"
    assert not validator.is_valid(data)
    data = matrix_results.to_dict()
    del data["records"][0]["findings"][0]["remediation"]
    assert not validator.is_valid(data)


def test_older_fixture_validates_and_loads() -> None:
    fixture = DATA / "results-v1.json"
    schema_validator().validate(json.loads(fixture.read_text()))
    assert load_results(fixture).records


# --- junit.xml -------------------------------------------------------------------------------


def test_junit_is_valid_for_jenkins_and_counts_match(rendered: Path) -> None:
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(rendered / "junit.xml"))
    summary = json.loads((rendered / "results.json").read_text())["summary"]
    root = ET.parse(rendered / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert int(suite.get("tests", "")) == summary["total"] == len(suite.findall("testcase"))
    assert (
        int(suite.get("failures", "")) == summary["fail"] == len(suite.findall("testcase/failure"))
    )
    assert int(suite.get("errors", "")) == summary["error"] == len(suite.findall("testcase/error"))
    assert (
        int(suite.get("skipped", "")) == summary["skip"] == len(suite.findall("testcase/skipped"))
    )
    assert float(suite.get("time", "")) == pytest.approx(
        json.loads((rendered / "results.json").read_text())["duration_s"], abs=0.001
    )


def test_junit_testcases_carry_the_top_finding_and_the_ladder(
    rendered: Path, matrix_results: RunResults
) -> None:
    root = ET.parse(rendered / "junit.xml").getroot()
    cases = root.findall("testsuite/testcase")
    assert len(cases) == len(SCENARIOS) * len(PROFILES)
    record = next(r for r in matrix_results.records if r.verdict == Verdict.FAIL)
    case = next(
        c
        for c in cases
        if c.get("name") == record.scenario and c.get("classname") == f"sipharness.{record.profile}"
    )
    assert case.get("time") == f"{record.duration_s:.3f}"
    failure = case.find("failure")
    assert failure is not None
    top = record.failed_findings[0]
    assert failure.get("type") == top.id
    assert top.id in failure.get("message", "")
    assert top.title in failure.get("message", "")
    assert top.remediation in (failure.text or "")
    out = case.find("system-out")
    assert out is not None
    assert out.text is not None
    lines = out.text.strip().splitlines()
    assert len(lines) == len(record.ladder.arrows)
    assert lines[0] == "t=0.000 127.0.0.1:5060 -> 127.0.0.2:5060 udp INVITE"
    errored = next(r for r in matrix_results.records if r.verdict == Verdict.ERROR)
    error_case = next(
        c
        for c in cases
        if c.get("name") == errored.scenario
        and c.get("classname") == f"sipharness.{errored.profile}"
    )
    error = error_case.find("error")
    assert error is not None
    assert errored.reason in error.get("message", "")


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    results = sample_results(scenarios=["garbage"], profiles=["p"], messages=2, findings=1)
    results.records[0].events.append(Event(0.5, "garbage", "in", "udp", summary="\x00\x01\x1b[0m"))
    results.records[0].reason = "bad bytes \x00\x07"
    results.records[0].verdict = Verdict.ERROR
    paths = render_all(results, tmp_path)
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(paths.junit_xml))


# --- summary.md -----------------------------------------------------------------------------


def test_summary_is_short_with_matrix_and_failures(
    rendered: Path, matrix_results: RunResults
) -> None:
    text = (rendered / "summary.md").read_text()
    lines = text.splitlines()
    assert len(lines) < 60
    header = next(line for line in lines if line.startswith("| scenario |"))
    assert all(p in header for p in PROFILES)
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| scenario")]
    assert len(rows) == len(SCENARIOS)
    first_fail = next(r for r in matrix_results.records if r.verdict == Verdict.FAIL)
    top = first_fail.failed_findings[0]
    entry = next(i for i, line in enumerate(lines) if f"`{first_fail.id}`" in line)
    assert "FAIL" in lines[entry]
    assert top.id in lines[entry + 1]
    assert "**Fix:**" in lines[entry + 1]
    counts = matrix_results.counts()
    assert f"{counts['fail']} failed" in text
    assert f"{counts['pass']} passed" in text
    assert "more: see `index.html`" in text  # 16 failures and errors, 12 listed


# --- index.html ---------------------------------------------------------------------------------


def _sections(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<section class="record [^"]*" id="([^"]+)" data-verdict="([^"]+)"', page)


def test_html_lists_failures_first_and_links_the_matrix(
    rendered: Path, matrix_results: RunResults
) -> None:
    page = (rendered / "index.html").read_text()
    sections = _sections(page)
    assert len(sections) == len(matrix_results.records)
    order = [VERDICT_ORDER[Verdict(v)] for _, v in sections]
    assert order == sorted(order)
    assert sections[0][1] == "fail"
    ids = {anchor for anchor, _ in sections}
    matrix = page[
        page.index('<table class="matrix">') : page.index(
            "</table>", page.index('<table class="matrix">')
        )
    ]
    links = re.findall(r'href="#([^"]+)"', matrix)
    assert len(links) == len(matrix_results.records)
    assert set(links) == ids


def test_html_is_self_contained(rendered: Path) -> None:
    page = (rendered / "index.html").read_text()
    assert external_references(page) == []
    assert "default-src 'none'" in page  # the browser refuses to fetch anything
    assert "<link" not in page
    assert "<img" not in page
    assert "<iframe" not in page
    assert "<style>" in page
    assert 'svg class="ladder"' in page
    # The pcap links are relative, as the records hold them.
    assert 'href="pcaps/register-registrar-udp.pcap"' in page


def test_external_reference_scan_catches_assets() -> None:
    assert external_references('<img src="https://x.example/a.png">') == ["https://x.example/a.png"]
    assert external_references("<style>a{background:url(//cdn/x)}</style>") == ["//cdn/x"]
    assert external_references('<a href="/etc/passwd">') == ["/etc/passwd"]
    assert external_references('<a href="#x"></a><a href="pcaps/a.pcap">') == []


def test_html_ladder_has_one_arrow_per_message(rendered: Path, matrix_results: RunResults) -> None:
    page = (rendered / "index.html").read_text()
    sections = page.split('<section class="record ')[1:]
    for section in sections:
        record_id = html.unescape(re.search(r'data-record="([^"]+)"', section).group(1))  # type: ignore[union-attr]
        record = next(r for r in matrix_results.records if r.id == record_id)
        assert section.count('class="arrow ') == len(record.ladder.arrows)
        # Each arrow links to its message, which exists in the message list.
        for target in re.findall(r'<a class="arrow [^"]+" href="#([^"]+)"', section):
            assert f'id="{target}"' in section


def test_html_escapes_what_it_shows(tmp_path: Path) -> None:
    results = sample_results(scenarios=["x"], profiles=["p"], messages=2, findings=1)
    results.records[0].reason = "<script>alert(1)</script>"
    results.records[0].title = '"><svg onload=alert(1)>'
    page = render_all(results, tmp_path).index_html.read_text()
    assert "<script>alert(1)" not in page
    assert "<svg onload" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_digest_values_are_masked_in_html_markdown_and_junit(tmp_path: Path) -> None:
    results = sample_results(scenarios=["auth"], profiles=["p"], messages=8, findings=2)
    record = results.records[0]
    record.verdict = Verdict.FAIL
    record.reason = f'403 after Proxy-Authorization: Digest nonce="{NONCE}", response="{RESPONSE}"'
    paths = render_all(results, tmp_path)
    for path in (paths.index_html, paths.summary_md, paths.junit_xml):
        text = path.read_text()
        for value in (RESPONSE, NONCE, CNONCE):
            assert value not in text, (path.name, value)
    page = paths.index_html.read_text()
    assert f"response=&#34;{MASK}&#34;" in page or f'response="{MASK}"' in page
    assert "username=&#34;alice&#34;" in page or 'username="alice"' in page


PASSWORD = 'Tr0ub4dor&3<"x>'


def test_no_artefact_contains_a_known_password(tmp_path: Path) -> None:
    results = sample_results(scenarios=["register"], profiles=["p1", "p2"], messages=4, findings=2)
    record = results.records[0]
    record.verdict = Verdict.FAIL
    record.events.append(Event(1.0, "note", summary=f"tried password {PASSWORD}", text=PASSWORD))
    record.steps.append(Step("auth", "fail", f"password={PASSWORD}"))
    record.findings.insert(
        0,
        FindingRecord(
            "AUTH-1",
            f"bad {PASSWORD}",
            "error",
            "fail",
            "RFC 7616",
            f"Set password to something other than {PASSWORD}",
            detail=PASSWORD,
            evidence=[EvidenceRef(0, 1, 0.0, PASSWORD)],
        ),
    )
    record.peer_logs[PASSWORD] = f"auth failed for {PASSWORD}"
    record.messages[0].text += f"X-Debug: {PASSWORD}\r\n"
    assert results.number is not None
    results.number["note"] = f"pw {PASSWORD}"
    results.number["password"] = "other-secret-value"  # never in the model; masked by name
    results.profiles.append(PASSWORD)
    paths = render_all(results, tmp_path / "out", secrets=[PASSWORD])
    forms = {
        PASSWORD,
        html.escape(PASSWORD),
        html.escape(PASSWORD, quote=False),
        json.dumps(PASSWORD)[1:-1],
        "Tr0ub4dor",
        "other-secret-value",
    }
    for path in paths:
        text = path.read_text()
        for form in forms:
            assert form not in text, (path.name, form)
    assert MASK in paths.index_html.read_text()


def test_pcap_links_are_made_relative_to_the_output(tmp_path: Path) -> None:
    results = sample_results(scenarios=["call"], profiles=["p"], messages=2, findings=1)
    results.records[0].pcap = "pcaps/call.pcap"
    run_dir = tmp_path / "run"
    paths = render_all(results, tmp_path / "elsewhere" / "out", pcap_base=run_dir)
    assert 'href="../../run/pcaps/call.pcap"' in paths.index_html.read_text()
    written = json.loads(paths.results_json.read_text())
    assert written["records"][0]["pcap"] == "../../run/pcaps/call.pcap"


def test_results_from_a_real_sipp_capture_render(tmp_path: Path) -> None:
    results = results_from_capture()
    assert len(results.records) == 5
    paths = render_all(results, tmp_path)
    page = paths.index_html.read_text()
    sections = _sections(page)
    assert sections[0][1] == "fail"
    assert len(sections) == 5
    assert (
        page.count('<a class="arrow ') == sum(len(r.ladder.arrows) for r in results.records) == 30
    )
    root = ET.parse(paths.junit_xml).getroot()
    first = root.find("testsuite/testcase/system-out")
    assert first is not None
    assert first.text is not None
    assert first.text.splitlines()[0].endswith("127.0.0.62:5060 -> 127.0.0.61:5071 udp INVITE")
    schema_validator().validate(json.loads(paths.results_json.read_text()))


# --- templates ---------------------------------------------------------------------------------


def test_user_templates_override_per_file(tmp_path: Path) -> None:
    mine = tmp_path / "tpl"
    mine.mkdir()
    (mine / "index.html.j2").write_text(
        "<p>{{ report.counts.total }} records, first {{ report.records[0].record.verdict }}</p>"
        "{{ report.results.command }}<b>{{ '<x>' }}</b>\n"
    )
    results = sample_results(scenarios=list("abcde"), profiles=["p"], messages=2, findings=1)
    paths = render_all(results, tmp_path / "out", mine)
    assert paths.index_html.read_text().startswith(
        "<p>5 records, first fail</p>run<b>&lt;x&gt;</b>"
    )
    assert paths.summary_md.read_text().startswith("## sip-harness run")  # the bundled one
    only_css = tmp_path / "css"
    (only_css / "partials").mkdir(parents=True)
    (only_css / "partials" / "style.css").write_text("body { color: #123456; }\n")
    page = render_all(results, tmp_path / "out2", only_css).index_html.read_text()
    assert "color: #123456" in page
    assert "--fail: #b3261e" not in page  # the bundled CSS was replaced, not appended
    assert 'svg class="ladder"' in page  # the rest is the bundled page


def test_bad_templates_are_one_line_input_errors(tmp_path: Path) -> None:
    results = sample_results(scenarios=["a"], profiles=["p"], messages=2, findings=1)
    with pytest.raises(InputError, match="not a directory"):
        render_all(results, tmp_path / "out", tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="none of the report templates"):
        render_all(results, tmp_path / "out", empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.md.j2").write_text("ok\n{% for x in %}\n")
    with pytest.raises(InputError, match=r"summary\.md\.j2, line 2") as info:
        render_all(results, tmp_path / "out", broken)
    assert "\n" not in str(info.value)
    undefined = tmp_path / "undefined"
    undefined.mkdir()
    (undefined / "index.html.j2").write_text("{{ report.no_such_field }}")
    with pytest.raises(InputError, match="no_such_field"):
        render_all(results, tmp_path / "out", undefined)


def test_empty_run_renders(tmp_path: Path) -> None:
    paths = render_all(RunResults(command="probe", started_at=""), tmp_path)
    assert "This run has no results." in paths.index_html.read_text()
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(paths.junit_xml))
    schema_validator().validate(json.loads(paths.results_json.read_text()))
