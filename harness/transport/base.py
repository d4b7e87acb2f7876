"""Types shared by every transport: addresses, receive events, errors, the base class.

A transport sends :class:`~harness.sip.message.Request` / ``Response`` objects
(serialised with ``to_bytes()``) and delivers what it receives as *events*:

* :class:`Received`: a message parsed from the wire, with its source, the local
  address it arrived on and the clock reading at arrival;
* :class:`Garbage`: bytes a peer sent that are not a SIP message (the parse error
  says why).  On TCP/TLS the connection that sent them is closed after reporting.

Events are read with :meth:`Transport.recv`, by ``async for`` over the transport,
or pushed to a callback set with :meth:`Transport.set_callback`.
"""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal

from harness.errors import HarnessError
from harness.sip.message import Request, Response
from harness.transport.clock import Clock, MonotonicClock

TransportKind = Literal["udp", "tcp", "tls"]
TRANSPORT_KINDS: Final[tuple[TransportKind, ...]] = ("udp", "tcp", "tls")

#: Default limit of undelivered events per transport; beyond it events are
#: dropped and counted (as a full socket buffer would), never buffered without bound.
DEFAULT_QUEUE_LIMIT: Final = 10_000


class TransportError(HarnessError):
    """A connect, handshake or send failure; ``str(err)`` is one line naming the target."""


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address literal (brackets allowed around IPv6)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Address:
    """One transport endpoint: host (IP or name, IPv6 without brackets), port, transport.

    ``str(address)`` is ``host:port`` (``[::1]:5060`` for IPv6), the form every
    error message uses.
    """

    host: str
    port: int
    transport: TransportKind = "udp"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def hostport(self) -> tuple[str, int]:
        """``(host, port)`` as the socket API takes it."""
        return (self.host, self.port)


@dataclass(frozen=True)
class Received:
    """A SIP message received from ``source`` on ``local`` at clock time ``received_at``."""

    message: Request | Response
    source: Address
    local: Address
    received_at: float


@dataclass(frozen=True)
class Garbage:
    """Bytes from ``source`` that do not parse as SIP; ``error`` is the parser's reason.

    For a datagram ``data`` is the whole datagram; on a stream it is the read
    during which framing failed.
    """

    data: bytes
    source: Address
    local: Address
    error: str
    received_at: float


TransportEvent = Received | Garbage
EventCallback = Callable[[TransportEvent], None]


class _Closed:
    """Queue sentinel marking the end of a transport's events."""


_CLOSED: Final = _Closed()


class Transport(abc.ABC):
    """Base of the UDP, TCP and TLS adapters (and of wrappers such as impairment).

    Subclasses call :meth:`_deliver` for each event and :meth:`_finish` once
    closed; the receive side (queue, iterator, callback) lives here.
    """

    kind: TransportKind

    def __init__(self, *, clock: Clock | None = None, queue_limit: int = DEFAULT_QUEUE_LIMIT):
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self._queue: asyncio.Queue[TransportEvent | _Closed] = asyncio.Queue()
        self._queue_limit = queue_limit
        self._callback: EventCallback | None = None
        self._closed = False
        #: Counters a report may show.
        self.messages_sent = 0
        self.messages_received = 0
        self.garbage_received = 0
        self.events_dropped = 0

    # --- what subclasses provide ---------------------------------------------------
    @property
    @abc.abstractmethod
    def local_address(self) -> Address:
        """The address this transport is bound to (the listening one for streams)."""

    @abc.abstractmethod
    async def send(
        self, message: Request | Response, dest: Address, *, server_name: str | None = None
    ) -> None:
        """Serialise ``message`` and send it to ``dest``.

        ``server_name`` is the name a TLS certificate must match and the SNI to
        send (RFC 5922: the domain of the URI, not the resolved address); other
        transports ignore it.  Raises :class:`TransportError` on failure.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release sockets and connections; pending receivers see the end. Idempotent."""

    # --- receive side --------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def set_callback(self, callback: EventCallback | None) -> None:
        """Push future events to ``callback`` instead of the queue (None: back to the queue).

        Events already queued stay queued.  The callback runs inside the event
        loop's I/O callback and must not block; an exception it raises is passed
        to the loop's exception handler and does not disturb the transport.
        """
        self._callback = callback

    async def recv(self, timeout: float) -> TransportEvent:
        """The next event, waiting at most ``timeout`` seconds.

        Raises :class:`TimeoutError` when nothing arrives in time and
        :class:`TransportError` once the transport is closed and drained.
        """
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if isinstance(item, _Closed):
            self._queue.put_nowait(item)  # let every other waiter see the end too
            raise TransportError(f"{self.kind.upper()} transport on {self.local_address} is closed")
        return item

    def __aiter__(self) -> AsyncIterator[TransportEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TransportEvent]:
        """Yield events until the transport is closed (callers bound the wait themselves)."""
        while True:
            item = await self._queue.get()
            if isinstance(item, _Closed):
                self._queue.put_nowait(item)
                return
            yield item

    def _deliver(self, event: TransportEvent) -> None:
        if isinstance(event, Garbage):
            self.garbage_received += 1
        else:
            self.messages_received += 1
        callback = self._callback
        if callback is not None:
            try:
                callback(event)
            except Exception as exc:
                # Reported, not swallowed: the loop's handler logs it; the socket lives on.
                asyncio.get_running_loop().call_exception_handler(
                    {"message": f"transport event callback failed on {event!r}", "exception": exc}
                )
            return
        if self._queue.qsize() >= self._queue_limit:
            self.events_dropped += 1
            return
        self._queue.put_nowait(event)

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def resolve_host(host: str, port: int, *, stream: bool, family: int = 0) -> tuple[str, int]:
    """``(ip, port)`` for a destination; names go through the system resolver off-loop.

    Addresses from :mod:`harness.transport.resolver` are already IPs and pass
    straight through.
    """
    if is_ip_literal(host):
        return host.strip("[]"), port
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM if stream else socket.SOCK_DGRAM
        )
    except OSError as exc:
        raise TransportError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    if not infos:
        raise TransportError(f"cannot resolve {host}: no address")
    sockaddr = infos[0][4]
    return str(sockaddr[0]), int(sockaddr[1])
