"""TLS adapter with a CA made by the test: verification, SNI, mismatch, opt-out."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from harness.transport import (
    Address,
    Received,
    TlsTransport,
    TransportError,
    open_transport,
    server_context,
)
from tests.transport.helpers import TestPki, ok_for, options, run


def test_verified_round_trip_to_ip_san(pki: TestPki) -> None:
    async def go() -> None:
        server = await open_transport(
            "tls",
            "127.0.0.1",
            0,
            listen=True,
            cert_file=pki.server_cert,
            key_file=pki.server_key,
        )
        client = await open_transport("tls", "127.0.0.1", ca_file=pki.ca_cert)
        async with server, client:
            dest = server.local_address
            assert dest.transport == "tls"
            await client.send(options(), dest)
            event = await server.recv(timeout=5)
            assert isinstance(event, Received)
            await server.send(ok_for(event.message), event.source)  # type: ignore[arg-type]
            reply = await client.recv(timeout=5)
            assert isinstance(reply, Received)
            assert reply.message.status == 200  # type: ignore[union-attr]

    run(go())


async def _sni_server(pki: TestPki, host: str) -> tuple[asyncio.Server, list[str | None]]:
    """A TLS server that records the SNI of each handshake."""
    seen: list[str | None] = []
    context = server_context(pki.server_cert, pki.server_key)

    def record(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        seen.append(name)

    context.sni_callback = record

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    return await asyncio.start_server(hold, host, 0, ssl=context), seen


@pytest.mark.parametrize(
    ("server_name", "expected_sni"), [("localhost", "localhost"), (None, None)]
)
def test_sni_is_the_server_name_and_never_an_ip(
    pki: TestPki, server_name: str | None, expected_sni: str | None
) -> None:
    async def go() -> None:
        server, seen = await _sni_server(pki, "127.0.0.1")
        client = await TlsTransport.open("127.0.0.1", ca_file=pki.ca_cert)
        async with server, client:
            port = server.sockets[0].getsockname()[1]
            await client.send(options(), Address("127.0.0.1", port, "tls"), server_name=server_name)
        assert seen == [expected_sni]

    run(go())


def test_certificate_not_matching_the_ip_is_a_one_line_error(pki: TestPki) -> None:
    async def go() -> None:
        server = await TlsTransport.open(
            "127.0.0.5", listen=True, cert_file=pki.server_cert, key_file=pki.server_key
        )
        client = await TlsTransport.open("127.0.0.1", ca_file=pki.ca_cert)
        async with server, client:
            port = server.local_address.port
            with pytest.raises(TransportError) as info:
                await client.send(options(), Address("127.0.0.5", port, "tls"))
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(
            f"TLS handshake with 127.0.0.5:{port} failed: certificate verify failed: "
            "IP address mismatch"
        )

    run(go())


def test_certificate_not_matching_the_name_says_which_name(pki: TestPki) -> None:
    async def go() -> None:
        server = await TlsTransport.open(
            "127.0.0.1", listen=True, cert_file=pki.server_cert, key_file=pki.server_key
        )
        client = await TlsTransport.open("127.0.0.1", ca_file=pki.ca_cert)
        async with server, client:
            dest = server.local_address
            with pytest.raises(TransportError) as info:
                await client.send(options(), dest, server_name="sip.carrier.test")
        assert str(info.value).startswith(
            f"TLS handshake with {dest} failed: certificate verify failed: Hostname mismatch"
        )
        assert str(info.value).endswith("(expected name sip.carrier.test)")

    run(go())


def test_untrusted_ca_is_refused_by_default(pki: TestPki) -> None:
    async def go() -> None:
        server = await TlsTransport.open(
            "127.0.0.1", listen=True, cert_file=pki.server_cert, key_file=pki.server_key
        )
        client = await TlsTransport.open("127.0.0.1")  # system CAs only
        async with server, client:
            with pytest.raises(TransportError, match="certificate verify failed: unable to get"):
                await client.send(options(), server.local_address)

    run(go())


def test_verify_false_is_an_explicit_opt_out(pki: TestPki) -> None:
    async def go() -> None:
        server = await TlsTransport.open(
            "127.0.0.5", listen=True, cert_file=pki.server_cert, key_file=pki.server_key
        )
        client = await TlsTransport.open("127.0.0.1", verify=False)
        async with server, client:
            await client.send(options(), server.local_address)
            event = await server.recv(timeout=5)
            assert isinstance(event, Received)

    run(go())


def test_listening_needs_a_loadable_certificate(pki: TestPki) -> None:
    async def go() -> None:
        with pytest.raises(TransportError, match="no certificate given"):
            await TlsTransport.open("127.0.0.1", listen=True)
        with pytest.raises(TransportError, match=r"cannot load TLS certificate .*missing\.pem"):
            await TlsTransport.open(
                "127.0.0.1", listen=True, cert_file=pki.server_cert.parent / "missing.pem"
            )
        with pytest.raises(TransportError, match="cannot load TLS CA file"):
            await TlsTransport.open("127.0.0.1", ca_file=pki.server_cert.parent / "none.pem")

    run(go())
