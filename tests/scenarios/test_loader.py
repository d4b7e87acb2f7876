"""Scenario files: bundled ones load; each mistake is one line naming file and place."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.peers.profiles import list_profiles, load_profile
from harness.scenarios.loader import (
    ScenarioError,
    load_scenario_file,
    load_scenarios,
    parse_expectation,
)
from harness.scenarios.matrix import Placement, applies, capabilities, plan
from harness.scenarios.model import Expectation, Outcome, StepKind

REQUIRED = {
    "options-ping", "register", "register-refresh", "unregister", "register-wrong-password",
    "register-via-outbound-proxy", "outbound-call", "outbound-call-cancel", "inbound-call",
    "inbound-call-when-unregistered", "ip-trunk-call", "tls-call",
}  # fmt: skip


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(path, known_profiles=list_profiles())
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_bundled_scenarios_load_and_cover_the_required_set() -> None:
    scenarios = load_scenarios(known_profiles=list_profiles())
    assert {s.name for s in scenarios} >= REQUIRED
    wrong = next(s for s in scenarios if s.name == "register-wrong-password")
    assert wrong.negative
    assert dict(wrong.number)["password"]
    assert wrong.steps[0].expect == Expectation(outcome=Outcome.CREDENTIALS_REJECTED)


def test_bundled_error_names_the_scenarios_folder(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"^unknown scenario 'nope'; known: .*register"):
        load_scenarios(names=["nope"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\nsteps:\n  - register: {}\n  - options: {}\n  - options: {}\n"
            "    expect: 2xx0\n",
            'steps[2].expect: unknown status "2xx0"',
        ),
        ("name: x\nsteps:\n  - dance: {}\n", "steps[0].dance: unknown step; expected one of"),
        (
            "name: x\nprofiles: [registrar-udp, nowhere]\nsteps:\n  - options: {}\n",
            'profiles[1]: unknown profile "nowhere"; known:',
        ),
        ("name: x\ncolour: red\nsteps:\n  - options: {}\n", "colour: unknown field; expected"),
        (
            "name: x\nsteps:\n  - register: {expire: 30}\n",
            "steps[0].register.expire: unknown field; expected one of expires",
        ),
        (
            "name: x\napplies_to: {flying: true}\nsteps:\n  - options: {}\n",
            "applies_to.flying: unknown capability",
        ),
        (
            "name: x\napplies_to: {transport: sctp}\nsteps:\n  - options: {}\n",
            "applies_to.transport: must be one of udp, tcp, tls",
        ),
        ("name: x\nsteps: []\n", "steps: must be a non-empty list of steps"),
        ("name: x\nsteps:\n  - options: {}\n    register: {}\n", "steps[0]: has two actions"),
        (
            "name: x\nsteps:\n  - call: {to: echo, duration: -1}\n",
            "steps[0].call.duration: must be",
        ),
        ("name: x\nsteps:\n  - call: {to: 'a b'}\n", "steps[0].call.to: must be a number or user"),
        ("name: x\nsteps:\n  - peer: dance\n", 'steps[0].peer: unknown peer action "dance"'),
        ("name: x\nsteps:\n  - wait: soon\n", "steps[0].wait: must be `answer` or a number"),
        ("name: x\nsteps:\n  - options: {}\n    within: 0\n", "steps[0].within: must be"),
        (
            "name: x\nsteps:\n  - options: {}\n    expect: maybe\n",
            'steps[0].expect: unknown expectation "maybe"',
        ),
        ("name: x\nnumber: {phone_number: '+1'}\nsteps:\n  - options: {}\n", "number.phone_number"),
        ("- just\n- a list\n", "a scenario must be a mapping"),
        ("name: x\nsteps:\n  - options: [\n", "line 4: not valid YAML"),
        ("name: 'a b'\nsteps:\n  - options: {}\n", "name: 'a b': use letters"),
        ("name: x\nsteps:\n  - options: {timeout: 3}\n", "steps[0].options.timeout: unknown field"),
    ],
)
def test_malformed_scenarios_fail_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_duplicate_names_in_one_folder(tmp_path: Path) -> None:
    write(tmp_path, "name: same\nsteps:\n  - options: {}\n", "a.yaml")
    write(tmp_path, "name: same\nsteps:\n  - options: {}\n", "b.yaml")
    with pytest.raises(ScenarioError, match=r"b\.yaml: name: 'same' is used twice"):
        load_scenarios(tmp_path)


def test_defaults_and_expectations(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "steps:\n  - cancel: {}\n  - wait: 2\n  - call: {to: '+15550001'}\n    expect: 4xx\n",
        "my-flow.yaml",
    )
    scenario = load_scenario_file(path)
    assert scenario.name == "my-flow"
    cancel, wait, call = scenario.steps
    assert cancel.kind is StepKind.CANCEL
    assert cancel.expect.status == "487"
    assert wait.within == 7.0
    assert call.expect.matches_status(404)
    assert not call.expect.matches_status(200)
    assert parse_expectation(487, "x").matches_status(487)


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("register", {"registrar-udp", "proxy-tcp-5065", "pbx-asterisk", "tls-5061"}),
        ("register-via-outbound-proxy", {"proxy-tcp-5065"}),
        ("ip-trunk-call", {"ip-trunk"}),
        ("tls-call", {"tls-5061"}),
        ("inbound-call-when-unregistered", {"registrar-udp", "proxy-tcp-5065", "tls-5061"}),
        ("options-ping", set(list_profiles())),
    ],
)
def test_selection_by_capability_and_name(scenario: str, expected: set[str]) -> None:
    loaded = load_scenarios(names=[scenario])[0]
    profiles = [load_profile(name) for name in list_profiles()]
    assert {p.name for p in profiles if applies(loaded, p)} == expected
    pairs = plan([loaded], profiles)
    assert {item.profile.name for item in pairs} == expected


def test_capabilities_of_bundled_profiles() -> None:
    proxy = capabilities(load_profile("proxy-tcp-5065"))
    assert proxy["transport"] == "tcp"
    assert proxy["outbound_proxy"] is True
    trunk = capabilities(load_profile("ip-trunk"))
    assert trunk == {**trunk, "registers": False, "trunk": True, "inbound": True}
    assert capabilities(load_profile("tls-5061"))["transport"] == "tls"


def test_placement_moves_origination_port() -> None:
    from harness.numbers import load_number_file
    from harness.scenarios.session import example_number_file

    number = load_number_file(example_number_file())
    placed = Placement.for_worker("gw2", first_base=20)
    assert (placed.base, placed.slot) == (22, 2)
    moved = placed.number(number)
    assert moved.origination_uri is not None
    assert moved.origination_uri.port == 5100
    assert Placement.for_worker("master").number(number) is number
