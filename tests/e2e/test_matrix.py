"""The matrix against real peers: negative scenarios are real, a dead peer is an error."""

from __future__ import annotations

import threading
import time

import pytest

from harness.numbers import load_number_file
from harness.peers import labels
from harness.peers.containers import OWNER, PEER, owner_token
from harness.peers.engine import Engine
from harness.peers.profiles import list_profiles, load_profile
from harness.results import Verdict
from harness.scenarios.loader import load_scenarios, parse_scenario
from harness.scenarios.matrix import MatrixOptions, Placement, run_matrix
from harness.scenarios.session import example_number_file

pytestmark = pytest.mark.integration


def ours(engine: Engine) -> list[str]:
    mine = owner_token()
    found = engine.client.containers.list(all=True, filters=labels.run_filter())
    return [c.name for c in found if (c.labels or {}).get(OWNER) == mine]


def test_negative_scenarios_fail_when_the_peer_behaviour_is_flipped(engine: Engine) -> None:
    number = load_number_file(example_number_file())
    bundled = load_scenarios(
        names=["register-wrong-password", "inbound-call-when-unregistered"],
        known_profiles=list_profiles(),
    )
    # Flipped: the right password (no override), and a number that is registered and
    # rings forever when the carrier's network calls it.
    right_password = parse_scenario(
        {
            "name": "wrong-password-flipped",
            "steps": [{"register": {}, "expect": "credentials rejected"}],
        }
    )
    ringing = parse_scenario(
        {
            "name": "unregistered-flipped",
            "steps": [
                {"register": {}},
                {"answer": {"ring": 30, "hangup_after": 1}},
                {"peer": "network-call", "expect": "error response", "within": 5},
            ],
        }
    )
    results = run_matrix(
        number,
        [load_profile("registrar-udp")],
        [*bundled, right_password, ringing],
        options=MatrixOptions(placement=Placement(base=41, slot=41)),
        engine=engine,
    )
    verdicts = {r.scenario: r for r in results.records}
    assert verdicts["register-wrong-password"].verdict is Verdict.PASS
    assert verdicts["inbound-call-when-unregistered"].verdict is Verdict.PASS
    assert "404" in verdicts["inbound-call-when-unregistered"].steps[0].detail
    flipped = verdicts["wrong-password-flipped"]
    assert flipped.verdict is Verdict.FAIL
    assert "expected credentials rejected" in flipped.reason
    rang = verdicts["unregistered-flipped"]
    assert rang.verdict is Verdict.FAIL
    assert "rang the unregistered number" in rang.reason
    assert ours(engine) == []
    # No password in what is recorded.
    assert "harness-example-secret" not in str(results.to_dict())


def test_a_killed_peer_is_an_error_with_logs_and_the_matrix_goes_on(engine: Engine) -> None:
    number = load_number_file(example_number_file())
    slow = parse_scenario(
        {"name": "slow", "steps": [{"register": {}}, {"wait": 4}, {"options": {}}]}
    )
    after = load_scenarios(names=["register", "options-ping"])
    killed: list[str] = []

    def killer() -> None:
        wanted = {"label": [f"{PEER}=registrar", f"{OWNER}={owner_token()}"], "status": "running"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # sparse: no per-container inspect, so other suites' removals cannot race it
            found = engine.client.containers.list(filters=wanted, sparse=True)
            if found:
                time.sleep(2.0)  # inside the slow scenario's wait
                found[0].kill()
                killed.append(str(found[0].id))
                return
            time.sleep(0.1)

    thread = threading.Thread(target=killer)
    thread.start()
    started = time.monotonic()
    results = run_matrix(
        number,
        [load_profile("registrar-udp")],
        [slow, *after],
        options=MatrixOptions(placement=Placement(base=42, slot=42)),
        engine=engine,
    )
    thread.join()
    assert killed
    by_name = {r.scenario: r for r in results.records}
    dead = by_name["slow"]
    assert dead.verdict is Verdict.ERROR
    assert "peer registrar exited" in dead.reason
    assert "registrar" in dead.peer_logs
    assert dead.peer_logs["registrar"].strip()
    assert by_name["register"].verdict is Verdict.PASS
    assert by_name["options-ping"].verdict is Verdict.PASS
    assert time.monotonic() - started < 30  # the death was noticed at once, not by timeouts
    assert ours(engine) == []
