"""Masking: digest values and credentials in text, secrets in data, Authorization in pcaps."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest

from harness.capture import PcapngWriter, PcapWriter, decode_capture
from harness.capture.pcapfile import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    ethernet_frame,
    ipv4_packet,
    ipv6_packet,
    tcp_segment,
    udp_datagram,
)
from harness.errors import InputError
from harness.report.redact import MASK, mask_payload, redact_pcap, redact_text, scrub_data
from harness.sip.message import make_request

RESPONSE = "6629fae49393a05397450978507c4ef1"
NONCE = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
CNONCE = "0a4f113b"
AUTH = (
    f'Digest username="alice", realm="sip.example.net", nonce="{NONCE}", '
    f'uri="sip:sip.example.net", response="{RESPONSE}", algorithm=MD5, '
    f'cnonce="{CNONCE}", qop=auth, nc=00000001'
)


def register_bytes(header: str = "Authorization", value: str = AUTH) -> bytes:
    message = make_request(
        "REGISTER",
        "sip:sip.example.net",
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds"),
            ("From", "<sip:+14155550100@sip.example.net>;tag=1928301774"),
            ("To", "<sip:+14155550100@sip.example.net>"),
            ("Call-ID", "a84b4c76e66710@127.0.0.1"),
            ("CSeq", "2 REGISTER"),
            (header, value),
            ("Contact", "<sip:+14155550100@127.0.0.1:5060>"),
            ("Expires", "3600"),
        ],
    )
    return message.to_bytes()


# --- text ----------------------------------------------------------------------------


def test_digest_secrets_are_masked_and_diagnostic_fields_kept() -> None:
    text = redact_text(f"Authorization: {AUTH}\r\nCSeq: 2 REGISTER")
    for secret in (RESPONSE, NONCE, CNONCE):
        assert secret not in text
    assert f'response="{MASK}"' in text
    assert f'nonce="{MASK}"' in text
    assert f'cnonce="{MASK}"' in text
    assert 'username="alice"' in text
    assert 'realm="sip.example.net"' in text
    assert "nc=00000001" in text
    assert "CSeq: 2 REGISTER" in text


def test_challenge_nonces_and_unquoted_values_are_masked() -> None:
    text = redact_text(
        f'WWW-Authenticate: Digest realm="x", nonce="{NONCE}", qop="auth"\n'
        f"Authentication-Info: nextnonce={NONCE}, rspauth={RESPONSE}"
    )
    assert NONCE not in text
    assert RESPONSE not in text
    assert f"nextnonce={MASK}" in text
    assert f"rspauth={MASK}" in text


def test_non_digest_credentials_are_masked_entirely() -> None:
    text = redact_text("proxy-authorization: Basic YWxpY2U6aHVudGVyMg==\nX: y")
    assert "YWxpY2U6aHVudGVyMg==" not in text
    assert text == f"proxy-authorization: Basic {MASK}\nX: y"


def test_redact_text_is_idempotent_and_leaves_plain_text_alone() -> None:
    plain = "INVITE sip:+1415@example.net SIP/2.0 got 403 Forbidden; nothing secret"
    assert redact_text(plain) == plain
    once = redact_text(f"Authorization: {AUTH}", ["hunter2"])
    assert redact_text(once, ["hunter2"]) == once


def test_secrets_are_replaced_longest_first() -> None:
    text = redact_text("pw=hunter2-long and hunter2", ["hunter2", "hunter2-long"])
    assert "hunter2" not in text
    assert text == f"pw={MASK} and {MASK}"


def test_scrub_data_walks_keys_and_values() -> None:
    data = {"a": ["x hunter2", {"hunter2": 1}], "b": 3, "c": None}
    out = scrub_data(data, ["hunter2"])
    assert out == {"a": [f"x {MASK}", {MASK: 1}], "b": 3, "c": None}
    assert data["a"][0] == "x hunter2"  # the input is not modified


# --- captures ------------------------------------------------------------------------------


def _checksum_ok(pseudo: bytes, segment: bytes) -> bool:
    data = pseudo + segment
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def _with_checksum(src: str, dst: str, proto: int, segment: bytes, offset: int) -> bytes:
    """``segment`` with a correct IPv4 UDP/TCP checksum at ``offset``."""
    import ipaddress

    pseudo = (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!BBH", 0, proto, len(segment))
    )
    data = pseudo + segment + (b"\x00" if len(segment) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    value = ~total & 0xFFFF or 0xFFFF
    return segment[:offset] + struct.pack("!H", value) + segment[offset + 2 :]


def _frames(payload: bytes) -> list[bytes]:
    udp = _with_checksum("127.0.0.1", "127.0.0.2", 17, udp_datagram(5060, 5060, payload), offset=6)
    udp_zero = udp_datagram(5062, 5060, payload)
    tcp = _with_checksum(
        "127.0.0.1", "127.0.0.2", 6, tcp_segment(40000, 5060, 1000, payload), offset=16
    )
    return [
        ethernet_frame(ipv4_packet("127.0.0.1", "127.0.0.2", 17, udp), 0x0800),
        ethernet_frame(ipv4_packet("127.0.0.1", "127.0.0.2", 17, udp_zero), 0x0800),
        ethernet_frame(ipv4_packet("127.0.0.1", "127.0.0.2", 6, tcp), 0x0800),
        ethernet_frame(ipv6_packet("::1", "::1", 17, udp_datagram(5060, 5060, payload)), 0x86DD),
    ]


def _write_pcap(path: Path, frames: list[bytes], *, linktype: int = LINKTYPE_ETHERNET) -> None:
    buf = io.BytesIO()
    writer = PcapWriter(buf, linktype=linktype)
    for n, frame in enumerate(frames):
        writer.write(frame, 1_700_000_000.0 + n)
    path.write_bytes(buf.getvalue())


def _udp_tcp_checksums_valid(path: Path) -> list[bool]:
    """For each Ethernet/IPv4 frame of a pcap: is its UDP/TCP checksum valid (0 = valid)?"""
    raw = path.read_bytes()
    pos, results = 24, []
    while pos + 16 <= len(raw):
        caplen = struct.unpack_from("<I", raw, pos + 8)[0]
        frame = raw[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        if struct.unpack_from("!H", frame, 12)[0] != 0x0800:
            continue
        ip = frame[14:]
        proto, l4 = ip[9], ip[20 : struct.unpack_from("!H", ip, 2)[0]]
        if proto == 17 and struct.unpack_from("!H", l4, 6)[0] == 0:
            results.append(True)
            continue
        pseudo = ip[12:20] + struct.pack("!BBH", 0, proto, len(l4))
        results.append(_checksum_ok(pseudo, l4))
    return results


def test_redact_pcap_masks_in_place_with_valid_checksums(tmp_path: Path) -> None:
    payload = register_bytes()
    src = tmp_path / "run.pcap"
    _write_pcap(src, _frames(payload))
    original = src.read_bytes()
    dst = tmp_path / "out" / "run.redacted.pcap"

    outcome = redact_pcap(src, dst)

    assert src.read_bytes() == original  # evidence kept as captured
    redacted = dst.read_bytes()
    assert len(redacted) == len(original)
    assert outcome.frames == 4
    assert outcome.changed_frames == 4
    assert outcome.masked_headers == 4
    for secret in (RESPONSE.encode(), NONCE.encode(), CNONCE.encode()):
        assert secret in original
        assert secret not in redacted
    assert b'username="alice"' in redacted
    assert all(_udp_tcp_checksums_valid(src))
    assert all(_udp_tcp_checksums_valid(dst))
    # The copy still decodes into the same SIP messages, Content-Length intact.
    decoded = decode_capture(dst)
    assert [m.message.method for m in decoded.messages] == ["REGISTER"] * 4  # type: ignore[union-attr]
    assert not decoded.issues
    auth = decoded.messages[0].message.headers.get("Authorization")
    assert auth is not None
    assert "*" * len(RESPONSE) in auth


def test_redact_pcap_whole_value_and_proxy_authorization(tmp_path: Path) -> None:
    payload = register_bytes("Proxy-Authorization", AUTH)
    src, dst = tmp_path / "a.pcap", tmp_path / "b.pcap"
    _write_pcap(src, _frames(payload)[:1])
    redact_pcap(src, dst, whole_value=True)
    data = dst.read_bytes()
    assert b"alice" not in data
    assert RESPONSE.encode() not in data
    assert b"Proxy-Authorization: " + b"*" * len("Digest") in data
    assert all(_udp_tcp_checksums_valid(dst))


def test_redact_pcapng_gzip_and_linux_cooked(tmp_path: Path) -> None:
    payload = register_bytes("Authorization", "Basic YWxpY2U6aHVudGVyMg==")
    ip = ipv4_packet("127.0.0.1", "127.0.0.2", 17, udp_datagram(5060, 5060, payload))
    sll = struct.pack("!HHH8sH", 0, 772, 6, b"\x00" * 8, 0x0800) + ip
    buf = io.BytesIO()
    writer = PcapngWriter(buf)
    writer.add_interface(LINKTYPE_LINUX_SLL)
    writer.write(sll, 1_700_000_000.0)
    src, dst = tmp_path / "c.pcapng.gz", tmp_path / "d.pcapng.gz"
    src.write_bytes(gzip.compress(buf.getvalue()))

    outcome = redact_pcap(src, dst)

    assert outcome.masked_headers == 1
    data = gzip.decompress(dst.read_bytes())
    assert b"YWxpY2U6aHVudGVyMg==" not in data
    assert b"Authorization: Basic " + b"*" * len("YWxpY2U6aHVudGVyMg==") in data
    assert len(data) == len(buf.getvalue())


def test_mask_payload_keeps_length_and_framing() -> None:
    payload = bytearray(register_bytes())
    before = len(payload)
    assert mask_payload(payload) == 1
    assert len(payload) == before
    assert payload.endswith(b"\r\n\r\n")


def test_redact_pcap_rejects_a_non_capture(tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("hello, not a capture")
    with pytest.raises(InputError, match="not a pcap or pcapng"):
        redact_pcap(src, tmp_path / "x.pcap")
    with pytest.raises(InputError, match="another file"):
        redact_pcap(src, src)
