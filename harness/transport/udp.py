"""The UDP adapter: one socket, bound once, for sending and receiving.

Sending and receiving on the same socket is what makes Via ``sent-by`` and
``rport`` (RFC 3581) work: the peer answers the address it saw.  Each datagram
is parsed whole with :func:`harness.sip.parser.parse_message`.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import Final

from harness.sip.errors import RemoteProtocolError
from harness.sip.message import Request, Response
from harness.sip.parser import DEFAULT_MAX_SIZE, parse_message
from harness.transport.base import (
    DEFAULT_QUEUE_LIMIT,
    Address,
    Garbage,
    Received,
    Transport,
    TransportError,
    resolve_host,
)
from harness.transport.clock import Clock

#: RFC 3261 §18.1.1: with an unknown path MTU, requests above 1300 bytes go on a
#: congestion-controlled transport; with a known MTU, those within 200 bytes of it.
UNKNOWN_MTU_LIMIT: Final = 1300
MTU_MARGIN: Final = 200
#: The largest UDP payload IPv4 can carry.
MAX_DATAGRAM: Final = 65507


def must_use_stream(size: int, path_mtu: int | None = None) -> bool:
    """Whether a request of ``size`` bytes MUST go over TCP/TLS (RFC 3261 §18.1.1).

    The UDP transport never switches on its own: the caller decides (a test of
    a carrier may want to send an over-size datagram on purpose).
    """
    if path_mtu is None:
        return size > UNKNOWN_MTU_LIMIT
    return size > path_mtu - MTU_MARGIN


class UdpTransport(Transport):
    """A bound UDP socket; open it with :meth:`open` (or ``open_transport("udp", ...)``)."""

    kind = "udp"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_message_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        super().__init__(clock=clock, queue_limit=queue_limit)
        self.max_message_size = max_message_size
        self._transport: asyncio.DatagramTransport | None = None
        self._local: Address | None = None
        self._family = socket.AF_INET
        #: Datagrams holding only CR/LF (NAT keep-alives some devices send): counted, not events.
        self.keepalives_received = 0
        #: Socket errors the kernel reported (ICMP unreachable, EMSGSIZE...), newest last,
        #: as ``(clock time, text)``; kept so a report can show them.
        self.socket_errors: deque[tuple[float, str]] = deque(maxlen=100)

    @classmethod
    async def open(
        cls,
        local_host: str = "127.0.0.1",
        local_port: int = 0,
        *,
        clock: Clock | None = None,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_message_size: int = DEFAULT_MAX_SIZE,
    ) -> UdpTransport:
        """Bind ``local_host:local_port`` (0: an ephemeral port); TransportError if taken."""
        self = cls(clock=clock, queue_limit=queue_limit, max_message_size=max_message_size)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(local_host, local_port)
            )
        except OSError as exc:
            raise TransportError(
                f"cannot bind UDP {Address(local_host, local_port)}: {exc.strerror or exc}"
            ) from exc
        self._transport = transport
        sock = transport.get_extra_info("socket")
        self._family = sock.family
        host, port = sock.getsockname()[:2]
        self._local = Address(host, port, "udp")
        return self

    @property
    def local_address(self) -> Address:
        if self._local is None:
            raise TransportError("UDP transport is not open")
        return self._local

    async def send(
        self, message: Request | Response, dest: Address, *, server_name: str | None = None
    ) -> None:
        """Send one datagram; over-size messages are sent as asked (see :func:`must_use_stream`).

        Raises :class:`TransportError` when closed, when ``dest`` is not a UDP
        address, or when the message cannot fit in any datagram.
        """
        if self._transport is None or self._closed:
            raise TransportError(f"cannot send to {dest}: UDP transport is closed")
        if dest.transport != "udp":
            raise TransportError(
                f"cannot send to {dest} over UDP: the destination is {dest.transport.upper()}"
            )
        data = message.to_bytes()
        if len(data) > MAX_DATAGRAM:
            raise TransportError(
                f"cannot send {len(data)} bytes to {dest} over UDP: larger than a datagram"
            )
        target = await resolve_host(dest.host, dest.port, stream=False, family=self._family)
        self._transport.sendto(data, target)
        self.messages_sent += 1

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._finish()

    # --- called by the protocol ----------------------------------------------------
    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        now = self.clock.now()
        source = Address(addr[0], addr[1], "udp")
        if not data.strip(b"\r\n"):
            self.keepalives_received += 1
            return
        try:
            message = parse_message(data, max_size=self.max_message_size)
        except RemoteProtocolError as exc:
            self._deliver(Garbage(data, source, self.local_address, str(exc), now))
            return
        self._deliver(Received(message, source, self.local_address, now))

    def _on_error(self, exc: Exception) -> None:
        self.socket_errors.append((self.clock.now(), str(exc)))


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._owner._on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self._owner._on_error(exc)
