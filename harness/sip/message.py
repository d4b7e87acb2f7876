"""The SIP message model: :class:`Headers`, :class:`Request`, :class:`Response`.

Messages are plain mutable objects built from structured values; the parser
(:mod:`harness.sip.parser`) produces them and :meth:`Message.to_bytes` serialises
them.  Header names are compared case-insensitively and compact forms (``v``,
``f``, ``i``...) are expanded to their canonical long names on insertion, so
``headers.get("via")`` finds a header received as ``v:``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, cast

from harness.sip.errors import LocalProtocolError

SIP_VERSION = "SIP/2.0"

#: RFC 3261 §7.3.3 and later RFCs: compact form -> canonical name.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Expires",
        "From",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "MIME-Version",
        "Organization",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Path",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Service-Route",
        "Subject",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
        *COMPACT_FORMS.values(),
    )
}

#: Headers whose values contain commas that do not separate values (RFC 3261
#: §7.3.1: the auth headers' grammar is not a comma-separated list of values).
NON_SPLITTABLE: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "www-authenticate",
        "proxy-authenticate",
        "authentication-info",
        "date",
        "retry-after",
        "subject",
        "user-agent",
        "server",
        "organization",
        "call-id",
        "cseq",
        "content-length",
        "content-type",
        "max-forwards",
        "expires",
        "min-expires",
        "timestamp",
        "warning",
        "reason",
        "identity",
    }
)


def canonical_name(name: str) -> str:
    """Return the canonical spelling of a header name (compact forms expanded)."""
    lowered = name.strip().lower()
    if len(lowered) == 1 and lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    return _CANONICAL.get(lowered, name.strip())


def split_header_values(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quotes and ``<...>``.

    ``'<sip:a@x>;q=1, "B, b" <sip:b@y>'`` gives two values.
    """
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    in_angle = False
    escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
            current.append(ch)
            continue
        if ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    tail = "".join(current).strip()
    if tail or parts:
        parts.append(tail)
    return [p for p in parts if p]


#: Memo of :func:`_lookup_key` and of lower-cased field names. Names come from code
#: and from captures, so both are bounded: past the limit they are computed each time.
_MEMO_LIMIT = 4096
_LOOKUP_KEYS: dict[str, str] = {}
_LOWER_NAMES: dict[str, str] = {}
_SHARED_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}
#: Marks a value a memo below has not seen yet (None is a memoised answer).
_UNSEEN: Final = object()
#: Memo of :attr:`Message.cseq` by the header's value (bounded like the memos above).
_CSEQS: dict[str, object] = {}


def _lookup_key(name: str) -> str:
    """``canonical_name(name).lower()``, memoised (the key every lookup compares)."""
    key = _LOOKUP_KEYS.get(name)
    if key is None:
        key = canonical_name(name).lower()
        if len(_LOOKUP_KEYS) < _MEMO_LIMIT:
            _LOOKUP_KEYS[name] = key
    return key


def _shared_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple per header layout: a capture's messages share a handful of them."""
    shared = _SHARED_KEYS.get(keys)
    if shared is None:
        if len(_SHARED_KEYS) >= _MEMO_LIMIT:
            _SHARED_KEYS.clear()
        shared = _SHARED_KEYS[keys] = keys
    return shared


def lower_name(name: str) -> str:
    """``name.lower()``, memoised so that every message shares one string per name."""
    lowered = _LOWER_NAMES.get(name)
    if lowered is None:
        lowered = name.lower()
        if len(_LOWER_NAMES) < _MEMO_LIMIT:
            _LOWER_NAMES[name] = lowered
    return lowered


class Headers:
    """An ordered, case-insensitive multi-map of header fields.

    Each stored field is one ``(canonical name, value)`` pair as it appeared on
    a header line (a line ``Via: a, b`` is stored once; :meth:`get_all` splits it).
    """

    # ``_keys`` caches the lower-cased field names for lookups (None until the first
    # lookup after a change); every method that changes ``_fields`` resets it.
    __slots__ = ("_fields", "_keys")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = []
        self._keys: tuple[str, ...] | None = None
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def from_canonical(
        cls, fields: list[tuple[str, str]], keys: tuple[str, ...] | None = None
    ) -> Headers:
        """Wrap fields whose names are canonical and whose values hold no line break.

        The list is taken over, not copied: this is the parser's fast path, which
        has already done what :meth:`add` checks for every field. ``keys``, when
        given, is ``lower_name(name)`` of every field's name, in order.
        """
        headers = cls()  # not cls.__new__(cls): mypyc cannot compile that (harness.accel)
        headers._fields = fields
        headers._keys = None if keys is None else _shared_keys(keys)
        return headers

    def _lookup_keys(self) -> tuple[str, ...]:
        keys = self._keys
        if keys is None:
            keys = self._keys = _shared_keys(tuple(lower_name(name) for name, _ in self._fields))
        return keys

    def add(self, name: str, value: str) -> None:
        """Append a field after any existing ones."""
        if "\r" in value or "\n" in value:
            raise LocalProtocolError(f"header {name!r} value contains a line break")
        self._fields.append((canonical_name(name), value))
        self._keys = None

    def insert_first(self, name: str, value: str) -> None:
        """Insert a field before every other (a new top Via, a pre-loaded Route)."""
        if "\r" in value or "\n" in value:
            raise LocalProtocolError(f"header {name!r} value contains a line break")
        self._fields.insert(0, (canonical_name(name), value))
        self._keys = None

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name with one field (at the first one's place)."""
        canon = canonical_name(name)
        key = canon.lower()
        for index, (existing, _) in enumerate(self._fields):
            if existing.lower() == key:
                self._fields[index] = (canon, value)
                self._fields = [
                    pair
                    for i, pair in enumerate(self._fields)
                    if i == index or pair[0].lower() != key
                ]
                self._keys = None
                return
        self.add(canon, value)

    def replace(self, name: str, values: Iterable[str]) -> None:
        """Replace every field of that name by ``values`` (one field each), placed
        where the first one was (at the end when there was none)."""
        canon = canonical_name(name)
        key = canon.lower()
        new = [(canon, value) for value in values]
        for value in (v for _, v in new):
            if "\r" in value or "\n" in value:
                raise LocalProtocolError(f"header {name!r} value contains a line break")
        at = next((i for i, (n, _) in enumerate(self._fields) if n.lower() == key), None)
        kept = [pair for pair in self._fields if pair[0].lower() != key]
        if at is None:
            self._fields = kept + new
        else:
            before = sum(1 for n, _ in self._fields[:at] if n.lower() != key)
            self._fields = kept[:before] + new + kept[before:]
        self._keys = None

    def remove(self, name: str) -> None:
        """Remove every field of that name."""
        key = canonical_name(name).lower()
        self._fields = [pair for pair in self._fields if pair[0].lower() != key]
        self._keys = None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of that header (for a splittable header, the first element).

        Same answer as ``get_all(name)[0]``, without splitting every value (the
        checks call this for every header of every captured message).
        """
        key = _LOOKUP_KEYS.get(name) or _lookup_key(name)
        keys = self._keys
        if keys is None:
            keys = self._lookup_keys()
        if key not in keys:
            return default
        fields = self._fields
        first = fields[keys.index(key)][1]
        if key in NON_SPLITTABLE:
            return first
        # The common case: one plain value on the first line of that name.
        if "," not in first:
            stripped = first.strip()
            if stripped:
                return stripped
        for index, field_key in enumerate(keys):
            if field_key != key:
                continue
            value = fields[index][1]
            if "," not in value:
                stripped = value.strip()
                if stripped:
                    return stripped
                continue
            parts = split_header_values(value)
            if parts:
                return parts[0]
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of that header, in order, comma-separated lists split.

        The auth headers and the other single-valued headers of
        :data:`NON_SPLITTABLE` are never split on commas.
        """
        key = _lookup_key(name)
        raw = self._raw(key)
        if not raw or key in NON_SPLITTABLE:
            return raw
        values: list[str] = []
        for value in raw:
            values.extend(split_header_values(value))
        return values

    def get_raw(self, name: str) -> list[str]:
        """Every field value of that name, unsplit, as on the wire."""
        return self._raw(_lookup_key(name))

    def _raw(self, key: str) -> list[str]:
        keys = self._lookup_keys()
        if key not in keys:
            return []
        return [
            pair[1] for field_key, pair in zip(keys, self._fields, strict=True) if field_key == key
        ]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return _lookup_key(name) in self._lookup_keys()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._fields))

    def __len__(self) -> int:
        return len(self._fields)

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self._fields] == [
            (n.lower(), v) for n, v in other._fields
        ]

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"

    def copy(self) -> Headers:
        clone = Headers()
        clone._fields = list(self._fields)
        clone._keys = self._keys
        return clone


@dataclass
class Message:
    """Fields common to requests and responses."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    # --- convenience accessors for the headers every message carries -----------
    @property
    def call_id(self) -> str | None:
        return self.headers.get("Call-ID")

    @property
    def cseq(self) -> tuple[int, str] | None:
        """``(number, method)`` of the CSeq header, or None when absent or malformed."""
        raw = self.headers.get("CSeq")
        if raw is None:
            return None
        # A capture repeats a few CSeq values ("1 INVITE", "2 BYE"...) many times.
        found = _CSEQS.get(raw, _UNSEEN)
        if found is _UNSEEN:
            parts = raw.split()
            found = None
            if len(parts) == 2 and parts[0].isdigit():
                found = int(parts[0]), parts[1]
            if len(_CSEQS) >= _MEMO_LIMIT:
                _CSEQS.clear()
            _CSEQS[raw] = found
        return cast("tuple[int, str] | None", found)

    def start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self, *, compact: bool = False) -> bytes:
        """Serialise: start line, header lines, empty line, body.

        Content-Length is always written and always equals ``len(body)``
        (an existing Content-Length header is replaced).
        """
        lines = [self.start_line()]
        reverse_compact = {v.lower(): k for k, v in COMPACT_FORMS.items()} if compact else {}
        for name, value in self.headers:
            if name.lower() == "content-length":
                continue
            out_name = reverse_compact.get(name.lower(), name) if compact else name
            lines.append(f"{out_name}: {value}")
        length_name = "l" if compact else "Content-Length"
        lines.append(f"{length_name}: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8") + self.body


@dataclass
class Request(Message):
    """A SIP request; ``uri`` is the Request-URI exactly as on the wire."""

    method: str = ""
    uri: str = ""
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call_id={self.call_id!r}>"


@dataclass
class Response(Message):
    """A SIP response."""

    status: int = 0
    reason: str = ""
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call_id={self.call_id!r}>"


def make_request(
    method: str, uri: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
) -> Request:
    """Build a request from structured parts (keyword-friendly constructor)."""
    return Request(method=method, uri=uri, headers=Headers(headers), body=body)


def make_response(
    status: int, reason: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
) -> Response:
    """Build a response from structured parts."""
    return Response(status=status, reason=reason, headers=Headers(headers), body=body)
