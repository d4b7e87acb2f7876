"""RFC 3261 §17 transaction state machines (with RFC 6026's Accepted state), sans-IO.

Rules of this module
====================

1. Every state machine is a table, below, and only a table: ``(state, input) ->
   (next state, actions)``.  The four classes (:class:`InviteClientTransaction`,
   :class:`NonInviteClientTransaction`, :class:`InviteServerTransaction`,
   :class:`NonInviteServerTransaction`) hold data and run the table; they contain no
   per-state ``if``.  Read a table next to the RFC figure it names.

2. Inputs are what happens to a transaction: the TU starts it (``START``), a matching
   response or request arrives (``RECV_*``), the TU passes a response (``SEND_*``), a
   timer fires (a :class:`~harness.sip.timers.TimerName`), or the transport reports a
   failure (``TRANSPORT_ERROR``).

3. An input the table does not list for the current state:

   * a received message is *absorbed*: nothing is sent, the state stays, and the TU
     gets an informational :class:`ResponseAbsorbed` (client) or
     :class:`RequestRetransmitted` (server) event; in Terminated it is ignored
     without an event (the transaction is over; the caller should have dropped it);
   * a response passed by the TU is a :class:`LocalProtocolError` (RFC 3261 says
     such responses "MUST be discarded"; raising tells the TU about its own bug);
   * a timer is stale and ignored (leaving a state stops the timers it owned);
   * a transport error is ignored (RFC 3261 defines it only for states in which the
     transaction has just sent something).

4. Time is an argument.  No method reads a clock: the caller passes ``now`` (any
   monotonic float, in seconds), asks :meth:`Transaction.get_timer` for the next
   deadline and calls :meth:`Transaction.handle_timer` when it is reached, as with
   aioquic.  A timer whose duration is 0 (Timers D, I, J and K on reliable
   transports) fires before the call that started it returns.

5. Output is pulled.  :meth:`Transaction.messages_to_send` drains what the transport
   must send now (retransmissions included), :meth:`Transaction.next_event` drains
   what the TU must know, one frozen event at a time (None when empty).  Entering
   Terminated always produces exactly one :class:`Terminated` event, last.

6. Retransmission timers (A, E, G) run only when ``reliable`` is false; timeouts (B,
   F, H) and RFC 6026's L and M run on every transport; D, I, J and K are 0 on
   reliable transports (see :class:`~harness.sip.timers.TimerConfig`).  A timer that
   is reset after firing is reset relative to the ``now`` of that
   :meth:`~Transaction.handle_timer` call, so a late caller never gets a burst.

7. The INVITE server transaction sends 100 Trying on its own when the TU has not
   passed any response after ``TimerConfig.trying_delay`` (200 ms by default;
   ``None`` disables it, 0 sends it at once), per §17.2.1.

8. Matching (§17.1.3, §17.2.3) uses the top Via branch: :func:`response_key` and
   :func:`request_key` give the key under which a transport adapter finds the
   transaction.  Only RFC 3261 branches (magic cookie ``z9hG4bK``) are matched; the
   RFC 2543 fallback of §17.2.3 is not implemented (:func:`request_key` returns None).

The ACK for a 2xx and the retransmission of a 2xx by a UAS are TU (dialog) duties,
§13.2.2.4 and §13.3.1.4, not this module's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Final

from harness.sip.errors import LocalProtocolError, RemoteProtocolError
from harness.sip.ids import is_rfc3261_branch
from harness.sip.message import Headers, Request, Response
from harness.sip.timers import TimerConfig, TimerName
from harness.sip.uri import Via, parse_via

Message = Request | Response

# ---------------------------------------------------------------------------------
# States, inputs, actions
# ---------------------------------------------------------------------------------


class State(Enum):
    """Transaction states, named as in RFC 3261 Figures 5-8 and RFC 6026."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(Enum):
    """Non-timer inputs of the state machines (timers are :class:`TimerName`)."""

    START = "start"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL = "300-699 received"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    SEND_1XX = "1xx from TU"
    SEND_2XX = "2xx from TU"
    SEND_FINAL = "300-699 from TU"
    TRANSPORT_ERROR = "transport error"


_RECEIVED: Final = frozenset(
    {Input.RECV_1XX, Input.RECV_2XX, Input.RECV_FINAL, Input.RECV_REQUEST, Input.RECV_ACK}
)
_FROM_TU: Final = frozenset({Input.SEND_1XX, Input.SEND_2XX, Input.SEND_FINAL})


class Action(Enum):
    """What a transition does, besides changing state and timers."""

    SEND_REQUEST = "send the request (again)"
    SEND_ACK = "send the ACK for the non-2xx final response"
    SEND_RESPONSE = "send the response passed by the TU"
    RESEND_RESPONSE = "send the last response again"
    SEND_TRYING = "send 100 Trying"
    PASS_UP = "pass the response to the TU"
    ABSORB = "absorb the message (informational event only)"
    PASS_ACK = "pass the ACK to the TU"
    REPORT_TIMEOUT = "inform the TU of a timeout"
    REPORT_TRANSPORT_ERROR = "inform the TU of a transport error"


@dataclass(frozen=True, slots=True)
class Start:
    """Start a timer with its initial duration (:meth:`TimerConfig.initial`)."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop a timer (no-op when it is not running)."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class Backoff:
    """Restart a retransmission timer that just fired with its next interval."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class RestartAtT2:
    """Restart a timer with T2 (NICT Timer E in Proceeding, §17.1.2.2)."""

    timer: TimerName


Step = Action | Start | Stop | Backoff | RestartAtT2
TableInput = Input | TimerName


@dataclass(frozen=True, slots=True)
class Transition:
    target: State
    actions: tuple[Step, ...] = ()


Table = Mapping[tuple[State, TableInput], Transition]

_A, _B, _D, _E, _F, _G, _H, _I, _J, _K, _L, _M = (
    TimerName.A,
    TimerName.B,
    TimerName.D,
    TimerName.E,
    TimerName.F,
    TimerName.G,
    TimerName.H,
    TimerName.I,
    TimerName.J,
    TimerName.K,
    TimerName.L,
    TimerName.M,
)
_S = State
_In = Input
_Do = Action

# ---------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------

#: INVITE client transaction: RFC 3261 Figure 5 as amended by RFC 6026 Figure 5.
ICT_TABLE: Final[Table] = {
    (_S.CALLING, _In.START): Transition(_S.CALLING, (_Do.SEND_REQUEST, Start(_A), Start(_B))),
    (_S.CALLING, _A): Transition(_S.CALLING, (_Do.SEND_REQUEST, Backoff(_A))),
    (_S.CALLING, _B): Transition(_S.TERMINATED, (_Do.REPORT_TIMEOUT,)),
    (_S.CALLING, _In.TRANSPORT_ERROR): Transition(_S.TERMINATED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.CALLING, _In.RECV_1XX): Transition(_S.PROCEEDING, (Stop(_A), Stop(_B), _Do.PASS_UP)),
    (_S.CALLING, _In.RECV_2XX): Transition(
        _S.ACCEPTED, (Stop(_A), Stop(_B), _Do.PASS_UP, Start(_M))
    ),
    (_S.CALLING, _In.RECV_FINAL): Transition(
        _S.COMPLETED, (Stop(_A), Stop(_B), _Do.SEND_ACK, _Do.PASS_UP, Start(_D))
    ),
    (_S.PROCEEDING, _In.RECV_1XX): Transition(_S.PROCEEDING, (_Do.PASS_UP,)),
    (_S.PROCEEDING, _In.RECV_2XX): Transition(_S.ACCEPTED, (_Do.PASS_UP, Start(_M))),
    (_S.PROCEEDING, _In.RECV_FINAL): Transition(
        _S.COMPLETED, (_Do.SEND_ACK, _Do.PASS_UP, Start(_D))
    ),
    (_S.COMPLETED, _In.RECV_FINAL): Transition(_S.COMPLETED, (_Do.SEND_ACK, _Do.ABSORB)),
    (_S.COMPLETED, _In.TRANSPORT_ERROR): Transition(_S.TERMINATED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.COMPLETED, _D): Transition(_S.TERMINATED),
    # RFC 6026 §8.4: every 2xx in Accepted goes to the TU (retransmissions and forks).
    (_S.ACCEPTED, _In.RECV_2XX): Transition(_S.ACCEPTED, (_Do.PASS_UP,)),
    (_S.ACCEPTED, _M): Transition(_S.TERMINATED),
}

#: Non-INVITE client transaction: RFC 3261 Figure 6.
NICT_TABLE: Final[Table] = {
    (_S.TRYING, _In.START): Transition(_S.TRYING, (_Do.SEND_REQUEST, Start(_E), Start(_F))),
    (_S.TRYING, _E): Transition(_S.TRYING, (_Do.SEND_REQUEST, Backoff(_E))),
    (_S.TRYING, _F): Transition(_S.TERMINATED, (_Do.REPORT_TIMEOUT,)),
    (_S.TRYING, _In.TRANSPORT_ERROR): Transition(_S.TERMINATED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.TRYING, _In.RECV_1XX): Transition(_S.PROCEEDING, (_Do.PASS_UP,)),
    (_S.TRYING, _In.RECV_2XX): Transition(
        _S.COMPLETED, (Stop(_E), Stop(_F), _Do.PASS_UP, Start(_K))
    ),
    (_S.TRYING, _In.RECV_FINAL): Transition(
        _S.COMPLETED, (Stop(_E), Stop(_F), _Do.PASS_UP, Start(_K))
    ),
    (_S.PROCEEDING, _E): Transition(_S.PROCEEDING, (_Do.SEND_REQUEST, RestartAtT2(_E))),
    (_S.PROCEEDING, _F): Transition(_S.TERMINATED, (_Do.REPORT_TIMEOUT,)),
    (_S.PROCEEDING, _In.TRANSPORT_ERROR): Transition(_S.TERMINATED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.PROCEEDING, _In.RECV_1XX): Transition(_S.PROCEEDING, (_Do.PASS_UP,)),
    (_S.PROCEEDING, _In.RECV_2XX): Transition(
        _S.COMPLETED, (Stop(_E), Stop(_F), _Do.PASS_UP, Start(_K))
    ),
    (_S.PROCEEDING, _In.RECV_FINAL): Transition(
        _S.COMPLETED, (Stop(_E), Stop(_F), _Do.PASS_UP, Start(_K))
    ),
    (_S.COMPLETED, _K): Transition(_S.TERMINATED),
}

#: INVITE server transaction: RFC 3261 Figure 7 as amended by RFC 6026 Figure 7.
IST_TABLE: Final[Table] = {
    (_S.PROCEEDING, _In.START): Transition(_S.PROCEEDING, (Start(TimerName.TRYING),)),
    (_S.PROCEEDING, TimerName.TRYING): Transition(_S.PROCEEDING, (_Do.SEND_TRYING,)),
    (_S.PROCEEDING, _In.RECV_REQUEST): Transition(_S.PROCEEDING, (_Do.RESEND_RESPONSE, _Do.ABSORB)),
    # An ACK before any final response acknowledges nothing; the TU sees it so that a
    # diagnostics run can report it.
    (_S.PROCEEDING, _In.RECV_ACK): Transition(_S.PROCEEDING, (_Do.PASS_ACK,)),
    (_S.PROCEEDING, _In.SEND_1XX): Transition(
        _S.PROCEEDING, (Stop(TimerName.TRYING), _Do.SEND_RESPONSE)
    ),
    (_S.PROCEEDING, _In.SEND_2XX): Transition(
        _S.ACCEPTED, (Stop(TimerName.TRYING), _Do.SEND_RESPONSE, Start(_L))
    ),
    (_S.PROCEEDING, _In.SEND_FINAL): Transition(
        _S.COMPLETED, (Stop(TimerName.TRYING), _Do.SEND_RESPONSE, Start(_G), Start(_H))
    ),
    (_S.PROCEEDING, _In.TRANSPORT_ERROR): Transition(_S.TERMINATED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.COMPLETED, _G): Transition(_S.COMPLETED, (_Do.RESEND_RESPONSE, Backoff(_G))),
    (_S.COMPLETED, _H): Transition(_S.TERMINATED, (_Do.REPORT_TIMEOUT,)),
    (_S.COMPLETED, _In.RECV_REQUEST): Transition(_S.COMPLETED, (_Do.RESEND_RESPONSE, _Do.ABSORB)),
    (_S.COMPLETED, _In.RECV_ACK): Transition(
        _S.CONFIRMED, (Stop(_G), Stop(_H), _Do.PASS_ACK, Start(_I))
    ),
    (_S.COMPLETED, _In.TRANSPORT_ERROR): Transition(_S.TERMINATED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.CONFIRMED, _In.RECV_ACK): Transition(_S.CONFIRMED, (_Do.PASS_ACK,)),
    (_S.CONFIRMED, _I): Transition(_S.TERMINATED),
    # RFC 6026 §8.7: INVITE retransmissions are absorbed, 2xx retransmissions from the
    # TU are sent, and an ACK that matches is passed to the TU.
    (_S.ACCEPTED, _In.RECV_REQUEST): Transition(_S.ACCEPTED, (_Do.ABSORB,)),
    (_S.ACCEPTED, _In.RECV_ACK): Transition(_S.ACCEPTED, (_Do.PASS_ACK,)),
    (_S.ACCEPTED, _In.SEND_2XX): Transition(_S.ACCEPTED, (_Do.SEND_RESPONSE,)),
    # A failed 2xx send is reported, but the TU keeps retransmitting its 2xx (§13.3.1.4)
    # and the transaction stays to absorb INVITE retransmissions until Timer L.
    (_S.ACCEPTED, _In.TRANSPORT_ERROR): Transition(_S.ACCEPTED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.ACCEPTED, _L): Transition(_S.TERMINATED),
}

#: Non-INVITE server transaction: RFC 3261 Figure 8.
NIST_TABLE: Final[Table] = {
    (_S.TRYING, _In.START): Transition(_S.TRYING),
    # §17.2.2: retransmissions in Trying are discarded (nothing has been sent yet).
    (_S.TRYING, _In.RECV_REQUEST): Transition(_S.TRYING, (_Do.ABSORB,)),
    (_S.TRYING, _In.SEND_1XX): Transition(_S.PROCEEDING, (_Do.SEND_RESPONSE,)),
    (_S.TRYING, _In.SEND_2XX): Transition(_S.COMPLETED, (_Do.SEND_RESPONSE, Start(_J))),
    (_S.TRYING, _In.SEND_FINAL): Transition(_S.COMPLETED, (_Do.SEND_RESPONSE, Start(_J))),
    (_S.PROCEEDING, _In.SEND_1XX): Transition(_S.PROCEEDING, (_Do.SEND_RESPONSE,)),
    (_S.PROCEEDING, _In.SEND_2XX): Transition(_S.COMPLETED, (_Do.SEND_RESPONSE, Start(_J))),
    (_S.PROCEEDING, _In.SEND_FINAL): Transition(_S.COMPLETED, (_Do.SEND_RESPONSE, Start(_J))),
    (_S.PROCEEDING, _In.RECV_REQUEST): Transition(_S.PROCEEDING, (_Do.RESEND_RESPONSE, _Do.ABSORB)),
    (_S.PROCEEDING, _In.TRANSPORT_ERROR): Transition(_S.TERMINATED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.COMPLETED, _In.RECV_REQUEST): Transition(_S.COMPLETED, (_Do.RESEND_RESPONSE, _Do.ABSORB)),
    (_S.COMPLETED, _In.TRANSPORT_ERROR): Transition(_S.TERMINATED, (_Do.REPORT_TRANSPORT_ERROR,)),
    (_S.COMPLETED, _J): Transition(_S.TERMINATED),
}

# ---------------------------------------------------------------------------------
# Events for the TU
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """Base of the events a transaction gives its TU."""


@dataclass(frozen=True, slots=True)
class ResponseReceived(TransactionEvent):
    """Client: a response the TU must act on (every 1xx, the final, RFC 6026 2xx copies)."""

    response: Response


@dataclass(frozen=True, slots=True)
class ResponseAbsorbed(TransactionEvent):
    """Client: a matching response the transaction absorbed (e.g. a final retransmission).

    Informational: the TU need not act, a diagnostics run may count them.
    """

    response: Response


@dataclass(frozen=True, slots=True)
class RequestRetransmitted(TransactionEvent):
    """Server: a retransmission of the request arrived and was absorbed.

    Informational: the transaction has already re-sent its last response if the RFC
    asks for that.
    """

    request: Request


@dataclass(frozen=True, slots=True)
class AckReceived(TransactionEvent):
    """INVITE server: an ACK matched this transaction (in Accepted: the ACK for our 2xx)."""

    request: Request


@dataclass(frozen=True, slots=True)
class TransactionTimeout(TransactionEvent):
    """Timer B, F or H fired: no final response (client) or no ACK (IST)."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class TransportError(TransactionEvent):
    """The transport reported that it could not send for this transaction."""

    reason: str


@dataclass(frozen=True, slots=True)
class Terminated(TransactionEvent):
    """The transaction is over; the caller may forget it.  Always the last event."""


# ---------------------------------------------------------------------------------
# Matching (§17.1.3, §17.2.3)
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientTransactionKey:
    """A client transaction's identity: its top Via branch and its method (§17.1.3)."""

    branch: str
    method: str


@dataclass(frozen=True, slots=True)
class ServerTransactionKey:
    """A server transaction's identity (§17.2.3): branch, sent-by, method (ACK -> INVITE).

    The host is compared lower-cased; the port as written (absent is not 5060), since
    a retransmission carries the very same Via.
    """

    branch: str
    host: str
    port: int | None
    method: str


def top_via(message: Message) -> Via:
    """The message's first Via value, parsed.

    Raises :class:`RemoteProtocolError` when there is no Via or it does not parse.
    """
    raw = message.headers.get("Via")
    if raw is None:
        raise RemoteProtocolError("message has no Via header")
    return parse_via(raw)


def response_key(response: Response) -> ClientTransactionKey | None:
    """The key of the client transaction ``response`` belongs to (§17.1.3).

    None when the top Via has no branch: such a response matches no transaction and
    RFC 3261 §18.1.2 says to discard it.  Raises :class:`RemoteProtocolError` when the
    Via or the CSeq is missing or malformed.
    """
    via = top_via(response)
    cseq = response.cseq
    if cseq is None:
        raise RemoteProtocolError("response has no valid CSeq header")
    if not via.branch:
        return None
    return ClientTransactionKey(via.branch, cseq[1].upper())


def request_key(request: Request) -> ServerTransactionKey | None:
    """The key of the server transaction ``request`` belongs to, or would create (§17.2.3).

    An ACK gets the key of its INVITE; a CANCEL keeps its own method, so it never
    matches the INVITE it cancels (§9.2 matching is the TU's business).  None when the
    branch lacks the RFC 3261 magic cookie: the RFC 2543 fallback is not implemented.
    Raises :class:`RemoteProtocolError` when the top Via is missing or malformed.
    """
    via = top_via(request)
    if not is_rfc3261_branch(via.branch):
        return None
    assert via.branch is not None  # checked by is_rfc3261_branch; for the type checker
    method = request.method.upper()
    return ServerTransactionKey(
        via.branch, via.host.lower(), via.port, "INVITE" if method == "ACK" else method
    )


def _client_key_of(request: Request) -> ClientTransactionKey:
    try:
        via = top_via(request)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"cannot start a client transaction: {exc}") from exc
    if not is_rfc3261_branch(via.branch):
        raise LocalProtocolError(
            "a client transaction needs a top Via whose branch starts with z9hG4bK"
        )
    assert via.branch is not None
    return ClientTransactionKey(via.branch, request.method.upper())


# ---------------------------------------------------------------------------------
# Messages a transaction builds itself
# ---------------------------------------------------------------------------------


def build_non_2xx_ack(invite: Request, response: Response) -> Request:
    """The ACK of a 300-699 final response to ``invite`` (RFC 3261 §17.1.1.3).

    Same Request-URI, Call-ID and From as the INVITE; CSeq number of the INVITE with
    method ACK; the To of the response (with its tag); exactly one Via, equal to the
    INVITE's top Via; the INVITE's Route headers; the INVITE's Max-Forwards (70 when
    it had none).  No body.
    """
    cseq = invite.cseq
    if invite.method.upper() != "INVITE" or cseq is None:
        raise LocalProtocolError("an ACK is built only for an INVITE with a valid CSeq")
    top = invite.headers.get("Via")
    to = response.headers.get("To")
    if top is None or to is None:
        raise LocalProtocolError("the INVITE needs a Via and the response a To to build an ACK")
    headers = Headers()
    headers.add("Via", top)
    for route in invite.headers.get_raw("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")
    _copy(invite.headers, headers, "From")
    headers.add("To", to)
    _copy(invite.headers, headers, "Call-ID")
    headers.add("CSeq", f"{cseq[0]} ACK")
    return Request(method="ACK", uri=invite.uri, headers=headers)


def build_trying(request: Request) -> Response:
    """A 100 Trying for ``request`` (§8.2.6, §17.2.1): no To tag is added.

    Copies every Via, From, To, Call-ID, CSeq and any Timestamp (§8.2.6.1).
    """
    headers = Headers()
    for via in request.headers.get_raw("Via"):
        headers.add("Via", via)
    for name in ("From", "To", "Call-ID", "CSeq", "Timestamp"):
        _copy(request.headers, headers, name)
    return Response(status=100, reason="Trying", headers=headers)


def _copy(source: Headers, target: Headers, name: str) -> None:
    for value in source.get_raw(name):
        target.add(name, value)


# ---------------------------------------------------------------------------------
# The machinery shared by the four transactions
# ---------------------------------------------------------------------------------


class Transaction:
    """Common interface: ``start``, timers, outbox and events.  Not instantiated directly.

    Callers may rely on: :attr:`state`, :attr:`request` (the request that created the
    transaction), :attr:`reliable`, :attr:`config`, and the methods below.  After
    Terminated, receiving is ignored and sending raises :class:`LocalProtocolError`.
    """

    TABLE: ClassVar[Table]
    INITIAL_STATE: ClassVar[State]

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig | None = None
    ) -> None:
        self.request: Final = request
        self.reliable: Final = reliable
        self.config: Final = config if config is not None else TimerConfig()
        self._state = self.INITIAL_STATE
        self._started = False
        self._deadlines: dict[TimerName, float] = {}
        self._intervals: dict[TimerName, float] = {}
        self._fire_at_once: list[TimerName] = []
        self._outbox: list[Message] = []
        self._events: deque[TransactionEvent] = deque()
        self._error_reason = ""

    # --- public interface ----------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def terminated(self) -> bool:
        return self._state is State.TERMINATED

    def start(self, now: float) -> None:
        """Enter the initial state at ``now`` (a client sends its request).

        Raises :class:`LocalProtocolError` when called twice.
        """
        if self._started:
            raise LocalProtocolError("transaction already started")
        self._started = True
        self._run(Input.START, now)

    def get_timer(self) -> float | None:
        """The earliest pending deadline (same time base as ``now``), or None."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is <= ``now``, earliest first."""
        self._require_started()
        while self._deadlines:
            name, deadline = min(self._deadlines.items(), key=lambda item: item[1])
            if deadline > now:
                break
            del self._deadlines[name]
            self._run(name, now)

    def transport_error(self, now: float, reason: str = "") -> None:
        """The transport could not send a message of this transaction (§17.1.4, §17.2.4)."""
        self._require_started()
        self._error_reason = reason
        self._run(Input.TRANSPORT_ERROR, now)

    def messages_to_send(self) -> list[Message]:
        """Drain the messages the transport must send now, in order."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> TransactionEvent | None:
        """The next event for the TU, or None when there is none."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[TransactionEvent]:
        """Drain every pending event at once."""
        out = list(self._events)
        self._events.clear()
        return out

    # --- the interpreter -------------------------------------------------------------

    def _require_started(self) -> None:
        if not self._started:
            raise LocalProtocolError("transaction not started: call start(now) first")

    def _run(self, inp: TableInput, now: float, message: Message | None = None) -> None:
        self._apply(inp, now, message)
        # Zero-length timers fire only once the transition that started them is done,
        # so that its remaining actions run in the state the table says.
        while self._fire_at_once:
            name = self._fire_at_once.pop(0)
            if self._deadlines.get(name, now + 1) <= now:
                del self._deadlines[name]
                self._apply(name, now, None)

    def _apply(self, inp: TableInput, now: float, message: Message | None) -> None:
        if self._state is State.TERMINATED:
            if inp in _FROM_TU:
                raise LocalProtocolError("transaction is terminated")
            return
        transition = self.TABLE.get((self._state, inp))
        if transition is None:
            if isinstance(inp, Input) and inp in _RECEIVED:
                transition = Transition(self._state, (Action.ABSORB,))
            elif isinstance(inp, Input) and inp in _FROM_TU:
                raise LocalProtocolError(
                    f"cannot send a response in state {self._state.value} ({inp.value})"
                )
            else:
                return  # a stale timer or a transport error with no meaning here
        self._state = transition.target
        for step in transition.actions:
            self._do(step, inp, now, message)
        if self._state is State.TERMINATED:
            self._deadlines.clear()
            self._fire_at_once.clear()
            self._events.append(Terminated())

    def _do(self, step: Step, inp: TableInput, now: float, message: Message | None) -> None:
        if isinstance(step, Start):
            duration = self.config.initial(step.timer, reliable=self.reliable)
            if duration is None:
                return
            self._intervals[step.timer] = duration
            self._deadlines[step.timer] = now + duration
            if duration == 0:
                self._fire_at_once.append(step.timer)
        elif isinstance(step, Stop):
            self._deadlines.pop(step.timer, None)
        elif isinstance(step, Backoff):
            interval = self.config.backoff(step.timer, self._intervals[step.timer])
            self._intervals[step.timer] = interval
            self._deadlines[step.timer] = now + interval
        elif isinstance(step, RestartAtT2):
            self._intervals[step.timer] = self.config.t2
            self._deadlines[step.timer] = now + self.config.t2
        elif step is Action.REPORT_TIMEOUT:
            assert isinstance(inp, TimerName)
            self._events.append(TransactionTimeout(inp))
        elif step is Action.REPORT_TRANSPORT_ERROR:
            self._events.append(TransportError(self._error_reason))
        else:
            self._act(step, message)

    def _act(self, action: Action, message: Message | None) -> None:
        """The message-handling actions; each subclass knows its own."""
        raise NotImplementedError  # pragma: no cover - every subclass overrides


def _status_input(status: int, *, received: bool) -> Input:
    if 100 <= status <= 199:
        return Input.RECV_1XX if received else Input.SEND_1XX
    if 200 <= status <= 299:
        return Input.RECV_2XX if received else Input.SEND_2XX
    if 300 <= status <= 699:
        return Input.RECV_FINAL if received else Input.SEND_FINAL
    if received:
        raise RemoteProtocolError(f"response status {status} is outside 100-699")
    raise LocalProtocolError(f"response status {status} is outside 100-699")


class ClientTransaction(Transaction):
    """Shared by ICT and NICT: ``receive_response``."""

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig | None = None
    ) -> None:
        super().__init__(request, reliable=reliable, config=config)
        self.key: Final[ClientTransactionKey] = _client_key_of(request)

    def receive_response(self, response: Response, now: float) -> None:
        """Feed a response the transport matched to this transaction.

        Raises :class:`LocalProtocolError` when it does not match (:func:`response_key`
        differs): routing responses is the caller's job.
        """
        self._require_started()
        if response_key(response) != self.key:
            raise LocalProtocolError(f"{response!r} does not match transaction {self.key}")
        self._run(_status_input(response.status, received=True), now, response)

    def _act(self, action: Action, message: Message | None) -> None:
        if action is Action.SEND_REQUEST:
            self._outbox.append(self.request)
            return
        assert isinstance(message, Response)
        if action is Action.PASS_UP:
            self._events.append(ResponseReceived(message))
        elif action is Action.ABSORB:
            self._events.append(ResponseAbsorbed(message))
        elif action is Action.SEND_ACK:
            self._send_ack(message)
        else:  # pragma: no cover - the tables use no other action for clients
            raise AssertionError(action)

    def _send_ack(self, response: Response) -> None:
        raise AssertionError("only the INVITE client transaction sends an ACK")


class InviteClientTransaction(ClientTransaction):
    """ICT (RFC 3261 §17.1.1, RFC 6026 §8.4): Calling, Proceeding, Completed, Accepted.

    Sends the INVITE on :meth:`start`; retransmits it with Timer A on unreliable
    transports; builds and sends the ACK of a 300-699 final response itself
    (:attr:`ack`) and re-sends it for every retransmission of that response.  Every
    2xx is passed to the TU, which sends the ACK for it (§13.2.2.4).
    """

    TABLE = ICT_TABLE
    INITIAL_STATE = State.CALLING

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig | None = None
    ) -> None:
        if request.method.upper() != "INVITE":
            raise LocalProtocolError(f"an INVITE client transaction cannot send {request.method}")
        super().__init__(request, reliable=reliable, config=config)
        self.ack: Request | None = None

    def _send_ack(self, response: Response) -> None:
        if self.ack is None:
            self.ack = build_non_2xx_ack(self.request, response)
        self._outbox.append(self.ack)


class NonInviteClientTransaction(ClientTransaction):
    """NICT (RFC 3261 §17.1.2): Trying, Proceeding, Completed.

    Retransmits with Timer E (T1 doubling to T2, every T2 once a provisional response
    arrived) on unreliable transports; Timer F (64*T1) times it out; Timer K absorbs
    response retransmissions after the final response.
    """

    TABLE = NICT_TABLE
    INITIAL_STATE = State.TRYING

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig | None = None
    ) -> None:
        if request.method.upper() in ("INVITE", "ACK"):
            raise LocalProtocolError(
                f"a non-INVITE client transaction cannot send {request.method}"
            )
        super().__init__(request, reliable=reliable, config=config)


class ServerTransaction(Transaction):
    """Shared by IST and NIST: ``receive_request`` and ``send_response``.

    :attr:`key` is None when the request has no RFC 3261 branch (see
    :func:`request_key`); the transaction then trusts the caller's matching.
    """

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig | None = None
    ) -> None:
        super().__init__(request, reliable=reliable, config=config)
        self.key: Final[ServerTransactionKey | None] = request_key(request)
        self.last_response: Response | None = None

    def receive_request(self, request: Request, now: float) -> None:
        """Feed a request the transport matched to this transaction.

        A retransmission of the original request, or (INVITE only) an ACK.  Raises
        :class:`LocalProtocolError` when it does not match this transaction.
        """
        self._require_started()
        if self.key is not None and request_key(request) != self.key:
            raise LocalProtocolError(f"{request!r} does not match transaction {self.key}")
        method = request.method.upper()
        if method == "ACK" and self.request.method.upper() == "INVITE":
            self._run(Input.RECV_ACK, now, request)
        elif method == self.request.method.upper():
            self._run(Input.RECV_REQUEST, now, request)
        else:
            raise LocalProtocolError(f"{request!r} does not belong to this transaction")

    def send_response(self, response: Response, now: float) -> None:
        """Pass a response from the TU; it is queued in :meth:`messages_to_send`.

        Raises :class:`LocalProtocolError` when its CSeq differs from the request's or
        the state does not accept it (e.g. a second final response).
        """
        self._require_started()
        if response.cseq != self.request.cseq:
            raise LocalProtocolError(
                f"response CSeq {response.cseq} differs from the request's {self.request.cseq}"
            )
        self._run(_status_input(response.status, received=False), now, response)

    def _act(self, action: Action, message: Message | None) -> None:
        if action is Action.RESEND_RESPONSE:
            if self.last_response is not None:
                self._outbox.append(self.last_response)
        elif action is Action.SEND_TRYING:
            self.last_response = build_trying(self.request)
            self._outbox.append(self.last_response)
        elif action is Action.SEND_RESPONSE:
            assert isinstance(message, Response)
            self.last_response = message
            self._outbox.append(message)
        elif action is Action.ABSORB:
            assert isinstance(message, Request)
            self._events.append(RequestRetransmitted(message))
        elif action is Action.PASS_ACK:
            assert isinstance(message, Request)
            self._events.append(AckReceived(message))
        else:  # pragma: no cover - the tables use no other action for servers
            raise AssertionError(action)


class InviteServerTransaction(ServerTransaction):
    """IST (RFC 3261 §17.2.1, RFC 6026 §8.5-8.7): Proceeding, Completed, Confirmed, Accepted.

    Sends 100 Trying after ``config.trying_delay`` unless the TU responded first;
    retransmits a 300-699 final response with Timer G until the ACK (unreliable
    transports); Timer H (64*T1) gives up waiting for the ACK.  A 2xx moves it to
    Accepted for Timer L: 2xx retransmissions are the TU's (§13.3.1.4) and are sent
    through :meth:`send_response`.
    """

    TABLE = IST_TABLE
    INITIAL_STATE = State.PROCEEDING

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig | None = None
    ) -> None:
        if request.method.upper() != "INVITE":
            raise LocalProtocolError(f"an INVITE server transaction cannot serve {request.method}")
        super().__init__(request, reliable=reliable, config=config)


class NonInviteServerTransaction(ServerTransaction):
    """NIST (RFC 3261 §17.2.2): Trying, Proceeding, Completed.

    Re-sends the last response on every request retransmission (none in Trying);
    Timer J keeps it in Completed to absorb them (64*T1 unreliable, 0 reliable).
    """

    TABLE = NIST_TABLE
    INITIAL_STATE = State.TRYING

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig | None = None
    ) -> None:
        if request.method.upper() in ("INVITE", "ACK"):
            raise LocalProtocolError(
                f"a non-INVITE server transaction cannot serve {request.method}"
            )
        super().__init__(request, reliable=reliable, config=config)
