"""TCP adapter: round trips, connection reuse, framing, garbage, connect failures."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from harness.sip.message import Request, Response
from harness.transport import (
    Address,
    Garbage,
    Received,
    TcpTransport,
    TransportError,
    open_transport,
)
from tests.transport.helpers import closed_port, ok_for, options, run


def test_round_trip_reply_on_the_same_connection_and_reuse() -> None:
    async def go() -> None:
        server = await open_transport("tcp", "127.0.0.3", 0, listen=True)
        client = await open_transport("tcp", "127.0.0.1")
        async with server, client:
            assert isinstance(server, TcpTransport)
            assert isinstance(client, TcpTransport)
            dest = Address("127.0.0.3", server.local_address.port, "tcp")
            local = await client.connect(dest)
            assert local.host == "127.0.0.1"  # bound to the chosen local address
            for cseq in (1, 2):
                await client.send(options(cseq=cseq), dest)
                event = await server.recv(timeout=2)
                assert isinstance(event, Received)
                assert isinstance(event.message, Request)
                assert event.message.cseq == (cseq, "OPTIONS")
                assert event.source == local  # the client connection's own address
                # The reply goes back on the connection the request came on.
                await server.send(ok_for(event.message), event.source)
                reply = await client.recv(timeout=2)
                assert isinstance(reply, Received)
                assert isinstance(reply.message, Response)
                assert reply.message.status == 200
                assert reply.source == dest
            assert server.connections_accepted == 1
            assert client.connections_opened == 1
            assert server.connections_opened == 0  # no new connection for the replies

    run(go())


def test_concurrent_sends_share_one_connection() -> None:
    async def go() -> None:
        server = await TcpTransport.open("127.0.0.1", listen=True)
        client = await TcpTransport.open("127.0.0.1")
        async with server, client:
            dest = server.local_address
            await asyncio.gather(*(client.send(options(cseq=n), dest) for n in range(1, 6)))
            events = [await server.recv(timeout=2) for _ in range(5)]
            cseqs = [e.message.cseq for e in events if isinstance(e, Received)]
            assert sorted(c for c in cseqs if c) == [(n, "OPTIONS") for n in range(1, 6)]
            assert client.connections_opened == 1
            assert server.connections_accepted == 1

    run(go())


def _raw_connect(address: Address) -> socket.socket:
    raw = socket.create_connection(address.hostport, timeout=2)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return raw


def test_stream_framing_split_and_coalesced_writes() -> None:
    async def go() -> None:
        server = await TcpTransport.open("127.0.0.1", listen=True)
        async with server:
            first = options(cseq=1, body=b"v=0\r\n").to_bytes()
            second = options(cseq=2).to_bytes()
            third = options(cseq=3, body=b"hello").to_bytes()
            raw = await asyncio.to_thread(_raw_connect, server.local_address)
            with raw:
                # One message in three writes, split inside the headers and the body.
                for piece in (first[:20], first[20:-3], first[-3:]):
                    raw.sendall(piece)
                    await asyncio.sleep(0.02)  # let each piece arrive as its own read
                # Two messages in one write.
                raw.sendall(second + third)
                events = [await server.recv(timeout=2) for _ in range(3)]
            assert all(isinstance(e, Received) for e in events)
            messages = [e.message for e in events if isinstance(e, Received)]
            assert [m.cseq for m in messages] == [(1, "OPTIONS"), (2, "OPTIONS"), (3, "OPTIONS")]
            assert [m.body for m in messages] == [b"v=0\r\n", b"", b"hello"]
            assert server.garbage_received == 0

    run(go())


def test_garbage_on_a_connection_is_reported_and_that_connection_closed() -> None:
    async def go() -> None:
        server = await TcpTransport.open("127.0.0.1", listen=True)
        async with server:
            raw = await asyncio.to_thread(_raw_connect, server.local_address)
            with raw:
                raw_address = Address("127.0.0.1", raw.getsockname()[1], "tcp")
                raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                event = await server.recv(timeout=2)
                assert isinstance(event, Garbage)
                assert event.source == raw_address
                assert event.data.startswith(b"GET / HTTP/1.1")
                assert event.error
                # The harness closed that connection: the peer reads end-of-stream.
                assert await asyncio.to_thread(raw.recv, 100) == b""
            # ... and the transport keeps serving other connections.
            client = await TcpTransport.open("127.0.0.1")
            async with client:
                await client.send(options(cseq=9), server.local_address)
                event = await server.recv(timeout=2)
                assert isinstance(event, Received)
                assert event.message.cseq == (9, "OPTIONS")
            assert server.garbage_received == 1

    run(go())


def test_connect_to_closed_port_names_the_target_quickly() -> None:
    async def go() -> None:
        port = closed_port("127.0.0.1")
        client = await TcpTransport.open("127.0.0.1", connect_timeout=2)
        async with client:
            started = time.monotonic()
            with pytest.raises(TransportError) as info:
                await client.send(options(), Address("127.0.0.1", port, "tcp"))
            assert time.monotonic() - started < 2
            assert str(info.value) == f"TCP connect to 127.0.0.1:{port} failed: connection refused"

    run(go())


def test_connect_timeout_names_the_target() -> None:
    # A peer that accepts TCP but never speaks TLS: the handshake cannot finish,
    # which exercises the same connect deadline a silent network would.
    async def go() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # hold the connection open until the client gives up
            writer.close()

        mute = await asyncio.start_server(silent, "127.0.0.4", 0)
        port = mute.sockets[0].getsockname()[1]
        client = await open_transport("tls", "127.0.0.1", connect_timeout=0.3)
        async with mute, client:
            started = time.monotonic()
            with pytest.raises(TransportError) as info:
                await client.send(options(), Address("127.0.0.4", port, "tls"))
            assert time.monotonic() - started < 2
            assert str(info.value) == f"TLS connect to 127.0.0.4:{port} timed out after 0.3 s"

    run(go())


def test_closed_transport_refuses_to_send() -> None:
    async def go() -> None:
        client = await TcpTransport.open("127.0.0.1")
        await client.close()
        with pytest.raises(TransportError, match="TCP transport is closed"):
            await client.send(options(), Address("127.0.0.1", 5999, "tcp"))

    run(go())


def test_peer_closing_the_connection_leads_to_a_new_one() -> None:
    async def go() -> None:
        server = await TcpTransport.open("127.0.0.1", listen=True)
        client = await TcpTransport.open("127.0.0.1")
        async with server, client:
            dest = server.local_address
            await client.send(options(cseq=1), dest)
            await server.recv(timeout=2)
            (conn,) = client._connections.values()
            await server.close()  # drops the accepted connection
            server2 = await TcpTransport.open("127.0.0.1", dest.port, listen=True)
            async with server2:
                # Wait until the client has seen the close (a send racing the FIN
                # would be lost, as on any TCP stack).
                await asyncio.wait_for(asyncio.shield(conn.lost), 2)
                assert client.connection_count == 0
                await client.send(options(cseq=2), dest)
                event = await server2.recv(timeout=2)
                assert isinstance(event, Received)
                assert client.connections_opened == 2

    run(go())
