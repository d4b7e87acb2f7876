"""Masking secrets in what a report shows, and in a copy of a capture.

Text (HTML, Markdown, JUnit)
    :func:`redact_text` replaces, wherever they appear:

    * the values of the digest parameters that let someone attack a password offline
      or replay a request — ``response``, ``nonce``, ``cnonce``, ``nextnonce``,
      ``rspauth`` — with :data:`MASK` (quotes kept: ``response="********"``);
    * the credentials of an ``Authorization``/``Proxy-Authorization`` header of any
      other scheme (``Basic``, ``Bearer``...): everything after the scheme name;
    * every string of ``secrets`` (passwords a caller knows of).

    ``username``, ``realm``, ``uri``, ``algorithm``, ``qop`` and ``nc`` stay visible:
    they are what a carrier needs to see to explain a 401/403.

Captures
    :func:`redact_pcap` writes a copy of a pcap or pcapng file (gzip-compressed ones
    too) in which the same parts of every ``Authorization``/``Proxy-Authorization``
    header are overwritten with ``*`` of the same length, so that frame lengths, IP
    lengths and SIP ``Content-Length`` stay true; the UDP and TCP checksums of a
    changed packet are recomputed (or, for a truncated IPv4 UDP packet, set to 0,
    "not computed"). The original is never modified.

Nothing here reads the network or imports the capture decoder; a file that is not a
capture raises :class:`~harness.errors.InputError` with one line naming it.
"""

from __future__ import annotations

import gzip
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.errors import InputError

#: What a masked value reads as in reports.
MASK: Final = "********"

#: Digest parameters whose values are masked (RFC 7616 §3.4, §3.5; RFC 3261 §22.4).
SECRET_PARAMS: Final = ("response", "nonce", "cnonce", "nextnonce", "rspauth")

_PARAM_PATTERN: Final = (
    r"\b(?P<name>" + "|".join(SECRET_PARAMS) + r")(?P<eq>[ \t]*=[ \t]*)"
    r"(?P<value>\"(?:[^\"\\\r\n]|\\.)*\"?|[^\s,;\"]+)"
)
_PARAM_RE: Final = re.compile(_PARAM_PATTERN, re.IGNORECASE)
_PARAM_RE_B: Final = re.compile(_PARAM_PATTERN.encode(), re.IGNORECASE)

# An Authorization header: name, scheme, and the rest of its (possibly folded) value.
_AUTH_PATTERN: Final = (
    r"(?P<head>\b(?:Proxy-)?Authorization[ \t]*:[ \t]*)(?P<scheme>[A-Za-z][\w.-]*)"
    r"(?P<rest>(?:[^\r\n]|\r?\n[ \t])*)"
)
_AUTH_RE: Final = re.compile(_AUTH_PATTERN, re.IGNORECASE)
_AUTH_RE_B: Final = re.compile(_AUTH_PATTERN.encode(), re.IGNORECASE)


# --- text -----------------------------------------------------------------------------


def _mask_param(match: re.Match[str]) -> str:
    value = match.group("value")
    masked = f'"{MASK}"' if value.startswith('"') else MASK
    return f"{match.group('name')}{match.group('eq')}{masked}"


def _mask_auth(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    rest = match.group("rest")
    if scheme.lower() == "digest":
        return match.group(0)  # its secret parameters are masked by _PARAM_RE
    if not rest.strip():
        return match.group(0)
    lead = rest[: len(rest) - len(rest.lstrip())]
    return f"{match.group('head')}{scheme}{lead}{MASK}"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with digest secrets, non-digest credentials and ``secrets`` masked.

    Idempotent: redacting twice gives the same text. Empty secrets are ignored;
    longer secrets are replaced first so that one contained in another leaves
    nothing of the longer one behind.
    """
    return mask_auth_text(scrub_secrets(text, secrets))


def mask_auth_text(text: str) -> str:
    """``text`` with digest secrets and non-digest credentials masked (no secrets list)."""
    # A lower-cased copy and substring tests rule out most strings ~15x faster than
    # the case-insensitive regexes would.
    low = text.lower()
    if "nonce" in low or "response" in low or "rspauth" in low:
        text = _PARAM_RE.sub(_mask_param, text)
    if "authorization" in low:
        text = _AUTH_RE.sub(_mask_auth, text)
    return text


def _ordered(secrets: Iterable[str]) -> list[str]:
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every non-empty secret replaced by :data:`MASK`."""
    return _replace_all(text, _ordered(secrets))


def _replace_all(text: str, ordered: list[str]) -> str:
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_data(data: Any, secrets: Iterable[str], *, mask_auth: bool = False) -> Any:
    """A copy of JSON-like ``data`` (dicts, lists, strings...) with secrets masked.

    Dict keys are scrubbed as well as values. With ``mask_auth`` every string also
    goes through :func:`redact_text` (digest values, credentials).
    """
    ordered = _ordered(secrets)

    def clean(text: str) -> str:
        text = _replace_all(text, ordered)
        return mask_auth_text(text) if mask_auth else text

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return clean(node)
        if isinstance(node, dict):
            return {clean(k) if isinstance(k, str) else k: walk(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v) for v in node]
        return node

    if not ordered and not mask_auth:
        return data
    return walk(data)


# --- captures ---------------------------------------------------------------------------

_PCAP_MAGICS: Final = (0xA1B2C3D4, 0xA1B23C4D)
_PCAPNG_SHB: Final = 0x0A0D0D0A
_PCAPNG_BOM: Final = 0x1A2B3C4D

_LINK_NULL: Final = 0
_LINK_ETHERNET: Final = 1
_LINK_RAW: Final = 101
_LINK_LOOP: Final = 108
_LINK_SLL: Final = 113
_LINK_IPV4: Final = 228
_LINK_IPV6: Final = 229
_LINK_SLL2: Final = 276

_ETH_IPV4: Final = 0x0800
_ETH_IPV6: Final = 0x86DD
_ETH_VLANS: Final = (0x8100, 0x88A8, 0x9100)
_PROTO_TCP: Final = 6
_PROTO_UDP: Final = 17
# IPv6 extension headers a SIP packet may carry before its transport header.
_IPV6_EXTENSIONS: Final = (0, 43, 60)


@dataclass(frozen=True)
class PcapRedaction:
    """What :func:`redact_pcap` did.

    ``frames``: packets in the file; ``masked_headers``: Authorization headers
    changed; ``changed_frames``: packets written differently from the original;
    ``unredacted``: frame numbers that carry an Authorization header this function
    could not mask safely (it travels in IP fragments), for the caller to report.
    """

    frames: int
    masked_headers: int
    changed_frames: int
    unredacted: tuple[int, ...] = ()


def _star(buf: bytearray, start: int, end: int) -> None:
    """Overwrite ``buf[start:end]`` with ``*``, keeping CR, LF, spaces and tabs."""
    for i in range(start, end):
        if buf[i] not in b"\r\n \t":
            buf[i] = 0x2A


def mask_payload(payload: bytearray, *, whole_value: bool = False) -> int:
    """Mask Authorization header values inside ``payload`` in place, same length.

    Digest headers keep their scheme and non-secret parameters unless
    ``whole_value``; returns how many headers were changed.
    """
    changed = 0
    for match in list(_AUTH_RE_B.finditer(payload)):
        before = bytes(payload[match.start() : match.end()])
        scheme = match.group("scheme").lower()
        if whole_value:
            _star(payload, match.start("scheme"), match.end("rest"))
        elif scheme == b"digest":
            for param in _PARAM_RE_B.finditer(payload, match.start("rest"), match.end("rest")):
                start, end = param.span("value")
                if payload[start : start + 1] == b'"':
                    start += 1
                    if end - start >= 1 and payload[end - 1 : end] == b'"':
                        end -= 1
                _star(payload, start, end)
        else:
            _star(payload, match.start("rest"), match.end("rest"))
        if bytes(payload[match.start() : match.end()]) != before:
            changed += 1
    return changed


def _ones_complement(data: bytes | bytearray) -> int:
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Packet:
    """One captured packet inside the file buffer, edited in place."""

    def __init__(self, buf: bytearray, start: int, caplen: int, linktype: int) -> None:
        self.buf = buf
        self.start = start
        self.end = start + caplen
        self.linktype = linktype

    def u16(self, pos: int) -> int:
        value: int = struct.unpack_from("!H", self.buf, pos)[0]
        return value

    def network_start(self) -> tuple[int, int] | None:
        """(offset of the IP header, IP version), or None for a non-IP packet."""
        pos, end, lt = self.start, self.end, self.linktype
        ethertype: int | None = None
        if lt == _LINK_ETHERNET:
            pos += 12
            while pos + 2 <= end and self.u16(pos) in _ETH_VLANS:
                pos += 4
            if pos + 2 > end:
                return None
            ethertype = self.u16(pos)
            pos += 2
        elif lt == _LINK_SLL:
            if pos + 16 > end:
                return None
            ethertype = self.u16(pos + 14)
            pos += 16
        elif lt == _LINK_SLL2:
            if pos + 20 > end:
                return None
            ethertype = self.u16(pos)
            pos += 20
        elif lt in (_LINK_NULL, _LINK_LOOP):
            pos += 4
        elif lt not in (_LINK_RAW, _LINK_IPV4, _LINK_IPV6):
            return None
        if pos >= end:
            return None
        version = self.buf[pos] >> 4
        if ethertype is not None and ethertype not in (_ETH_IPV4, _ETH_IPV6):
            return None
        return (pos, version) if version in (4, 6) else None


def _redact_packet(
    packet: _Packet, *, whole_value: bool, number: int, unredacted: list[int]
) -> int:
    """Mask one packet; return the number of headers masked."""
    found = packet.network_start()
    if found is None:
        return 0
    ip, version = found
    buf, end = packet.buf, packet.end
    if version == 4:
        if ip + 20 > end:
            return 0
        ihl = 4 * (buf[ip] & 0x0F)
        total = packet.u16(ip + 2)
        proto = buf[ip + 9]
        flags_offset = packet.u16(ip + 6)
        l4 = ip + ihl
        ip_end = ip + total
        pseudo = bytes(buf[ip + 12 : ip + 20])
        if flags_offset & 0x3FFF:
            # A fragment (more-fragments set or a non-zero offset): the UDP/TCP
            # checksum covers bytes in other frames, so masking here would corrupt
            # the datagram. Report it instead.
            if _AUTH_RE_B.search(buf, l4, min(end, ip_end)):
                unredacted.append(number)
            return 0
        if total < ihl:
            ip_end = end  # length 0: segmentation offload; trust the capture
    else:
        if ip + 40 > end:
            return 0
        proto = buf[ip + 6]
        ip_end = ip + 40 + packet.u16(ip + 4)
        pseudo = bytes(buf[ip + 8 : ip + 40])
        l4 = ip + 40
        while proto in _IPV6_EXTENSIONS and l4 + 8 <= end:
            proto, length = buf[l4], 8 * (buf[l4 + 1] + 1)
            l4 += length
        if proto == 44:  # a fragment header
            if _AUTH_RE_B.search(buf, l4, min(end, ip_end)):
                unredacted.append(number)
            return 0
    complete = ip_end <= end
    seg_end = min(end, ip_end)
    if proto == _PROTO_UDP:
        if l4 + 8 > seg_end:
            return 0
        payload_start = l4 + 8
        checksum_at = l4 + 6
    elif proto == _PROTO_TCP:
        if l4 + 20 > seg_end:
            return 0
        payload_start = l4 + 4 * (buf[l4 + 12] >> 4)
        checksum_at = l4 + 16
    else:
        return 0
    if payload_start >= seg_end:
        return 0
    payload = bytearray(buf[payload_start:seg_end])
    masked = mask_payload(payload, whole_value=whole_value)
    if not masked:
        return 0
    buf[payload_start:seg_end] = payload
    old_checksum = packet.u16(checksum_at)
    if proto == _PROTO_UDP and old_checksum == 0 and version == 4:
        return masked  # "no checksum" stays valid
    if complete:
        length = ip_end - l4
        if version == 4:
            pseudo_header = pseudo + struct.pack("!BBH", 0, proto, length)
        else:
            pseudo_header = pseudo + struct.pack("!IxxxB", length, proto)
        struct.pack_into("!H", buf, checksum_at, 0)
        checksum = _ones_complement(pseudo_header + bytes(buf[l4:ip_end]))
        if proto == _PROTO_UDP and checksum == 0:
            checksum = 0xFFFF  # RFC 768: a computed zero is sent as all ones
        struct.pack_into("!H", buf, checksum_at, checksum)
    elif proto == _PROTO_UDP and version == 4:
        struct.pack_into("!H", buf, checksum_at, 0)
    # A truncated TCP (or IPv6 UDP) packet keeps its old checksum: the bytes it
    # covers are not all in the capture, so no reader can verify it anyway.
    return masked


def _walk_pcap(buf: bytearray, name: str) -> list[tuple[int, int, int]]:
    magic_le = struct.unpack_from("<I", buf)[0]
    order = "<" if magic_le in _PCAP_MAGICS else ">"
    if len(buf) < 24:
        raise InputError(f"{name}: truncated pcap header")
    linktype = struct.unpack_from(order + "I", buf, 20)[0] & 0x0FFFFFFF
    packets = []
    pos = 24
    while pos + 16 <= len(buf):
        caplen = struct.unpack_from(order + "I", buf, pos + 8)[0]
        start = pos + 16
        if start + caplen > len(buf):
            break  # a truncated last record is copied as it is
        packets.append((start, caplen, linktype))
        pos = start + caplen
    return packets


def _walk_pcapng(buf: bytearray, name: str) -> list[tuple[int, int, int]]:
    packets = []
    pos = 0
    order = "<"
    linktypes: list[int] = []
    snaplens: list[int] = []
    while pos + 12 <= len(buf):
        block_type = struct.unpack_from(order + "I", buf, pos)[0]
        if block_type == _PCAPNG_SHB:  # the same in either byte order
            bom_le = struct.unpack_from("<I", buf, pos + 8)[0]
            order = "<" if bom_le == _PCAPNG_BOM else ">"
            linktypes, snaplens = [], []
        length = struct.unpack_from(order + "I", buf, pos + 4)[0]
        if length < 12 or pos + length > len(buf):
            break
        body = pos + 8
        if block_type == 1 and length >= 20:  # IDB
            linktypes.append(struct.unpack_from(order + "H", buf, body)[0])
            snaplens.append(struct.unpack_from(order + "I", buf, body + 4)[0])
        elif block_type in (2, 6) and length >= 32:  # OPB, EPB
            if block_type == 6:
                iface = struct.unpack_from(order + "I", buf, body)[0]
            else:
                iface = struct.unpack_from(order + "H", buf, body)[0]
            caplen = struct.unpack_from(order + "I", buf, body + 12)[0]
            start = body + 20
            if iface < len(linktypes) and start + caplen <= pos + length - 4:
                packets.append((start, caplen, linktypes[iface]))
        elif block_type == 3 and length >= 16 and linktypes:  # SPB
            orig = struct.unpack_from(order + "I", buf, body)[0]
            room = length - 16
            caplen = min(orig, room, snaplens[0] or room)
            packets.append((body + 4, caplen, linktypes[0]))
        pos += length
    if not packets and not linktypes and pos == 0:
        raise InputError(f"{name}: truncated pcapng section header")
    return packets


def redact_pcap(src: Path, dst: Path, *, whole_value: bool = False) -> PcapRedaction:
    """Write to ``dst`` a copy of the capture ``src`` with Authorization values masked.

    See the module docstring for what is masked; ``whole_value`` masks the whole
    header value (scheme and every parameter) instead. ``dst`` is gzip-compressed
    when ``src`` was. ``src`` and ``dst`` must differ. Raises
    :class:`~harness.errors.InputError` (one line) when ``src`` cannot be read or is
    not a pcap/pcapng capture.
    """
    name = str(src)
    if src.resolve() == dst.resolve():
        raise InputError(f"{name}: the redacted copy must be written to another file")
    try:
        raw = src.read_bytes()
    except OSError as err:
        raise InputError(f"{name}: cannot read: {err.strerror or err}") from None
    compressed = raw[:2] == b"\x1f\x8b"
    if compressed:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise InputError(f"{name}: damaged gzip stream: {err}") from None
    buf = bytearray(raw)
    if len(buf) < 4:
        raise InputError(f"{name}: not a pcap or pcapng capture (too short)")
    magic_le = struct.unpack_from("<I", buf)[0]
    magic_be = struct.unpack_from(">I", buf)[0]
    if magic_le == _PCAPNG_SHB:
        packets = _walk_pcapng(buf, name)
    elif magic_le in _PCAP_MAGICS or magic_be in _PCAP_MAGICS:
        packets = _walk_pcap(buf, name)
    else:
        raise InputError(f"{name}: not a pcap or pcapng capture (starts with {buf[:4].hex()})")
    masked = changed = 0
    unredacted: list[int] = []
    for number, (start, caplen, linktype) in enumerate(packets, 1):
        before = bytes(buf[start : start + caplen])
        masked += _redact_packet(
            _Packet(buf, start, caplen, linktype),
            whole_value=whole_value,
            number=number,
            unredacted=unredacted,
        )
        if bytes(buf[start : start + caplen]) != before:
            changed += 1
    out = gzip.compress(bytes(buf)) if compressed else bytes(buf)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.write_bytes(out)
    tmp.replace(dst)
    return PcapRedaction(len(packets), masked, changed, tuple(unredacted))
