"""Parsing SIP messages from bytes (datagrams and streams).

API (stable; other modules code against it):

* :func:`parse_message` parses one complete message (a UDP datagram).
* :class:`StreamParser` frames messages on a stream transport by Content-Length:
  ``feed(data)`` then call ``next_message()`` until it returns :data:`NEED_DATA`.

Both raise :class:`~harness.sip.errors.RemoteProtocolError` and nothing else on bad
input; messages larger than ``max_size`` bytes are rejected the same way.

What is always checked (the message cannot be framed or understood otherwise):
the start line's shape (single spaces, ``SIP/2.0``, a token method and an
absolute Request-URI, or a three-digit status code 100-699), header names
(tokens), UTF-8 in the header section, line endings (CRLF only), and
Content-Length (digits, at most one, not larger than the body).

What ``validate=True`` (the default) adds, after RFC 3261 §8.1.1 and RFC 4475:
To, From, Call-ID and CSeq present exactly once and well formed, at least one
well-formed Via, the CSeq method equal to the request method, Max-Forwards (when
present: RFC 2543 peers omit it) once and 0-255, every Contact well formed, a
Date (when present) in RFC 1123 form with GMT, and a SIP Request-URI without
headers.  ``validate=False`` skips those for speed or for forensic decoding.

Header field values are kept as received except that folded lines are unfolded
(the line break and the leading whitespace of the next line become one space)
and leading/trailing whitespace is dropped; names are canonicalised (compact
forms expanded) as :class:`~harness.sip.message.Headers` does.
"""

from __future__ import annotations

import re
from typing import Final

from harness.sip.errors import RemoteProtocolError
from harness.sip.message import (
    SIP_VERSION,
    Headers,
    Request,
    Response,
    canonical_name,
    lower_name,
)
from harness.sip.uri import check_name_addr, check_request_uri, check_via

DEFAULT_MAX_SIZE: Final = 65535


class _NeedData:
    """Sentinel type of :data:`NEED_DATA` (compare with ``is``: there is one)."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

_TOKEN_CLASS = r"A-Za-z0-9\-.!%*_+`'~"
_TOKEN_RE = re.compile(rf"[{_TOKEN_CLASS}]+")
_WORD_CLASS = _TOKEN_CLASS + r"()<>:\\\"/\[\]?{}"
_CALL_ID_RE = re.compile(rf"[{_WORD_CLASS}]+(?:@[{_WORD_CLASS}]+)?")
_CSEQ_RE = re.compile(rf"([0-9]{{1,32}})[ \t]+([{_TOKEN_CLASS}]+)")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:.")
_DATE_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
_FOLD_RE = re.compile(r"\r\n[ \t]+")
_MAX_CSEQ = 2**31 - 1
# Headers whose values the parser itself looks at; others are only stored.
_TRACKED: Final = frozenset(
    {"to", "from", "call-id", "cseq", "via", "max-forwards", "contact", "date", "content-length"}
)
_NAME_CACHE_LIMIT = 4096


class _NameCache:
    """Raw header name -> (canonical name, tracked key or None, lookup key), validated once.

    The tracked key is the lower-case name for the headers in :data:`_TRACKED`, None
    for the others, so the per-line loop needs no further look-up; the lookup key is
    the lower-case canonical name :class:`Headers` compares (shared strings).
    """

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, str | None, str]] = {}

    def resolve(self, raw: str) -> tuple[str, str | None, str]:
        name = raw.rstrip(" \t")
        if not _TOKEN_RE.fullmatch(name):
            raise RemoteProtocolError(f"bad header name {raw!r}")
        canon = canonical_name(name)
        key = canon.lower()
        entry = (canon, key if key in _TRACKED else None, lower_name(canon))
        # Bounded: a peer sending random names must not grow memory without limit.
        if len(self.entries) < _NAME_CACHE_LIMIT:
            self.entries[raw] = entry
        return entry


_NAMES = _NameCache()

#: Recently parsed ``(name, value)`` header fields, each mapped to itself. Messages
#: of one call repeat most fields (Via, From, To, Call-ID, CSeq between a request
#: and its responses; Max-Forwards, Allow, User-Agent everywhere): sharing the
#: immutable pairs roughly halves the memory of a large capture's headers. Cleared
#: when full, so it stays bounded; only memory depends on it, never a result.
_RECENT_FIELDS: dict[tuple[str, str], tuple[str, str]] = {}
_RECENT_FIELDS_LIMIT: Final = 32768


def _split_list(value: str) -> list[str]:
    """Split a comma-separated header value (Via, Contact), respecting quotes and <>."""
    if "," not in value:
        return [value]
    parts: list[str] = []
    current: list[str] = []
    in_quotes = in_angle = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _parse_fields(
    lines: list[str],
) -> tuple[list[tuple[str, str]], dict[str, list[str]], list[str]] | None:
    """Header lines to fields, the values of the tracked headers by key, and every
    field's lookup key (see :class:`_NameCache`).

    Returns None when a line is a continuation (folded): the caller unfolds and
    calls again.  Folding is rare, and finding it here costs nothing extra.
    """
    fields: list[tuple[str, str]] = []
    tracked: dict[str, list[str]] = {}
    lowered: list[str] = []
    cache = _NAMES.entries
    recent = _RECENT_FIELDS
    if len(recent) > _RECENT_FIELDS_LIMIT:
        recent.clear()
    for line in lines:
        raw_name, colon, value = line.partition(":")
        if not colon:
            if line[:1] in (" ", "\t"):
                return None
            raise RemoteProtocolError(f"header line without ':' {line[:80]!r}")
        entry = cache.get(raw_name)
        if entry is None:
            # Cached names never start with whitespace, so a folded line lands here.
            if line[:1] in (" ", "\t"):
                return None
            entry = _NAMES.resolve(raw_name)
        canon, key, lookup = entry
        lowered.append(lookup)
        value = value.strip(" \t")
        pair = (canon, value)
        shared = recent.setdefault(pair, pair)
        fields.append(shared)
        value = shared[1]
        if key is not None:
            bucket = tracked.get(key)
            if bucket is None:
                tracked[key] = [value]
            else:
                bucket.append(value)
    return fields, tracked, lowered


def _parse_head(head: bytes, validate: bool) -> tuple[Request | Response, int | None]:
    """Parse the header section (without its final CRLFCRLF).

    Returns the message (empty body) and its Content-Length (None when absent).
    """
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"header section is not UTF-8: {exc.reason}") from None
    lines = text.split("\r\n")
    # Single-byte counts are cheap; together with the split they prove that every
    # CR and every LF belongs to a CRLF.
    breaks = len(lines) - 1
    if head.count(b"\n") != breaks or head.count(b"\r") != breaks:
        raise RemoteProtocolError("bare CR or LF in the header section (lines end in CRLF)")
    start = lines[0]

    method: str | None = None
    uri = reason = ""
    status = 0
    if start[:4].upper() == "SIP/":
        parts = start.split(" ", 2)
        if len(parts) < 2:
            raise RemoteProtocolError(f"malformed status line {start!r}")
        version, code = parts[0], parts[1]
        if version.upper() != SIP_VERSION:
            raise RemoteProtocolError(f"unsupported SIP version {version!r}")
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
            raise RemoteProtocolError(f"bad status code {code!r} (three digits, 100-699)")
        # An empty reason phrase is valid ("SIP/2.0 100 "); a missing final space is
        # tolerated.
        status = int(code)
        reason = parts[2] if len(parts) == 3 else ""
    else:
        parts = start.split(" ")
        if len(parts) != 3:
            raise RemoteProtocolError(
                f"malformed request line {start!r} (method SP Request-URI SP SIP/2.0)"
            )
        method, uri, version = parts
        if not _TOKEN_RE.fullmatch(method):
            raise RemoteProtocolError(f"bad method {method!r}")
        if version.upper() != SIP_VERSION:
            raise RemoteProtocolError(f"unsupported SIP version {version!r}")
        if not _SCHEME_RE.match(uri):
            raise RemoteProtocolError(f"bad Request-URI {uri!r}")

    parsed = _parse_fields(lines[1:])
    if parsed is None:
        if lines[1][:1] in (" ", "\t"):
            raise RemoteProtocolError("the start line cannot be folded")
        # RFC 3261 §7.3.1: a line break plus the next line's leading whitespace is
        # one SP.
        parsed = _parse_fields(_FOLD_RE.sub(" ", text).split("\r\n")[1:])
        if parsed is None:  # pragma: no cover - unfolding leaves no continuation line
            raise RemoteProtocolError("folded header line")
    fields, tracked, lowered = parsed
    headers = Headers.from_canonical(fields, tuple(lowered))
    message: Request | Response
    if method is None:
        message = Response(headers=headers, status=status, reason=reason)
    else:
        message = Request(headers=headers, method=method, uri=uri)

    length: int | None = None
    lengths = tracked.get("content-length")
    if lengths is not None:
        if len(lengths) > 1:
            raise RemoteProtocolError("several Content-Length headers")
        raw_length = lengths[0]
        if not (raw_length.isdigit() and raw_length.isascii()) or len(raw_length) > 32:
            raise RemoteProtocolError(f"bad Content-Length {raw_length!r}")
        length = int(raw_length)

    if validate:
        _validate(message, method, tracked)
    return message, length


def _single(tracked: dict[str, list[str]], key: str, name: str) -> str:
    values = tracked.get(key)
    if values is None:
        raise RemoteProtocolError(f"missing {name} header")
    if len(values) > 1:
        raise RemoteProtocolError(f"several {name} headers")
    return values[0]


def _validate(
    message: Request | Response, method: str | None, tracked: dict[str, list[str]]
) -> None:
    check_name_addr(_single(tracked, "to", "To"))
    check_name_addr(_single(tracked, "from", "From"))
    call_id = _single(tracked, "call-id", "Call-ID")
    if not _CALL_ID_RE.fullmatch(call_id):
        raise RemoteProtocolError(f"malformed Call-ID {call_id!r}")
    cseq = _single(tracked, "cseq", "CSeq")
    match = _CSEQ_RE.fullmatch(cseq)
    if match is None or int(match.group(1)) > _MAX_CSEQ:
        raise RemoteProtocolError(f"malformed CSeq {cseq!r}")
    if method is not None and match.group(2) != method:
        raise RemoteProtocolError(f"CSeq method {match.group(2)!r} differs from {method!r}")
    vias = tracked.get("via")
    if vias is None:
        raise RemoteProtocolError("missing Via header")
    for value in vias:
        for part in _split_list(value):
            check_via(part)
    forwards = tracked.get("max-forwards")
    if forwards is not None:
        value = _single(tracked, "max-forwards", "Max-Forwards")
        # Leading zeros are valid (RFC 4475 wsinv sends "0068").
        if not (value.isdigit() and value.isascii()) or len(value) > 32 or int(value) > 255:
            raise RemoteProtocolError(f"bad Max-Forwards {value!r} (0-255)")
    contacts = tracked.get("contact")
    if contacts is not None:
        for value in contacts:
            if value == "*":
                continue
            for part in _split_list(value):
                check_name_addr(part)
    dates = tracked.get("date")
    if dates is not None:
        for value in dates:
            if not _DATE_RE.fullmatch(value):
                raise RemoteProtocolError(f"bad Date {value!r} (RFC 1123, GMT)")
    if isinstance(message, Request):
        check_request_uri(message.uri)


def parse_message(
    data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, validate: bool = True
) -> Request | Response:
    """Parse one whole message (a datagram).

    A datagram's body is what follows the empty line; when Content-Length is
    present it must not exceed the bytes available (extra bytes are dropped,
    RFC 3261 §18.3).  CRLFs before the start line are skipped.
    """
    if len(data) > max_size:
        raise RemoteProtocolError(f"message of {len(data)} bytes exceeds {max_size}")
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise RemoteProtocolError("no empty line ends the header section")
    message, length = _parse_head(data[:end], validate)
    body_start = end + 4
    if length is None:
        message.body = data[body_start:]
    else:
        if len(data) - body_start < length:
            raise RemoteProtocolError(
                f"Content-Length {length} exceeds the {len(data) - body_start} body bytes"
            )
        message.body = data[body_start : body_start + length]
    return message


class StreamParser:
    """Incremental framing for TCP/TLS: Content-Length is mandatory on streams.

    ``feed()`` any number of bytes, then call ``next_message()`` until it returns
    :data:`NEED_DATA`: one message may span many feeds and one feed may hold many
    messages.  CRLFs between messages (RFC 5626 keep-alives) are skipped.  A
    message whose header section or total size exceeds ``max_size`` raises
    :class:`RemoteProtocolError`, as does any malformed message; after an error
    the stream cannot be resynchronised and every later call raises again.
    """

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE, validate: bool = True) -> None:
        self.max_size = max_size
        self.validate = validate
        self._buffer = bytearray()
        # Where to resume looking for the end of the header section.
        self._scan_from = 0
        # A parsed head waiting for its body: (message, body offset, total size).
        self._pending: tuple[Request | Response, int, int] | None = None
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._error is not None:
            raise RemoteProtocolError(f"stream already failed: {self._error}")
        self._buffer += data

    def next_message(self) -> Request | Response | _NeedData:
        """The next complete message, or :data:`NEED_DATA`."""
        if self._error is not None:
            raise RemoteProtocolError(f"stream already failed: {self._error}")
        try:
            return self._next()
        except RemoteProtocolError as exc:
            self._error = exc
            raise

    def _next(self) -> Request | Response | _NeedData:
        buffer = self._buffer
        if self._pending is None:
            if buffer[:1] == b"\r" or buffer[:1] == b"\n":
                skip = len(buffer) - len(buffer.lstrip(b"\r\n"))
                del buffer[:skip]
                self._scan_from = 0
            end = buffer.find(b"\r\n\r\n", self._scan_from)
            if end < 0:
                if len(buffer) > self.max_size:
                    raise RemoteProtocolError(
                        f"header section exceeds {self.max_size} bytes without ending"
                    )
                self._scan_from = max(0, len(buffer) - 3)
                return NEED_DATA
            if end + 4 > self.max_size:
                raise RemoteProtocolError(f"header section exceeds {self.max_size} bytes")
            message, length = _parse_head(bytes(buffer[:end]), self.validate)
            if length is None:
                raise RemoteProtocolError("no Content-Length on a stream transport")
            total = end + 4 + length
            if total > self.max_size:
                raise RemoteProtocolError(f"message of {total} bytes exceeds {self.max_size}")
            self._pending = (message, end + 4, total)
        message, body_start, total = self._pending
        if len(buffer) < total:
            return NEED_DATA
        message.body = bytes(buffer[body_start:total])
        del buffer[:total]
        self._pending = None
        self._scan_from = 0
        return message
