"""Profiles: loading, validation messages, placement and the effective number."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import InputError
from harness.numbers import NumberConfig, effective_view, load_number_file
from harness.peers.profiles import (
    Quirk,
    Role,
    apply_profile,
    list_profiles,
    load_profile,
    parse_profile,
)

REPO = Path(__file__).resolve().parents[2]
NUMBERS = REPO / "fixtures" / "numbers"
BUNDLED = ["ip-trunk", "pbx-asterisk", "proxy-tcp-5065", "registrar-udp", "tls-5061"]


@pytest.fixture
def number() -> NumberConfig:
    return load_number_file(NUMBERS / "example.yaml")


def _minimal() -> dict[str, object]:
    return {
        "name": "x",
        "stands_for": "a test carrier",
        "peers": [
            {"name": "registrar", "software": "kamailio", "role": "registrar",
             "address": "127.0.0.2", "next_hop": "media"},
            {"name": "media", "software": "asterisk", "role": "media",
             "address": "127.0.0.3", "next_hop": "registrar"},
        ],
    }  # fmt: skip


def test_every_bundled_profile_loads_and_says_what_it_stands_for() -> None:
    assert list_profiles() == BUNDLED
    for name in BUNDLED:
        profile = load_profile(name)
        assert profile.name == name
        assert len(profile.stands_for) > 40


def test_bundled_profiles_use_disjoint_addresses() -> None:
    seen: dict[str, str] = {}
    for name in BUNDLED:
        for peer in load_profile(name).peers:
            assert peer.address not in seen, (
                f"{name} reuses {peer.address} of {seen.get(peer.address)}"
            )
            seen[peer.address] = name


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"unknown profile 'nope'; known: ip-trunk, pbx-asterisk"):
        load_profile("nope")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d.update(colour="red"), "colour", "unknown field"),
        (lambda d: d["peers"][0].update(port=80), "peers[0].port", "integer from 1024"),
        (lambda d: d["peers"][0].update(address="10.0.0.1"), "peers[0].address", "not a loopback"),
        (lambda d: d["peers"][0].update(address="127.0.0.1"), "peers[0].address", "harness"),
        (lambda d: d["peers"][1].update(role="registrar"), "peers[1].role", "asterisk peer's role"),
        (lambda d: d["peers"][0].update(next_hop="ghost"), "peers[0].next_hop", "names no peer"),
        (lambda d: d["peers"][0].pop("next_hop"), "peers[0].next_hop", "needs a next hop"),
        (lambda d: d["peers"][1].update(address="127.0.0.2", port=5060), "peers[1].port",
         "used twice"),
        (lambda d: d.update(quirks=["slow"]), "quirks[0]", "must be one of realm"),
        (lambda d: d.update(number={"sip_domain": "bad domain"}), "number.sip_domain", ""),
        (lambda d: d.update(number={"registers": "no"}), "number.registers", "true or false"),
        (lambda d: d.update(settings={"min_expires": 0}), "settings.min_expires", "integer"),
    ],
)  # fmt: skip
def test_a_bad_profile_is_one_line_naming_file_and_field(
    tmp_path: Path, change: object, field: str, message: str
) -> None:
    data = _minimal()
    change(data)  # type: ignore[operator]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as caught:
        load_profile(path)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {field}: ")
    assert message in text


def test_quirks_need_a_registrar() -> None:
    with pytest.raises(InputError, match="quirks: need a Kamailio peer with role registrar"):
        parse_profile({**_minimal(), "peers": [
            {"name": "pbx", "software": "asterisk", "role": "pbx", "address": "127.0.0.8"}],
            "quirks": ["sha256"]})  # fmt: skip
    with pytest.raises(InputError, match="quirks need a Kamailio registrar"):
        load_profile("pbx-asterisk").with_quirks(["sha256"])


def test_apply_profile_overlays_what_the_carrier_dictates(number: NumberConfig) -> None:
    effective = apply_profile(number, load_profile("proxy-tcp-5065"))
    assert str(effective.sip_domain) == "127.0.0.6"
    assert str(effective.outbound_proxy) == "sip:127.0.0.5:5065;transport=tcp"
    assert effective.username == number.username
    assert effective.password == number.password
    view = effective_view(effective)
    assert (view.target.host, view.target.port, view.target.transport.value) == (
        "127.0.0.5", 5065, "tcp")  # fmt: skip


def test_apply_profile_auth_username_and_trunk(number: NumberConfig) -> None:
    pbx = apply_profile(number, load_profile("pbx-asterisk"))
    assert effective_view(pbx).digest_username == "auth-7781"
    trunk = apply_profile(number, load_profile("ip-trunk"))
    assert not trunk.has_credentials
    assert trunk.password is None
    assert str(trunk.sip_domain) == "127.0.0.11"


def test_apply_profile_refuses_a_number_that_cannot_fit() -> None:
    trunk_number = load_number_file(NUMBERS / "ip-trunk.yaml")
    with pytest.raises(InputError, match="needs username and password"):
        apply_profile(trunk_number, load_profile("registrar-udp"))


def test_placed_moves_addresses_ports_and_the_overlay(number: NumberConfig) -> None:
    profile = load_profile("proxy-tcp-5065").placed(base=4, port_offset=100)
    assert [(p.address, p.port) for p in profile.peers] == [
        ("127.0.4.5", 5165), ("127.0.4.6", 5160), ("127.0.4.7", 5160)]  # fmt: skip
    effective = apply_profile(number, profile)
    assert str(effective.sip_domain) == "127.0.4.6:5160"
    assert str(effective.outbound_proxy) == "sip:127.0.4.5:5165;transport=tcp"
    assert load_profile("registrar-udp").placed() == load_profile("registrar-udp")
    with pytest.raises(InputError):
        load_profile("registrar-udp").placed(base=256)


def test_with_quirks_and_allowed_sources() -> None:
    profile = load_profile("registrar-udp").with_quirks(["sha256", "SHA256", "realm"])
    assert profile.quirks == (Quirk.SHA256, Quirk.REALM)
    trunk = load_profile("ip-trunk").with_allowed_sources(["127.0.0.9"])
    assert next(p for p in trunk.peers if p.role is Role.TRUNK).allowed_sources == ("127.0.0.9",)
    with pytest.raises(InputError, match="not a loopback"):
        load_profile("ip-trunk").with_allowed_sources(["192.0.2.1"])
