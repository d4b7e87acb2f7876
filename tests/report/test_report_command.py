"""``sipharness report``: re-rendering a results file, its errors and --redact-pcap."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from harness.capture import PcapWriter
from harness.capture.pcapfile import ethernet_frame, ipv4_packet, udp_datagram
from harness.resources import data_dir
from tests.numbers.helpers import Run, run_cli
from tests.report.builders import RESPONSE, call_messages, sample_results

DATA = Path(__file__).resolve().parent / "data"
FIXTURE = DATA / "results-v1.json"


def _one_error_line(run: Run) -> str:
    assert run.exit_code == 2, (run.stdout, run.stderr)
    lines = run.stderr_lines
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), run.stderr
    assert "Traceback" not in run.stderr
    return lines[0]


def test_report_renders_an_older_results_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = run_cli(["report", str(FIXTURE), "--out", str(out)])
    assert run.exit_code == 0, run.stderr
    printed = [Path(line) for line in run.stdout.splitlines()]
    assert [p.name for p in printed] == ["index.html", "junit.xml", "summary.md", "results.json"]
    assert all(p.is_file() for p in printed)
    schema = json.loads((data_dir("reports") / "results.schema.json").read_text())
    written = json.loads((out / "results.json").read_text())
    jsonschema.validate(written, schema, cls=jsonschema.Draft202012Validator)
    original = json.loads(FIXTURE.read_text())
    assert written["summary"] == original["summary"]
    # pcap paths were relative to the fixture's folder; now relative to --out.
    assert written["records"][0]["pcap"].startswith("../")
    assert (out / written["records"][0]["pcap"]).resolve() == (
        DATA / original["records"][0]["pcap"]
    ).resolve()


def test_report_defaults_to_reports_out_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = run_cli(["report", str(FIXTURE)])
    assert run.exit_code == 0, run.stderr
    assert (tmp_path / "reports" / "out" / "index.html").is_file()


def test_report_exit_code_ignores_the_run_verdicts(tmp_path: Path) -> None:
    assert json.loads(FIXTURE.read_text())["summary"]["fail"] > 0
    assert run_cli(["report", str(FIXTURE), "--out", str(tmp_path)]).exit_code == 0


def test_report_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    line = _one_error_line(run_cli(["report", str(tmp_path / "nope.json")]))
    assert "no such file" in line
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not JSON" in _one_error_line(run_cli(["report", str(bad), "--out", str(tmp_path)]))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    assert "not a sip-harness results file" in _one_error_line(run_cli(["report", str(other)]))
    newer = tmp_path / "newer.json"
    data = json.loads(FIXTURE.read_text())
    data["schema_version"] = 99
    newer.write_text(json.dumps(data))
    assert "newer" in _one_error_line(run_cli(["report", str(newer), "--out", str(tmp_path)]))
    assert "is a directory" in _one_error_line(run_cli(["report", str(tmp_path)]))


def test_report_bad_templates_dir_is_exit_2(tmp_path: Path) -> None:
    line = _one_error_line(
        run_cli(
            ["report", str(FIXTURE), "--out", str(tmp_path), "--templates", str(tmp_path / "x")]
        )
    )
    assert "templates folder not found" in line
    broken = tmp_path / "tpl"
    broken.mkdir()
    (broken / "index.html.j2").write_text("{% if %}")
    line = _one_error_line(
        run_cli(["report", str(FIXTURE), "--out", str(tmp_path / "o"), "--templates", str(broken)])
    )
    assert "index.html.j2" in line


def test_report_redact_pcap_writes_masked_copies(tmp_path: Path) -> None:
    import random

    run_dir = tmp_path / "run"
    (run_dir / "pcaps").mkdir(parents=True)
    invite = call_messages(random.Random(1), count=5, peer="127.0.0.2:5060", transport="udp")[4]
    payload = invite.to_bytes()
    assert RESPONSE.encode() in payload
    buf = io.BytesIO()
    writer = PcapWriter(buf)
    ip = ipv4_packet("127.0.0.1", "127.0.0.2", 17, udp_datagram(5060, 5060, payload))
    writer.write(ethernet_frame(ip, 0x0800), 1_700_000_000.0)
    (run_dir / "pcaps" / "call.pcap").write_bytes(buf.getvalue())
    results = sample_results(scenarios=["call"], profiles=["p"], messages=2, findings=1)
    results.records[0].pcap = "pcaps/call.pcap"
    results.write(run_dir / "results.json")
    shutil.copy(run_dir / "pcaps" / "call.pcap", tmp_path / "original.pcap")

    out = tmp_path / "out"
    run = run_cli(["report", str(run_dir / "results.json"), "--out", str(out), "--redact-pcap"])

    assert run.exit_code == 0, run.stderr
    copy = out / "redacted" / "call.pcap"
    assert str(copy) in run.stdout.splitlines()
    assert RESPONSE.encode() not in copy.read_bytes()
    assert len(copy.read_bytes()) == len(buf.getvalue())
    assert (run_dir / "pcaps" / "call.pcap").read_bytes() == (
        tmp_path / "original.pcap"
    ).read_bytes()
    page = (out / "index.html").read_text()
    assert 'href="../run/pcaps/call.pcap"' in page
    assert 'href="redacted/call.pcap"' in page
