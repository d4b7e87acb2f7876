"""``sipharness probe`` captures each stage and attaches the checks' findings, as a
customer would run it: only a number file, against a carrier it did not start
(here the peers of a profile, started by the test on its own loopback block)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.numbers import load_number_file
from harness.peers.engine import Engine
from harness.peers.profiles import load_profile
from harness.scenarios.matrix import Placement, ProfilePeers
from harness.scenarios.session import example_number_file
from tests.e2e.test_probe_and_cli import customer_file

pytestmark = pytest.mark.integration

SIPHARNESS = str(Path(sys.executable).with_name("sipharness"))
BASE = 94


def test_probe_stages_carry_their_capture_and_findings(engine: Engine, tmp_path: Path) -> None:
    number = load_number_file(example_number_file())
    out = tmp_path / "out"
    with ProfilePeers(
        load_profile("registrar-udp"), number, placement=Placement(BASE, BASE), engine=engine
    ):
        done = subprocess.run(
            [
                SIPHARNESS,
                "probe",
                str(customer_file(tmp_path, "harness-example-secret", BASE)),
                "--to",
                "echo",
                "--local-ip",
                "127.0.0.1",
                "--out",
                str(out),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    stages = {r["scenario"]: r for r in results["records"]}
    assert list(stages) == ["dns", "reachability", "options", "register", "call"]
    assert all(r["verdict"] == "pass" for r in stages.values())
    assert stages["dns"]["pcap"] is None  # nothing goes on the wire for an IP address
    for name in ("options", "register", "call"):
        record = stages[name]
        assert record["pcap"] == f"pcaps/probe-{name}.pcap"
        assert (out / record["pcap"]).is_file()
        assert record["messages"], name
        outcomes = {f["id"]: f["outcome"] for f in record["findings"]}
        assert not [i for i, o in outcomes.items() if o in ("fail", "error")], outcomes
    assert "OPT-001" in {f["id"] for f in stages["options"]["findings"]}
    register_checks = {f["id"] for f in stages["register"]["findings"]}
    assert {"REG-001", "AUTH-001", "AUTH-002"} <= register_checks
    call_checks = {f["id"] for f in stages["call"]["findings"]}
    assert {"INV-001", "ID-001", "RTP-001"} <= call_checks
    assert "harness-example-secret" not in done.stdout
