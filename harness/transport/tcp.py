"""The TCP adapter (and the stream machinery TLS reuses).

* One connection per destination, reused for later sends (RFC 3261 §18.1.1).
* With ``listen=True`` a listening socket accepts connections (the UAS at the
  origination URI); a reply to a message goes back on the connection it came on:
  connections are kept by their peer's ``(ip, port)``, which is exactly the
  ``source`` of each :class:`~harness.transport.base.Received` event.
* Framing is :class:`harness.sip.parser.StreamParser`, one per connection.  A
  connection whose bytes do not frame is reported as :class:`Garbage` and closed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any, cast

from harness.sip.errors import RemoteProtocolError
from harness.sip.message import Request, Response
from harness.sip.parser import DEFAULT_MAX_SIZE, NEED_DATA, StreamParser
from harness.transport.base import (
    DEFAULT_QUEUE_LIMIT,
    Address,
    Garbage,
    Received,
    Transport,
    TransportError,
    TransportKind,
    is_ip_literal,
    resolve_host,
)
from harness.transport.clock import Clock

DEFAULT_CONNECT_TIMEOUT = 5.0
#: How long close() waits for connections to finish closing.
_CLOSE_WAIT = 2.0

_PeerKey = tuple[str, int]


class StreamTransport(Transport):
    """Connection-oriented SIP transport; TCP when no TLS contexts are given."""

    kind: TransportKind = "tcp"

    def __init__(
        self,
        *,
        local_host: str,
        listen: bool,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        client_ssl: ssl.SSLContext | None = None,
        server_ssl: ssl.SSLContext | None = None,
        clock: Clock | None = None,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_message_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        super().__init__(clock=clock, queue_limit=queue_limit)
        self._local_host = local_host
        self._listen = listen
        self.connect_timeout = connect_timeout
        self._client_ssl = client_ssl
        self._server_ssl = server_ssl
        self.max_message_size = max_message_size
        self._server: asyncio.Server | None = None
        self._local = Address(local_host, 0, self.kind)
        self._family = socket.AF_INET6 if ":" in local_host else socket.AF_INET
        self._connections: dict[_PeerKey, _StreamConnection] = {}
        self._connecting: dict[_PeerKey, asyncio.Task[_StreamConnection]] = {}
        #: How many connections were accepted and opened (tests of reuse read these).
        self.connections_accepted = 0
        self.connections_opened = 0

    async def _start(self, local_port: int) -> None:
        if not self._listen:
            return
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _StreamConnection(self, inbound=True),
                self._local_host,
                local_port,
                ssl=self._server_ssl,
                reuse_address=True,
            )
        except OSError as exc:
            raise TransportError(
                f"cannot listen on {self.kind.upper()} {Address(self._local_host, local_port)}: "
                f"{exc.strerror or exc}"
            ) from exc
        host, port = self._server.sockets[0].getsockname()[:2]
        self._local = Address(host, port, self.kind)

    @property
    def local_address(self) -> Address:
        """The listening address; for a client-only transport the port is 0.

        A client connection's own address is what :meth:`connect` returns.
        """
        return self._local

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def connect(self, dest: Address, *, server_name: str | None = None) -> Address:
        """Open (or reuse) the connection to ``dest``; return its local address.

        Useful before building a Via for a client-only transport.
        """
        conn = await self._connection_to(dest, server_name)
        return conn.local

    async def send(
        self, message: Request | Response, dest: Address, *, server_name: str | None = None
    ) -> None:
        """Write ``message`` on the connection to ``dest``, opening one if none is open.

        Raises :class:`TransportError` naming ``dest`` on connect/handshake
        failure or timeout (``connect_timeout``).
        """
        if self._closed:
            raise TransportError(f"cannot send to {dest}: {self.kind.upper()} transport is closed")
        if dest.transport != self.kind:
            raise TransportError(
                f"cannot send to {dest} over {self.kind.upper()}: "
                f"the destination is {dest.transport.upper()}"
            )
        conn = await self._connection_to(dest, server_name)
        conn.write(message.to_bytes())
        self.messages_sent += 1

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connecting.values()):
            task.cancel()
        conns = list(self._connections.values())
        for conn in conns:
            conn.close()
        lost = [conn.lost for conn in conns if not conn.lost.done()]
        if lost:
            # Bounded: a peer that never acknowledges the close cannot hold us here.
            await asyncio.wait(lost, timeout=_CLOSE_WAIT)
        if self._server is not None:
            # wait_closed() may wait for every accepted connection (3.12+); those
            # were closed above, so overrunning the bound means the OS is stuck.
            try:
                async with asyncio.timeout(_CLOSE_WAIT):
                    await self._server.wait_closed()
            except TimeoutError as exc:
                self._finish()
                raise TransportError(
                    f"{self.kind.upper()} listener on {self._local} did not close "
                    f"within {_CLOSE_WAIT:g} s"
                ) from exc
        self._finish()

    # --- connections -------------------------------------------------------------
    async def _connection_to(self, dest: Address, server_name: str | None) -> _StreamConnection:
        ip, port = await resolve_host(dest.host, dest.port, stream=True, family=self._family)
        key = (ip, port)
        existing = self._connections.get(key)
        if existing is not None and not existing.is_closing():
            return existing
        pending = self._connecting.get(key)
        if pending is None:
            name = server_name if server_name is not None else dest.host
            pending = asyncio.create_task(self._open_connection(dest, ip, port, name))
            self._connecting[key] = pending
            pending.add_done_callback(lambda _t: self._connecting.pop(key, None))
        # shield: one caller timing out must not cancel a connect others wait on.
        return await asyncio.shield(pending)

    async def _open_connection(
        self, dest: Address, ip: str, port: int, server_name: str
    ) -> _StreamConnection:
        loop = asyncio.get_running_loop()
        label = "TLS" if self._client_ssl is not None else "TCP"
        kwargs: dict[str, Any] = {}
        if self._client_ssl is not None:
            kwargs["ssl"] = self._client_ssl
            kwargs["server_hostname"] = server_name.strip("[]")
            kwargs["ssl_handshake_timeout"] = self.connect_timeout
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _StreamConnection(self, inbound=False),
                    ip,
                    port,
                    local_addr=(self._local_host, 0),
                    **kwargs,
                )
        except TimeoutError as exc:
            raise TransportError(
                f"{label} connect to {dest} timed out after {self.connect_timeout:g} s"
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"TLS handshake with {dest} failed: certificate verify failed: "
                f"{exc.verify_message}"
                + ("" if is_ip_literal(server_name) else f" (expected name {server_name})")
            ) from exc
        except ssl.SSLError as exc:
            raise TransportError(f"TLS handshake with {dest} failed: {exc.reason or exc}") from exc
        except ConnectionRefusedError as exc:
            raise TransportError(f"{label} connect to {dest} failed: connection refused") from exc
        except OSError as exc:
            raise TransportError(
                f"{label} connect to {dest} failed: {exc.strerror or exc}"
            ) from exc
        self.connections_opened += 1
        return conn

    def _register(self, conn: _StreamConnection) -> None:
        if conn.inbound:
            self.connections_accepted += 1
        self._connections[conn.peer_key] = conn

    def _unregister(self, conn: _StreamConnection) -> None:
        if self._connections.get(conn.peer_key) is conn:
            del self._connections[conn.peer_key]


class _StreamConnection(asyncio.Protocol):
    """One TCP/TLS connection: frames incoming bytes and delivers them to its owner."""

    def __init__(self, owner: StreamTransport, *, inbound: bool) -> None:
        self._owner = owner
        self.inbound = inbound
        self._parser = StreamParser(max_size=owner.max_message_size)
        self._transport: asyncio.Transport | None = None
        self._broken = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.peer = Address("", 0, owner.kind)
        self.local = Address("", 0, owner.kind)

    @property
    def peer_key(self) -> _PeerKey:
        return self.peer.hostport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # stream endpoints give these
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = Address(str(peer[0]), int(peer[1]), self._owner.kind)
        self.local = Address(str(local[0]), int(local[1]), self._owner.kind)
        self._owner._register(self)

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return  # the connection is closing after a framing error; the rest is moot
        now = self._owner.clock.now()
        try:
            self._parser.feed(data)
            while True:
                message = self._parser.next_message()
                if message is NEED_DATA:
                    break
                assert isinstance(message, Request | Response)
                self._owner._deliver(Received(message, self.peer, self.local, now))
        except RemoteProtocolError as exc:
            self._broken = True
            self._owner._deliver(Garbage(data, self.peer, self.local, str(exc), now))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._unregister(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def is_closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise TransportError(
                f"cannot send to {self.peer}: the {self._owner.kind.upper()} connection is closed"
            )
        self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class TcpTransport(StreamTransport):
    """SIP over TCP; open it with :meth:`open` (or ``open_transport("tcp", ...)``)."""

    kind: TransportKind = "tcp"

    @classmethod
    async def open(
        cls,
        local_host: str = "127.0.0.1",
        local_port: int = 0,
        *,
        listen: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        clock: Clock | None = None,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_message_size: int = DEFAULT_MAX_SIZE,
    ) -> TcpTransport:
        """Create the transport; with ``listen`` bind and accept on ``local_host:local_port``."""
        self = cls(
            local_host=local_host,
            listen=listen,
            connect_timeout=connect_timeout,
            clock=clock,
            queue_limit=queue_limit,
            max_message_size=max_message_size,
        )
        await self._start(local_port)
        return self
