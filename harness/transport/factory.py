"""``open_transport``: one entry point for UDP, TCP and TLS."""

from __future__ import annotations

from pathlib import Path

from harness.sip.parser import DEFAULT_MAX_SIZE
from harness.transport.base import DEFAULT_QUEUE_LIMIT, Transport, TransportKind
from harness.transport.clock import Clock
from harness.transport.tcp import DEFAULT_CONNECT_TIMEOUT, TcpTransport
from harness.transport.tls import TlsTransport
from harness.transport.udp import UdpTransport


async def open_transport(
    kind: TransportKind,
    local_host: str = "127.0.0.1",
    local_port: int = 0,
    *,
    listen: bool = False,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    verify: bool = True,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    clock: Clock | None = None,
    queue_limit: int = DEFAULT_QUEUE_LIMIT,
    max_message_size: int = DEFAULT_MAX_SIZE,
) -> Transport:
    """Open a transport bound to ``local_host:local_port`` (0: ephemeral).

    UDP always receives on its socket.  TCP and TLS accept connections only with
    ``listen=True`` (TLS then needs ``cert_file``/``key_file``); the TLS options
    ``verify`` and ``ca_file`` apply to outgoing connections.  Raises
    :class:`~harness.transport.base.TransportError` when the address cannot be
    bound or a certificate cannot be loaded.
    """
    if kind == "udp":
        return await UdpTransport.open(
            local_host,
            local_port,
            clock=clock,
            queue_limit=queue_limit,
            max_message_size=max_message_size,
        )
    if kind == "tcp":
        return await TcpTransport.open(
            local_host,
            local_port,
            listen=listen,
            connect_timeout=connect_timeout,
            clock=clock,
            queue_limit=queue_limit,
            max_message_size=max_message_size,
        )
    if kind == "tls":
        return await TlsTransport.open(
            local_host,
            local_port,
            listen=listen,
            verify=verify,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            connect_timeout=connect_timeout,
            clock=clock,
            queue_limit=queue_limit,
            max_message_size=max_message_size,
        )
    raise ValueError(f"unknown transport {kind!r}: expected udp, tcp or tls")
