"""RFC 3263 resolution against a DNS server the test starts on 127.0.0.77."""

from __future__ import annotations

from typing import Any

import pytest

from harness.transport import Address, ResolutionError, SipResolver
from tests.transport.helpers import closed_port, run, start_dns

ZONE: dict[tuple[str, str], list[str]] = {
    # NAPTR → SRV → A, with TCP preferred over UDP at the same order, TLS later.
    ("example.test", "NAPTR"): [
        '10 100 "s" "SIP+D2U" "" _sip._udp.example.test.',
        '10 50 "s" "SIP+D2T" "" _sip._tcp.example.test.',
        '20 10 "s" "SIPS+D2T" "" _sips._tcp.example.test.',
        '5 10 "u" "E2U+sip" "!^.*$!sip:x@y!" .',  # not a SIP service record: ignored
    ],
    ("_sip._tcp.example.test", "SRV"): [
        "20 0 5071 pbx2.example.test.",
        "10 0 5070 pbx1.example.test.",
    ],
    ("_sip._udp.example.test", "SRV"): ["10 0 5080 pbx1.example.test."],
    ("_sips._tcp.example.test", "SRV"): ["10 0 5061 pbx1.example.test."],
    ("pbx1.example.test", "A"): ["127.0.0.11"],
    ("pbx2.example.test", "A"): ["127.0.0.12"],
    ("pbx2.example.test", "AAAA"): ["::1"],
    # SRV only (no NAPTR).
    ("srvonly.test", "A"): ["127.0.0.20"],
    ("_sip._tcp.srvonly.test", "SRV"): ["0 0 5090 host.srvonly.test."],
    ("_sips._tcp.srvonly.test", "SRV"): ["0 0 5091 host.srvonly.test."],
    ("host.srvonly.test", "A"): ["127.0.0.21"],
    # A only.
    ("aonly.test", "A"): ["127.0.0.31"],
    # Weighted SRV set for the ordering tests.
    ("_sip._udp.weights.test", "SRV"): [
        "10 10 5060 w1.weights.test.",
        "10 30 5060 w2.weights.test.",
        "10 60 5060 w3.weights.test.",
        "5 0 5060 first.weights.test.",
        "30 0 5060 gone.weights.test.",
    ],
    ("first.weights.test", "A"): ["127.0.0.40"],
    ("w1.weights.test", "A"): ["127.0.0.41"],
    ("w2.weights.test", "A"): ["127.0.0.42"],
    ("w3.weights.test", "A"): ["127.0.0.43"],
    # SRV target "." means "no service here".
    ("_sip._udp.dot.test", "SRV"): ["0 0 5060 ."],
    ("dot.test", "A"): ["127.0.0.50"],
}


async def _resolve(
    *args: Any, resolver_kw: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[list[Address], list[tuple[str, str]], SipResolver]:
    server, port = await start_dns(ZONE)
    resolver = SipResolver(
        nameservers=["127.0.0.77"], port=port, timeout=2.0, **(resolver_kw or {})
    )
    try:
        targets = await resolver.resolve(*args, **kwargs)
    finally:
        assert server.transport is not None
        server.transport.close()
    return targets, server.queries, resolver


def test_naptr_srv_a_chain_in_preference_order() -> None:
    targets, queries, _ = run(_resolve("example.test"))
    assert targets == [
        Address("127.0.0.11", 5070, "tcp"),  # order 10 pref 50, SRV priority 10
        Address("127.0.0.12", 5071, "tcp"),  # same NAPTR, SRV priority 20 (A)
        Address("::1", 5071, "tcp"),  # ... and its AAAA
        Address("127.0.0.11", 5080, "udp"),  # order 10 pref 100
        Address("127.0.0.11", 5061, "tls"),  # order 20
    ]
    assert queries[0] == ("example.test", "NAPTR")
    assert ("_sip._tcp.example.test", "SRV") in queries
    assert ("pbx1.example.test", "A") in queries


def test_naptr_filtered_by_supported_transports() -> None:
    targets, _, _ = run(_resolve("example.test", resolver_kw={"transports": ("udp",)}))
    assert targets == [Address("127.0.0.11", 5080, "udp")]


def test_sips_uri_keeps_only_tls_naptr() -> None:
    targets, _, _ = run(_resolve("example.test", secure=True))
    assert targets == [Address("127.0.0.11", 5061, "tls")]


def test_no_naptr_falls_back_to_srv_queries_in_order() -> None:
    targets, queries, _ = run(_resolve("srvonly.test"))
    assert targets == [Address("127.0.0.21", 5090, "tcp"), Address("127.0.0.21", 5091, "tls")]
    assert queries[:4] == [
        ("srvonly.test", "NAPTR"),
        ("_sip._udp.srvonly.test", "SRV"),
        ("_sip._tcp.srvonly.test", "SRV"),
        ("host.srvonly.test", "A"),
    ]
    assert ("srvonly.test", "A") not in queries  # SRV found: the host's A is not used


def test_no_srv_uses_a_record_and_default_port() -> None:
    targets, queries, _ = run(_resolve("aonly.test"))
    assert targets == [Address("127.0.0.31", 5060, "udp")]
    assert ("aonly.test", "A") in queries


def test_sips_without_srv_uses_tls_on_5061() -> None:
    targets, _, _ = run(_resolve("aonly.test", secure=True))
    assert targets == [Address("127.0.0.31", 5061, "tls")]


def test_explicit_port_on_host_with_address() -> None:
    targets, queries, _ = run(_resolve("pbx1.example.test", 5065, "tcp"))
    assert targets == [Address("127.0.0.11", 5065, "tcp")]
    assert queries == [("pbx1.example.test", "A"), ("pbx1.example.test", "AAAA")]


def test_explicit_transport_without_port_uses_its_srv() -> None:
    targets, queries, _ = run(_resolve("srvonly.test", None, "tcp"))
    assert targets == [Address("127.0.0.21", 5090, "tcp")]
    assert queries[0] == ("_sip._tcp.srvonly.test", "SRV")
    assert ("srvonly.test", "NAPTR") not in queries


def test_explicit_transport_without_srv_uses_default_port() -> None:
    targets, _, _ = run(_resolve("aonly.test", None, "tls"))
    assert targets == [Address("127.0.0.31", 5061, "tls")]


@pytest.mark.parametrize(
    ("host", "port", "transport", "secure", "expected"),
    [
        ("127.0.0.9", None, None, False, Address("127.0.0.9", 5060, "udp")),
        ("127.0.0.9", 5080, "tcp", False, Address("127.0.0.9", 5080, "tcp")),
        ("127.0.0.9", None, None, True, Address("127.0.0.9", 5061, "tls")),
        ("127.0.0.9", None, "tcp", True, Address("127.0.0.9", 5061, "tls")),
        ("[::1]", None, "tls", False, Address("::1", 5061, "tls")),
        ("localhost", 5065, None, False, Address("127.0.0.1", 5065, "udp")),
    ],
)
def test_numeric_host_short_circuits_dns(
    host: str, port: int | None, transport: str | None, secure: bool, expected: Address
) -> None:
    targets, queries, resolver = run(_resolve(host, port, transport, secure=secure))
    assert targets == [expected]
    assert queries == []
    assert resolver.queries == []


def test_nxdomain_is_a_one_line_error_naming_what_was_tried() -> None:
    with pytest.raises(ResolutionError) as info:
        run(_resolve("missing.test"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot resolve sip:missing.test: ")
    assert "NAPTR missing.test: NXDOMAIN" in message
    assert "SRV _sip._udp.missing.test: NXDOMAIN" in message
    assert "A missing.test: NXDOMAIN" in message


def test_explicit_port_skips_naptr_and_srv() -> None:
    # example.test has NAPTR and SRV records but no address: an explicit port must
    # not use them (RFC 3263 §4.2), so this fails after the A/AAAA queries alone.
    with pytest.raises(ResolutionError) as info:
        run(_resolve("example.test", 5065))
    assert str(info.value) == (
        "cannot resolve sip:example.test: A example.test: no records; AAAA example.test: no records"
    )


def test_srv_target_dot_means_unavailable() -> None:
    targets, _, _ = run(_resolve("dot.test"))
    # The SRV set says "no SIP/UDP here"; nothing else published, so the A record is used.
    assert targets == [Address("127.0.0.50", 5060, "udp")]


def test_srv_priority_then_weight_order_is_reproducible() -> None:
    first, _, _ = run(_resolve("weights.test", resolver_kw={"seed": 7}))
    again, _, _ = run(_resolve("weights.test", resolver_kw={"seed": 7}))
    assert first == again
    hosts = [a.host for a in first]
    assert hosts[0] == "127.0.0.40"  # priority 5
    assert sorted(hosts[1:4]) == ["127.0.0.41", "127.0.0.42", "127.0.0.43"]  # priority 10
    assert len(hosts) == 4  # the priority-30 target has no address record: skipped


def test_srv_weights_shape_the_first_choice() -> None:
    counts = {"127.0.0.41": 0, "127.0.0.42": 0, "127.0.0.43": 0}

    async def many() -> None:
        server, port = await start_dns(ZONE)
        try:
            for seed in range(200):
                resolver = SipResolver(nameservers=["127.0.0.77"], port=port, seed=seed)
                targets = await resolver.resolve("weights.test")
                counts[targets[1].host] += 1
        finally:
            assert server.transport is not None
            server.transport.close()

    run(many(), timeout=60)
    # Weights 10/30/60: expected 20/60/120 first picks out of 200.
    assert counts["127.0.0.43"] > counts["127.0.0.42"] > counts["127.0.0.41"]
    assert 85 <= counts["127.0.0.43"] <= 155


def test_sips_with_udp_transport_is_rejected() -> None:
    with pytest.raises(ResolutionError, match="a sips URI cannot use UDP"):
        run(_resolve("example.test", None, "udp", secure=True))


def test_unknown_transport_is_rejected() -> None:
    with pytest.raises(ResolutionError, match="transport 'sctp' not supported"):
        run(_resolve("example.test", None, "sctp"))


def test_dead_dns_server_gives_a_clear_error_within_the_timeout() -> None:
    port = closed_port("127.0.0.78")

    async def go() -> None:
        resolver = SipResolver(nameservers=["127.0.0.78"], port=port, timeout=0.5)
        await resolver.resolve("aonly.test", 5060)

    with pytest.raises(ResolutionError) as info:
        run(go(), timeout=10)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot resolve sip:aonly.test: A aonly.test: ")
    assert "no server answered" in message or "timed out" in message
