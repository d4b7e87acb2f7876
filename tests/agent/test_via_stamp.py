"""The UAS side stamps received/rport on the top Via (RFC 3261 §18.2.1, RFC 3581)."""

from __future__ import annotations

from harness.agent.core import build_response, stamp_top_via
from harness.sip.parser import parse_message
from harness.sip.uri import parse_via
from harness.transport.base import Address

INVITE = (
    b"OPTIONS sip:+15550100001@127.0.0.1:5080 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP carrier.example:5060;branch=z9hG4bK-1;rport, "
    b"SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK-00\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n"
    b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def test_rport_and_received_are_filled_and_copied_to_responses() -> None:
    request = parse_message(INVITE)
    stamp_top_via(request, Address("127.0.0.11", 40123, "udp"))  # type: ignore[arg-type]
    vias = request.headers.get_all("Via")
    top = parse_via(vias[0])
    assert top.rport == 40123
    assert top.received == "127.0.0.11"
    assert [parse_via(v).branch for v in vias] == ["z9hG4bK-1", "z9hG4bK-0", "z9hG4bK-00"]
    response = build_response(request, 200)  # type: ignore[arg-type]
    assert parse_via(response.headers.get_all("Via")[0]).rport == 40123


def test_matching_sent_by_without_rport_is_left_alone() -> None:
    raw = INVITE.replace(
        b"carrier.example:5060;branch=z9hG4bK-1;rport", b"127.0.0.11;branch=z9hG4bK-1"
    )
    request = parse_message(raw)
    before = request.headers.get_raw("Via")
    stamp_top_via(request, Address("127.0.0.11", 5060, "udp"))  # type: ignore[arg-type]
    assert request.headers.get_raw("Via") == before
