"""Build SIP messages and captures from structured parts, for the capture tests.

Messages come from :mod:`harness.sip.message` (``make_request(...).to_bytes()``);
frames from the synthesis helpers of :mod:`harness.capture.pcapfile`.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.capture.pcapfile import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_SYN,
    PcapngWriter,
    PcapWriter,
    ethernet_frame,
    ipv4_packet,
    ipv6_packet,
    tcp_segment,
    udp_datagram,
)
from harness.sip.message import make_request, make_response

Addr = tuple[str, int]


# --- SIP messages ------------------------------------------------------------------------


def sdp_body(ip: str, port: int) -> bytes:
    family = "IP6" if ":" in ip else "IP4"
    lines = [
        "v=0",
        f"o=- 1 1 IN {family} {ip}",
        "s=-",
        f"c=IN {family} {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def request(
    method: str,
    *,
    call_id: str,
    cseq: int,
    src: Addr,
    branch: str,
    transport: str = "UDP",
    from_tag: str = "ft1",
    to_tag: str | None = None,
    uri: str = "sip:+15551234567@carrier.example.com",
    cseq_method: str | None = None,
    body: bytes = b"",
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    headers = [
        ("Via", f"SIP/2.0/{transport} {src[0]}:{src[1]};branch={branch};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:+15550001111@carrier.example.com>;tag={from_tag}"),
        ("To", "<sip:+15551234567@carrier.example.com>" + (f";tag={to_tag}" if to_tag else "")),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {cseq_method or method}"),
        ("Contact", f"<sip:agent@{src[0]}:{src[1]}>"),
        *extra,
    ]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return make_request(method, uri, headers, body).to_bytes()


def response(
    status: int,
    reason: str,
    *,
    call_id: str,
    cseq: int,
    method: str,
    via: Addr,
    branch: str,
    transport: str = "UDP",
    from_tag: str = "ft1",
    to_tag: str | None = "tt1",
    body: bytes = b"",
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    headers = [
        ("Via", f"SIP/2.0/{transport} {via[0]}:{via[1]};branch={branch};rport"),
        ("From", f"<sip:+15550001111@carrier.example.com>;tag={from_tag}"),
        ("To", "<sip:+15551234567@carrier.example.com>" + (f";tag={to_tag}" if to_tag else "")),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        *extra,
    ]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return make_response(status, reason, headers, body).to_bytes()


def invite_dialog(
    call_id: str,
    a: Addr,
    b: Addr,
    *,
    transport: str = "UDP",
    media: tuple[Addr, Addr] | None = None,
) -> list[tuple[Addr, Addr, bytes]]:
    """INVITE / 100 / 180 / 200 (SDP) / ACK / BYE / 200 between ``a`` and ``b``."""
    ma, mb = media or ((a[0], 40000), (b[0], 50000))
    br = f"z9hG4bK-{call_id}"
    common = {"call_id": call_id, "transport": transport}
    return [
        (a, b, request("INVITE", cseq=1, src=a, branch=br + "-1", body=sdp_body(*ma), **common)),
        (
            b,
            a,
            response(
                100,
                "Trying",
                cseq=1,
                method="INVITE",
                via=a,
                branch=br + "-1",
                to_tag=None,
                **common,
            ),
        ),
        (
            b,
            a,
            response(180, "Ringing", cseq=1, method="INVITE", via=a, branch=br + "-1", **common),
        ),
        (
            b,
            a,
            response(
                200,
                "OK",
                cseq=1,
                method="INVITE",
                via=a,
                branch=br + "-1",
                body=sdp_body(*mb),
                **common,
            ),
        ),
        (a, b, request("ACK", cseq=1, src=a, branch=br + "-2", to_tag="tt1", **common)),
        (a, b, request("BYE", cseq=2, src=a, branch=br + "-3", to_tag="tt1", **common)),
        (b, a, response(200, "OK", cseq=2, method="BYE", via=a, branch=br + "-3", **common)),
    ]


def register_dialog(
    call_id: str, a: Addr, b: Addr, *, transport: str = "UDP"
) -> list[tuple[Addr, Addr, bytes]]:
    """REGISTER / 401 / REGISTER (credentials) / 200."""
    br = f"z9hG4bK-{call_id}"
    uri = "sip:carrier.example.com"
    auth = (
        "Authorization",
        'Digest username="u", realm="r", nonce="n", uri="sip:x", '
        'response="00000000000000000000000000000000"',
    )
    challenge = ("WWW-Authenticate", 'Digest realm="r", nonce="n", algorithm=MD5')
    common = {"call_id": call_id, "transport": transport}
    return [
        (a, b, request("REGISTER", cseq=1, src=a, branch=br + "-1", uri=uri, **common)),
        (
            b,
            a,
            response(
                401,
                "Unauthorized",
                cseq=1,
                method="REGISTER",
                via=a,
                branch=br + "-1",
                extra=[challenge],
                **common,
            ),
        ),
        (
            a,
            b,
            request("REGISTER", cseq=2, src=a, branch=br + "-2", uri=uri, extra=[auth], **common),
        ),
        (b, a, response(200, "OK", cseq=2, method="REGISTER", via=a, branch=br + "-2", **common)),
    ]


def options_ping(
    call_id: str, a: Addr, b: Addr, *, transport: str = "UDP"
) -> list[tuple[Addr, Addr, bytes]]:
    br = f"z9hG4bK-{call_id}"
    common = {"call_id": call_id, "transport": transport}
    return [
        (
            a,
            b,
            request("OPTIONS", cseq=1, src=a, branch=br, uri="sip:carrier.example.com", **common),
        ),
        (b, a, response(200, "OK", cseq=1, method="OPTIONS", via=a, branch=br, **common)),
    ]


# --- frames and captures ---------------------------------------------------------------------


def _ip_packet(src: str, dst: str, proto: int, payload: bytes, ident: int = 0) -> bytes:
    if ":" in src:
        return ipv6_packet(src, dst, proto, payload)
    return ipv4_packet(src, dst, proto, payload, ident=ident)


def link_wrap(linktype: int, ip: bytes, *, vlans: tuple[tuple[int, int], ...] = ()) -> bytes:
    """Put an IP packet inside a frame of ``linktype``."""
    v6 = ip[0] >> 4 == 6
    etype = ETHERTYPE_IPV6 if v6 else ETHERTYPE_IPV4
    if linktype == LINKTYPE_ETHERNET:
        return ethernet_frame(ip, etype, vlans=vlans)
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack("!HHH8sH", 0, 772, 6, b"\x00" * 8, etype) + ip
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.pack("!HHIHBB8s", etype, 0, 1, 772, 0, 6, b"\x00" * 8) + ip
    if linktype == LINKTYPE_NULL:
        return struct.pack("<I", 30 if v6 else 2) + ip  # little-endian host
    if linktype == LINKTYPE_LOOP:
        return struct.pack("!I", 24 if v6 else 2) + ip
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return ip
    raise ValueError(f"no wrapper for link type {linktype}")


@dataclass
class CaptureBuilder:
    """Collect frames (link-layer bytes and timestamps), then write pcap or pcapng."""

    linktype: int = LINKTYPE_ETHERNET
    vlans: tuple[tuple[int, int], ...] = ()
    frames: list[tuple[float, bytes]] = field(default_factory=list)
    clock: float = 1_700_000_000.0
    step: float = 0.001
    _ident: int = 1

    def raw(self, frame: bytes) -> None:
        self.clock += self.step
        self.frames.append((self.clock, frame))

    def ip(self, packet: bytes) -> None:
        self.raw(link_wrap(self.linktype, packet, vlans=self.vlans))

    def udp(self, src: Addr, dst: Addr, payload: bytes) -> None:
        self._ident += 1
        self.ip(
            _ip_packet(
                src[0], dst[0], IPPROTO_UDP, udp_datagram(src[1], dst[1], payload), self._ident
            )
        )

    def tcp(
        self,
        src: Addr,
        dst: Addr,
        seq: int,
        payload: bytes = b"",
        *,
        flags: int = TCP_ACK | TCP_PSH,
    ) -> None:
        self._ident += 1
        seg = tcp_segment(src[1], dst[1], seq, payload, flags=flags)
        self.ip(_ip_packet(src[0], dst[0], IPPROTO_TCP, seg, self._ident))

    def pcap(self, *, nanosecond: bool = False, byteorder: str = "<") -> bytes:
        out = io.BytesIO()
        writer = PcapWriter(out, linktype=self.linktype, nanosecond=nanosecond, byteorder=byteorder)
        for ts, frame in self.frames:
            writer.write(frame, ts)
        return out.getvalue()

    def pcapng(self, *, byteorder: str = "<", tsresol: int = 6) -> bytes:
        out = io.BytesIO()
        writer = PcapngWriter(out, byteorder=byteorder)
        writer.add_interface(self.linktype, tsresol=tsresol)
        for ts, frame in self.frames:
            writer.write(frame, ts)
        return out.getvalue()

    def save(self, path: Path, *, fmt: str = "pcap") -> Path:
        path.write_bytes(self.pcap() if fmt == "pcap" else self.pcapng())
        return path


class TcpConnection:
    """Sequence-number bookkeeping for one TCP connection in a :class:`CaptureBuilder`."""

    def __init__(
        self,
        cap: CaptureBuilder,
        client: Addr,
        server: Addr,
        *,
        isn_client: int = 1000,
        isn_server: int = 5000,
    ) -> None:
        self.cap = cap
        self.client = client
        self.server = server
        self.seq = {client: isn_client, server: isn_server}

    def handshake(self) -> None:
        c, s = self.client, self.server
        self.cap.tcp(c, s, self.seq[c], flags=TCP_SYN)
        self.seq[c] += 1
        self.cap.tcp(s, c, self.seq[s], flags=TCP_SYN | TCP_ACK)
        self.seq[s] += 1
        self.cap.tcp(c, s, self.seq[c], flags=TCP_ACK)

    def send(self, src: Addr, data: bytes, *, pieces: int = 1) -> list[tuple[int, bytes]]:
        """Send ``data`` from ``src`` in ``pieces`` segments; return (seq, bytes) of each."""
        dst = self.server if src == self.client else self.client
        size = -(-len(data) // pieces)
        sent = []
        for start in range(0, len(data), size):
            chunk = data[start : start + size]
            self.cap.tcp(src, dst, self.seq[src], chunk)
            sent.append((self.seq[src], chunk))
            self.seq[src] += len(chunk)
        return sent

    def segments(self, src: Addr, data: bytes, pieces: int) -> list[tuple[int, bytes]]:
        """Split without writing: (seq, chunk) list; advances the sequence number."""
        size = -(-len(data) // pieces)
        out = []
        for start in range(0, len(data), size):
            out.append((self.seq[src], data[start : start + size]))
            self.seq[src] += len(data[start : start + size])
        return out

    def close(self) -> None:
        c, s = self.client, self.server
        self.cap.tcp(c, s, self.seq[c], flags=TCP_FIN | TCP_ACK)
        self.cap.tcp(s, c, self.seq[s], flags=TCP_FIN | TCP_ACK)


def ipv4_fragments(
    src: Addr, dst: Addr, payload: bytes, *, ident: int, size: int = 512
) -> list[bytes]:
    """An IPv4 UDP datagram cut into fragments (``size`` multiple of 8)."""
    udp = udp_datagram(src[1], dst[1], payload)
    out = []
    for offset in range(0, len(udp), size):
        more = offset + size < len(udp)
        flags = (0x2000 if more else 0) | (offset // 8)
        out.append(
            ipv4_packet(
                src[0],
                dst[0],
                IPPROTO_UDP,
                udp[offset : offset + size],
                ident=ident,
                flags_offset=flags,
            )
        )
    return out


def ipv6_fragments(
    src: Addr, dst: Addr, payload: bytes, *, ident: int, size: int = 512
) -> list[bytes]:
    """An IPv6 UDP datagram in fragment headers, after a hop-by-hop extension header."""
    udp = udp_datagram(src[1], dst[1], payload)
    out = []
    for offset in range(0, len(udp), size):
        more = offset + size < len(udp)
        frag = struct.pack("!BBHI", IPPROTO_UDP, 0, offset | int(more), ident)
        hop_by_hop = struct.pack("!BB6s", 44, 0, b"\x01\x04\x00\x00\x00\x00")
        out.append(ipv6_packet(src[0], dst[0], 0, hop_by_hop + frag + udp[offset : offset + size]))
    return out
