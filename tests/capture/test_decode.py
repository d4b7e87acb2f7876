"""Decoding link, IP, UDP and TCP layers into SIP messages."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.capture import Decoded, decode_capture, iter_messages, looks_like_sip
from harness.capture.pcapfile import (
    ETHERTYPE_QINQ,
    ETHERTYPE_VLAN,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    ethernet_frame,
    ipv4_packet,
    ipv6_packet,
    udp_datagram,
)
from harness.sip.message import Request, Response
from tests.capture.builders import (
    CaptureBuilder,
    TcpConnection,
    invite_dialog,
    ipv4_fragments,
    ipv6_fragments,
    options_ping,
    register_dialog,
    request,
    sdp_body,
)

A = ("192.0.2.10", 5080)
B = ("198.51.100.20", 5065)
A6 = ("2001:db8::10", 5080)
B6 = ("2001:db8::20", 5065)


def decode(cap: CaptureBuilder, fmt: str = "pcap") -> Decoded:
    return decode_capture(io.BytesIO(cap.pcap() if fmt == "pcap" else cap.pcapng()))


def labels(decoded: Decoded) -> list[str]:
    out = []
    for m in decoded.messages:
        msg = m.message
        out.append(msg.method if isinstance(msg, Request) else str(msg.status))
    return out


DIALOG = ["INVITE", "100", "180", "200", "ACK", "BYE", "200"]


# --- link types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("linktype", "v6"),
    [
        (LINKTYPE_ETHERNET, False),
        (LINKTYPE_ETHERNET, True),
        (LINKTYPE_LINUX_SLL, False),
        (LINKTYPE_LINUX_SLL2, True),
        (LINKTYPE_NULL, False),
        (LINKTYPE_NULL, True),
        (LINKTYPE_LOOP, False),
        (LINKTYPE_LOOP, True),
        (LINKTYPE_RAW, False),
        (LINKTYPE_RAW, True),
        (LINKTYPE_IPV4, False),
        (LINKTYPE_IPV6, True),
    ],
)
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_every_link_type_decodes_a_dialog(linktype: int, v6: bool, fmt: str) -> None:
    a, b = (A6, B6) if v6 else (A, B)
    cap = CaptureBuilder(linktype=linktype)
    for src, dst, payload in invite_dialog("link", a, b):
        cap.udp(src, dst, payload)
    decoded = decode(cap, fmt)
    assert labels(decoded) == DIALOG
    first = decoded.messages[0]
    assert (first.src.ip, first.src.port) == a
    assert first.dst == b  # Endpoint is a tuple: compares equal to (ip, port)
    assert first.transport == "udp"
    assert first.frame == 1
    assert decoded.issues == ()


def test_null_link_in_big_endian_host_order() -> None:
    cap = CaptureBuilder(linktype=LINKTYPE_NULL)
    payload = options_ping("be", A, B)[0][2]
    ip = ipv4_packet(A[0], B[0], IPPROTO_UDP, udp_datagram(A[1], B[1], payload))
    cap.raw(struct.pack(">I", 2) + ip)
    assert labels(decode(cap)) == ["OPTIONS"]


@pytest.mark.parametrize(
    "vlans",
    [((ETHERTYPE_VLAN, 100),), ((ETHERTYPE_QINQ, 200), (ETHERTYPE_VLAN, 100))],
    ids=["802.1Q", "QinQ"],
)
def test_vlan_tags_are_skipped(vlans: tuple[tuple[int, int], ...]) -> None:
    cap = CaptureBuilder(vlans=vlans)
    for src, dst, payload in invite_dialog("vlan", A, B):
        cap.udp(src, dst, payload)
    assert labels(decode(cap)) == DIALOG


def _pppoe(packet: bytes, protocol: int) -> bytes:
    """Ethernet, PPPoE session header (RFC 2516 §4), PPP protocol, then ``packet``."""
    session = struct.pack("!BBHHH", 0x11, 0x00, 0x1234, len(packet) + 2, protocol)
    return ethernet_frame(session + packet, 0x8864)


@pytest.mark.parametrize(("a", "b", "protocol"), [(A, B, 0x0021), (A6, B6, 0x0057)])
def test_pppoe_sessions_are_followed(a: tuple[str, int], b: tuple[str, int], protocol: int) -> None:
    cap = CaptureBuilder()
    for src, dst, payload in invite_dialog("pppoe", a, b):
        ip = (ipv6_packet if ":" in src[0] else ipv4_packet)(
            src[0], dst[0], IPPROTO_UDP, udp_datagram(src[1], dst[1], payload)
        )
        cap.raw(_pppoe(ip, protocol))
    cap.raw(_pppoe(b"\xc0\x21\x01\x01\x00\x04", 0xC021))  # LCP: not IP, ignored
    decoded = decode(cap)
    assert labels(decoded) == DIALOG
    assert decoded.issues == ()


def test_truncated_pppoe_header_is_a_finding() -> None:
    cap = CaptureBuilder()
    cap.raw(ethernet_frame(b"\x11\x00\x12", 0x8864))
    (issue,) = decode(cap).issues
    assert issue.kind == "malformed-packet"
    assert "PPPoE" in issue.reason


def test_unsupported_link_type_is_reported_once() -> None:
    cap = CaptureBuilder(linktype=147)  # a user-defined DLT
    cap.raw(b"\x00" * 40)
    cap.raw(b"\x00" * 40)
    decoded = decode_capture(io.BytesIO(cap.pcap()))
    assert decoded.messages == ()
    (issue,) = decoded.issues
    assert issue.kind == "unsupported-link"
    assert "2 frame(s)" in issue.reason


# --- IP -----------------------------------------------------------------------------------


def test_ipv4_options_are_skipped() -> None:
    cap = CaptureBuilder()
    payload = options_ping("opts", A, B)[0][2]
    ip = ipv4_packet(
        A[0], B[0], IPPROTO_UDP, udp_datagram(A[1], B[1], payload), options=b"\x94\x04\x00\x00"
    )  # router alert
    cap.ip(ip)
    assert labels(decode(cap)) == ["OPTIONS"]


@pytest.mark.parametrize("order", ["in-order", "reversed"])
def test_fragmented_ipv4_udp_message_is_reassembled(order: str) -> None:
    cap = CaptureBuilder()
    big = request(
        "INVITE",
        call_id="frag4",
        cseq=1,
        src=A,
        branch="z9hG4bK-f4",
        body=sdp_body(A[0], 40000) + b"a=x-padding:" + b"p" * 2500 + b"\r\n",
    )
    pieces = ipv4_fragments(A, B, big, ident=4242, size=600)
    assert len(pieces) >= 4
    for piece in pieces if order == "in-order" else reversed(pieces):
        cap.ip(piece)
    decoded = decode(cap)
    (message,) = decoded.messages
    assert message.message.call_id == "frag4"
    assert message.frame == len(pieces)  # reported where the datagram completed
    assert message.size == len(big)
    assert decoded.issues == ()


def test_ipv6_extension_headers_and_fragments() -> None:
    cap = CaptureBuilder()
    big = request(
        "INVITE",
        call_id="frag6",
        cseq=1,
        src=A6,
        branch="z9hG4bK-f6",
        body=sdp_body(A6[0], 40000) + b"a=x-padding:" + b"p" * 1500 + b"\r\n",
    )
    for piece in ipv6_fragments(A6, B6, big, ident=77, size=512):
        cap.ip(piece)
    # A destination-options header before UDP, without fragmentation.
    small = options_ping("dstopt", A6, B6)[0][2]
    dest_opts = struct.pack("!BB6s", IPPROTO_UDP, 0, b"\x01\x04\x00\x00\x00\x00")
    cap.ip(ipv6_packet(A6[0], B6[0], 60, dest_opts + udp_datagram(A6[1], B6[1], small)))
    decoded = decode(cap)
    assert [m.message.call_id for m in decoded.messages] == ["frag6", "dstopt"]
    assert decoded.messages[0].src.ip == "2001:db8::10"
    assert str(decoded.messages[0].src) == "[2001:db8::10]:5080"


def test_incomplete_fragments_are_reported() -> None:
    cap = CaptureBuilder()
    big = request(
        "INVITE",
        call_id="lost",
        cseq=1,
        src=A,
        branch="z9hG4bK-l",
        body=b"v=0\r\n" + b"a=x:" + b"q" * 2000 + b"\r\n",
    )
    pieces = ipv4_fragments(A, B, big, ident=9, size=512)
    for piece in pieces[:-1]:
        cap.ip(piece)
    decoded = decode(cap)
    assert decoded.messages == ()
    assert [i.kind for i in decoded.issues] == ["fragments-incomplete"]
    assert decoded.issues[0].frame == 1


# --- UDP ------------------------------------------------------------------------------------


def test_sip_is_recognised_by_content_on_any_port_and_other_udp_ignored() -> None:
    cap = CaptureBuilder()
    odd_a, odd_b = ("10.1.1.1", 40123), ("10.1.1.2", 7777)
    for src, dst, payload in options_ping("anyport", odd_a, odd_b):
        cap.udp(src, dst, payload)
    cap.udp(odd_a, ("10.1.1.2", 5060), b"\x80\x00\x00\x01" + b"\x00" * 168)  # RTP on 5060
    cap.udp(odd_a, odd_b, b"\r\n\r\n")  # keep-alive
    cap.udp(odd_a, odd_b, b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"\x00" * 12)  # STUN
    cap.udp(odd_a, odd_b, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # text, not SIP
    decoded = decode(cap)
    assert labels(decoded) == ["OPTIONS", "200"]
    assert decoded.issues == ()


def test_sip_looking_garbage_becomes_an_issue_with_a_snippet() -> None:
    cap = CaptureBuilder()
    cap.udp(A, B, b"INVITE sip:bob@example.com SIP/2.0\r\nVia: broken\r\nno empty line")
    cap.udp(A, B, b"SIP/2.0 999999 Nope\r\n\r\n")
    decoded = decode(cap)
    assert decoded.messages == ()
    assert [i.kind for i in decoded.issues] == ["unparseable-sip", "unparseable-sip"]
    first = decoded.issues[0]
    assert first.frame == 1
    assert first.src == A
    assert first.dst == B
    assert first.snippet.startswith("INVITE sip:bob@example.com SIP/2.0\\r\\n")
    assert first.timestamp == pytest.approx(cap.frames[0][0])


@pytest.mark.parametrize(
    ("frame_bytes", "reason"),
    [
        (b"\x02" * 10, "Ethernet header truncated"),
        (b"\x02" * 12 + b"\x08\x00" + b"\x45\x00", "IPv4 header truncated"),
        (b"\x02" * 12 + b"\x08\x00" + b"\x4f" + b"\x00" * 19, "bad IPv4 header"),
    ],
)
def test_malformed_frames_become_issues(frame_bytes: bytes, reason: str) -> None:
    cap = CaptureBuilder()
    cap.raw(frame_bytes)
    decoded = decode(cap)
    (issue,) = decoded.issues
    assert issue.kind == "malformed-packet"
    assert reason in issue.reason


def test_bad_ip_and_udp_lengths_become_issues() -> None:
    cap = CaptureBuilder()
    payload = options_ping("len", A, B)[0][2]
    good_udp = udp_datagram(A[1], B[1], payload)
    cap.ip(ipv4_packet(A[0], B[0], IPPROTO_UDP, good_udp, total_length=len(good_udp) + 400))
    bad_udp = struct.pack("!HHHH", A[1], B[1], len(payload) + 500, 0) + payload
    cap.ip(ipv4_packet(A[0], B[0], IPPROTO_UDP, bad_udp))
    decoded = decode(cap)
    assert decoded.messages == ()
    assert [i.kind for i in decoded.issues] == ["malformed-packet", "malformed-packet"]
    assert "IPv4 packet truncated" in decoded.issues[0].reason
    assert "UDP length" in decoded.issues[1].reason


sip_like = st.builds(
    lambda head, rest: head + rest,
    st.sampled_from([b"INVITE sip:", b"SIP/2.0 200 OK\r\n", b"BYE sips:", b"OPTIONS tel:", b""]),
    st.binary(max_size=600),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=st.lists(sip_like, min_size=1, max_size=5))
def test_random_udp_payloads_never_raise(payloads: list[bytes]) -> None:
    cap = CaptureBuilder()
    for payload in payloads:
        cap.udp(A, B, payload)
    decoded = decode(cap)
    assert len(decoded.messages) + len(decoded.issues) <= len(payloads)
    assert not any(i.kind == "internal-error" for i in decoded.issues), decoded.issues


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.lists(st.binary(max_size=200), min_size=1, max_size=8),
    linktype=st.sampled_from(
        [
            LINKTYPE_ETHERNET,
            LINKTYPE_LINUX_SLL,
            LINKTYPE_LINUX_SLL2,
            LINKTYPE_NULL,
            LINKTYPE_RAW,
            LINKTYPE_IPV6,
        ]
    ),
)
def test_random_frames_never_raise(frames: list[bytes], linktype: int) -> None:
    cap = CaptureBuilder(linktype=linktype)
    for frame in frames:
        cap.raw(frame)
    decoded = decode(cap)
    assert decoded.frames == len(frames)


# --- TCP ------------------------------------------------------------------------------------


def _tcp_capture() -> tuple[CaptureBuilder, TcpConnection]:
    cap = CaptureBuilder()
    conn = TcpConnection(cap, A, B)
    conn.handshake()
    return cap, conn


def test_tcp_several_messages_in_one_segment_and_one_message_in_three() -> None:
    cap, conn = _tcp_capture()
    reg = register_dialog("tcp1", A, B, transport="TCP")
    conn.send(A, reg[0][2] + reg[2][2])  # two requests in one segment
    conn.send(B, reg[1][2], pieces=3)  # one response across three segments
    conn.send(B, reg[3][2])
    decoded = decode(cap)
    assert labels(decoded) == ["REGISTER", "REGISTER", "401", "200"]
    first, second, challenge, ok = decoded.messages
    assert first.frame == second.frame == 4
    assert challenge.frame == 7  # the third segment completed it
    assert first.transport == "tcp"
    assert first.size == len(reg[0][2])
    assert challenge.size == len(reg[1][2])
    assert ok.src == B
    assert decoded.issues == ()


def test_tcp_retransmitted_segment_is_delivered_once() -> None:
    cap, conn = _tcp_capture()
    msgs = invite_dialog("retx", A, B, transport="TCP")
    sent = conn.send(A, msgs[0][2], pieces=2)
    seq, chunk = sent[1]
    cap.tcp(A, B, seq, chunk)  # the same segment again
    cap.tcp(A, B, sent[0][0], msgs[0][2])  # and a retransmission covering everything
    conn.send(B, msgs[1][2])
    decoded = decode(cap)
    assert labels(decoded) == ["INVITE", "100"]
    assert decoded.issues == ()


def test_tcp_out_of_order_segments_are_held_until_the_gap_fills() -> None:
    cap, conn = _tcp_capture()
    msgs = invite_dialog("ooo", A, B, transport="TCP")
    pieces = conn.segments(A, msgs[0][2] + msgs[4][2], 4)
    for index in (0, 2, 3, 1):  # the second segment arrives last
        seq, chunk = pieces[index]
        cap.tcp(A, B, seq, chunk)
    decoded = decode(cap)
    assert labels(decoded) == ["INVITE", "ACK"]
    assert {m.frame for m in decoded.messages} == {len(cap.frames)}
    assert decoded.issues == ()


def test_tcp_stream_joined_mid_way_starts_at_the_first_sip_start_line() -> None:
    cap = CaptureBuilder()
    conn = TcpConnection(cap, A, B)  # no handshake: the capture started late
    msgs = register_dialog("late", A, B, transport="TCP")
    tail_of_earlier = b"x-earlier-body-bytes\r\n"
    cap.tcp(A, B, 100, tail_of_earlier)
    conn.seq[A] = 100 + len(tail_of_earlier)
    conn.send(A, msgs[0][2])
    conn.send(B, msgs[1][2])
    decoded = decode(cap)
    assert labels(decoded) == ["REGISTER", "401"]
    (issue,) = decoded.issues
    assert issue.kind == "tcp-midstream"
    assert f"{len(tail_of_earlier)} byte(s)" in issue.reason


def test_tcp_keepalives_between_messages_are_ignored() -> None:
    cap, conn = _tcp_capture()
    msgs = options_ping("ka", A, B, transport="TCP")
    conn.send(A, b"\r\n\r\n")
    conn.send(A, msgs[0][2] + b"\r\n\r\n")
    conn.send(B, msgs[1][2])
    assert labels(decode(cap)) == ["OPTIONS", "200"]


def test_tcp_gap_that_never_fills_is_reported() -> None:
    cap, conn = _tcp_capture()
    msgs = invite_dialog("gap", A, B, transport="TCP")
    pieces = conn.segments(A, msgs[0][2], 3)
    for seq, chunk in (pieces[0], pieces[2]):  # the middle one was never captured
        cap.tcp(A, B, seq, chunk)
    decoded = decode(cap)
    assert decoded.messages == ()
    assert [i.kind for i in decoded.issues] == ["tcp-gap"]


def test_tcp_garbage_resynchronises_at_the_next_start_line() -> None:
    cap, conn = _tcp_capture()
    msgs = options_ping("resync", A, B, transport="TCP")
    conn.send(A, b"OPTIONS sip:x SIP/2.0\r\nContent-Length: abc\r\n\r\n")
    conn.send(A, msgs[0][2])
    decoded = decode(cap)
    assert labels(decoded) == ["OPTIONS"]
    assert [i.kind for i in decoded.issues] == ["unparseable-sip"]


def test_tls_stream_is_counted_opaque() -> None:
    cap = CaptureBuilder()
    client, server = ("192.0.2.10", 40001), ("198.51.100.20", 5061)
    conn = TcpConnection(cap, client, server)
    conn.handshake()
    hello = b"\x16\x03\x01\x00\x40" + b"\x01" * 0x40
    conn.send(client, hello)
    conn.send(server, b"\x16\x03\x03\x00\x20" + b"\x02" * 0x20)
    conn.send(client, b"\x17\x03\x03\x00\x10" + b"INVITE sip:x SIP")  # opaque, even if text
    # TLS on a non-standard port is found by its record header.
    other = TcpConnection(cap, ("192.0.2.10", 40002), ("198.51.100.20", 5081))
    other.handshake()
    other.send(("192.0.2.10", 40002), hello)
    decoded = decode(cap)
    assert decoded.messages == ()
    assert decoded.issues == ()
    first, second = decoded.tls_streams
    assert first.client == client
    assert first.server == server
    assert first.detected_by == "tls-record"
    assert first.bytes == len(hello) + 0x25 + 0x15
    assert second.server.port == 5081
    (pair,) = decoded.tls_pairs()[:1]
    assert pair.connections == 1


def test_port_5061_without_a_tls_record_is_still_opaque_unless_it_is_sip() -> None:
    cap = CaptureBuilder()
    client, server = ("192.0.2.10", 40003), ("198.51.100.20", 5061)
    conn = TcpConnection(cap, client, server)
    conn.handshake()
    conn.send(client, b"\x00\x01binary")
    plain = TcpConnection(cap, ("192.0.2.10", 40004), server)
    plain.handshake()
    plain.send(("192.0.2.10", 40004), options_ping("plain5061", A, B, transport="TCP")[0][2])
    decoded = decode(cap)
    assert [s.detected_by for s in decoded.tls_streams] == ["port-5061"]
    assert labels(decoded) == ["OPTIONS"]


# --- SDP media and RTP candidates ---------------------------------------------------------


def test_rtp_candidates_follow_sdp_media_endpoints() -> None:
    cap = CaptureBuilder()
    media = (("192.0.2.10", 40000), ("198.51.100.20", 50000))
    dialog = invite_dialog("media", A, B, media=media)
    for src, dst, payload in dialog[:5]:
        cap.udp(src, dst, payload)
    for seq in range(5):
        cap.udp(
            media[0],
            media[1],
            struct.pack("!BBHII", 0x80, 8, seq, seq * 160, 0xABC) + b"\xd5" * 160,
        )
    cap.udp(("192.0.2.99", 1234), ("192.0.2.98", 4321), b"\x80" * 50)  # unrelated
    decoded = decode(cap)
    (flow,) = decoded.rtp_candidates
    assert flow.src == media[0]
    assert flow.call_ids == ("media",)
    assert flow.packets == flow.rtp_packets == 5
    assert flow.payload_types == (8,)
    assert flow.ssrcs == (0xABC,)
    assert [(cid, m.endpoint) for cid, m in decoded.media] == [
        ("media", media[0]),
        ("media", media[1]),
    ]


def test_messages_are_time_ordered_and_indexed() -> None:
    cap = CaptureBuilder()
    for src, dst, payload in invite_dialog("order", A, B)[:3]:
        cap.udp(src, dst, payload)
    cap.frames[1] = (cap.frames[0][0] - 1.0, cap.frames[1][1])  # a clock step backwards
    decoded = decode(cap)
    assert [m.frame for m in decoded.messages] == [2, 1, 3]
    assert [m.index for m in decoded.messages] == [0, 1, 2]


def test_iter_messages_streams_in_capture_order() -> None:
    cap = CaptureBuilder()
    for src, dst, payload in invite_dialog("stream", A, B):
        cap.udp(src, dst, payload)
    stream = iter_messages(io.BytesIO(cap.pcap()))
    seen = [m.index for m in stream]
    assert seen == list(range(7))
    assert stream.frames == 7
    assert stream.sip_frames == 7


def test_validate_reports_invalid_but_keeps_the_message() -> None:
    cap = CaptureBuilder()
    payload = request(
        "OPTIONS", call_id="noval", cseq=1, src=A, branch="z9hG4bK-nv", cseq_method="INVITE"
    )  # CSeq method differs from the method
    cap.udp(A, B, payload)
    lenient = decode(cap)
    assert labels(lenient) == ["OPTIONS"]
    assert lenient.issues == ()
    strict = decode_capture(io.BytesIO(cap.pcap()), validate=True)
    assert labels(strict) == ["OPTIONS"]
    assert [i.kind for i in strict.issues] == ["invalid-sip"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"INVITE sip:bob@x SIP/2.0\r\n", True),
        (b"SIP/2.0 180 Ringing\r\n", True),
        (b"MESSAGE tel:+15551234567 SIP/2.0\r\n", True),
        (b"FOO <weird-uri> SIP/2.0\r\n", True),
        (b"GET / HTTP/1.1\r\n", False),
        (b"\x80\x00", False),
        (b"", False),
        (b"\r\n\r\n", False),
    ],
)
def test_looks_like_sip(payload: bytes, expected: bool) -> None:
    assert looks_like_sip(payload) is expected


def test_response_and_request_types() -> None:
    cap = CaptureBuilder()
    for src, dst, payload in options_ping("types", A, B):
        cap.udp(src, dst, payload)
    first, second = decode(cap).messages
    assert isinstance(first.message, Request)
    assert first.is_request
    assert isinstance(second.message, Response)
    assert second.call_id == "types"
    assert {first, second} == {first, second}  # hashable despite the mutable message


def test_tcp_connection_reuse_after_syn_restarts_the_stream() -> None:
    cap = CaptureBuilder()
    first = TcpConnection(cap, A, B, isn_client=10)
    first.handshake()
    first.send(A, options_ping("one", A, B, transport="TCP")[0][2])
    first.close()
    second = TcpConnection(cap, A, B, isn_client=900000)
    second.handshake()
    second.send(A, options_ping("two", A, B, transport="TCP")[0][2])
    decoded = decode(cap)
    assert [m.call_id for m in decoded.messages] == ["one", "two"]
    assert decoded.issues == ()
    assert decoded.messages[1].frame == len(cap.frames)


def test_tcp_segment_with_a_whole_message_and_the_first_bytes_of_the_next() -> None:
    # tshark 4.0 loses the second message here (it sees only "SIP/2" after the first).
    cap, conn = _tcp_capture()
    msgs = invite_dialog("edge", A, B, transport="TCP")
    blob = msgs[1][2] + msgs[2][2]
    cut = len(msgs[1][2]) + 5
    cap.tcp(B, A, conn.seq[B], blob[:cut])
    cap.tcp(B, A, conn.seq[B] + cut, blob[cut:])
    decoded = decode(cap)
    assert labels(decoded) == ["100", "180"]
    assert [m.frame for m in decoded.messages] == [4, 5]
