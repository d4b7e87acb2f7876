"""The TLS adapter: the TCP machinery with SSL contexts (RFC 3261 §26.2, RFC 5922).

Verification is on by default (``ssl.create_default_context``): the peer's
certificate must chain to a trusted CA and match the server name (SNI is sent
for names, never for IP literals, which are matched against IP SANs instead).
``ca_file`` trusts a private CA (and only it); ``verify=False`` is the explicit
opt-out for lab peers with self-signed certificates.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from harness.sip.parser import DEFAULT_MAX_SIZE
from harness.transport.base import DEFAULT_QUEUE_LIMIT, TransportError, TransportKind
from harness.transport.clock import Clock
from harness.transport.tcp import DEFAULT_CONNECT_TIMEOUT, StreamTransport


def client_context(*, verify: bool = True, ca_file: str | Path | None = None) -> ssl.SSLContext:
    """The context for outgoing connections.

    With ``ca_file`` only that CA bundle is trusted; without it, the system's.
    Raises :class:`TransportError` when the CA file cannot be loaded.
    """
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(f"cannot load TLS CA file {ca_file}: {_reason(exc)}") from exc


def server_context(cert_file: str | Path, key_file: str | Path | None = None) -> ssl.SSLContext:
    """The context for accepted connections (no client certificate is requested).

    Raises :class:`TransportError` when the certificate or key cannot be loaded.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(
            f"cannot load TLS certificate {cert_file} (key {key_file}): {_reason(exc)}"
        ) from exc
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return str(exc.strerror or exc)


class TlsTransport(StreamTransport):
    """SIP over TLS; open it with :meth:`open` (or ``open_transport("tls", ...)``)."""

    kind: TransportKind = "tls"

    @classmethod
    async def open(
        cls,
        local_host: str = "127.0.0.1",
        local_port: int = 0,
        *,
        listen: bool = False,
        verify: bool = True,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        clock: Clock | None = None,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_message_size: int = DEFAULT_MAX_SIZE,
    ) -> TlsTransport:
        """Create the transport; ``listen`` needs ``cert_file`` (and the key, unless in it)."""
        server_ssl = None
        if listen:
            if cert_file is None:
                raise TransportError(
                    f"cannot listen on TLS {local_host}:{local_port}: no certificate given"
                )
            server_ssl = server_context(cert_file, key_file)
        self = cls(
            local_host=local_host,
            listen=listen,
            connect_timeout=connect_timeout,
            client_ssl=client_context(verify=verify, ca_file=ca_file),
            server_ssl=server_ssl,
            clock=clock,
            queue_limit=queue_limit,
            max_message_size=max_message_size,
        )
        await self._start(local_port)
        return self
