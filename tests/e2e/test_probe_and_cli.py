"""probe agrees with run; the CLI and the plugin run the whole default matrix."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.numbers import load_number_file
from harness.peers.engine import Engine
from harness.peers.profiles import load_profile
from harness.results import Verdict
from harness.scenarios.loader import load_scenarios
from harness.scenarios.matrix import Placement, ProfilePeers
from harness.scenarios.probe import ProbeOptions, run_probe
from harness.scenarios.runner import run_scenario
from harness.scenarios.session import example_number_file

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SIPHARNESS = str(Path(sys.executable).with_name("sipharness"))


def customer_file(tmp_path: Path, password: str, base: int) -> Path:
    # What a customer would type into the portal for this carrier: nothing else.
    path = tmp_path / "number.yaml"
    path.write_text(
        "phone_number: '+15550100001'\n"
        f"sip_domain: '127.0.{base}.2'\n"
        "username: '15550100001'\n"
        f"password: '{password}'\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("password", ["harness-example-secret", "a-wrong-one"])
def test_probe_gives_the_verdicts_of_run(engine: Engine, tmp_path: Path, password: str) -> None:
    base = 43
    number = load_number_file(example_number_file())
    with ProfilePeers(
        load_profile("registrar-udp"), number, placement=Placement(base, base), engine=engine
    ) as peers:
        probe_number = load_number_file(customer_file(tmp_path, password, base))
        probed = asyncio.run(run_probe(probe_number, ProbeOptions(local_host="127.0.0.1")))
        stages = {r.scenario: r.verdict for r in probed.records}
        run_number = peers.number
        if password != run_number.password:
            import dataclasses

            run_number = dataclasses.replace(run_number, password=password)
        options, register = load_scenarios(names=["options-ping", "register"])

        async def both() -> list[Verdict]:
            peers.bind(asyncio.get_running_loop())
            out = []
            for scenario in (options, register):
                record = await run_scenario(
                    scenario, run_number, profile="registrar-udp", peers=peers, watch=peers
                )
                out.append(record.verdict)
            return out

        run_options, run_register = asyncio.run(both())
    assert stages["dns"] is Verdict.PASS
    assert stages["reachability"] is Verdict.PASS
    assert stages["options"] is run_options is Verdict.PASS
    assert stages["register"] is run_register
    expected = Verdict.PASS if password == "harness-example-secret" else Verdict.FAIL
    assert run_register is expected
    if expected is Verdict.FAIL:
        reason = next(r.reason for r in probed.records if r.scenario == "register")
        assert "credentials rejected" in reason


@pytest.mark.slow
def test_sipharness_run_default_matrix_passes(engine: Engine, tmp_path: Path) -> None:
    del engine
    out = tmp_path / "out"
    done = subprocess.run(
        [SIPHARNESS, "run", "--address-base", "45", "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "CI": "true"},
    )
    results = json.loads(done.stdout)
    bad = [
        (r["scenario"], r["profile"], r["reason"])
        for r in results["records"]
        if r["verdict"] != "pass"
    ]
    assert bad == []
    assert done.returncode == 0
    assert (out / "results.json").is_file()
    assert results["summary"]["total"] >= 30


@pytest.mark.slow
@pytest.mark.parametrize("workers", [None, "2"])
def test_pytest_plugin_runs_the_matrix(engine: Engine, tmp_path: Path, workers: str | None) -> None:
    del engine
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--sip-run"]
    argv += ["--sip-address-base", "46" if workers is None else "47"]
    if workers is not None:
        argv += ["-n", workers, "--dist", "loadgroup"]
    done = subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout
