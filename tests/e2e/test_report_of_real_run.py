"""The reports of a real run: Kamailio and Asterisk containers, the CLI, Chromium.

The mock carrier is configured from the number file, so a wrong password comes from
a scenario: ``register-typo`` registers with a mistyped password (the scenario's
``number`` override) and expects success, as a customer who mistyped it would. That
gives a failing record beside a passing one (options-ping); the reports must put the
failure first, draw every captured message in the ladders, validate against their
schemas, agree with each other, and contain neither password.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from harness.results import load_results
from tests.report.test_browser import CHROMIUM, _probe, _screenshot
from tests.report.test_render import JUNIT_XSD, external_references

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECRET = "right-Pa55word-7c1e9d"  # the number file's password (the carrier's)
TYPO = "rigth-Pa55word-7c1e9d"  # what the scenario sends instead
SCENARIO = f"""
name: register-typo
title: Registers with a mistyped password
profiles: [registrar-udp]
number:
  password: "{TYPO}"
steps:
  - register: {{expires: 300}}
"""
BASE = 93  # this test's loopback block, 127.0.93.x


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory, engine: object) -> Path:
    del engine  # skips the module when no engine answers
    work = tmp_path_factory.mktemp("real-run")
    example = (REPO / "fixtures" / "numbers" / "example.yaml").read_text()
    number = work / "number.yaml"
    number.write_text(example.replace("harness-example-secret", SECRET))
    scenarios = work / "scenarios"
    scenarios.mkdir()
    (scenarios / "register-typo.yaml").write_text(SCENARIO)
    (scenarios / "options-ping.yaml").write_text(
        (REPO / "scenarios" / "options-ping.yaml").read_text()
    )
    out = work / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--number",
            str(number),
            "--profile",
            "registrar-udp",
            "--scenarios-dir",
            str(scenarios),
            "--address-base",
            str(BASE),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=work,
    )
    assert done.returncode == 1, done.stderr[-3000:] + done.stdout[-3000:]
    assert SECRET not in done.stdout + done.stderr
    assert TYPO not in done.stdout + done.stderr
    return out


def test_the_run_wrote_every_report_and_a_pcap_per_scenario(run_out: Path) -> None:
    for name in ("index.html", "junit.xml", "summary.md", "results.json"):
        assert (run_out / name).is_file(), name
    results = load_results(run_out / "results.json")
    verdicts = {r.scenario: r.verdict.value for r in results.records}
    assert verdicts == {"options-ping": "pass", "register-typo": "fail"}
    for record in results.records:
        assert record.pcap is not None
        assert (run_out / record.pcap).is_file()
        assert record.messages, record.scenario
        assert len(record.ladder.arrows) == len(record.messages)
    # The report names each peer's software version, asked of the software itself.
    assert {p.role for p in results.peers} == {"registrar", "media"}
    for peer in results.peers:
        assert re.fullmatch(r"(kamailio|asterisk) \d+\.\d+(\.\d+)*", peer.version), peer
    register = next(r for r in results.records if r.scenario == "register-typo")
    assert "AUTH-004" in {f.id for f in register.failed_findings}


def test_results_and_junit_validate_and_agree(run_out: Path) -> None:
    schema = json.loads((REPO / "reports" / "results.schema.json").read_text())
    document = json.loads((run_out / "results.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(run_out / "junit.xml"))
    junit = (run_out / "junit.xml").read_text()
    assert 'tests="2"' in junit
    assert 'failures="1"' in junit
    assert document["summary"]["fail"] == 1
    assert document["summary"]["pass"] == 1


def test_no_artefact_holds_the_password(run_out: Path) -> None:
    files = [p for p in run_out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".pcap" for p in files)
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert TYPO.encode() not in data, path


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_real_run_report_in_chromium(run_out: Path, tmp_path: Path) -> None:
    page = run_out / "index.html"
    assert external_references(page.read_text()) == []
    results = load_results(run_out / "results.json")
    probed = _probe(page, tmp_path, width=1200)
    assert probed["sections"] == ["fail", "pass"]  # the failure comes first
    ordered = sorted(results.records, key=lambda r: r.verdict.value != "fail")
    for record, ladder in zip(ordered, probed["ladders"], strict=True):
        assert ladder is not None
        assert ladder["visibility"] == "visible"
        assert ladder["svg"]["w"] > 100
        assert ladder["arrows"] == ladder["drawn"] == len(record.ladder.arrows) > 0
    shot = _screenshot(page, tmp_path, "real-run.png", width=1200, height=1600)
    assert shot.stat().st_size > 10_000
