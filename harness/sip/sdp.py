"""SDP (RFC 8866) and offer/answer (RFC 3264) for G.711 and telephone-event (RFC 4733).

What a caller may rely on:

* :func:`parse_sdp` turns a body into a :class:`SessionDescription`; it raises
  :class:`~harness.sip.errors.RemoteProtocolError` (and nothing else) when the body
  is not usable SDP.  LF-only line ends are accepted; blank lines are ignored.
* :meth:`SessionDescription.to_bytes` writes CRLF lines in the RFC 8866 order
  (v o s i u e p c b t r z k a, then each m: i c b k a).  Attributes keep their
  order and lines this module does not model are kept, so a well-ordered
  description round-trips byte for byte.
* :func:`build_offer` / :func:`build_answer` implement the offer/answer rules for
  one audio stream; :func:`build_answer` raises :class:`NoCommonCodecError` when
  no offered audio stream can be accepted (the agent answers 488).
* :func:`audio_endpoint` gives where to send audio (media-level ``c=`` wins over
  session-level) and the codec negotiated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.sip.errors import LocalProtocolError, RemoteProtocolError, SipError

__all__ = [
    "PCMA",
    "PCMU",
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "Attribute",
    "AudioEndpoint",
    "Codec",
    "Connection",
    "Media",
    "NoCommonCodecError",
    "Origin",
    "RtpCodec",
    "SessionDescription",
    "Timing",
    "audio_endpoint",
    "build_answer",
    "build_offer",
    "format_events",
    "parse_events",
    "parse_sdp",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class NoCommonCodecError(SipError):
    """The offer holds no audio stream this side can accept (answer it with 488).

    ``offered`` lists the offered audio formats as ``"PT name/rate"`` strings, for
    the finding shown to the user.
    """

    def __init__(self, message: str, offered: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.offered = list(offered)


# --------------------------------------------------------------------------- model


@dataclass
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>``."""

    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return " ".join(
            (
                self.username,
                self.session_id,
                self.session_version,
                self.nettype,
                self.addrtype,
                self.address,
            )
        )


@dataclass
class Connection:
    """``c=<nettype> <addrtype> <address>``; ``address`` may carry ``/ttl`` (multicast)."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    @property
    def host(self) -> str:
        """The address without a multicast ``/ttl`` or ``/count`` suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass
class Attribute:
    """``a=<name>`` (a flag, ``value`` None) or ``a=<name>:<value>`` (value kept as is)."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass
class Timing:
    """A ``t=`` line and the ``r=`` lines that follow it."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RtpCodec:
    """A payload type as a media description defines it (``a=rtpmap`` or static)."""

    name: str
    payload_type: int
    clock_rate: int
    channels: int = 1


#: RFC 3551 static audio payload types that may appear without ``a=rtpmap``.
STATIC_PAYLOAD_TYPES: dict[int, RtpCodec] = {
    pt: RtpCodec(name, pt, rate)
    for pt, name, rate in (
        (0, "PCMU", 8000),
        (3, "GSM", 8000),
        (4, "G723", 8000),
        (8, "PCMA", 8000),
        # RFC 3551 §4.5.2: G722's RTP clock rate is 8000 although it samples at 16 kHz.
        (9, "G722", 8000),
        (13, "CN", 8000),
        (18, "G729", 8000),
    )
}


def _parse_rtpmap(value: str) -> RtpCodec:
    # "<payload type> <encoding name>/<clock rate>[/<encoding parameters>]"
    pt_text, _, encoding = value.strip().partition(" ")
    parts = encoding.strip().split("/")
    try:
        payload_type = int(pt_text)
        clock_rate = int(parts[1])
        channels = int(parts[2]) if len(parts) > 2 and parts[2] else 1
    except (ValueError, IndexError) as exc:
        raise RemoteProtocolError(f"malformed a=rtpmap:{value}") from exc
    if not parts[0] or not 0 <= payload_type <= 127 or clock_rate <= 0 or channels <= 0:
        raise RemoteProtocolError(f"malformed a=rtpmap:{value}")
    return RtpCodec(parts[0], payload_type, clock_rate, channels)


def _attribute_value(attributes: Iterable[Attribute], name: str) -> str | None:
    key = name.lower()
    for attr in attributes:
        if attr.name.lower() == key:
            return attr.value
    return None


def _direction(attributes: Iterable[Attribute]) -> str | None:
    for attr in attributes:
        if attr.value is None and attr.name.lower() in DIRECTIONS:
            return attr.name.lower()
    return None


@dataclass
class Media:
    """One ``m=`` section and its lines.

    ``formats`` are the format tokens as written (payload type numbers for RTP).
    ``other_lines`` holds ``(letter, value)`` for the ``i=``, ``b=``, ``k=`` and
    unknown lines of the section, in order.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """Value of the first attribute of that name (None when absent or a flag)."""
        return _attribute_value(self.attributes, name)

    def has_attribute(self, name: str) -> bool:
        key = name.lower()
        return any(attr.name.lower() == key for attr in self.attributes)

    @property
    def payload_types(self) -> list[int]:
        """The formats as RTP payload types (RemoteProtocolError if one is not a number)."""
        try:
            return [int(fmt) for fmt in self.formats]
        except ValueError as exc:
            raise RemoteProtocolError(f"m={self.media} formats are not payload types") from exc

    def rtpmaps(self) -> dict[int, RtpCodec]:
        """Payload type -> codec from the ``a=rtpmap`` lines (RemoteProtocolError if malformed)."""
        maps: dict[int, RtpCodec] = {}
        for attr in self.attributes:
            if attr.name.lower() == "rtpmap":
                codec = _parse_rtpmap(attr.value or "")
                maps[codec.payload_type] = codec
        return maps

    def codec(self, payload_type: int) -> RtpCodec | None:
        """The codec of a payload type: its rtpmap, else the RFC 3551 static one, else None."""
        return self.rtpmaps().get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)

    def fmtp(self, payload_type: int) -> str | None:
        """The parameters of ``a=fmtp:<payload_type> ...`` or None."""
        for attr in self.attributes:
            if attr.name.lower() == "fmtp" and attr.value is not None:
                pt_text, _, params = attr.value.partition(" ")
                if pt_text == str(payload_type):
                    return params.strip()
        return None

    @property
    def direction(self) -> str | None:
        """The media-level direction attribute, or None when it has none."""
        return _direction(self.attributes)

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds, or None (RemoteProtocolError if not a number)."""
        value = self.attribute("ptime")
        if value is None:
            return None
        try:
            # RFC 8866 allows a decimal ptime ("20.0"); the harness works in whole ms.
            return round(float(value))
        except ValueError as exc:
            raise RemoteProtocolError(f"malformed a=ptime:{value}") from exc


@dataclass
class SessionDescription:
    """A whole SDP body.

    ``other_lines`` holds the session-level ``(letter, value)`` lines this model
    does not name (``i u e p b z k`` and unknown letters), in order.
    ``session_name`` is None and ``timing`` empty only when the body lacked them.
    """

    origin: Origin
    session_name: str | None = "-"
    connection: Connection | None = None
    timing: list[Timing] = field(default_factory=lambda: [Timing()])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    version: int = 0

    @property
    def direction(self) -> str | None:
        """The session-level direction attribute, or None."""
        return _direction(self.attributes)

    def media_direction(self, media: Media) -> str:
        """Effective direction of a stream: media level, else session level, else sendrecv."""
        return media.direction or self.direction or "sendrecv"

    def media_connection(self, media: Media) -> Connection | None:
        """Effective ``c=`` of a stream: media level wins over session level."""
        return media.connection or self.connection

    def lines(self) -> list[str]:
        """The description as lines (without line ends), in RFC 8866 order."""
        entries: list[tuple[int, str]] = [
            (_SESSION_RANK["v"], f"v={self.version}"),
            (_SESSION_RANK["o"], f"o={self.origin}"),
        ]
        if self.session_name is not None:
            entries.append((_SESSION_RANK["s"], f"s={self.session_name}"))
        entries.extend((_rank(_SESSION_RANK, k), f"{k}={v}") for k, v in self.other_lines)
        if self.connection is not None:
            entries.append((_SESSION_RANK["c"], f"c={self.connection}"))
        for timing in self.timing:
            entries.append((_SESSION_RANK["t"], f"t={timing.start} {timing.stop}"))
            entries.extend((_SESSION_RANK["t"], f"r={r}") for r in timing.repeats)
        entries.extend((_SESSION_RANK["a"], f"a={a}") for a in self.attributes)
        # sorted() is stable: lines of one rank keep their order.
        out = [line for _, line in sorted(entries, key=lambda e: e[0])]
        for media in self.media:
            out.extend(_media_lines(media))
        return out

    def to_text(self) -> str:
        """The description with CRLF after every line."""
        return "".join(f"{line}\r\n" for line in self.lines())

    def to_bytes(self) -> bytes:
        """:meth:`to_text` encoded as UTF-8 (RFC 8866 §5's default charset)."""
        return self.to_text().encode("utf-8")


# Lines not named here rank just before a= (after z and k).
_SESSION_RANK = {
    k: i for i, k in enumerate(("v", "o", "s", "i", "u", "e", "p", "c", "b", "t", "z", "k"))
}
_SESSION_RANK["a"] = len(_SESSION_RANK) + 1
_MEDIA_RANK = {"m": 0, "i": 1, "c": 2, "b": 3, "k": 4, "a": 6}
_UNKNOWN_RANK = 5


def _rank(table: dict[str, int], letter: str) -> int:
    if letter in table:
        return table[letter]
    return table["a"] - 1


def _media_lines(media: Media) -> list[str]:
    port = str(media.port) if media.port_count is None else f"{media.port}/{media.port_count}"
    m_line = " ".join([media.media, port, media.proto, *media.formats])
    entries: list[tuple[int, str]] = [(_MEDIA_RANK["m"], f"m={m_line}")]
    entries.extend((_MEDIA_RANK.get(k, _UNKNOWN_RANK), f"{k}={v}") for k, v in media.other_lines)
    if media.connection is not None:
        entries.append((_MEDIA_RANK["c"], f"c={media.connection}"))
    entries.extend((_MEDIA_RANK["a"], f"a={a}") for a in media.attributes)
    return [line for _, line in sorted(entries, key=lambda e: e[0])]


# --------------------------------------------------------------------------- parsing


def _parse_connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise RemoteProtocolError(f"malformed c={value}")
    nettype, addrtype, address = parts
    if nettype.upper() != "IN" or addrtype.upper() not in ("IP4", "IP6"):
        raise RemoteProtocolError(f"unsupported c={value} (want IN IP4 or IN IP6)")
    return Connection(address=address, addrtype=addrtype, nettype=nettype)


def _parse_origin(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise RemoteProtocolError(f"malformed o={value} (6 fields expected)")
    return Origin(*parts)


def _parse_timing(value: str) -> Timing:
    parts = value.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise RemoteProtocolError(f"malformed t={value}")
    return Timing(int(parts[0]), int(parts[1]))


def _parse_media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 3:
        raise RemoteProtocolError(f"malformed m={value}")
    media, port_text, proto, *formats = parts
    port_part, _, count_part = port_text.partition("/")
    if not port_part.isdigit() or (count_part and not count_part.isdigit()):
        raise RemoteProtocolError(f"malformed port in m={value}")
    port = int(port_part)
    if port > 65535:
        raise RemoteProtocolError(f"port out of range in m={value}")
    if "RTP/" in proto.upper() and not all(f.isdigit() and int(f) <= 127 for f in formats):
        raise RemoteProtocolError(f"RTP formats must be payload types 0-127 in m={value}")
    return Media(
        media=media,
        port=port,
        proto=proto,
        formats=formats,
        port_count=int(count_part) if count_part else None,
    )


def _parse_attribute(value: str) -> Attribute:
    name, sep, rest = value.partition(":")
    if not name:
        raise RemoteProtocolError(f"malformed a={value}")
    return Attribute(name, rest if sep else None)


def parse_sdp(body: bytes | str) -> SessionDescription:
    """Parse an SDP body (RemoteProtocolError when it is not usable SDP).

    The first line must be ``v=0`` and an ``o=`` line must be present; ``c=``
    lines must be ``IN IP4`` or ``IN IP6``; ``a=rtpmap`` lines are validated.
    A missing ``s=`` or ``t=`` is tolerated (peers get it wrong; checks flag it).
    """
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"SDP is not UTF-8: {exc}") from exc
    else:
        text = body
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines or lines[0].strip() != "v=0":
        raise RemoteProtocolError("SDP must start with v=0")
    origin: Origin | None = None
    session_name: str | None = None
    connection: Connection | None = None
    timing: list[Timing] = []
    attributes: list[Attribute] = []
    other: list[tuple[str, str]] = []
    media_list: list[Media] = []
    current: Media | None = None
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise RemoteProtocolError(f"malformed SDP line {line!r}")
        letter, value = line[0], line[2:]
        if letter == "m":
            current = _parse_media(value)
            media_list.append(current)
        elif current is not None:
            if letter == "c":
                if current.connection is not None:
                    raise RemoteProtocolError(f"two c= lines in m={current.media}")
                current.connection = _parse_connection(value)
            elif letter == "a":
                current.attributes.append(_parse_attribute(value))
            else:
                current.other_lines.append((letter, value))
        elif letter == "o":
            if origin is not None:
                raise RemoteProtocolError("two o= lines")
            origin = _parse_origin(value)
        elif letter == "s":
            session_name = value
        elif letter == "c":
            if connection is not None:
                raise RemoteProtocolError("two session-level c= lines")
            connection = _parse_connection(value)
        elif letter == "t":
            timing.append(_parse_timing(value))
        elif letter == "r":
            if not timing:
                raise RemoteProtocolError("r= line before any t= line")
            timing[-1].repeats.append(value)
        elif letter == "a":
            attributes.append(_parse_attribute(value))
        elif letter == "v":
            raise RemoteProtocolError("second v= line")
        else:
            other.append((letter, value))
    if origin is None:
        raise RemoteProtocolError("SDP without o= line")
    for media in media_list:
        media.rtpmaps()  # validate now rather than at first use
    return SessionDescription(
        origin=origin,
        session_name=session_name,
        connection=connection,
        timing=timing,
        attributes=attributes,
        media=media_list,
        other_lines=other,
    )


# --------------------------------------------------------------------------- events


def parse_events(value: str) -> set[int]:
    """RFC 4733 §2.4.1 event list (``"0-15,66,70"``) to a set of event codes."""
    events: set[int] = set()
    for item in value.replace(" ", "").split(","):
        low, sep, high = item.partition("-")
        try:
            start = int(low)
            stop = int(high) if sep else start
        except ValueError as exc:
            raise RemoteProtocolError(f"malformed telephone-event list {value!r}") from exc
        if not 0 <= start <= stop <= 255:
            raise RemoteProtocolError(f"malformed telephone-event list {value!r}")
        events.update(range(start, stop + 1))
    return events


def format_events(events: Iterable[int]) -> str:
    """A set of event codes as the shortest RFC 4733 list (``{0,...,16}`` -> ``"0-16"``)."""
    ordered = sorted(set(events))
    ranges: list[str] = []
    index = 0
    while index < len(ordered):
        start = stop = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == stop + 1:
            index += 1
            stop = ordered[index]
        ranges.append(str(start) if start == stop else f"{start}-{stop}")
        index += 1
    return ",".join(ranges)


# RFC 4733 §2.4.1: without fmtp, a receiver understands events 0-15.
_DEFAULT_EVENTS = "0-15"

# --------------------------------------------------------------------------- offer/answer


@dataclass(frozen=True)
class Codec:
    """A codec this side supports, for offers and answers.

    ``payload_type`` is the number used in offers (for a dynamic type, only a
    preference: an answer reuses the offer's number).  ``fmtp`` goes into offers;
    for telephone-event it is the event list this side understands.
    """

    name: str
    clock_rate: int = 8000
    payload_type: int | None = None
    channels: int = 1
    fmtp: str | None = None

    def matches(self, codec: RtpCodec) -> bool:
        return (
            self.name.lower() == codec.name.lower()
            and self.clock_rate == codec.clock_rate
            and self.channels == codec.channels
        )

    @property
    def is_telephone_event(self) -> bool:
        return self.name.lower() == "telephone-event"


PCMU = Codec("PCMU", 8000, 0)
PCMA = Codec("PCMA", 8000, 8)
TELEPHONE_EVENT = Codec("telephone-event", 8000, 101, fmtp="0-16")

_ACCEPTED_PROTOS = frozenset({"RTP/AVP"})


def _addrtype(address: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    except ValueError:
        return "IP4"  # an FQDN: RFC 8866 allows it, IP4 is the usual addrtype


def _check_port(port: int) -> None:
    if not 0 < port <= 65535:
        raise LocalProtocolError(f"media port out of range: {port}")


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise LocalProtocolError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def _rtpmap_attr(pt: int, codec: RtpCodec | Codec) -> Attribute:
    encoding = f"{codec.name}/{codec.clock_rate}"
    if codec.channels != 1:
        encoding += f"/{codec.channels}"
    return Attribute("rtpmap", f"{pt} {encoding}")


def build_offer(
    *,
    address: str,
    port: int,
    session_id: str,
    session_version: str,
    codecs: Sequence[Codec] = (PCMU, PCMA, TELEPHONE_EVENT),
    username: str = "-",
    session_name: str = "-",
    ptime: int | None = 20,
    direction: str = "sendrecv",
) -> SessionDescription:
    """An offer with one audio stream at ``address``:``port`` listing ``codecs`` in order.

    Every codec gets an ``a=rtpmap`` line (static ones too, as common PBXs do) and
    its ``a=fmtp`` when it has one.  Raises LocalProtocolError for a codec without
    a payload type, a duplicate payload type, a bad port or direction.
    """
    _check_port(port)
    _check_direction(direction)
    addrtype = _addrtype(address)
    seen: set[int] = set()
    attributes: list[Attribute] = []
    fmtps: list[Attribute] = []
    for codec in codecs:
        if codec.payload_type is None or not 0 <= codec.payload_type <= 127:
            raise LocalProtocolError(f"codec {codec.name} needs a payload type 0-127")
        if codec.payload_type in seen:
            raise LocalProtocolError(f"payload type {codec.payload_type} used twice")
        seen.add(codec.payload_type)
        attributes.append(_rtpmap_attr(codec.payload_type, codec))
        if codec.fmtp is not None:
            fmtps.append(Attribute("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    attributes.extend(fmtps)
    if ptime is not None:
        attributes.append(Attribute("ptime", str(ptime)))
    attributes.append(Attribute(direction))
    media = Media(
        media="audio",
        port=port,
        proto="RTP/AVP",
        formats=[str(c.payload_type) for c in codecs],
        attributes=attributes,
    )
    return SessionDescription(
        origin=Origin(username, session_id, session_version, "IN", addrtype, address),
        session_name=session_name,
        connection=Connection(address, addrtype),
        timing=[Timing(0, 0)],
        media=[media],
    )


_DIRECTION_SETS: dict[str, frozenset[str]] = {
    "sendrecv": frozenset({"send", "recv"}),
    "sendonly": frozenset({"send"}),
    "recvonly": frozenset({"recv"}),
    "inactive": frozenset(),
}


def _answer_direction(offered: str, local: str) -> str:
    # RFC 3264 §6.1: the answer mirrors the offer (they send -> we receive),
    # restricted by what this side wants (e.g. sendonly to put the call on hold).
    offer_set = _DIRECTION_SETS[offered]
    mirrored = {"recv" if "send" in offer_set else "", "send" if "recv" in offer_set else ""}
    wanted = frozenset(mirrored - {""}) & _DIRECTION_SETS[local]
    return next(name for name, dirs in _DIRECTION_SETS.items() if dirs == wanted)


def _offered_formats(media: Media) -> list[str]:
    out = []
    for pt in media.payload_types:
        codec = media.codec(pt)
        out.append(f"{pt} {codec.name}/{codec.clock_rate}" if codec else f"{pt} ?")
    return out


def build_answer(
    offer: SessionDescription,
    *,
    address: str,
    port: int,
    session_id: str,
    session_version: str,
    supported: Sequence[Codec] = (PCMU, PCMA, TELEPHONE_EVENT),
    username: str = "-",
    session_name: str = "-",
    ptime: int | None = 20,
    direction: str = "sendrecv",
) -> SessionDescription:
    """The RFC 3264 answer to ``offer``, receiving audio at ``address``:``port``.

    * One m= line per offered m= line, in order.  The first offered ``audio``
      ``RTP/AVP`` stream with a non-zero port and a codec in common is accepted;
      every other stream is rejected with port 0 (video, SRTP, a second audio).
    * The accepted stream carries the first offered codec that is in ``supported``
      (the offerer's preference wins), plus telephone-event when both sides have
      it, with the offer's payload type numbers; the telephone-event fmtp is the
      intersection of both event lists (no fmtp in the offer means 0-15).
    * The direction mirrors the offer's (sendonly -> recvonly...), restricted by
      ``direction``.  ``t=`` copies the offer's.

    Raises NoCommonCodecError when no stream can be accepted, RemoteProtocolError
    when the offer's accepted stream is malformed, LocalProtocolError for bad
    arguments.
    """
    _check_port(port)
    _check_direction(direction)
    addrtype = _addrtype(address)
    voice_codecs = [c for c in supported if not c.is_telephone_event]
    event_codec = next((c for c in supported if c.is_telephone_event), None)
    answered: list[Media] = []
    accepted = False
    offered_audio: list[str] = []
    for offered in offer.media:
        chosen: Media | None = None
        if (
            not accepted
            and offered.media.lower() == "audio"
            and offered.port != 0
            and offered.proto.upper() in _ACCEPTED_PROTOS
        ):
            offered_audio.extend(_offered_formats(offered))
            chosen = _accept_audio(
                offered,
                voice_codecs=voice_codecs,
                event_codec=event_codec,
                port=port,
                ptime=ptime,
                direction=_answer_direction(offer.media_direction(offered), direction),
            )
        if chosen is None:
            # RFC 3264 §6: a rejected stream keeps its media, proto and formats.
            chosen = Media(
                media=offered.media, port=0, proto=offered.proto, formats=list(offered.formats)
            )
        else:
            accepted = True
        answered.append(chosen)
    if not accepted:
        raise NoCommonCodecError(
            "no common codec: the offer has no acceptable audio stream "
            f"(offered {offered_audio or 'no RTP/AVP audio'}; "
            f"supported {[c.name for c in voice_codecs]})",
            offered_audio,
        )
    return SessionDescription(
        origin=Origin(username, session_id, session_version, "IN", addrtype, address),
        session_name=session_name,
        connection=Connection(address, addrtype),
        timing=[Timing(t.start, t.stop) for t in offer.timing] or [Timing(0, 0)],
        media=answered,
    )


def _accept_audio(
    offered: Media,
    *,
    voice_codecs: Sequence[Codec],
    event_codec: Codec | None,
    port: int,
    ptime: int | None,
    direction: str,
) -> Media | None:
    voice: RtpCodec | None = None
    event: RtpCodec | None = None
    for pt in offered.payload_types:
        codec = offered.codec(pt)
        if codec is None:
            continue
        if voice is None and any(c.matches(codec) for c in voice_codecs):
            voice = codec
        elif event is None and event_codec is not None and event_codec.matches(codec):
            event = codec
    if voice is None:
        return None
    formats = [str(voice.payload_type)]
    attributes = [_rtpmap_attr(voice.payload_type, voice)]
    if event is not None and event_codec is not None:
        theirs = parse_events(offered.fmtp(event.payload_type) or _DEFAULT_EVENTS)
        ours = parse_events(event_codec.fmtp or _DEFAULT_EVENTS)
        common = theirs & ours
        if common:
            formats.append(str(event.payload_type))
            attributes.append(_rtpmap_attr(event.payload_type, event))
            attributes.append(Attribute("fmtp", f"{event.payload_type} {format_events(common)}"))
    if ptime is not None:
        attributes.append(Attribute("ptime", str(ptime)))
    attributes.append(Attribute(direction))
    return Media(
        media="audio", port=port, proto=offered.proto, formats=formats, attributes=attributes
    )


# --------------------------------------------------------------------------- inspection


@dataclass(frozen=True)
class AudioEndpoint:
    """Where and how audio flows for one side's SDP.

    ``codec`` is the first format other than telephone-event and comfort noise
    (in an answer, the negotiated codec; None when the stream lists no such
    format); ``telephone_event`` the telephone-event payload, if any.
    """

    address: str
    port: int
    codec: RtpCodec | None
    telephone_event: RtpCodec | None
    direction: str
    ptime: int | None


def audio_endpoint(sdp: SessionDescription) -> AudioEndpoint | None:
    """The first active (non-zero port) audio stream's endpoint, or None when none.

    The media-level ``c=`` wins over the session-level one.  Raises
    RemoteProtocolError when the stream has no ``c=`` at either level or its
    formats are malformed.
    """
    for media in sdp.media:
        if media.media.lower() != "audio" or media.port == 0:
            continue
        connection = sdp.media_connection(media)
        if connection is None:
            raise RemoteProtocolError("audio stream without a c= line at either level")
        codec: RtpCodec | None = None
        event: RtpCodec | None = None
        for pt in media.payload_types:
            found = media.codec(pt)
            if found is None:
                continue
            name = found.name.lower()
            if name == "telephone-event":
                event = event or found
            elif name != "cn" and codec is None:
                codec = found
        return AudioEndpoint(
            address=connection.host,
            port=media.port,
            codec=codec,
            telephone_event=event,
            direction=sdp.media_direction(media),
            ptime=media.ptime,
        )
    return None
