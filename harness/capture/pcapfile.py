"""Capture files: reading pcap and pcapng lazily, writing them, synthesising frames.

Reading
    :func:`open_capture` returns a :class:`CaptureReader`; iterating it yields one
    :class:`Frame` per captured packet, in file order, without holding earlier frames.

    * pcap: both byte orders, microsecond (``a1b2c3d4``) and nanosecond (``a1b23c4d``)
      magic; gzip-compressed files are read transparently.
    * pcapng: every section (SHB, byte order per section), interface descriptions
      (IDB) with their own link type, ``if_tsresol`` and ``if_tsoffset``; enhanced
      (EPB), simple (SPB) and obsolete (OPB) packet blocks. Other blocks are skipped.

    A file that is not a capture raises :class:`CaptureError` (one line, naming the
    file) when opened. A file that ends in the middle of a record never raises: the
    iteration stops and a :class:`ReadProblem` is appended to
    :attr:`CaptureReader.problems`; the decoder turns it into a finding.

Writing
    :class:`PcapWriter` and :class:`PcapngWriter` write what the reader reads; the
    ``*_packet``/``*_frame`` helpers build Ethernet, IPv4, IPv6, UDP and TCP bytes, so
    tests, benchmarks and the harness's own traffic logs can produce captures without
    privileges or scapy.

Frame numbers start at 1 and count every packet block, as Wireshark numbers them.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from harness.errors import InputError

# --- link types (https://www.tcpdump.org/linktypes.html) ----------------------------
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276

LINKTYPE_NAMES: Final[dict[int, str]] = {
    LINKTYPE_NULL: "null/loopback",
    LINKTYPE_ETHERNET: "ethernet",
    LINKTYPE_RAW: "raw-ip",
    LINKTYPE_LOOP: "loop",
    LINKTYPE_LINUX_SLL: "linux-sll",
    LINKTYPE_IPV4: "raw-ipv4",
    LINKTYPE_IPV6: "raw-ipv6",
    LINKTYPE_LINUX_SLL2: "linux-sll2",
}

_PCAP_MAGIC_US: Final = 0xA1B2C3D4
_PCAP_MAGIC_NS: Final = 0xA1B23C4D
_PCAPNG_SHB: Final = 0x0A0D0D0A
_PCAPNG_BOM: Final = 0x1A2B3C4D
_BLOCK_IDB: Final = 0x00000001
_BLOCK_OPB: Final = 0x00000002
_BLOCK_SPB: Final = 0x00000003
_BLOCK_EPB: Final = 0x00000006
_OPT_IF_TSRESOL: Final = 9
_OPT_IF_TSOFFSET: Final = 14

#: A record claiming more than this is corrupt, not large (Wireshark's ceiling is
#: 256 KiB for most link types; a generous bound keeps jumbo test frames readable).
MAX_RECORD_BYTES: Final = 16 * 1024 * 1024
_CHUNK: Final = 1 << 20


class CaptureError(InputError):
    """The file cannot be read as a capture at all; ``str()`` is one line naming it."""


class Frame(NamedTuple):
    """One captured packet as stored in the file (link-layer bytes, not decoded).

    ``timestamp`` is seconds since the epoch (float); ``data`` may be shorter than
    ``orig_len`` when the capture used a snap length.
    """

    number: int
    timestamp: float
    linktype: int
    data: bytes
    orig_len: int
    interface: int


@dataclass(frozen=True)
class ReadProblem:
    """Something wrong with the file's structure (truncation, corrupt record).

    ``frame`` is the number the unreadable packet would have had; ``offset`` is the
    byte offset in the (decompressed) file where reading stopped.
    """

    frame: int
    timestamp: float | None
    offset: int
    reason: str


@dataclass(frozen=True)
class InterfaceInfo:
    """An interface of the capture: its link type and timestamp resolution."""

    index: int
    linktype: int
    ticks_per_second: int
    name: str | None = None

    @property
    def linktype_name(self) -> str:
        return LINKTYPE_NAMES.get(self.linktype, f"linktype-{self.linktype}")


class CaptureReader:
    """Iterate a capture's frames lazily; see the module docstring for formats.

    Iterate once. ``interfaces`` grows as pcapng interface blocks are read (a pcap
    file has exactly one); ``problems`` lists structural trouble found while reading.
    """

    def __init__(self, stream: BinaryIO, name: str, *, owns_stream: bool = False) -> None:
        self.name = name
        self.problems: list[ReadProblem] = []
        self.interfaces: list[InterfaceInfo] = []
        self._stream = stream
        self._owns = owns_stream
        head = stream.read(4)
        if head[:2] == b"\x1f\x8b":
            # gzip: re-open the remaining stream through a decompressor.
            self._stream = gzip.GzipFile(  # type: ignore[assignment]
                fileobj=_Prefixed(head, stream), mode="rb"
            )
            head = _safe_gzip_read(self._stream, 4, name)
        if len(head) < 4:
            self.close()
            what = "an empty file" if not head else "too short to be a capture"
            raise CaptureError(f"{name}: not a pcap or pcapng capture ({what})")
        self._head = head
        magic_le = struct.unpack("<I", head)[0]
        magic_be = struct.unpack(">I", head)[0]
        if magic_le == _PCAPNG_SHB:
            self.format = "pcapng"
        elif _PCAP_MAGIC_US in (magic_le, magic_be) or _PCAP_MAGIC_NS in (magic_le, magic_be):
            self.format = "pcap"
        else:
            self.close()
            raise CaptureError(f"{name}: not a pcap or pcapng capture (starts with {head.hex()})")
        self._iterated = False

    # --- lifecycle --------------------------------------------------------------
    def close(self) -> None:
        """Close the underlying stream if this reader opened it."""
        if self._owns:
            self._stream.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- iteration --------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise RuntimeError("a CaptureReader can be iterated only once")
        self._iterated = True
        buf = _Buffer(self._stream, self._head, self.name)
        try:
            if self.format == "pcap":
                yield from self._iter_pcap(buf)
            else:
                yield from self._iter_pcapng(buf)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            # A damaged compressed stream or an I/O error mid-file: keep what was read.
            self.problems.append(
                ReadProblem(0, None, buf.offset, f"read error: {err}".rstrip(": "))
            )

    def _problem(self, frame: int, ts: float | None, offset: int, reason: str) -> None:
        self.problems.append(ReadProblem(frame, ts, offset, reason))

    def _iter_pcap(self, buf: _Buffer) -> Iterator[Frame]:
        header = buf.take(24)
        if header is None:
            self._problem(1, None, 0, "capture truncated inside the pcap file header")
            return
        magic_le = struct.unpack_from("<I", header)[0]
        order = "<" if magic_le in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS) else ">"
        magic = struct.unpack_from(order + "I", header)[0]
        ticks = 1_000_000_000 if magic == _PCAP_MAGIC_NS else 1_000_000
        _, _, _, _, _snaplen, linkfield = struct.unpack_from(order + "HHiIII", header, 4)
        # The upper bits of the link-type field carry FCS information (pcap spec).
        linktype = linkfield & 0x0FFFFFFF
        self.interfaces.append(InterfaceInfo(0, linktype, ticks))
        record = struct.Struct(order + "IIII")
        number = 0
        take = buf.take
        while True:
            rec = take(16)
            if rec is None:
                if buf.leftover:
                    self._problem(
                        number + 1, None, buf.offset, "capture truncated inside a record header"
                    )
                return
            sec, frac, caplen, orig_len = record.unpack(rec)
            number += 1
            ts = sec + frac / ticks
            if caplen > MAX_RECORD_BYTES:
                self._problem(
                    number,
                    ts,
                    buf.offset - 16,
                    f"corrupt record: captured length {caplen} bytes; reading stopped",
                )
                return
            data = take(caplen)
            if data is None:
                self._problem(
                    number,
                    ts,
                    buf.offset,
                    f"capture truncated: frame {number} has {buf.leftover} of {caplen} bytes",
                )
                return
            yield Frame(number, ts, linktype, data, orig_len, 0)

    def _iter_pcapng(self, buf: _Buffer) -> Iterator[Frame]:
        order = "<"
        u32 = struct.Struct("<I")
        number = 0
        last_ts = 0.0
        # Per-section interface table: (linktype, ticks per second, offset seconds).
        section: list[tuple[int, int, int]] = []
        epb = struct.Struct("<IIIII")
        opb = struct.Struct("<HHIIII")
        while True:
            start = buf.offset
            head = buf.take(8)
            if head is None:
                if buf.leftover:
                    self._problem(
                        number + 1, None, start, "capture truncated inside a block header"
                    )
                return
            btype = u32.unpack_from(head)[0]
            if btype == _PCAPNG_SHB:
                # Byte order is decided by the section header's own byte-order magic.
                bom = buf.take(4)
                if bom is None:
                    self._problem(
                        number + 1, None, start, "capture truncated inside a section header"
                    )
                    return
                if struct.unpack("<I", bom)[0] == _PCAPNG_BOM:
                    order = "<"
                elif struct.unpack(">I", bom)[0] == _PCAPNG_BOM:
                    order = ">"
                else:
                    self._problem(
                        number + 1, None, start, "corrupt section header (byte-order magic)"
                    )
                    return
                u32 = struct.Struct(order + "I")
                epb = struct.Struct(order + "IIIII")
                opb = struct.Struct(order + "HHIIII")
                length = u32.unpack_from(head, 4)[0]
                if length < 28 or length % 4 or length > MAX_RECORD_BYTES:
                    self._problem(
                        number + 1, None, start, f"corrupt section header length {length}"
                    )
                    return
                rest = buf.take(length - 12)
                if rest is None:
                    self._problem(
                        number + 1, None, start, "capture truncated inside a section header"
                    )
                    return
                section = []
                continue
            length = u32.unpack_from(head, 4)[0]
            if length < 12 or length % 4 or length > MAX_RECORD_BYTES:
                self._problem(
                    number + 1,
                    None,
                    start,
                    f"corrupt block (type {btype:#x}, length {length}); reading stopped",
                )
                return
            body = buf.take(length - 8)
            if body is None:
                reason = "capture truncated inside a block"
                if btype in (_BLOCK_EPB, _BLOCK_SPB, _BLOCK_OPB):
                    reason = f"capture truncated: frame {number + 1} is incomplete"
                self._problem(number + 1, None, start, reason)
                return
            body = body[:-4]  # trailing copy of the block length
            if btype == _BLOCK_EPB:
                if len(body) < 20:
                    self._problem(number + 1, None, start, "corrupt enhanced packet block")
                    return
                iface, ts_hi, ts_lo, caplen, orig_len = epb.unpack_from(body)
                number += 1
                if iface >= len(section) or caplen > len(body) - 20:
                    self._problem(
                        number,
                        None,
                        start,
                        f"corrupt enhanced packet block (interface {iface}, length {caplen})",
                    )
                    continue
                linktype, tps, offset = section[iface]
                last_ts = ((ts_hi << 32) | ts_lo) / tps + offset
                yield Frame(number, last_ts, linktype, body[20 : 20 + caplen], orig_len, iface)
            elif btype == _BLOCK_SPB:
                if len(body) < 4 or not section:
                    self._problem(number + 1, None, start, "corrupt simple packet block")
                    return
                orig_len = u32.unpack_from(body)[0]
                number += 1
                # A simple packet block has no timestamp: the previous packet's is reused.
                data = body[4 : 4 + min(orig_len, len(body) - 4)]
                yield Frame(number, last_ts, section[0][0], data, orig_len, 0)
            elif btype == _BLOCK_IDB:
                if len(body) < 8:
                    self._problem(number + 1, None, start, "corrupt interface description block")
                    return
                linktype = struct.unpack_from(order + "H", body)[0]
                tps, offset, name = _idb_options(body[8:], order)
                self.interfaces.append(InterfaceInfo(len(self.interfaces), linktype, tps, name))
                section.append((linktype, tps, offset))
            elif btype == _BLOCK_OPB:
                if len(body) < 20:
                    self._problem(number + 1, None, start, "corrupt packet block")
                    return
                iface, _drops, ts_hi, ts_lo, caplen, orig_len = opb.unpack_from(body)
                number += 1
                if iface >= len(section) or caplen > len(body) - 20:
                    self._problem(number, None, start, "corrupt packet block")
                    continue
                linktype, tps, offset = section[iface]
                last_ts = ((ts_hi << 32) | ts_lo) / tps + offset
                yield Frame(number, last_ts, linktype, body[20 : 20 + caplen], orig_len, iface)
            # Any other block (statistics, name resolution, custom...) is skipped.


def _idb_options(options: bytes, order: str) -> tuple[int, int, str | None]:
    """``if_tsresol`` (as ticks per second), ``if_tsoffset`` and ``if_name``."""
    tps = 1_000_000
    offset = 0
    name: str | None = None
    pos = 0
    opt = struct.Struct(order + "HH")
    while pos + 4 <= len(options):
        code, length = opt.unpack_from(options, pos)
        pos += 4
        value = options[pos : pos + length]
        pos += (length + 3) & ~3
        if code == 0:
            break
        if code == _OPT_IF_TSRESOL and length >= 1:
            res = value[0]
            # MSB clear: a negative power of 10; set: a negative power of 2.
            tps = 2 ** (res & 0x7F) if res & 0x80 else 10**res
        elif code == _OPT_IF_TSOFFSET and length >= 8:
            offset = struct.unpack(order + "q", value[:8])[0]
        elif code == 2 and length:
            name = value.decode("utf-8", "replace")
    return tps, offset, name


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read: give them back first."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(b))
        b[: len(data)] = data
        return len(data)


def _safe_gzip_read(stream: BinaryIO, n: int, name: str) -> bytes:
    try:
        return stream.read(n)
    except (OSError, EOFError) as err:
        raise CaptureError(f"{name}: not a pcap or pcapng capture (bad gzip data: {err})") from None


class _Buffer:
    """Chunked reading: one ``read()`` per megabyte instead of two per packet."""

    __slots__ = ("_buf", "_pos", "_stream", "consumed", "eof", "name")

    def __init__(self, stream: BinaryIO, head: bytes, name: str) -> None:
        self._stream = stream
        self._buf = head
        self._pos = 0
        self.consumed = 0  # bytes dropped from the front of _buf so far
        self.eof = False
        self.name = name

    @property
    def offset(self) -> int:
        return self.consumed + self._pos

    @property
    def leftover(self) -> int:
        """Bytes available but not taken (non-zero at EOF means truncation)."""
        return len(self._buf) - self._pos

    def take(self, n: int) -> bytes | None:
        """The next ``n`` bytes, or None when the file ends first (nothing consumed)."""
        pos = self._pos
        end = pos + n
        if end <= len(self._buf):
            self._pos = end
            return self._buf[pos:end]
        while len(self._buf) - self._pos < n and not self.eof:
            chunk = self._stream.read(max(_CHUNK, n))
            if not chunk:
                self.eof = True
                break
            self.consumed += self._pos
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0
        if len(self._buf) - self._pos < n:
            return None
        pos = self._pos
        self._pos = pos + n
        return self._buf[pos : pos + n]


def open_capture(source: str | os.PathLike[str] | BinaryIO) -> CaptureReader:
    """Open a capture from a path or a binary stream (the stream is not closed).

    Raises :class:`CaptureError` when the file is missing, unreadable or not a capture.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            stream: BinaryIO = path.open("rb")
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise CaptureError(f"{path}: cannot open capture ({reason})") from None
        return CaptureReader(stream, str(path), owns_stream=True)
    name = str(getattr(source, "name", "<stream>"))
    return CaptureReader(source, name)


# =====================================================================================
# Writing
# =====================================================================================


class PcapWriter:
    """Write a classic pcap file (one link type) to a binary stream.

    ``nanosecond`` selects the ``a1b23c4d`` magic; ``byteorder`` is ``"<"`` or ``">"``.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        linktype: int = LINKTYPE_ETHERNET,
        nanosecond: bool = False,
        byteorder: str = "<",
        snaplen: int = 262144,
    ) -> None:
        self._stream = stream
        self._order = byteorder
        self._ticks = 1_000_000_000 if nanosecond else 1_000_000
        magic = _PCAP_MAGIC_NS if nanosecond else _PCAP_MAGIC_US
        stream.write(struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._record = struct.Struct(byteorder + "IIII")

    def write(self, data: bytes, timestamp: float, *, orig_len: int | None = None) -> None:
        """Append one packet (``data`` are its link-layer bytes)."""
        sec = int(timestamp)
        frac = round((timestamp - sec) * self._ticks)
        if frac >= self._ticks:
            sec, frac = sec + 1, frac - self._ticks
        length = len(data) if orig_len is None else orig_len
        self._stream.write(self._record.pack(sec, frac, len(data), length))
        self._stream.write(data)


class PcapngWriter:
    """Write a pcapng file: one section, interfaces added with :meth:`add_interface`."""

    def __init__(self, stream: BinaryIO, *, byteorder: str = "<") -> None:
        self._stream = stream
        self._order = byteorder
        self._ticks: list[int] = []
        self.write_block(_PCAPNG_SHB, struct.pack(byteorder + "IHHq", _PCAPNG_BOM, 1, 0, -1))

    def write_block(self, block_type: int, body: bytes) -> None:
        """Write any block (padding and the two length fields are added here)."""
        padded = body + b"\x00" * (-len(body) % 4)
        total = len(padded) + 12
        self._stream.write(struct.pack(self._order + "II", block_type, total))
        self._stream.write(padded)
        self._stream.write(struct.pack(self._order + "I", total))

    def add_interface(
        self, linktype: int, *, tsresol: int = 6, name: str | None = None, snaplen: int = 0
    ) -> int:
        """Describe an interface; ``tsresol`` is the raw ``if_tsresol`` byte. Returns its id."""
        opts = b""
        if name is not None:
            raw = name.encode()
            opts += struct.pack(self._order + "HH", 2, len(raw)) + raw + b"\x00" * (-len(raw) % 4)
        opts += struct.pack(self._order + "HHB3x", _OPT_IF_TSRESOL, 1, tsresol)
        opts += struct.pack(self._order + "HH", 0, 0)
        self.write_block(_BLOCK_IDB, struct.pack(self._order + "HHI", linktype, 0, snaplen) + opts)
        ticks = 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10**tsresol
        self._ticks.append(ticks)
        return len(self._ticks) - 1

    def write(
        self, data: bytes, timestamp: float, *, interface: int = 0, orig_len: int | None = None
    ) -> None:
        """Append an enhanced packet block."""
        ticks = round(timestamp * self._ticks[interface])
        length = len(data) if orig_len is None else orig_len
        head = struct.pack(
            self._order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), length
        )
        self.write_block(_BLOCK_EPB, head + data)

    def write_simple(self, data: bytes) -> None:
        """Append a simple packet block (interface 0, no timestamp)."""
        self.write_block(_BLOCK_SPB, struct.pack(self._order + "I", len(data)) + data)


# =====================================================================================
# Synthesising frames (tests, benchmarks, traffic logs)
# =====================================================================================

ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
ETHERTYPE_VLAN: Final = 0x8100
ETHERTYPE_QINQ: Final = 0x88A8
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17

TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_PSH: Final = 0x08
TCP_ACK: Final = 0x10


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet_frame(
    payload: bytes,
    ethertype: int,
    *,
    src_mac: bytes = b"\x02\x00\x00\x00\x00\x01",
    dst_mac: bytes = b"\x02\x00\x00\x00\x00\x02",
    vlans: tuple[tuple[int, int], ...] = (),
) -> bytes:
    """An Ethernet II frame; ``vlans`` is ``((tpid, vlan_id), ...)`` outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, vid & 0x0FFF) for tpid, vid in vlans)
    return dst_mac + src_mac + tags + struct.pack("!H", ethertype) + payload


def ipv4_packet(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ident: int = 0,
    flags_offset: int = 0,
    ttl: int = 64,
    options: bytes = b"",
    total_length: int | None = None,
) -> bytes:
    """An IPv4 packet with a correct header checksum.

    ``flags_offset`` is the raw 16-bit field (``0x2000`` = more fragments, low 13
    bits = offset in 8-byte units); ``total_length`` overrides the length field (to
    build malformed packets).
    """
    opts = options + b"\x00" * (-len(options) % 4)
    ihl = 5 + len(opts) // 4
    length = 4 * ihl + len(payload) if total_length is None else total_length
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | ihl,
            0,
            length,
            ident,
            flags_offset,
            ttl,
            proto,
            0,
            _ip4(src),
            _ip4(dst),
        )
        + opts
    )
    csum = _checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def ipv6_packet(
    src: str,
    dst: str,
    next_header: int,
    payload: bytes,
    *,
    hop_limit: int = 64,
) -> bytes:
    """An IPv6 packet; ``payload`` may start with extension headers (see ``next_header``)."""
    head = struct.pack("!IHBB", 0x60000000, len(payload), next_header, hop_limit)
    return head + _ip6(src) + _ip6(dst) + payload


def udp_datagram(sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header and payload (checksum 0: "not computed", valid over IPv4)."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp_segment(
    sport: int,
    dport: int,
    seq: int,
    payload: bytes,
    *,
    ack: int = 0,
    flags: int = TCP_ACK | TCP_PSH,
    window: int = 65535,
) -> bytes:
    """A TCP header (no options; checksum left 0) and payload."""
    return (
        struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            5 << 4,
            flags,
            window,
            0,
            0,
        )
        + payload
    )


def _ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def _ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed
