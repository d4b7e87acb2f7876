"""Tolerant readers of captured SIP messages, shared by the checks.

Everything here returns None (or an empty tuple) for a header that is missing or
malformed instead of raising: a peer's malformed header is something a check
reports, never a reason for it to crash.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, cast

from harness.capture.decode import CapturedMessage, Unreachable
from harness.capture.flows import Call, Transaction, from_tag, to_tag
from harness.checks.registry import CheckContext, Evidence
from harness.numbers.effective import Target
from harness.sip.digest import Challenge, Credentials, parse_challenges, parse_credentials
from harness.sip.errors import SipError
from harness.sip.message import Request, Response
from harness.sip.uri import NameAddr, SipUri, TelUri, Via, parse_name_addr, parse_uri, parse_via

AUTH_HEADERS = ("Authorization", "Proxy-Authorization")
CHALLENGE_HEADERS = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}

# Every check re-reads the same headers of the same messages, so parses are memoised
# by the header value's text (the parsed types are frozen, sharing them is safe).
# Outside a run the bounds cap the memory; while :func:`whole_run_memo` is active
# (run_checks holds it) nothing is evicted: a Via value is unique to its transaction,
# so a bounded memo forgot each one before the next check asked for it again, and
# every check re-parsed every Via of the capture. The memo is emptied when the run ends.
_RECENT_VALUES = 8192
_AUTH_VALUES = 32768

_T = TypeVar("_T")
_MISSING: Final = object()


class _ValueMemo(Generic[_T]):
    """``parse(text)`` memoised by text: bounded, or unbounded inside a whole run."""

    __slots__ = ("_bound", "_parse", "_values")

    def __init__(self, parse: Callable[[str], _T], bound: int) -> None:
        self._parse = parse
        self._bound = bound
        self._values: dict[str, _T] = {}

    def __call__(self, value: str) -> _T:
        found = self._values.get(value, _MISSING)
        if found is _MISSING:
            parsed = self._parse(value)
            if not _WHOLE_RUNS and len(self._values) >= self._bound:
                self._values.clear()
            self._values[value] = parsed
            return parsed
        return cast(_T, found)

    def clear(self) -> None:
        self._values.clear()


_MEMOS: list[_ValueMemo[Any]] = []
# One entry per active :func:`whole_run_memo` block (a list: no ``global`` needed).
_WHOLE_RUNS: list[None] = []


def _memoised(bound: int) -> Callable[[Callable[[str], _T]], _ValueMemo[_T]]:
    def wrap(parse: Callable[[str], _T]) -> _ValueMemo[_T]:
        memo = _ValueMemo(parse, bound)
        _MEMOS.append(memo)
        return memo

    return wrap


@contextmanager
def whole_run_memo() -> Iterator[None]:
    """Keep every parsed header value until the outermost such block ends.

    For one run of the catalogue over a capture: each value is then parsed once for
    all the checks. On exit of the outermost block the memos are emptied.
    """
    _WHOLE_RUNS.append(None)
    try:
        yield
    finally:
        _WHOLE_RUNS.pop()
        if not _WHOLE_RUNS:
            for memo in _MEMOS:
                memo.clear()


def request_of(captured: CapturedMessage | None) -> Request | None:
    if captured is None:
        return None
    msg = captured.message
    return msg if isinstance(msg, Request) else None


def response_of(captured: CapturedMessage | None) -> Response | None:
    if captured is None:
        return None
    msg = captured.message
    return msg if isinstance(msg, Response) else None


def status_of(captured: CapturedMessage) -> int:
    msg = captured.message
    return msg.status if isinstance(msg, Response) else 0


def method_of(captured: CapturedMessage) -> str:
    """The request method, or the CSeq method of a response ("" when unknown)."""
    msg = captured.message
    if isinstance(msg, Request):
        return msg.method
    cseq = msg.cseq
    return cseq[1] if cseq else ""


def name_addr(value: str | None) -> NameAddr | None:
    if value is None:
        return None
    return _name_addr(value)


@_memoised(_RECENT_VALUES)
def _name_addr(value: str) -> NameAddr | None:
    try:
        return parse_name_addr(value)
    except (SipError, ValueError):
        return None


def header_uri(msg: Request | Response, header: str) -> SipUri | TelUri | None:
    """The URI of the first value of a name-addr header (From, To, P-Asserted-Identity)."""
    parsed = name_addr(msg.headers.get(header))
    return None if parsed is None else parsed.uri


def request_uri(msg: Request) -> SipUri | TelUri | None:
    return _uri(msg.uri)


@_memoised(_RECENT_VALUES)
def _uri(text: str) -> SipUri | TelUri | None:
    try:
        return parse_uri(text)
    except (SipError, ValueError):
        return None


def uri_user(uri: SipUri | TelUri | None) -> str | None:
    """The user part (unescaped, without ``;`` user parameters) or a tel number."""
    if uri is None:
        return None
    if isinstance(uri, TelUri):
        return uri.number
    user = uri.user_unescaped
    return None if user is None else user.split(";", 1)[0]


def uri_host(uri: SipUri | TelUri | None) -> str | None:
    return uri.host.lower() if isinstance(uri, SipUri) else None


def vias(msg: Request | Response) -> tuple[Via, ...]:
    """Every Via value, top first; malformed values are left out."""
    found: list[Via] = []
    for value in msg.headers.get_all("Via"):
        parsed = _via(value)
        if parsed is not None:
            found.append(parsed)
    return tuple(found)


def top_via(msg: Request | Response) -> Via | None:
    value = msg.headers.get("Via")
    if value is None:
        return None
    return _via(value)


@_memoised(_RECENT_VALUES)
def _via(value: str) -> Via | None:
    try:
        return parse_via(value)
    except (SipError, ValueError):
        return None


def credentials(msg: Request) -> Iterator[tuple[str, str, Credentials | None]]:
    """``(header name, raw value, parsed credentials or None)`` for every credential."""
    for header in AUTH_HEADERS:
        for value in msg.headers.get_raw(header):
            yield header, value, _credentials(value)


@_memoised(_AUTH_VALUES)
def _credentials(value: str) -> Credentials | None:
    try:
        return parse_credentials(value)
    except (SipError, ValueError):
        return None


def has_credentials(msg: Request) -> bool:
    return any(header in msg.headers for header in AUTH_HEADERS)


def challenges(msg: Response) -> tuple[Challenge, ...]:
    """The Digest challenges of a 401/407 (empty when none parse)."""
    header = CHALLENGE_HEADERS.get(msg.status)
    if header is None:
        return ()
    found: list[Challenge] = []
    for value in msg.headers.get_raw(header):
        found.extend(_challenges(value))
    return tuple(found)


@_memoised(_AUTH_VALUES)
def _challenges(value: str) -> tuple[Challenge, ...]:
    try:
        return tuple(parse_challenges(value))
    except (SipError, ValueError):
        return ()


def is_stale(msg: Response) -> bool:
    return any(c.stale for c in challenges(msg))


def route_uris(values: Iterable[str]) -> tuple[str, ...]:
    """Route/Record-Route values as normalised URI strings (for comparing route sets)."""
    found: list[str] = []
    for value in values:
        parsed = name_addr(value)
        found.append(str(parsed.uri) if parsed is not None else value.strip())
    return tuple(found)


def is_initial(msg: Request) -> bool:
    """An out-of-dialog request: no To tag."""
    return to_tag(msg) is None


def dialog_of(txn: Transaction) -> tuple[str | None, str | None]:
    """``(from tag, to tag)`` of a transaction's request (or first response)."""
    first = txn.request or (txn.responses[0] if txn.responses else None)
    if first is None:
        return None, None
    return from_tag(first.message), to_tag(first.message)


def transactions(call: Call, method: str | None = None) -> Iterator[Transaction]:
    """The call's transactions by start time (ties in their order in the call)."""
    for txn in call.transactions_by_start:
        if method is None or txn.method == method:
            yield txn


def is_private_ip(text: str) -> bool:
    """True for RFC 1918, loopback, link-local, CGNAT (RFC 6598) and ULA addresses."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.is_loopback or address.is_link_local or address.is_private:
        return not address.is_unspecified
    return address in ipaddress.ip_network("100.64.0.0/10")


def is_public_ip(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.is_global


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()


def target_text(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}/{target.transport.via_name}"


_FirstRequest = tuple[Transaction, CapturedMessage, Request]


@dataclass(frozen=True, slots=True)
class _FirstRequestRow:
    item: _FirstRequest
    method: str
    initial: bool
    outbound: bool
    inbound: bool


def _first_request_rows(ctx: CheckContext) -> tuple[_FirstRequestRow, ...]:
    """Every transaction's first request copy with its filters, computed once per context."""
    found = ctx.memo.get("first_requests")
    if found is None:
        rows: list[_FirstRequestRow] = []
        for txn in ctx.flows.transactions:
            captured = txn.request
            msg = request_of(captured)
            if captured is None or msg is None:
                continue
            rows.append(
                _FirstRequestRow(
                    (txn, captured, msg),
                    msg.method,
                    is_initial(msg),
                    ctx.outbound(captured),
                    ctx.inbound(captured),
                )
            )
        found = ctx.memo["first_requests"] = tuple(rows)
    return cast(tuple[_FirstRequestRow, ...], found)


def first_requests(
    ctx: CheckContext, *methods: str, initial: bool | None = None, outbound: bool | None = None
) -> Iterator[tuple[Transaction, CapturedMessage, Request]]:
    """The first copy of each transaction's request, in capture order.

    ``methods`` filters by method (all when empty); ``initial`` True keeps
    out-of-dialog requests only (no To tag), False in-dialog only; ``outbound``
    True keeps what the platform sent, False what it received.
    """
    for row in _first_request_rows(ctx):
        if methods and row.method not in methods:
            continue
        if initial is not None and row.initial != initial:
            continue
        if outbound is True and not row.outbound:
            continue
        if outbound is False and not row.inbound:
            continue
        yield row.item


#: A client transaction's lifetime with RFC 3261's default T1 (64*T1, Timers B and F).
TRANSACTION_LIFETIME = 32.0


def unreachable_for(ctx: CheckContext, captured: CapturedMessage) -> Unreachable | None:
    """The first ICMP destination-unreachable for a UDP request's datagrams, or None.

    It must quote the request's own flow (source and destination endpoints) and come
    within :data:`TRANSACTION_LIFETIME` of the request.
    """
    if captured.transport != "udp" or not ctx.unreachable:
        return None
    latest = captured.timestamp + TRANSACTION_LIFETIME
    for item in ctx.unreachable:
        if (
            item.src == captured.src
            and item.dst == captured.dst
            and captured.timestamp <= item.timestamp <= latest
        ):
            return item
    return None


def unreachable_evidence(item: Unreachable) -> Evidence:
    return Evidence(
        None,
        item.frame,
        item.timestamp,
        f"ICMP {item.reason} from {item.reporter} for UDP {item.src} -> {item.dst}",
    )


def capture_end(ctx: CheckContext) -> float:
    """Timestamp of the last SIP message (0.0 for an empty capture)."""
    ends = [call.end for call in ctx.flows.calls]
    ends.extend(m.timestamp for m in ctx.flows.orphans)
    return max(ends, default=0.0)
