"""Decoding captured frames into SIP messages.

Layers: Ethernet (with 802.1Q / QinQ tags), Linux cooked v1 and v2, BSD null and
LOOP, raw IP; IPv4 (options, fragment reassembly) and IPv6 (extension headers,
fragment reassembly); UDP and TCP. SIP is recognised by content, never by port:

* UDP: a payload whose first line is a SIP start line is parsed with
  :func:`harness.sip.parser.parse_message`. Keep-alive CRLFs, RTP, STUN and anything
  else are not SIP; UDP packets to or from a media address announced in SDP are
  counted as :class:`RtpCandidate` flows.
* TCP: each direction is reassembled by sequence number (retransmissions delivered
  once, out-of-order segments held until the gap fills, a connection seen without its
  SYN joined at the first segment that begins with a SIP start line) and framed with
  :class:`harness.sip.parser.StreamParser`. A connection whose first payload is a TLS
  record (``0x16 0x03 ..``), or a non-SIP stream on port 5061, is counted as a
  :class:`TlsStream`, not decoded.

Nothing in a capture makes decoding raise (only an unreadable file does, with
:class:`~harness.capture.pcapfile.CaptureError`): malformed packets, unparseable SIP,
gaps and truncation become :class:`DecodeIssue` records that the checks report.

Entry points: :func:`decode_capture` (everything, messages ordered by time) and
:func:`iter_messages` (a stream of messages in capture order, for large files).
"""

from __future__ import annotations

import gc
import itertools
import os
import re
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Final, NamedTuple

from harness.capture.pcapfile import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    CaptureReader,
    Frame,
    InterfaceInfo,
    open_capture,
)
from harness.sip.errors import RemoteProtocolError
from harness.sip.message import Request, Response
from harness.sip.parser import NEED_DATA, StreamParser, parse_message

# --- the output model ----------------------------------------------------------------


class Endpoint(NamedTuple):
    """An ``(ip, port)`` pair; ``str()`` gives ``ip:port`` (``[v6]:port`` for IPv6)."""

    ip: str
    port: int

    def __str__(self) -> str:
        # Ladders, evidence and checks print the same few endpoints millions of times.
        text = _ENDPOINT_TEXT.get(self)
        if text is None:
            text = f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"
            if len(_ENDPOINT_TEXT) >= 65536:
                _ENDPOINT_TEXT.clear()
            _ENDPOINT_TEXT[self] = text
        return text


_ENDPOINT_TEXT: dict[Endpoint, str] = {}


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    """One SIP message found in the capture.

    ``index`` is the position in :attr:`Decoded.messages` (time order); ``frame`` is
    the 1-based frame number that carried the message, for TCP the frame whose
    segment completed it (several messages may share a frame). ``size`` is the
    message's length on the wire in bytes. Equality and hashing ignore ``message``
    (the parsed object is mutable): two records are equal when they describe the
    same place in the same capture.
    """

    index: int
    frame: int
    timestamp: float
    src: Endpoint
    dst: Endpoint
    transport: str  # "udp" | "tcp"
    message: Request | Response = field(compare=False)
    size: int

    @property
    def is_request(self) -> bool:
        return isinstance(self.message, Request)

    @property
    def call_id(self) -> str | None:
        return self.message.call_id


@dataclass(frozen=True, slots=True)
class DecodeIssue:
    """A problem found while decoding; the checks report it as a finding.

    ``kind`` is a stable short code (see :data:`ISSUE_KINDS`); ``reason`` is one
    human sentence; ``snippet`` shows the start of the offending bytes (text when
    printable, hex otherwise). ``frame``/``timestamp`` are None only for problems
    that concern the whole file.
    """

    kind: str
    frame: int | None
    timestamp: float | None
    src: Endpoint | None
    dst: Endpoint | None
    reason: str
    snippet: str = ""


#: Every ``DecodeIssue.kind`` this module produces.
ISSUE_KINDS: Final = frozenset(
    {
        "truncated-capture",  # the file ends inside a record
        "corrupt-capture",  # a record's length fields are impossible
        "unsupported-link",  # a link type this decoder does not read
        "malformed-packet",  # a link/IP/UDP/TCP header is truncated or inconsistent
        "unparseable-sip",  # looks like SIP, the parser rejected it
        "invalid-sip",  # parsed, but fails RFC 3261 validation (only with validate=True)
        "fragments-incomplete",  # IP fragments that never completed a datagram
        "tcp-gap",  # bytes missing from a TCP stream: messages around it are lost
        "tcp-midstream",  # a TCP stream joined without its start: bytes skipped
        "internal-error",  # the SIP parser failed unexpectedly (a harness bug)
    }
)


@dataclass(frozen=True, slots=True)
class TlsStream:
    """A TCP connection carrying TLS (opaque: counted, not decrypted).

    ``client`` is the side that sent the SYN (or, without one, the first sender);
    ``detected_by`` is ``"tls-record"`` or ``"port-5061"``.
    """

    client: Endpoint
    server: Endpoint
    first_frame: int
    first_time: float
    last_time: float
    segments: int
    bytes: int
    detected_by: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """An ICMP (or ICMPv6) destination-unreachable quoting a UDP datagram.

    ``src``/``dst`` are the endpoints of the datagram that could not be delivered
    (``dst`` is where it was going); ``reporter`` is the address that sent the ICMP
    message; ``reason`` names the ICMP code (``port unreachable``...). Evidence that
    a request went nowhere, long before a transaction timer would say so.
    """

    frame: int
    timestamp: float
    reporter: str
    src: Endpoint
    dst: Endpoint
    reason: str


_ICMP4_REASONS: Final = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited",
}
_ICMP6_REASONS: Final = {
    0: "no route to destination",
    1: "communication administratively prohibited",
    3: "address unreachable",
    4: "port unreachable",
}


@dataclass(frozen=True, slots=True)
class TlsPair:
    """TLS connections between one client address and one server endpoint."""

    client_ip: str
    server: Endpoint
    connections: int
    bytes: int


@dataclass(frozen=True, slots=True)
class SdpMedia:
    """One ``m=`` line of an SDP body with its effective connection address.

    ``port`` 0 means the stream is rejected or disabled (RFC 3264 §6).
    """

    media: str
    ip: str
    port: int
    proto: str
    formats: tuple[str, ...]

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.ip, self.port)


@dataclass(frozen=True, slots=True)
class RtpCandidate:
    """A UDP flow whose source or destination was announced as media in SDP.

    ``call_ids`` are the calls whose SDP announced one of its endpoints;
    ``rtp_packets`` counts packets with an RTP version-2 header; ``payload_types``
    and ``ssrcs`` are those seen in them (sorted).
    """

    src: Endpoint
    dst: Endpoint
    call_ids: tuple[str, ...]
    packets: int
    bytes: int
    rtp_packets: int
    first_frame: int
    first_time: float
    last_time: float
    payload_types: tuple[int, ...]
    ssrcs: tuple[int, ...]


@dataclass(frozen=True)
class Decoded:
    """Everything :func:`decode_capture` found in one capture.

    ``messages`` are ordered by timestamp (ties in capture order) and
    ``messages[i].index == i``. ``frames`` is the number of frames read;
    ``sip_frames`` those that carried at least one SIP message.
    """

    source: str
    format: str  # "pcap" | "pcapng"
    interfaces: tuple[InterfaceInfo, ...]
    frames: int
    sip_frames: int
    messages: tuple[CapturedMessage, ...]
    issues: tuple[DecodeIssue, ...]
    tls_streams: tuple[TlsStream, ...]
    rtp_candidates: tuple[RtpCandidate, ...]
    media: tuple[tuple[str, SdpMedia], ...]  # (Call-ID, announced media) in order seen
    unreachable: tuple[Unreachable, ...] = ()  # ICMP errors for UDP datagrams, in order

    @property
    def truncated(self) -> bool:
        return any(issue.kind == "truncated-capture" for issue in self.issues)

    @property
    def linktypes(self) -> tuple[str, ...]:
        """Distinct link-type names of the capture's interfaces, in order."""
        return tuple(dict.fromkeys(iface.linktype_name for iface in self.interfaces))

    def tls_pairs(self) -> tuple[TlsPair, ...]:
        """TLS connections and bytes summed per (client address, server endpoint)."""
        sums: dict[tuple[str, Endpoint], list[int]] = {}
        for stream in self.tls_streams:
            entry = sums.setdefault((stream.client.ip, stream.server), [0, 0])
            entry[0] += 1
            entry[1] += stream.bytes
        return tuple(TlsPair(ip, server, n, b) for (ip, server), (n, b) in sums.items())


# --- SIP recognition ----------------------------------------------------------------

_TOKEN: Final = rb"[A-Za-z0-9.!%*_+`'~-]+"
# A request line: method, a URI with a scheme, "SIP/2.0"; or a status line.
_REQUEST_START: Final = re.compile(rb"[A-Za-z][A-Za-z0-9.!%*_+`'~-]* (?:sips?|tel|urn):", re.I)
_REQUEST_LINE: Final = re.compile(_TOKEN + rb" \S+ SIP/2\.0\r?$")
_SIP_FIRST: Final = frozenset(range(ord("A"), ord("Z") + 1)) | frozenset(
    range(ord("a"), ord("z") + 1)
)
_SNIPPET_BYTES: Final = 96


def looks_like_sip(payload: bytes) -> bool:
    """True when ``payload`` begins with a SIP start line (request or status line).

    ``METHOD sip:``/``sips:``/``tel:``/``urn:``, a first line ending in ``SIP/2.0``,
    or ``SIP/2.0 `` at the very start. Decides by content only.
    """
    if not payload or payload[0] not in _SIP_FIRST:
        return False
    if payload.startswith(b"SIP/2.0 "):
        return True
    if _REQUEST_START.match(payload):
        return True
    eol = payload.find(b"\n", 0, 1024)
    return eol > 0 and _REQUEST_LINE.match(payload, 0, eol) is not None


def _is_keepalive(payload: bytes) -> bool:
    return not payload.strip(b"\r\n")


def snippet(data: bytes) -> str:
    """A short, printable view of ``data``: escaped text when mostly text, else hex."""
    head = data[:_SNIPPET_BYTES]
    printable = sum(1 for b in head if 32 <= b < 127 or b in (9, 10, 13))
    if head and printable >= 0.85 * len(head):
        text = head.decode("ascii", "backslashreplace").encode("unicode_escape").decode()
        return text + ("..." if len(data) > len(head) else "")
    return head[:48].hex(" ") + (" ..." if len(data) > 48 else "")


# --- SDP (just what media matching needs; the full model lives in harness.sip) --------


def sdp_media(body: bytes) -> tuple[SdpMedia, ...]:
    """The media lines of an SDP body with their connection addresses.

    Tolerant: lines it does not understand are ignored; a media line without any
    usable ``c=`` address is left out. Never raises.
    """
    session_ip: str | None = None
    found: list[SdpMedia] = []
    current: list[str] | None = None
    current_ip: str | None = None

    def close() -> None:
        if current is None:
            return
        ip = current_ip or session_ip
        if ip is None:
            return
        port_text = current[1].split("/", 1)[0]
        if not port_text.isdigit():
            return
        found.append(SdpMedia(current[0], ip, int(port_text), current[2], tuple(current[3:])))

    for raw in body.split(b"\n"):
        line = raw.strip().decode("utf-8", "replace")
        if line.startswith("c="):
            parts = line[2:].split()
            if len(parts) >= 3 and parts[0] == "IN":
                ip = parts[2].split("/", 1)[0]
                if current is None:
                    session_ip = ip
                else:
                    current_ip = ip
        elif line.startswith("m="):
            close()
            parts = line[2:].split()
            current = parts if len(parts) >= 3 else None
            current_ip = None
    close()
    return tuple(found)


def message_sdp(message: Request | Response) -> tuple[SdpMedia, ...] | None:
    """The SDP media of a message whose body is ``application/sdp``; None otherwise."""
    if not message.body:
        return None
    ctype = message.headers.get("Content-Type") or ""
    if "application/sdp" not in ctype.lower():
        return None
    # The decoder reads each body for media addresses, and the flows read it again
    # for offer/answer: memoised by the (immutable) body, bounded.
    body = message.body
    found = _SDP_OF_BODY.get(body)
    if found is None:
        found = sdp_media(body)
        if len(_SDP_OF_BODY) >= _SDP_MEMO_LIMIT:
            _SDP_OF_BODY.clear()
        _SDP_OF_BODY[body] = found
    return found


_SDP_MEMO_LIMIT: Final = 65536
_SDP_OF_BODY: dict[bytes, tuple[SdpMedia, ...]] = {}


# --- the decoder ----------------------------------------------------------------------

_PPPOE_SESSION: Final = 0x8864
#: PPP protocol numbers (RFC 1332, RFC 5072) -> the EtherType of the same payload.
_PPP_TO_ETHERTYPE: Final = {0x0021: 0x0800, 0x0057: 0x86DD}

_IPV4_CACHE: dict[bytes, str] = {}
_IPV6_CACHE: dict[bytes, str] = {}


def _ip4(raw: bytes) -> str:
    text = _IPV4_CACHE.get(raw)
    if text is None:
        if len(_IPV4_CACHE) > 65536:
            _IPV4_CACHE.clear()
        text = _IPV4_CACHE[raw] = socket.inet_ntop(socket.AF_INET, raw)
    return text


def _ip6(raw: bytes) -> str:
    text = _IPV6_CACHE.get(raw)
    if text is None:
        if len(_IPV6_CACHE) > 65536:
            _IPV6_CACHE.clear()
        text = _IPV6_CACHE[raw] = socket.inet_ntop(socket.AF_INET6, raw)
    return text


_U16: Final = struct.Struct("!H")
_U16X3: Final = struct.Struct("!HHH")
_TCP: Final = struct.Struct("!HHIIBB")
_V6_EXT: Final = frozenset({0, 43, 44, 51, 60, 135, 139, 140})
_VLAN_TPIDS: Final = frozenset({0x8100, 0x88A8, 0x9100})
_BSD_AF_INET6: Final = frozenset({24, 28, 30})

#: Out-of-order data held per TCP direction before declaring a gap (bytes).
TCP_HOLD_LIMIT: Final = 512 * 1024
#: Incomplete fragment sets kept at most this many at once (oldest dropped first).
FRAGMENT_SETS_LIMIT: Final = 4096
_MAX_DATAGRAM: Final = 65535 + 8


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


class _Fragments:
    """Pieces of one IP datagram: offset -> bytes, and the total once the last arrives."""

    __slots__ = ("first_frame", "pieces", "total")

    def __init__(self, first_frame: int) -> None:
        self.pieces: dict[int, bytes] = {}
        self.total: int | None = None
        self.first_frame = first_frame

    def add(self, offset: int, data: bytes, more: bool) -> bytes | None:
        """Record a piece; return the whole datagram once every byte is present."""
        self.pieces.setdefault(offset, data)
        if not more:
            self.total = offset + len(data)
        if self.total is None:
            return None
        out = bytearray()
        for start in sorted(self.pieces):
            piece = self.pieces[start]
            if start > len(out):
                return None
            if start + len(piece) > len(out):
                out += piece[len(out) - start :]
        if len(out) < self.total:
            return None
        return bytes(out[: self.total])


class _TcpDirection:
    """Reassembly state of one direction of one TCP connection."""

    __slots__ = (
        "dst",
        "held",
        "held_bytes",
        "mode",
        "next_seq",
        "parser",
        "skipped",
        "skipped_frame",
        "src",
    )

    def __init__(self, src: Endpoint, dst: Endpoint, next_seq: int | None) -> None:
        self.src = src
        self.dst = dst
        self.next_seq = next_seq  # None until the stream is joined (SYN or SIP start)
        self.held: dict[int, bytes] = {}
        self.held_bytes = 0
        # "new": nothing delivered yet; "sip": framing; "resync": lost framing, waiting
        # for a segment that starts with a SIP start line; "other": not SIP, ignored.
        self.mode = "new"
        self.parser: StreamParser | None = None
        self.skipped = 0
        self.skipped_frame = 0


class _TlsAccount:
    __slots__ = (
        "bytes",
        "client",
        "detected_by",
        "first_frame",
        "first_time",
        "last_time",
        "segments",
        "server",
    )

    def __init__(self, client: Endpoint, server: Endpoint, frame: int, ts: float, by: str) -> None:
        self.client = client
        self.server = server
        self.first_frame = frame
        self.first_time = ts
        self.last_time = ts
        self.segments = 0
        self.bytes = 0
        self.detected_by = by


class _RtpAccount:
    __slots__ = (
        "bytes",
        "call_ids",
        "first_frame",
        "first_time",
        "last_time",
        "packets",
        "pts",
        "rtp",
        "ssrcs",
    )

    def __init__(self, frame: int, ts: float) -> None:
        self.call_ids: set[str] = set()
        self.packets = 0
        self.bytes = 0
        self.rtp = 0
        self.first_frame = frame
        self.first_time = ts
        self.last_time = ts
        self.pts: set[int] = set()
        self.ssrcs: set[int] = set()


# A message found before indexes are final: (frame, ts, src, dst, transport, msg, size).
_Found = tuple[int, float, Endpoint, Endpoint, str, Request | Response, int]


class MessageStream:
    """Iterate the SIP messages of a capture in capture order, lazily.

    Yields :class:`CapturedMessage` with ``index`` counting from 0 in yield order.
    Once exhausted, :attr:`issues`, :meth:`tls_streams`, :meth:`rtp_candidates`,
    :attr:`media`, :attr:`frames` and :attr:`sip_frames` describe the whole capture.
    Memory stays bounded by the open TCP streams and fragment sets, not by the file.
    """

    def __init__(self, reader: CaptureReader, *, validate: bool = False) -> None:
        self.reader = reader
        self.validate = validate
        self.issues: list[DecodeIssue] = []
        self.media: list[tuple[str, SdpMedia]] = []
        self.unreachable: list[Unreachable] = []
        self.frames = 0
        self.sip_frames = 0
        self._found: list[_Found] = []
        self._frags: dict[tuple[object, ...], _Fragments] = {}
        self._tcp: dict[tuple[Endpoint, Endpoint], _TcpDirection] = {}
        self._tls: dict[frozenset[Endpoint], _TlsAccount] = {}
        self._tls_closed: list[_TlsAccount] = []
        self._not_tls: set[frozenset[Endpoint]] = set()
        self._media_index: dict[tuple[str, int], set[str]] = {}
        self._rtp: dict[tuple[Endpoint, Endpoint], _RtpAccount] = {}
        # One Endpoint object per address seen: each UDP message would otherwise
        # keep two endpoints and their IP strings of its own (tens of MB at 100k).
        self._endpoints: dict[Endpoint, Endpoint] = {}
        self._unsupported: dict[int, int] = {}
        self._frame = 0
        self._ts = 0.0
        self._done = False

    # --- public -----------------------------------------------------------------
    def __iter__(self) -> Iterator[CapturedMessage]:
        index = 0
        found = self._found
        for frame in self.reader:
            self.frames += 1
            self._decode_frame(frame)
            if found:
                self.sip_frames += 1
                for fnum, ts, src, dst, transport, msg, size in found:
                    yield CapturedMessage(index, fnum, ts, src, dst, transport, msg, size)
                    index += 1
                found.clear()
        self._finish()

    def tls_streams(self) -> tuple[TlsStream, ...]:
        return tuple(
            TlsStream(
                a.client,
                a.server,
                a.first_frame,
                a.first_time,
                a.last_time,
                a.segments,
                a.bytes,
                a.detected_by,
            )
            for a in sorted(
                [*self._tls_closed, *self._tls.values()], key=lambda acc: acc.first_frame
            )
        )

    def rtp_candidates(self) -> tuple[RtpCandidate, ...]:
        return tuple(
            RtpCandidate(
                src,
                dst,
                tuple(sorted(a.call_ids)),
                a.packets,
                a.bytes,
                a.rtp,
                a.first_frame,
                a.first_time,
                a.last_time,
                tuple(sorted(a.pts)),
                tuple(sorted(a.ssrcs)),
            )
            for (src, dst), a in sorted(self._rtp.items(), key=lambda kv: kv[1].first_frame)
        )

    # --- issues -----------------------------------------------------------------
    def _issue(
        self,
        kind: str,
        reason: str,
        data: bytes = b"",
        src: Endpoint | None = None,
        dst: Endpoint | None = None,
        *,
        frame: int | None = None,
    ) -> None:
        self.issues.append(
            DecodeIssue(
                kind,
                self._frame if frame is None else frame,
                self._ts,
                src,
                dst,
                reason,
                snippet(data) if data else "",
            )
        )

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        for problem in self.reader.problems:
            kind = "truncated-capture" if "truncated" in problem.reason else "corrupt-capture"
            self.issues.append(
                DecodeIssue(
                    kind,
                    problem.frame or None,
                    problem.timestamp,
                    None,
                    None,
                    f"{problem.reason} (byte offset {problem.offset})",
                )
            )
        for linktype, count in self._unsupported.items():
            self.issues.append(
                DecodeIssue(
                    "unsupported-link",
                    None,
                    None,
                    None,
                    None,
                    f"link type {linktype} is not supported; {count} frame(s) skipped",
                )
            )
        for frags in self._frags.values():
            self.issues.append(
                DecodeIssue(
                    "fragments-incomplete",
                    frags.first_frame,
                    None,
                    None,
                    None,
                    f"IP datagram never completed: {len(frags.pieces)} fragment(s) "
                    "without the rest",
                )
            )
        self._frags.clear()
        for direction in self._tcp.values():
            if direction.held:
                self._gap_issue(direction, "at the end of the capture")

    def _gap_issue(self, direction: _TcpDirection, when: str) -> None:
        self._issue(
            "tcp-gap",
            f"TCP stream has a gap {when}: {direction.held_bytes} byte(s) after missing data "
            "could not be framed; SIP messages around the gap are lost",
            src=direction.src,
            dst=direction.dst,
        )

    # --- link layer ---------------------------------------------------------------
    def _decode_frame(self, frame: Frame) -> None:
        number, ts, linktype, data, _orig, _iface = frame
        self._frame = number
        self._ts = ts
        n = len(data)
        if linktype == LINKTYPE_ETHERNET:
            if n < 14:
                self._issue("malformed-packet", "Ethernet header truncated", data)
                return
            etype = (data[12] << 8) | data[13]
            off = 14
        elif linktype == LINKTYPE_LINUX_SLL:
            if n < 16:
                self._issue("malformed-packet", "Linux cooked header truncated", data)
                return
            etype = (data[14] << 8) | data[15]
            off = 16
        elif linktype == LINKTYPE_LINUX_SLL2:
            if n < 20:
                self._issue("malformed-packet", "Linux cooked v2 header truncated", data)
                return
            etype = (data[0] << 8) | data[1]
            off = 20
        elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
            if not n:
                return
            version = data[0] >> 4
            etype = 0x0800 if version == 4 else 0x86DD if version == 6 else 0
            off = 0
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            if n < 4:
                self._issue("malformed-packet", "loopback header truncated", data)
                return
            if linktype == LINKTYPE_LOOP:
                family = int.from_bytes(data[:4], "big")
            else:
                # DLT_NULL stores the family in the capturing host's byte order.
                family = int.from_bytes(data[:4], "little")
                if family > 0xFFFF:
                    family = int.from_bytes(data[:4], "big")
            etype = 0x0800 if family == 2 else 0x86DD if family in _BSD_AF_INET6 else 0
            off = 4
        else:
            self._unsupported[linktype] = self._unsupported.get(linktype, 0) + 1
            return
        while etype in _VLAN_TPIDS:
            if n < off + 4:
                self._issue("malformed-packet", "VLAN tag truncated", data)
                return
            etype = (data[off + 2] << 8) | data[off + 3]
            off += 4
        if etype == _PPPOE_SESSION:
            # RFC 2516 §4 session header (6 bytes), then the PPP protocol (RFC 1661).
            if n < off + 8:
                self._issue("malformed-packet", "PPPoE header truncated", data)
                return
            protocol = (data[off + 6] << 8) | data[off + 7]
            etype = _PPP_TO_ETHERTYPE.get(protocol, 0)
            off += 8
        if etype == 0x0800:
            self._ipv4(data, off)
        elif etype == 0x86DD:
            self._ipv6(data, off)

    # --- IP ---------------------------------------------------------------------------
    def _ipv4(self, data: bytes, off: int) -> None:
        n = len(data)
        if n < off + 20:
            self._issue("malformed-packet", "IPv4 header truncated", data[off:])
            return
        vihl = data[off]
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20 or n < off + ihl:
            self._issue(
                "malformed-packet", "bad IPv4 header (version or header length)", data[off:]
            )
            return
        total, ident, flags = _U16X3.unpack_from(data, off + 2)
        if total == 0:
            # Segmentation offload: the sending host captured before the NIC set it.
            total = n - off
        if total < ihl:
            self._issue(
                "malformed-packet", f"IPv4 total length {total} below header length", data[off:]
            )
            return
        end = off + total
        if end > n:
            self._issue(
                "malformed-packet",
                f"IPv4 packet truncated: {n - off} of {total} bytes captured",
                data[off:],
            )
            return
        proto = data[off + 9]
        if proto not in (17, 6):
            if proto == 1 and not flags & 0x3FFF:
                self._icmp(data, off + ihl, end, _ip4(data[off + 12 : off + 16]), v6=False)
            return
        src_ip = _ip4(data[off + 12 : off + 16])
        dst_ip = _ip4(data[off + 16 : off + 20])
        frag = flags & 0x3FFF
        if frag:
            more = bool(flags & 0x2000)
            key = (4, src_ip, dst_ip, ident, proto)
            whole = self._reassemble(key, (flags & 0x1FFF) * 8, data[off + ihl : end], more)
            if whole is not None:
                self._l4(proto, whole, 0, len(whole), (src_ip, dst_ip))
            return
        self._l4(proto, data, off + ihl, end, (src_ip, dst_ip))

    def _ipv6(self, data: bytes, off: int) -> None:
        n = len(data)
        if n < off + 40:
            self._issue("malformed-packet", "IPv6 header truncated", data[off:])
            return
        if data[off] >> 4 != 6:
            self._issue("malformed-packet", "bad IPv6 version", data[off:])
            return
        plen = _U16.unpack_from(data, off + 4)[0]
        end = off + 40 + plen if plen else n  # 0: jumbogram or offloaded: use what is there
        if end > n:
            self._issue(
                "malformed-packet",
                f"IPv6 packet truncated: {n - off - 40} of {plen} payload bytes captured",
                data[off:],
            )
            return
        src_ip = _ip6(data[off + 8 : off + 24])
        dst_ip = _ip6(data[off + 24 : off + 40])
        self._ipv6_payload(data[off + 6], data, off + 40, end, (src_ip, dst_ip))

    def _ipv6_payload(self, nh: int, data: bytes, pos: int, end: int, ips: tuple[str, str]) -> None:
        while nh in _V6_EXT:
            if pos + 8 > end:
                self._issue("malformed-packet", "IPv6 extension header truncated", data[pos:end])
                return
            if nh == 44:
                offflags = _U16.unpack_from(data, pos + 2)[0]
                ident = struct.unpack_from("!I", data, pos + 4)[0]
                inner = data[pos]
                key = (6, *ips, ident)
                whole = self._reassemble(
                    key, offflags & 0xFFF8, data[pos + 8 : end], bool(offflags & 1)
                )
                if whole is not None:
                    self._ipv6_payload(inner, whole, 0, len(whole), ips)
                return
            length = (data[pos + 1] + 2) * 4 if nh == 51 else (data[pos + 1] + 1) * 8
            nh = data[pos]
            pos += length
        if nh in (17, 6):
            if pos > end:
                self._issue(
                    "malformed-packet", "IPv6 extension headers overrun the packet", data[:end]
                )
                return
            self._l4(nh, data, pos, end, ips)
        elif nh == 58:
            self._icmp(data, pos, end, ips[0], v6=True)

    def _icmp(self, data: bytes, pos: int, end: int, reporter: str, *, v6: bool) -> None:
        """Record a destination-unreachable that quotes a UDP datagram; ignore the rest."""
        if end - pos < 8 or data[pos] != (1 if v6 else 3):
            return
        code = data[pos + 1]
        quoted = pos + 8
        if v6:
            if end - quoted < 48 or data[quoted] >> 4 != 6 or data[quoted + 6] != 17:
                return
            src_ip = _ip6(data[quoted + 8 : quoted + 24])
            dst_ip = _ip6(data[quoted + 24 : quoted + 40])
            udp = quoted + 40
            reason = _ICMP6_REASONS.get(code, f"unreachable (ICMPv6 code {code})")
        else:
            if end - quoted < 20 or data[quoted] >> 4 != 4:
                return
            ihl = (data[quoted] & 0x0F) * 4
            if ihl < 20 or data[quoted + 9] != 17 or end - quoted < ihl + 4:
                return
            src_ip = _ip4(data[quoted + 12 : quoted + 16])
            dst_ip = _ip4(data[quoted + 16 : quoted + 20])
            udp = quoted + ihl
            reason = _ICMP4_REASONS.get(code, f"unreachable (ICMP code {code})")
        if end - udp < 4:
            return
        sport, dport = struct.unpack_from("!HH", data, udp)
        self.unreachable.append(
            Unreachable(
                self._frame,
                self._ts,
                reporter,
                Endpoint(src_ip, sport),
                Endpoint(dst_ip, dport),
                reason,
            )
        )

    def _reassemble(
        self, key: tuple[object, ...], offset: int, piece: bytes, more: bool
    ) -> bytes | None:
        frags = self._frags.get(key)
        if frags is None:
            if offset == 0 and not more:  # an atomic "fragment" (IPv6 does this)
                return piece
            if len(self._frags) >= FRAGMENT_SETS_LIMIT:
                oldest_key = next(iter(self._frags))
                oldest = self._frags.pop(oldest_key)
                self._issue(
                    "fragments-incomplete",
                    "IP datagram never completed (fragment table full)",
                    frame=oldest.first_frame,
                )
            frags = self._frags[key] = _Fragments(self._frame)
        if offset + len(piece) > _MAX_DATAGRAM:
            del self._frags[key]
            self._issue("malformed-packet", "IP fragments exceed the maximum datagram size")
            return None
        whole = frags.add(offset, piece, more)
        if whole is not None:
            del self._frags[key]
        return whole

    # --- transport ----------------------------------------------------------------------
    def _l4(self, proto: int, data: bytes, pos: int, end: int, ips: tuple[str, str]) -> None:
        src_ip, dst_ip = ips
        if proto == 17:
            if end - pos < 8:
                self._issue(
                    "malformed-packet",
                    "UDP header truncated",
                    data[pos:end],
                    Endpoint(src_ip, 0),
                    Endpoint(dst_ip, 0),
                )
                return
            sport, dport, ulen = _U16X3.unpack_from(data, pos)
            if ulen == 0:  # offloaded or jumbo: the IP length rules
                ulen = end - pos
            if ulen < 8 or pos + ulen > end:
                self._issue(
                    "malformed-packet",
                    f"UDP length {ulen} inconsistent with {end - pos} bytes in the packet",
                    data[pos + 8 : end],
                    Endpoint(src_ip, sport),
                    Endpoint(dst_ip, dport),
                )
                return
            self._udp(data[pos + 8 : pos + ulen], src_ip, sport, dst_ip, dport)
        else:
            if end - pos < 20:
                self._issue(
                    "malformed-packet",
                    "TCP header truncated",
                    data[pos:end],
                    Endpoint(src_ip, 0),
                    Endpoint(dst_ip, 0),
                )
                return
            sport, dport, seq, _ack, doff, flags = _TCP.unpack_from(data, pos)
            hlen = (doff >> 4) * 4
            if hlen < 20 or pos + hlen > end:
                self._issue(
                    "malformed-packet",
                    f"bad TCP header length {hlen}",
                    data[pos:end],
                    Endpoint(src_ip, sport),
                    Endpoint(dst_ip, dport),
                )
                return
            self._tcp_segment(
                Endpoint(src_ip, sport), Endpoint(dst_ip, dport), seq, flags, data[pos + hlen : end]
            )

    def _udp(self, payload: bytes, src_ip: str, sport: int, dst_ip: str, dport: int) -> None:
        if not payload:
            return
        if payload[0] in _SIP_FIRST and looks_like_sip(payload):
            endpoints = self._endpoints
            src = Endpoint(src_ip, sport)
            src = endpoints.setdefault(src, src)
            dst = Endpoint(dst_ip, dport)
            dst = endpoints.setdefault(dst, dst)
            message = self._parse(payload, src, dst)
            if message is not None:
                self._found.append((self._frame, self._ts, src, dst, "udp", message, len(payload)))
                self._note_media(message)
            return
        if not self._media_index:
            return
        # Not SIP: count it when an SDP announced either end as a media address.
        calls_src = self._media_index.get((src_ip, sport))
        calls_dst = self._media_index.get((dst_ip, dport))
        if calls_src is None and calls_dst is None:
            return
        src = Endpoint(src_ip, sport)
        dst = Endpoint(dst_ip, dport)
        account = self._rtp.get((src, dst))
        if account is None:
            account = self._rtp[(src, dst)] = _RtpAccount(self._frame, self._ts)
        account.packets += 1
        account.bytes += len(payload)
        account.last_time = self._ts
        if calls_src:
            account.call_ids |= calls_src
        if calls_dst:
            account.call_ids |= calls_dst
        if len(payload) >= 12 and payload[0] >> 6 == 2:
            account.rtp += 1
            if len(account.pts) < 16:
                account.pts.add(payload[1] & 0x7F)
            if len(account.ssrcs) < 16:
                account.ssrcs.add(int.from_bytes(payload[8:12], "big"))

    def _check_valid(
        self, message: Request | Response, data: bytes, src: Endpoint, dst: Endpoint
    ) -> None:
        """With ``validate``: record RFC 3261 violations of a message framed leniently."""
        try:
            parse_message(message.to_bytes(), validate=True)
        except RemoteProtocolError as err:
            self._issue("invalid-sip", f"SIP message is not valid: {err}", data, src, dst)

    def _parse(self, payload: bytes, src: Endpoint, dst: Endpoint) -> Request | Response | None:
        try:
            message = parse_message(payload, validate=False)
            if self.validate:
                try:
                    parse_message(payload, validate=True)
                except RemoteProtocolError as err:
                    self._issue(
                        "invalid-sip", f"SIP message is not valid: {err}", payload, src, dst
                    )
            return message
        except RemoteProtocolError as err:
            if _is_keepalive(payload):
                return None
            self._issue(
                "unparseable-sip", f"SIP over UDP could not be parsed: {err}", payload, src, dst
            )
        except Exception as err:  # recorded as a finding, see below
            # A parser bug must not turn one odd packet into a crashed analysis of a
            # customer's capture; it is recorded (and tests assert none occur).
            self._issue(
                "internal-error",
                f"SIP parser failed: {type(err).__name__}: {err}",
                payload,
                src,
                dst,
            )
        return None

    def _note_media(self, message: Request | Response) -> None:
        if not message.body:
            return
        media = message_sdp(message)
        if not media:
            return
        call_id = message.call_id or ""
        for item in media:
            self.media.append((call_id, item))
            if item.port:
                self._media_index.setdefault((item.ip, item.port), set()).add(call_id)

    # --- TCP ------------------------------------------------------------------------------
    def _tcp_segment(
        self, src: Endpoint, dst: Endpoint, seq: int, flags: int, payload: bytes
    ) -> None:
        key = (src, dst)
        direction = self._tcp.get(key)
        if flags & 0x02:  # SYN: a new connection (or a reuse of the 4-tuple)
            direction = self._tcp[key] = _TcpDirection(src, dst, (seq + 1) & 0xFFFFFFFF)
            conn_key = frozenset((src, dst))
            if not flags & 0x10:
                # A fresh SYN: whatever this 4-tuple carried before is a closed connection.
                old = self._tls.pop(conn_key, None)
                if old is not None:
                    self._tls_closed.append(old)
                self._not_tls.discard(conn_key)
            seq = (seq + 1) & 0xFFFFFFFF
        else:
            conn_key = frozenset((src, dst))
        tls = self._tls.get(conn_key)
        if tls is not None:
            tls.segments += 1 if payload else 0
            tls.bytes += len(payload)
            tls.last_time = self._ts
            if flags & 0x05:
                self._tcp.pop(key, None)
            return
        if payload:
            if direction is None:
                direction = self._tcp[key] = _TcpDirection(src, dst, None)
            self._tcp_payload(direction, conn_key, seq, payload)
            if conn_key in self._tls:
                return
        if flags & 0x05 and direction is not None and not direction.held:  # FIN or RST
            del self._tcp[key]

    def _classify(
        self, direction: _TcpDirection, conn_key: frozenset[Endpoint], payload: bytes
    ) -> bool:
        """Decide what a new stream carries; True when it is TLS (and now counted)."""
        if conn_key in self._not_tls:
            return False
        # A TLS record header: content type 20-23 (handshake 22 opens a connection;
        # the others show up when the capture joins mid-connection), version 3.x.
        tls_record = (
            len(payload) >= 3 and 20 <= payload[0] <= 23 and payload[1] == 3 and payload[2] <= 4
        )
        on_5061 = 5061 in (direction.src.port, direction.dst.port)
        if tls_record or (on_5061 and not looks_like_sip(payload.lstrip(b"\r\n"))):
            # The side that sent toward 5061, or the first talker, is called the client.
            client, server = direction.src, direction.dst
            if direction.src.port == 5061 and direction.dst.port != 5061:
                client, server = server, client
            account = _TlsAccount(
                client, server, self._frame, self._ts, "tls-record" if tls_record else "port-5061"
            )
            account.segments = 1
            account.bytes = len(payload)
            self._tls[conn_key] = account
            for key in ((direction.src, direction.dst), (direction.dst, direction.src)):
                self._tcp.pop(key, None)
            return True
        self._not_tls.add(conn_key)
        return False

    def _tcp_payload(
        self, direction: _TcpDirection, conn_key: frozenset[Endpoint], seq: int, payload: bytes
    ) -> None:
        if direction.next_seq is None:
            # Joined without a SYN: wait for a segment that starts a SIP message.
            if self._classify(direction, conn_key, payload):
                return
            if looks_like_sip(payload):
                direction.next_seq = seq
                direction.mode = "sip"
            else:
                if not direction.skipped:
                    direction.skipped_frame = self._frame
                direction.skipped += len(payload)
                return
        rel = _signed32(seq - direction.next_seq)
        if rel > 0:
            # Ahead of what we have: hold it until the gap fills.
            if seq not in direction.held or len(direction.held[seq]) < len(payload):
                direction.held_bytes += len(payload) - len(direction.held.get(seq, b""))
                direction.held[seq] = payload
            if direction.held_bytes > TCP_HOLD_LIMIT:
                self._declare_gap(direction)
            return
        if rel + len(payload) <= 0:
            return  # a retransmission of bytes already delivered
        self._deliver(direction, conn_key, payload[-rel:] if rel else payload)
        if direction.held:
            self._drain(direction, conn_key)

    def _drain(self, direction: _TcpDirection, conn_key: frozenset[Endpoint]) -> None:
        progressed = True
        while progressed and direction.held and direction.next_seq is not None:
            progressed = False
            base = direction.next_seq
            for seq in sorted(direction.held, key=lambda s: _signed32(s - base)):
                rel = _signed32(seq - base)
                if rel > 0:
                    break
                piece = direction.held.pop(seq)
                direction.held_bytes -= len(piece)
                if rel + len(piece) > 0:
                    self._deliver(direction, conn_key, piece[-rel:] if rel else piece)
                    progressed = True
                    break

    def _declare_gap(self, direction: _TcpDirection) -> None:
        """Give up on missing bytes: resume at the first held segment that starts SIP."""
        self._gap_issue(direction, f"before frame {self._frame}")
        held = sorted(
            direction.held.items(), key=lambda kv: _signed32(kv[0] - (direction.next_seq or 0))
        )
        direction.held.clear()
        direction.held_bytes = 0
        direction.parser = None
        direction.mode = "resync"
        direction.next_seq = None
        for seq, piece in held:
            if direction.next_seq is None:
                if not looks_like_sip(piece):
                    continue
                direction.next_seq = seq
            rel = _signed32(seq - direction.next_seq)
            if rel > 0:
                direction.held[seq] = piece
                direction.held_bytes += len(piece)
            elif rel + len(piece) > 0:
                self._deliver(
                    direction,
                    frozenset((direction.src, direction.dst)),
                    piece[-rel:] if rel else piece,
                )

    def _deliver(
        self, direction: _TcpDirection, conn_key: frozenset[Endpoint], data: bytes
    ) -> None:
        """In-order bytes of a stream: classify, then frame SIP messages."""
        assert direction.next_seq is not None
        direction.next_seq = (direction.next_seq + len(data)) & 0xFFFFFFFF
        if direction.mode == "other":
            return
        if direction.mode in ("new", "resync"):
            stripped = data.lstrip(b"\r\n")
            if not stripped:
                return  # keep-alive before anything else
            if direction.mode == "new" and self._classify(direction, conn_key, stripped):
                return
            if not looks_like_sip(stripped):
                if direction.mode == "new":
                    direction.mode = "other"
                return
            data = stripped
            direction.mode = "sip"
        if direction.skipped:
            self._issue(
                "tcp-midstream",
                f"TCP stream joined mid-way: {direction.skipped} byte(s) before the "
                "first SIP start line were skipped",
                src=direction.src,
                dst=direction.dst,
                frame=direction.skipped_frame,
            )
            direction.skipped = 0
        parser = direction.parser
        if parser is None:
            parser = direction.parser = StreamParser(validate=False)
        try:
            parser.feed(data)
            while True:
                before = parser.buffered
                message = parser.next_message()
                if message is NEED_DATA:
                    break
                assert isinstance(message, (Request, Response))
                size = before - parser.buffered  # keep-alive CRLFs before it included
                if self.validate:
                    self._check_valid(message, data, direction.src, direction.dst)
                self._found.append(
                    (self._frame, self._ts, direction.src, direction.dst, "tcp", message, size)
                )
                self._note_media(message)
        except RemoteProtocolError as err:
            self._issue(
                "unparseable-sip",
                f"SIP over TCP could not be framed or parsed: {err}; skipping to the "
                "next segment that starts a message",
                data,
                direction.src,
                direction.dst,
            )
            direction.parser = None
            direction.mode = "resync"
        except Exception as err:  # recorded as a finding (see _parse)
            self._issue(
                "internal-error",
                f"SIP stream parser failed: {type(err).__name__}: {err}",
                data,
                direction.src,
                direction.dst,
            )
            direction.parser = None
            direction.mode = "resync"


@contextmanager
def _fewer_full_collections() -> Iterator[None]:
    """Raise the garbage collector's oldest-generation threshold while decoding.

    Decoded messages are many small objects without reference cycles; the default
    thresholds rescan all of them in repeated full collections, which measured as
    half of the decoding time for 100,000 messages. The previous thresholds are
    restored on exit.
    """
    previous = gc.get_threshold()
    gc.set_threshold(previous[0], previous[1], max(previous[2], 1000))
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def iter_messages(
    source: str | os.PathLike[str] | BinaryIO, *, validate: bool = False
) -> MessageStream:
    """Open ``source`` and return a lazy :class:`MessageStream` over its SIP messages.

    Raises :class:`~harness.capture.pcapfile.CaptureError` when it is not a capture.
    The file stays open until the stream is exhausted or ``stream.reader.close()``.
    """
    return MessageStream(open_capture(source), validate=validate)


def decode_capture(source: str | os.PathLike[str] | BinaryIO, *, validate: bool = False) -> Decoded:
    """Decode a whole capture; see :class:`Decoded` for what a caller may rely on.

    Messages are framed and parsed leniently (the parser's ``validate=False``: start
    line, header syntax and Content-Length only), so that a peer's invalid message is
    still evidence. ``validate=True`` additionally runs the parser's RFC 3261 checks
    and reports failures as ``invalid-sip`` issues (about 4x slower).

    Raises :class:`~harness.capture.pcapfile.CaptureError` when the file is not a
    capture; anything wrong inside it is reported in ``Decoded.issues`` instead.
    """
    reader = open_capture(source)
    with reader, _fewer_full_collections():
        stream = MessageStream(reader, validate=validate)
        messages = list(stream)
        if any(b.timestamp < a.timestamp for a, b in itertools.pairwise(messages)):
            ordered = sorted(messages, key=lambda m: m.timestamp)  # stable: ties keep order
            messages = [
                CapturedMessage(
                    i, m.frame, m.timestamp, m.src, m.dst, m.transport, m.message, m.size
                )
                for i, m in enumerate(ordered)
            ]
        # Built inside the block: these allocations would trigger the full collections.
        return Decoded(
            source=reader.name,
            format=reader.format,
            interfaces=tuple(reader.interfaces),
            frames=stream.frames,
            sip_frames=stream.sip_frames,
            messages=tuple(messages),
            issues=tuple(stream.issues),
            tls_streams=stream.tls_streams(),
            rtp_candidates=stream.rtp_candidates(),
            media=tuple(stream.media),
            unreachable=tuple(stream.unreachable),
        )
