"""hop_key: URIs that reach the same next hop compare equal, others do not."""

from __future__ import annotations

import pytest

from harness.sip.uri import hop_key, parse_sip_uri


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("sip:127.0.0.11;lr=on;ftag=abc", "sip:127.0.0.11:5060;lr"),
        ("sip:Proxy.Example.COM;lr", "sip:proxy.example.com:5060;transport=udp"),
        ("sips:proxy.example.com", "sips:proxy.example.com:5061;transport=tls"),
        ("sip:10.0.0.1;transport=tls", "sip:10.0.0.1:5061;transport=TLS"),
    ],
)
def test_same_hop(one: str, two: str) -> None:
    assert hop_key(parse_sip_uri(one)) == hop_key(parse_sip_uri(two))


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("sip:127.0.0.11", "sip:127.0.0.12"),
        ("sip:proxy.example.com", "sip:proxy.example.com:5065"),
        ("sip:proxy.example.com;transport=tcp", "sip:proxy.example.com"),
        ("sip:proxy.example.com:5061", "sips:proxy.example.com"),
    ],
)
def test_different_hop(one: str, two: str) -> None:
    assert hop_key(parse_sip_uri(one)) != hop_key(parse_sip_uri(two))
