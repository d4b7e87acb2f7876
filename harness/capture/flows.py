"""The flow model: decoded messages grouped into transactions, calls and a ladder.

:func:`build_flows` takes the :class:`~harness.capture.decode.CapturedMessage` records
of a capture (a :class:`~harness.capture.decode.Decoded` or any iterable, in time
order) and returns :class:`Flows`. Everything is a frozen dataclass holding tuples,
and every message object is the very record of ``Decoded.messages`` (compare with
``is`` or by ``index``).

Grouping rules (RFC 3261 §17.1.3 and §17.2.3):

* A **transaction** is keyed by the top Via ``branch`` and the CSeq method. The ACK
  of a non-2xx final response carries the INVITE's branch and belongs to the INVITE
  transaction (:attr:`Transaction.ack`); the ACK of a 2xx has a new branch and forms
  a transaction of its own (method ``ACK``, no responses). CANCEL has its own key.
  A message without an RFC 3261 branch (RFC 2543 peers) is keyed by Call-ID, CSeq
  number, From tag and the top Via's sent-by instead.
  Each proxy hop is its own transaction (a proxy's branch differs), and a
  retransmitted request joins its transaction (:attr:`Transaction.retransmissions`).
* A **call** is every message sharing a Call-ID (a dialog and the requests that
  created it, or a registration's refreshes, or an OPTIONS ping).
* A **ladder** lays messages out for a sequence diagram: one column per ``ip:port``
  in order of first appearance, one arrow per message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, cast

from harness.capture.decode import (
    CapturedMessage,
    Decoded,
    SdpMedia,
    _fewer_full_collections,
    message_sdp,
)
from harness.sip.message import Request, Response

_BRANCH: Final = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)
_TAG: Final = re.compile(r";\s*tag\s*=\s*([^;,\s]+)", re.IGNORECASE)
MAGIC_COOKIE: Final = "z9hG4bK"


@dataclass(frozen=True)
class Transaction:
    """One SIP transaction as seen on the wire.

    ``requests`` holds the request and its retransmissions (empty when the capture
    only saw responses); ``responses`` every response in time order, retransmissions
    included; ``ack`` the ACK of a non-2xx final response.
    """

    key: tuple[str, str]
    method: str
    branch: str | None
    call_id: str | None
    cseq: int | None
    requests: tuple[CapturedMessage, ...]
    responses: tuple[CapturedMessage, ...]
    ack: CapturedMessage | None
    #: The earliest and latest timestamps of its messages. Fields computed once when
    #: the transaction is built, not cached properties: checks sort transactions by
    #: ``start`` again and again, and mypyc compiles ``cached_property`` as a plain
    #: property (recomputed on every read).
    start: float
    end: float

    @property
    def request(self) -> CapturedMessage | None:
        """The first copy of the request, or None when it was not captured."""
        return self.requests[0] if self.requests else None

    @property
    def retransmissions(self) -> int:
        """How many times the request was seen again after its first copy."""
        return max(0, len(self.requests) - 1)

    @property
    def provisional(self) -> tuple[CapturedMessage, ...]:
        return tuple(m for m in self.responses if _status(m) < 200)

    @property
    def final(self) -> CapturedMessage | None:
        """The first final (>= 200) response, or None."""
        for message in self.responses:
            if _status(message) >= 200:
                return message
        return None

    @property
    def final_status(self) -> int | None:
        final = self.final
        return _status(final) if final is not None else None

    @property
    def messages(self) -> tuple[CapturedMessage, ...]:
        """Requests, responses and ACK together, in time order."""
        every = [*self.requests, *self.responses, *([self.ack] if self.ack else [])]
        return tuple(sorted(every, key=lambda m: m.index))

    @property
    def client(self) -> str | None:
        """``ip:port`` that sent the request (or received the responses)."""
        if self.requests:
            return str(self.requests[0].src)
        return str(self.responses[0].dst) if self.responses else None

    @property
    def server(self) -> str | None:
        if self.requests:
            return str(self.requests[0].dst)
        return str(self.responses[0].src) if self.responses else None


@dataclass(frozen=True)
class SdpExchange:
    """An SDP body seen in a call: which message, and its role in offer/answer.

    ``role`` follows RFC 3264 as seen in one transaction: SDP in a request is the
    offer and SDP in its responses the answer; when the request had none, SDP in a
    response is the offer and SDP in the ACK/PRACK the answer.
    """

    message: CapturedMessage
    role: str  # "offer" | "answer"
    media: tuple[SdpMedia, ...]


@dataclass(frozen=True, slots=True)
class Arrow:
    """One message drawn between two ladder columns (indexes into ``participants``)."""

    src: int
    dst: int
    label: str  # "INVITE", "200 OK"...
    offset: float  # seconds since the ladder's first message
    transport: str
    index: int  # CapturedMessage.index
    is_request: bool
    has_sdp: bool


@dataclass(frozen=True)
class Ladder:
    """A sequence diagram: columns (``ip:port``, first appearance first) and arrows."""

    participants: tuple[str, ...]
    arrows: tuple[Arrow, ...]
    start: float | None


@dataclass(frozen=True)
class Call:
    """Every message sharing one Call-ID.

    ``method`` is the method of the call's first request (``INVITE``, ``REGISTER``,
    ``OPTIONS``...), or the CSeq method of its first message when no request was
    captured. ``final_status`` is the final status of the last initial request of
    that method (one without a To tag: the attempt that counts after digest
    challenges), None when it got no final response.
    """

    call_id: str
    method: str
    messages: tuple[CapturedMessage, ...]
    transactions: tuple[Transaction, ...]
    participants: tuple[str, ...]
    start: float
    end: float
    final_status: int | None
    sdp: tuple[SdpExchange, ...]
    #: ``transactions`` sorted by :attr:`Transaction.start` (a stable sort); a field
    #: for the reason given at :attr:`Transaction.start`.
    transactions_by_start: tuple[Transaction, ...]

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def media(self) -> tuple[SdpMedia, ...]:
        """Every media line announced in the call's SDP, in order seen."""
        return tuple(item for exchange in self.sdp for item in exchange.media)

    def ladder(self) -> Ladder:
        return build_ladder(self.messages)


@dataclass(frozen=True)
class Flows:
    """Calls (by first message), transactions (by first message) and the whole ladder.

    ``orphans`` are messages without a Call-ID; they appear in no call.
    """

    calls: tuple[Call, ...]
    transactions: tuple[Transaction, ...]
    ladder: Ladder
    orphans: tuple[CapturedMessage, ...]

    def call(self, call_id: str) -> Call | None:
        for call in self.calls:
            if call.call_id == call_id:
                return call
        return None


# --- helpers ---------------------------------------------------------------------------


def _status(message: CapturedMessage) -> int:
    msg = message.message
    return msg.status if isinstance(msg, Response) else 0


def top_via_branch(message: Request | Response) -> str | None:
    """The ``branch`` parameter of the top Via, or None."""
    via = message.headers.get("Via")
    if via is None:
        return None
    found = _BRANCH.search(via)
    return found.group(1) if found else None


def _header_tag(value: str | None) -> str | None:
    """The ``tag`` header parameter of a From/To value (URI parameters ignored)."""
    if value is None:
        return None
    # Flows and checks ask for the tags of the same From/To values again and again.
    tag = _TAGS.get(value, _NO_VALUE)
    if tag is _NO_VALUE:
        close = value.rfind(">")
        found = _TAG.search(value, close + 1 if close >= 0 else 0)
        tag = found.group(1) if found else None
        if len(_TAGS) >= _TAGS_LIMIT:
            _TAGS.clear()
        _TAGS[value] = tag
    return cast(str | None, tag)


_TAGS_LIMIT: Final = 65536
_TAGS: dict[str, str | None] = {}
_NO_VALUE: Final = object()


def to_tag(message: Request | Response) -> str | None:
    return _header_tag(message.headers.get("To"))


def from_tag(message: Request | Response) -> str | None:
    return _header_tag(message.headers.get("From"))


def _branch_key(message: Request | Response, branch: str | None) -> str:
    """The transaction's branch key; ``branch`` is ``top_via_branch(message)``."""
    if branch and branch.startswith(MAGIC_COOKIE):
        return branch
    # RFC 2543 matching (RFC 3261 §17.2.3): no usable branch.
    via = message.headers.get("Via") or ""
    sent_by = via.split(";", 1)[0].strip()
    cseq = message.cseq
    number = cseq[0] if cseq else ""
    return f"rfc2543|{message.call_id}|{number}|{from_tag(message)}|{sent_by}"


def label(message: Request | Response) -> str:
    """``INVITE`` for a request, ``200 OK`` for a response."""
    if isinstance(message, Request):
        return message.method
    return f"{message.status} {message.reason}".rstrip()


class _TxnBuilder:
    __slots__ = ("ack", "branch", "call_id", "cseq", "key", "method", "requests", "responses")

    def __init__(self, key: tuple[str, str], message: Request | Response, branch: str | None):
        cseq = message.cseq
        self.key = key
        self.method = key[1]
        self.branch = branch
        self.call_id = message.call_id
        self.cseq = cseq[0] if cseq else None
        self.requests: list[CapturedMessage] = []
        self.responses: list[CapturedMessage] = []
        self.ack: CapturedMessage | None = None

    def final_status(self) -> int | None:
        for message in self.responses:
            if _status(message) >= 200:
                return _status(message)
        return None

    def freeze(self) -> Transaction:
        stamps = [m.timestamp for m in self.requests]
        stamps.extend(m.timestamp for m in self.responses)
        if self.ack is not None:
            stamps.append(self.ack.timestamp)
        return Transaction(
            self.key,
            self.method,
            self.branch,
            self.call_id,
            self.cseq,
            tuple(self.requests),
            tuple(self.responses),
            self.ack,
            min(stamps),
            max(stamps),
        )


def build_transactions(messages: Iterable[CapturedMessage]) -> tuple[Transaction, ...]:
    """Group messages into transactions (see the module docstring), by first message."""
    builders: dict[tuple[str, str], _TxnBuilder] = {}
    for captured in messages:
        msg = captured.message
        branch = top_via_branch(msg)
        branch_key = _branch_key(msg, branch)
        if isinstance(msg, Request):
            method = msg.method
            if method == "ACK":
                invite = builders.get((branch_key, "INVITE"))
                status = invite.final_status() if invite is not None else None
                if invite is not None and invite.ack is None and (status or 0) >= 300:
                    invite.ack = captured
                    continue
            key = (branch_key, method)
            builder = builders.get(key)
            if builder is None:
                builder = builders[key] = _TxnBuilder(key, msg, branch)
            builder.requests.append(captured)
        else:
            cseq = msg.cseq
            key = (branch_key, cseq[1] if cseq else "")
            builder = builders.get(key)
            if builder is None:
                builder = builders[key] = _TxnBuilder(key, msg, branch)
            builder.responses.append(captured)
    return tuple(builder.freeze() for builder in builders.values())


def _sdp_exchanges(transactions: Iterable[Transaction]) -> list[SdpExchange]:
    """Label every SDP body of a call as offer or answer (see :class:`SdpExchange`).

    ``message_sdp`` memoises each body's media, so reading them again here (and in the
    ladder) after the decoder did costs a lookup, not a parse.
    """
    items: list[tuple[CapturedMessage, bool, tuple[SdpMedia, ...]]] = []
    for txn in transactions:
        request = txn.request
        request_offered = request is not None and message_sdp(request.message) is not None
        for message in txn.messages:
            media = message_sdp(message.message)
            if media is not None:
                items.append((message, request_offered, media))
    items.sort(key=lambda item: item[0].index)
    found: list[SdpExchange] = []
    offer_in_response = False
    for message, request_offered, media in items:
        msg = message.message
        if isinstance(msg, Request):
            # ACK and PRACK answer an offer made in a response; any other request offers.
            if msg.method in ("ACK", "PRACK") and offer_in_response:
                role = "answer"
                offer_in_response = False
            else:
                role = "offer"
        elif request_offered:
            role = "answer"
        else:
            role = "offer"
            offer_in_response = True
        found.append(SdpExchange(message, role, media))
    return found


def build_ladder(messages: Iterable[CapturedMessage]) -> Ladder:
    """A :class:`Ladder` of ``messages`` (any subset, in the given order)."""
    columns: dict[str, int] = {}
    arrows: list[Arrow] = []
    start: float | None = None
    for captured in messages:
        if start is None:
            start = captured.timestamp
        src = columns.setdefault(str(captured.src), len(columns))
        dst = columns.setdefault(str(captured.dst), len(columns))
        msg = captured.message
        arrows.append(
            Arrow(
                src,
                dst,
                label(msg),
                captured.timestamp - start,
                captured.transport,
                captured.index,
                isinstance(msg, Request),
                message_sdp(msg) is not None,
            )
        )
    return Ladder(tuple(columns), tuple(arrows), start)


def _start(txn: Transaction) -> float:
    return txn.start


def _final_status(method: str, by_start: Iterable[Transaction]) -> int | None:
    """See :attr:`Call.final_status`; ``by_start`` is the call's transactions by start."""
    status: int | None = None
    for txn in by_start:
        if txn.method != method:
            continue
        request = txn.request
        if request is not None and to_tag(request.message) is not None:
            continue  # in-dialog (re-INVITE...): not the attempt that set the call up
        if txn.final_status is not None:
            status = txn.final_status
    return status


def build_flows(source: Decoded | Iterable[CapturedMessage]) -> Flows:
    """Group a capture's messages into calls and transactions; see :class:`Flows`."""
    # Like decoding, this makes millions of acyclic objects: full collections would
    # rescan the whole capture again and again (measured: half the time at 100k).
    with _fewer_full_collections():
        return _build_flows(source)


def _build_flows(source: Decoded | Iterable[CapturedMessage]) -> Flows:
    messages = tuple(source.messages if isinstance(source, Decoded) else source)
    by_call: dict[str, list[CapturedMessage]] = {}
    orphans: list[CapturedMessage] = []
    for captured in messages:
        call_id = captured.message.call_id
        if call_id is None:
            orphans.append(captured)
        else:
            by_call.setdefault(call_id, []).append(captured)
    calls: list[Call] = []
    every_txn: list[Transaction] = []
    for call_id, members in by_call.items():
        transactions = build_transactions(members)
        by_start = tuple(sorted(transactions, key=_start))
        every_txn.extend(transactions)
        first_request = next((m for m in members if m.is_request), None)
        if first_request is not None:
            assert isinstance(first_request.message, Request)
            method = first_request.message.method
        else:
            cseq = members[0].message.cseq
            method = cseq[1] if cseq else ""
        participants: dict[str, None] = {}
        for m in members:
            participants.setdefault(str(m.src))
            participants.setdefault(str(m.dst))
        calls.append(
            Call(
                call_id=call_id,
                method=method,
                messages=tuple(members),
                transactions=transactions,
                participants=tuple(participants),
                start=members[0].timestamp,
                end=max(m.timestamp for m in members),
                final_status=_final_status(method, by_start),
                sdp=tuple(_sdp_exchanges(transactions)),
                transactions_by_start=by_start,
            )
        )
    calls.sort(key=lambda c: c.messages[0].index)
    every_txn.sort(key=lambda t: t.messages[0].index)
    ladder = build_ladder(messages)
    return Flows(tuple(calls), tuple(every_txn), ladder, tuple(orphans))
