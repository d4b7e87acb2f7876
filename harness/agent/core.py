"""The user-agent engine: one transport, a transaction table, timers, dispatch.

What a caller may rely on:

* :class:`UserAgent` owns one transport (UDP, TCP or TLS) and two asyncio tasks: a
  receiver that dispatches what the transport delivers, and a sender that writes
  queued messages in order.  Every message sent or received, every garbage datagram,
  timeout and transport error is recorded in :attr:`UserAgent.events`.
* Client transactions (:meth:`UserAgent.start_client`) are keyed by
  :func:`~harness.sip.transaction.response_key`, server transactions by
  :func:`~harness.sip.transaction.request_key`; responses and retransmissions are
  routed to them.  Timers are driven with ``loop.call_at`` and re-armed from
  ``get_timer()`` after every input, as aioquic does.
* A new request that belongs to a registered dialog (Call-ID + To tag) goes to that
  dialog's handler; another new request goes to :attr:`UserAgent.request_handler`
  (the inbound UAS), or gets a default answer (OPTIONS 200, anything else 405/481).
  A CANCEL is answered here (200, or 481 when nothing matches) and the matching
  INVITE server transaction's handle is told (:attr:`ServerTransactionHandle.cancelled`).
* Garbage from a peer is recorded and counted, never raised.
* Every wait has a deadline: :meth:`ClientTransactionHandle.final_response` ends
  at the transaction's own Timer B/F (with a safety margin on top).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from harness import __version__
from harness.agent.events import EventLog, summarize
from harness.errors import SetupError
from harness.sip.errors import RemoteProtocolError
from harness.sip.ids import IdGenerator
from harness.sip.message import Headers, Request, Response, split_header_values
from harness.sip.timers import TimerConfig, TimerName
from harness.sip.transaction import (
    ClientTransaction,
    ClientTransactionKey,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    ResponseReceived,
    ServerTransaction,
    ServerTransactionKey,
    Terminated,
    TransactionEvent,
    TransactionTimeout,
    request_key,
    response_key,
)
from harness.sip.transaction import (
    TransportError as TransactionTransportError,
)
from harness.sip.uri import SipUri, Via, parse_name_addr, parse_via
from harness.transport import (
    Address,
    Garbage,
    ImpairedTransport,
    LoopClock,
    Received,
    Transport,
    TransportError,
    TransportKind,
    open_transport,
)
from harness.transport.tcp import StreamTransport

USER_AGENT: Final = f"sip-harness/{__version__}"
ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS"
#: Added to a transaction's own timeout when waiting for it, so that the wait ends
#: on the transaction's verdict (Timer B/F) rather than on ours.
_WAIT_MARGIN: Final = 2.0

REASONS: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
    600: "Busy Everywhere",
    603: "Decline",
}


def reason_for(status: int) -> str:
    """The usual reason phrase of a status code (a generic one for unknown codes)."""
    return REASONS.get(status, {1: "Progress", 2: "OK", 3: "Redirect"}.get(status // 100, "Error"))


@dataclass(frozen=True)
class LossConfig:
    """Datagram loss each way (shares in [0, 1]) with a seed, for UDP only."""

    send_loss: float = 0.0
    recv_loss: float = 0.0
    seed: int = 0


def source_address_for(host: str, port: int = 5060) -> str:
    """The local IP the OS would use to reach ``host`` (an IP literal); no packet is sent.

    Raises :class:`SetupError` when there is no route.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host.strip("[]"), port))
        except OSError as exc:
            raise SetupError(f"no route to {host}: {exc.strerror or exc}") from exc
        return str(probe.getsockname()[0])


def stamp_top_via(request: Request, source: Address) -> None:
    """Add ``received`` and the ``rport`` value to the request's top Via (RFC 3261
    §18.2.1, RFC 3581 §4), so that responses copy them and go back where it came from.

    A malformed top Via is left alone (the transaction layer reports it).
    """
    lines = request.headers.get_raw("Via")
    if not lines:
        return
    values = split_header_values(lines[0])
    if not values:
        return
    try:
        via = parse_via(values[0])
    except RemoteProtocolError:
        return
    params = list(via.params)
    changed = False
    if via.has_rport and via.rport is None:
        params = [(n, str(source.port) if n.lower() == "rport" else v) for n, v in params]
        changed = True
    if (via.host != source.host or changed) and via.received is None:
        params.append(("received", source.host))
        changed = True
    if not changed:
        return
    values[0] = str(dataclasses.replace(via, params=tuple(params)))
    request.headers.replace("Via", [", ".join(values), *lines[1:]])


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    """A response to ``request`` (RFC 3261 §8.2.6): Via, From, To, Call-ID, CSeq copied.

    ``to_tag`` is added to To when the request's To has no tag yet.
    """
    headers = Headers()
    for value in request.headers.get_raw("Via"):
        headers.add("Via", value)
    for value in request.headers.get_raw("From"):
        headers.add("From", value)
    to = request.headers.get("To") or ""
    if to_tag is not None and to:
        parsed = parse_name_addr(to)
        if parsed.tag is None:
            to = str(dataclasses.replace(parsed, params=(*parsed.params, ("tag", to_tag))))
    headers.add("To", to)
    for name in ("Call-ID", "CSeq"):
        for value in request.headers.get_raw(name):
            headers.add(name, value)
    if contact is not None:
        headers.add("Contact", contact)
    headers.add("Server", USER_AGENT)
    for name, value in extra_headers:
        headers.add(name, value)
    if body:
        headers.add("Content-Type", content_type or "application/sdp")
    return Response(status=status, reason=reason or reason_for(status), headers=headers, body=body)


def address_of_uri(uri: SipUri, default: TransportKind) -> Address:
    """Where a SIP URI points: host, port (transport default), transport param or ``default``."""
    kind: TransportKind = default
    param = uri.transport
    if param in ("udp", "tcp", "tls"):
        kind = param  # type: ignore[assignment]  # narrowed by the membership test
    if uri.scheme == "sips":
        kind = "tls"
    port = uri.port if uri.port is not None else (5061 if kind == "tls" else 5060)
    return Address(uri.host, port, kind)


# --------------------------------------------------------------------------- handles


class ClientTransactionHandle:
    """A client transaction started by :meth:`UserAgent.start_client`.

    Its events (responses, timeout, transport error, termination) arrive in order in
    :meth:`next_event`.
    """

    def __init__(self, agent: UserAgent, tx: ClientTransaction, dest: Address, server_name: str):
        self.agent = agent
        self.tx = tx
        self.dest = dest
        self.server_name = server_name
        self.queue: asyncio.Queue[TransactionEvent] = asyncio.Queue()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.started_at = 0.0
        self.finished = False

    @property
    def request(self) -> Request:
        return self.tx.request

    @property
    def wait_limit(self) -> float:
        """How long a wait for this transaction may last: its timeout plus a margin."""
        return self.tx.config.timeout + _WAIT_MARGIN

    async def next_event(self, timeout: float | None = None) -> TransactionEvent:
        """The next event; raises TimeoutError after ``timeout`` (default :attr:`wait_limit`)."""
        return await asyncio.wait_for(
            self.queue.get(), self.wait_limit if timeout is None else timeout
        )

    async def final_response(
        self, on_provisional: Callable[[Response], None] | None = None
    ) -> Response | TransactionEvent:
        """The final response, or the :class:`TransactionTimeout` /
        :class:`TransactionTransportError` event that ended the transaction instead.

        Provisional responses go to ``on_provisional``.  Bounded by Timer B/F.
        """
        while True:
            try:
                event = await self.next_event()
            except TimeoutError:
                invite = isinstance(self.tx, InviteClientTransaction)
                return TransactionTimeout(TimerName.B if invite else TimerName.F)
            if isinstance(event, ResponseReceived):
                if event.response.status >= 200:
                    return event.response
                if on_provisional is not None:
                    on_provisional(event.response)
            elif isinstance(event, TransactionTimeout | TransactionTransportError | Terminated):
                return event


class ServerTransactionHandle:
    """A server transaction for a received request; answer it with :meth:`respond`."""

    def __init__(self, agent: UserAgent, tx: ServerTransaction, source: Address, local: Address):
        self.agent = agent
        self.tx = tx
        self.source = source
        self.local = local
        self.queue: asyncio.Queue[TransactionEvent] = asyncio.Queue()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        #: Set when a CANCEL matched this INVITE server transaction.
        self.cancelled = asyncio.Event()
        self.cancel_request: Request | None = None
        self.finished = False

    @property
    def request(self) -> Request:
        return self.tx.request

    def respond(self, response: Response) -> None:
        """Pass a response to the transaction (it is sent to the request's source)."""
        self.agent._respond(self, response)

    def reply(self, status: int, reason: str | None = None, **kwargs: object) -> Response:
        """Build (:func:`build_response`) and send a response; return it."""
        response = build_response(self.request, status, reason, **kwargs)  # type: ignore[arg-type]
        self.respond(response)
        return response


DialogHandler = Callable[[Request, ServerTransactionHandle | None], None]
RequestHandler = Callable[[ServerTransactionHandle], None]


# --------------------------------------------------------------------------- the agent


class UserAgent:
    """One transport and everything that runs over it; use :meth:`open` and close it.

    ``timers`` sets T1/T2 (Timer B/F = 64*T1); ``rng`` draws every identifier.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        timers: TimerConfig | None = None,
        rng: random.Random | None = None,
        listening: bool = False,
    ) -> None:
        self.transport = transport
        self.timers = timers or TimerConfig()
        self.rng = rng or random.Random()
        self.ids = IdGenerator(self.rng)
        self.listening = listening
        self.loop = asyncio.get_running_loop()
        self.events = EventLog(self.loop.time)
        self.clients: dict[ClientTransactionKey, ClientTransactionHandle] = {}
        self.servers: dict[ServerTransactionKey, ServerTransactionHandle] = {}
        self.dialogs: dict[tuple[str, str], DialogHandler] = {}
        self.request_handler: RequestHandler | None = None
        self.garbage_received = 0
        self.stray_responses = 0
        self._outq: asyncio.Queue[
            tuple[Request | Response, Address, str | None, Callable[[str], None] | None]
        ] = asyncio.Queue()
        self._closed = False
        self._receiver = asyncio.create_task(self._receive_loop(), name="agent-receiver")
        self._sender = asyncio.create_task(self._send_loop(), name="agent-sender")

    @classmethod
    async def open(
        cls,
        kind: TransportKind,
        local_host: str,
        local_port: int = 0,
        *,
        listen: bool = False,
        timers: TimerConfig | None = None,
        rng: random.Random | None = None,
        verify: bool = True,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        connect_timeout: float = 5.0,
        loss: LossConfig | None = None,
    ) -> UserAgent:
        """Open the transport and start the engine.

        Raises :class:`~harness.transport.TransportError` (a HarnessError, one line)
        when the address cannot be bound or a certificate cannot be loaded.
        """
        transport = await open_transport(
            kind,
            local_host,
            local_port,
            listen=listen,
            connect_timeout=connect_timeout,
            verify=verify,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            clock=LoopClock(),
        )
        if loss is not None and (loss.send_loss or loss.recv_loss):
            if kind != "udp":
                await transport.close()
                raise SetupError(f"datagram loss applies to UDP only, not {kind.upper()}")
            transport = ImpairedTransport(
                transport, send_loss=loss.send_loss, recv_loss=loss.recv_loss, seed=loss.seed
            )
        return cls(transport, timers=timers, rng=rng, listening=listen or kind == "udp")

    # --- lifecycle -------------------------------------------------------------------
    @property
    def kind(self) -> TransportKind:
        return self.transport.kind

    @property
    def local_address(self) -> Address:
        return self.transport.local_address

    async def close(self) -> None:
        """Stop timers and tasks, close the transport.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        handles: list[ClientTransactionHandle | ServerTransactionHandle] = [
            *self.clients.values(),
            *self.servers.values(),
        ]
        for handle in handles:
            if handle.timer is not None:
                handle.timer.cancel()
        self.clients.clear()
        self.servers.clear()
        await self.drain()
        self._sender.cancel()
        self._receiver.cancel()
        for task in (self._sender, self._receiver):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.transport.close()

    async def drain(self, timeout: float = 2.0) -> None:
        """Wait (at most ``timeout`` s) until every queued message has been written."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outq.join(), timeout)

    async def __aenter__(self) -> UserAgent:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- addresses --------------------------------------------------------------------
    async def local_for(self, dest: Address, server_name: str | None = None) -> Address:
        """The address to put in Via and Contact for traffic to ``dest``.

        UDP and listening stream transports: the bound address.  A client-only
        TCP/TLS transport connects first (raising TransportError naming ``dest`` on
        failure) and gives the connection's local address.
        """
        if isinstance(self.transport, StreamTransport) and not self.listening:
            return await self.transport.connect(dest, server_name=server_name)
        return self.transport.local_address

    def via_for(self, local: Address, branch: str | None = None) -> Via:
        """Our Via for requests sent from ``local`` (with ``rport``, RFC 3581)."""
        return Via(
            transport=self.kind.upper(),
            host=local.host,
            port=local.port,
            params=(("branch", branch or self.ids.branch()), ("rport", None)),
        )

    def contact_uri(self, local: Address, user: str | None = None) -> SipUri:
        """Our Contact URI at ``local`` (``;transport=`` for TCP/TLS)."""
        params: tuple[tuple[str, str | None], ...] = (
            (("transport", self.kind),) if self.kind != "udp" else ()
        )
        return SipUri(user=user, host=local.host, port=local.port, params=params)

    # --- client transactions --------------------------------------------------------------
    def start_client(
        self, request: Request, dest: Address, *, server_name: str | None = None
    ) -> ClientTransactionHandle:
        """Start an ICT (INVITE) or NICT for ``request`` and send it to ``dest``."""
        reliable = self.kind != "udp"
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = InviteClientTransaction(request, reliable=reliable, config=self.timers)
        else:
            tx = NonInviteClientTransaction(request, reliable=reliable, config=self.timers)
        name = server_name if server_name is not None else dest.host
        handle = ClientTransactionHandle(self, tx, dest, name)
        self.clients[tx.key] = handle
        handle.started_at = self.loop.time()
        tx.start(handle.started_at)
        self._pump_client(handle)
        return handle

    def send_stateless(
        self, message: Request | Response, dest: Address, *, server_name: str | None = None
    ) -> None:
        """Send outside any transaction (the ACK for a 2xx, a 2xx retransmission)."""
        self._enqueue(message, dest, server_name, None)

    def _pump_client(self, handle: ClientTransactionHandle) -> None:
        tx = handle.tx
        for message in tx.messages_to_send():
            self._enqueue(message, handle.dest, handle.server_name, self._tx_error(handle))
        for event in tx.events():
            if isinstance(event, TransactionTimeout):
                self.events.record(
                    "timeout",
                    f"Timer {event.timer} fired: no final response to "
                    f"{summarize(tx.request)} from {handle.dest} ({self.kind.upper()}) "
                    f"within {self.timers.timeout:g} s",
                    transport=self.kind,
                    remote=str(handle.dest),
                )
            if isinstance(event, Terminated):
                handle.finished = True
                if self.clients.get(tx.key) is handle:
                    del self.clients[tx.key]
            handle.queue.put_nowait(event)
        self._arm(handle)

    def _tx_error(
        self, handle: ClientTransactionHandle | ServerTransactionHandle
    ) -> Callable[[str], None]:
        def on_error(reason: str) -> None:
            if handle.finished:
                return
            handle.tx.transport_error(self.loop.time(), reason)
            self._pump(handle)

        return on_error

    def _pump(self, handle: ClientTransactionHandle | ServerTransactionHandle) -> None:
        if isinstance(handle, ClientTransactionHandle):
            self._pump_client(handle)
        else:
            self._pump_server(handle)

    def _arm(self, handle: ClientTransactionHandle | ServerTransactionHandle) -> None:
        deadline = None if handle.finished or self._closed else handle.tx.get_timer()
        if deadline == handle.timer_at and (deadline is None or handle.timer is not None):
            return
        if handle.timer is not None:
            handle.timer.cancel()
            handle.timer = None
        handle.timer_at = deadline
        if deadline is not None:
            handle.timer = self.loop.call_at(deadline, self._fire, handle)

    def _fire(self, handle: ClientTransactionHandle | ServerTransactionHandle) -> None:
        handle.timer = None
        handle.timer_at = None
        if handle.finished or self._closed:
            return
        handle.tx.handle_timer(self.loop.time())
        self._pump(handle)

    # --- server transactions --------------------------------------------------------------
    def _pump_server(self, handle: ServerTransactionHandle) -> None:
        tx = handle.tx
        for message in tx.messages_to_send():
            self._enqueue(message, handle.source, None, self._tx_error(handle))
        for event in tx.events():
            if isinstance(event, TransactionTimeout):
                self.events.record(
                    "timeout",
                    f"Timer {event.timer} fired: no ACK for the final response to "
                    f"{summarize(tx.request)} from {handle.source}",
                    transport=self.kind,
                    remote=str(handle.source),
                )
            if isinstance(event, Terminated):
                handle.finished = True
                if tx.key is not None and self.servers.get(tx.key) is handle:
                    del self.servers[tx.key]
            handle.queue.put_nowait(event)
        self._arm(handle)

    def _respond(self, handle: ServerTransactionHandle, response: Response) -> None:
        handle.tx.send_response(response, self.loop.time())
        self._pump_server(handle)

    # --- sending ---------------------------------------------------------------------------
    def _enqueue(
        self,
        message: Request | Response,
        dest: Address,
        server_name: str | None,
        on_error: Callable[[str], None] | None,
    ) -> None:
        if self._closed:
            return
        self._outq.put_nowait((message, dest, server_name, on_error))

    async def _send_loop(self) -> None:
        while True:
            message, dest, server_name, on_error = await self._outq.get()
            try:
                await self._send_one(message, dest, server_name, on_error)
            finally:
                self._outq.task_done()

    async def _send_one(
        self,
        message: Request | Response,
        dest: Address,
        server_name: str | None,
        on_error: Callable[[str], None] | None,
    ) -> None:
        try:
            await self.transport.send(message, dest, server_name=server_name)
        except TransportError as exc:
            self.events.record(
                "transport-error",
                str(exc),
                transport=self.kind,
                remote=str(dest),
                message=message,
            )
            if on_error is not None:
                on_error(str(exc))
            return
        local = self.transport.local_address
        if isinstance(self.transport, StreamTransport) and not self.listening:
            # Only to label the event with the connection's own address: the message is
            # already written; a connection closed since then keeps the bound address.
            with contextlib.suppress(TransportError):
                local = await self.transport.connect(dest, server_name=server_name)
        self.events.record(
            "sip",
            summarize(message),
            direction="out",
            transport=self.kind,
            local=str(local),
            remote=str(dest),
            message=message,
            raw=message.to_bytes(),
        )

    # --- receiving -------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        async for event in self.transport:
            if isinstance(event, Garbage):
                self.garbage_received += 1
                self.events.record(
                    "garbage",
                    f"garbage from {event.source}: {event.error}",
                    direction="in",
                    transport=self.kind,
                    local=str(event.local),
                    remote=str(event.source),
                    raw=event.data,
                    at=event.received_at,
                )
                continue
            self.events.record(
                "sip",
                summarize(event.message),
                direction="in",
                transport=self.kind,
                local=str(event.local),
                remote=str(event.source),
                message=event.message,
                raw=event.message.to_bytes(),
                at=event.received_at,
            )
            try:
                if isinstance(event.message, Response):
                    self._on_response(event.message)
                else:
                    self._on_request(event.message, event)
            except RemoteProtocolError as exc:
                # What the peer sent cannot be matched or understood: a finding, not a crash.
                self.events.record(
                    "note",
                    f"dropped {summarize(event.message)} from {event.source}: {exc}",
                    direction="in",
                    transport=self.kind,
                    remote=str(event.source),
                    message=event.message,
                )

    def _on_response(self, response: Response) -> None:
        key = response_key(response)
        handle = self.clients.get(key) if key is not None else None
        if handle is None:
            self.stray_responses += 1
            self.events.record(
                "note",
                f"response matches no transaction: {summarize(response)}",
                direction="in",
                transport=self.kind,
                message=response,
            )
            return
        handle.tx.receive_response(response, self.loop.time())
        self._pump_client(handle)

    def _on_request(self, request: Request, received: Received) -> None:
        stamp_top_via(request, received.source)
        key = request_key(request)
        existing = self.servers.get(key) if key is not None else None
        if existing is not None:
            existing.tx.receive_request(request, self.loop.time())
            self._pump_server(existing)
            return
        method = request.method.upper()
        if method == "ACK":
            handler = self._dialog_handler(request)
            if handler is not None:
                handler(request, None)
            else:
                self.events.record(
                    "note",
                    f"ACK matches no transaction or dialog: {summarize(request)}",
                    direction="in",
                    transport=self.kind,
                    remote=str(received.source),
                    message=request,
                )
            return
        reliable = self.kind != "udp"
        tx: ServerTransaction
        if method == "INVITE":
            tx = InviteServerTransaction(request, reliable=reliable, config=self.timers)
        else:
            tx = NonInviteServerTransaction(request, reliable=reliable, config=self.timers)
        handle = ServerTransactionHandle(self, tx, received.source, received.local)
        if tx.key is not None:
            self.servers[tx.key] = handle
        tx.start(self.loop.time())
        self._pump_server(handle)
        if method == "CANCEL":
            self._on_cancel(handle)
            return
        handler = self._dialog_handler(request)
        if handler is not None:
            handler(request, handle)
        elif _to_tag(request) is not None:
            handle.reply(481)
        elif self.request_handler is not None:
            self.request_handler(handle)
        elif method == "OPTIONS":
            handle.reply(200, extra_headers=(("Allow", ALLOW), ("Accept", "application/sdp")))
        else:
            handle.reply(405, extra_headers=(("Allow", ALLOW),))

    def _on_cancel(self, handle: ServerTransactionHandle) -> None:
        key = handle.tx.key
        invite = (
            self.servers.get(dataclasses.replace(key, method="INVITE")) if key is not None else None
        )
        if invite is None or invite.finished:
            handle.reply(481)
            return
        handle.reply(200)
        invite.cancel_request = handle.request
        invite.cancelled.set()

    def _dialog_handler(self, request: Request) -> DialogHandler | None:
        tag = _to_tag(request)
        call_id = request.call_id
        if tag is None or call_id is None:
            return None
        return self.dialogs.get((call_id, tag))

    def add_dialog(self, call_id: str, local_tag: str, handler: DialogHandler) -> None:
        """Route future requests of dialog (Call-ID, our tag) to ``handler``."""
        self.dialogs[(call_id, local_tag)] = handler

    def remove_dialog(self, call_id: str, local_tag: str) -> None:
        self.dialogs.pop((call_id, local_tag), None)


def _to_tag(request: Request) -> str | None:
    to = request.headers.get("To")
    if to is None:
        return None
    try:
        return parse_name_addr(to).tag
    except RemoteProtocolError:
        return None


def route_destination(route: str, default: TransportKind) -> Address:
    """The address a pre-loaded Route value (``<sip:proxy;lr>``) points to."""
    uri = parse_name_addr(route).uri
    if not isinstance(uri, SipUri):
        raise RemoteProtocolError(f"route {route!r} is not a SIP URI")
    return address_of_uri(uri, default)


def server_name_for(host: str) -> str:
    """The TLS server name for a host (the name itself; IP literals are matched as IPs)."""
    return host.strip("[]")


__all__ = [
    "ALLOW",
    "USER_AGENT",
    "ClientTransactionHandle",
    "LossConfig",
    "ServerTransactionHandle",
    "UserAgent",
    "address_of_uri",
    "build_response",
    "reason_for",
    "route_destination",
    "server_name_for",
    "source_address_for",
]
