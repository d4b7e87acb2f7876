"""Test helpers for the sans-IO transaction layer: a fake clock, a fake link, message makers.

Like h11's ``tests/helpers.py``: nothing here sleeps or opens a socket.  Time only
moves when a helper moves it, straight to the next timer deadline, so a 64*T1
timeout takes microseconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness.sip.message import Headers, Request, Response
from harness.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    Transaction,
    TransactionEvent,
)
from harness.sip.uri import parse_name_addr

Message = Request | Response

ALICE_VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ict-1"
ALICE_FROM = '"Alice" <sip:+15551230001@127.0.0.1>;tag=alice-tag'
BOB_TO = "<sip:+15551230002@127.0.0.2>"
CALL_ID = "call-1@127.0.0.1"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def advance_to(self, when: float) -> None:
        assert when >= self.now, f"time cannot go back from {self.now} to {when}"
        self.now = when


@dataclass
class Sent:
    """One message handed to the transport, at a fake instant."""

    at: float
    message: Message
    direction: str = ""  # "c>s" or "s>c" on a FakeLink
    dropped: bool = False


@dataclass
class Happened:
    """One event given to the TU, at a fake instant."""

    at: float
    event: TransactionEvent
    side: str = ""


def sends_of(tx: Transaction, clock: FakeClock, log: list[Sent]) -> None:
    """Move what ``tx`` wants to send into ``log``, stamped with the clock's time."""
    for message in tx.messages_to_send():
        log.append(Sent(clock.now, message))


def events_of(tx: Transaction, clock: FakeClock, log: list[Happened], side: str = "") -> None:
    while (event := tx.next_event()) is not None:
        log.append(Happened(clock.now, event, side))


@dataclass
class Run:
    """What a transaction did while :func:`run_timers` drove it."""

    sent: list[Sent] = field(default_factory=list)
    events: list[Happened] = field(default_factory=list)

    def send_times(self) -> list[float]:
        return [s.at for s in self.sent]

    def event_types(self) -> list[type[TransactionEvent]]:
        return [type(h.event) for h in self.events]


def collect(tx: Transaction, clock: FakeClock, run: Run) -> Run:
    sends_of(tx, clock, run.sent)
    events_of(tx, clock, run.events)
    return run


def run_timers(tx: Transaction, clock: FakeClock, until: float, run: Run | None = None) -> Run:
    """Fire ``tx``'s timers in order up to ``until`` (inclusive), jumping the clock.

    Returns what was sent and what the TU was told, with the instants.
    """
    run = run if run is not None else Run()
    collect(tx, clock, run)
    while (deadline := tx.get_timer()) is not None and deadline <= until:
        clock.advance_to(max(deadline, clock.now))
        tx.handle_timer(clock.now)
        collect(tx, clock, run)
    if clock.now < until:
        clock.advance_to(until)
    return run


# --- a wire between a client transaction and the server transaction it creates -----

DropRule = Callable[[Sent], bool]


class FakeLink:
    """A zero-latency, optionally lossy wire between a client and a server transaction.

    The server transaction is created by ``server_factory`` when the first request
    arrives (as a transport adapter would) and started at that instant.  ``drop``
    decides, for each message put on the wire, whether it is lost.  Every message
    is logged in :attr:`wire`, lost ones with ``dropped=True``; TU events of both
    sides go to :attr:`events`.
    """

    def __init__(
        self,
        clock: FakeClock,
        client: ClientTransaction,
        server_factory: Callable[[Request], ServerTransaction],
        drop: DropRule | None = None,
    ) -> None:
        self.clock = clock
        self.client = client
        self.server: ServerTransaction | None = None
        self._server_factory = server_factory
        self._drop = drop if drop is not None else (lambda sent: False)
        self.wire: list[Sent] = []
        self.events: list[Happened] = []

    def pump(self) -> None:
        """Deliver everything both sides want to send until both are quiet."""
        moved = True
        while moved:
            moved = False
            for message in self.client.messages_to_send():
                moved = True
                self._carry(message, "c>s")
            if self.server is not None:
                for message in self.server.messages_to_send():
                    moved = True
                    self._carry(message, "s>c")
            self._gather_events()

    def _carry(self, message: Message, direction: str) -> None:
        sent = Sent(self.clock.now, message, direction)
        sent.dropped = self._drop(sent)
        self.wire.append(sent)
        if sent.dropped:
            return
        now = self.clock.now
        if direction == "s>c":
            assert isinstance(message, Response)
            if not self.client.terminated:
                self.client.receive_response(message, now)
        else:
            assert isinstance(message, Request)
            if self.server is None:
                self.server = self._server_factory(message)
                self.server.start(now)
            elif not self.server.terminated:
                self.server.receive_request(message, now)

    def _gather_events(self) -> None:
        events_of(self.client, self.clock, self.events, "client")
        if self.server is not None:
            events_of(self.server, self.clock, self.events, "server")

    def run_until(self, until: float) -> None:
        """Pump, then fire both sides' timers in time order up to ``until``."""
        self.pump()
        while True:
            sides: list[Transaction] = [self.client]
            if self.server is not None:
                sides.append(self.server)
            deadlines = [d for tx in sides if (d := tx.get_timer()) is not None]
            if not deadlines or min(deadlines) > until:
                break
            self.clock.advance_to(max(min(deadlines), self.clock.now))
            for tx in sides:
                tx.handle_timer(self.clock.now)
            self.pump()
        if self.clock.now < until:
            self.clock.advance_to(until)

    def on_wire(self, direction: str, *, delivered_only: bool = False) -> list[Sent]:
        return [
            s for s in self.wire if s.direction == direction and not (delivered_only and s.dropped)
        ]


def drop_first(count: int, predicate: Callable[[Message], bool]) -> DropRule:
    """A drop rule losing the first ``count`` messages that satisfy ``predicate``."""
    remaining = [count]

    def rule(sent: Sent) -> bool:
        if remaining[0] > 0 and predicate(sent.message):
            remaining[0] -= 1
            return True
        return False

    return rule


# --- message makers ------------------------------------------------------------------


def make_request(
    method: str = "INVITE",
    *,
    uri: str = "sip:+15551230002@127.0.0.2",
    via: str = ALICE_VIA,
    cseq: int = 1,
    cseq_method: str | None = None,
    from_: str = ALICE_FROM,
    to: str = BOB_TO,
    call_id: str = CALL_ID,
    extra: Iterable[tuple[str, str]] = (),
) -> Request:
    """A request as a UAC would send it (fixture values are literal wire text)."""
    headers = Headers(
        [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", from_),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {cseq_method or method}"),
            *extra,
        ]
    )
    return Request(method=method, uri=uri, headers=headers)


def with_tag(name_addr: str, tag: str) -> str:
    """``name_addr`` with a ``tag`` header parameter added (built structurally)."""
    parsed = parse_name_addr(name_addr)
    return str(dataclasses.replace(parsed, params=(*parsed.params, ("tag", tag))))


def make_response(
    request: Request,
    status: int,
    reason: str = "",
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> Response:
    """A response to ``request`` per §8.2.6.2: Via, From, To (+tag), Call-ID, CSeq copied."""
    headers = Headers()
    for value in request.headers.get_raw("Via"):
        headers.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        assert value is not None
        if name == "To" and to_tag is not None:
            value = with_tag(value, to_tag)
        headers.add(name, value)
    for name, value in extra:
        headers.add(name, value)
    return Response(status=status, reason=reason or _REASONS.get(status, "Status"), headers=headers)


_REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    408: "Request Timeout",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    500: "Server Internal Error",
}
