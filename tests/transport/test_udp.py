"""UDP adapter: round trips on loopback, garbage, keep-alives, callbacks, limits."""

from __future__ import annotations

import asyncio
import socket

import pytest

from harness.sip.message import Request, Response
from harness.transport import (
    Address,
    FakeClock,
    Garbage,
    Received,
    TransportError,
    TransportEvent,
    UdpTransport,
    must_use_stream,
    open_transport,
)
from tests.transport.helpers import ok_for, options, run


def test_round_trip_between_two_loopback_addresses() -> None:
    async def go() -> None:
        client = await open_transport("udp", "127.0.0.1", 0)
        server = await open_transport("udp", "127.0.0.2", 0)
        async with client, server:
            assert client.local_address.host == "127.0.0.1"
            assert server.local_address.host == "127.0.0.2"
            assert server.local_address.port != 0
            request = options()
            await client.send(request, server.local_address)
            event = await server.recv(timeout=2)
            assert isinstance(event, Received)
            assert isinstance(event.message, Request)
            assert event.message.method == "OPTIONS"
            assert event.message.call_id == "call-1@test"
            # The source is the client's own bound socket: replies (rport) reach it.
            assert event.source == client.local_address
            assert event.local == server.local_address
            await server.send(ok_for(event.message), event.source)
            reply = await client.recv(timeout=2)
            assert isinstance(reply, Received)
            assert isinstance(reply.message, Response)
            assert reply.message.status == 200
            assert reply.source == server.local_address
            assert (client.messages_sent, client.messages_received) == (1, 1)

    run(go())


def test_received_at_comes_from_the_transport_clock() -> None:
    async def go() -> None:
        clock = FakeClock(start=1000.0)
        receiver = await UdpTransport.open("127.0.0.1", clock=clock)
        sender = await UdpTransport.open("127.0.0.1")
        async with receiver, sender:
            clock.advance(2.5)
            await sender.send(options(), receiver.local_address)
            event = await receiver.recv(timeout=2)
            assert event.received_at == 1002.5

    run(go())


def test_garbage_datagram_is_an_event_and_the_socket_keeps_working() -> None:
    async def go() -> None:
        server = await open_transport("udp", "127.0.0.2", 0)
        async with server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                raw.bind(("127.0.0.1", 0))
                raw.sendto(b"\x16\x03\x01 not SIP at all\r\n\r\n", server.local_address.hostport)
                raw.sendto(options(cseq=2).to_bytes(), server.local_address.hostport)
                raw_address = Address("127.0.0.1", raw.getsockname()[1], "udp")
                first = await server.recv(timeout=2)
                second = await server.recv(timeout=2)
            assert isinstance(first, Garbage)
            assert first.source == raw_address
            assert first.data.startswith(b"\x16\x03\x01")
            assert first.error  # the parser's reason, for the report
            assert isinstance(second, Received)
            assert second.message.cseq == (2, "OPTIONS")
            assert (server.garbage_received, server.messages_received) == (1, 1)

    run(go())


def test_crlf_keepalive_is_counted_not_delivered() -> None:
    async def go() -> None:
        server = await UdpTransport.open("127.0.0.1")
        async with server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                raw.sendto(b"\r\n\r\n", server.local_address.hostport)
                raw.sendto(options().to_bytes(), server.local_address.hostport)
                event = await server.recv(timeout=2)
            assert isinstance(event, Received)
            assert server.keepalives_received == 1
            assert server.garbage_received == 0

    run(go())


def test_callback_variant_and_async_iteration() -> None:
    async def go() -> None:
        seen: list[TransportEvent] = []
        got_two = asyncio.Event()

        def on_event(event: TransportEvent) -> None:
            seen.append(event)
            if len(seen) == 2:
                got_two.set()

        server = await open_transport("udp", "127.0.0.1")
        client = await open_transport("udp", "127.0.0.1")
        async with client:
            server.set_callback(on_event)
            await client.send(options(cseq=1), server.local_address)
            await client.send(options(cseq=2), server.local_address)
            await asyncio.wait_for(got_two.wait(), 2)
            assert [e.message.cseq for e in seen if isinstance(e, Received)] == [
                (1, "OPTIONS"),
                (2, "OPTIONS"),
            ]
            # Back to the queue, then iterate until close.
            server.set_callback(None)
            await client.send(options(cseq=3), server.local_address)
            first = await server.recv(timeout=2)
            assert isinstance(first, Received)
            assert first.message.cseq == (3, "OPTIONS")
            await client.send(options(cseq=4), server.local_address)
            iterated: list[TransportEvent] = []
            async for event in server:
                iterated.append(event)
                await server.close()  # the iterator ends after what is queued
            assert len(iterated) == 1

    run(go())


def test_recv_times_out_and_closed_transport_refuses() -> None:
    async def go() -> None:
        transport = await open_transport("udp", "127.0.0.1")
        with pytest.raises(TimeoutError):
            await transport.recv(timeout=0.05)
        await transport.close()
        await transport.close()  # idempotent
        with pytest.raises(TransportError, match="is closed"):
            await transport.recv(timeout=1)
        with pytest.raises(TransportError, match=r"cannot send to 127\.0\.0\.1:5999"):
            await transport.send(options(), Address("127.0.0.1", 5999, "udp"))

    run(go())


def test_wrong_transport_and_oversize_are_refused() -> None:
    async def go() -> None:
        async with await open_transport("udp", "127.0.0.1") as transport:
            with pytest.raises(TransportError, match="the destination is TCP"):
                await transport.send(options(), Address("127.0.0.1", 5999, "tcp"))
            huge = options(body=b"x" * 70_000)
            with pytest.raises(TransportError, match="larger than a datagram"):
                await transport.send(huge, Address("127.0.0.1", 5999, "udp"))

    run(go())


def test_large_message_is_sent_as_asked() -> None:
    # RFC 3261 §18.1.1 says such a request MUST use TCP, but switching is the caller's
    # decision (must_use_stream); the transport sends what it is given.
    async def go() -> None:
        server = await open_transport("udp", "127.0.0.1")
        client = await open_transport("udp", "127.0.0.1")
        async with server, client:
            big = options(body=b"v=0\r\n" * 600)
            assert must_use_stream(len(big.to_bytes()))
            await client.send(big, server.local_address)
            event = await server.recv(timeout=2)
            assert isinstance(event, Received)
            assert event.message.body == big.body

    run(go())


@pytest.mark.parametrize(
    ("size", "mtu", "expected"),
    [
        (1300, None, False),
        (1301, None, True),
        (1300, 1500, False),
        (1301, 1500, True),
        (8000, 9000, False),
        (8801, 9000, True),
    ],
)
def test_must_use_stream_thresholds(size: int, mtu: int | None, expected: bool) -> None:
    assert must_use_stream(size, mtu) is expected


def test_bind_conflict_is_a_clear_error() -> None:
    async def go() -> None:
        first = await open_transport("udp", "127.0.0.1")
        async with first:
            port = first.local_address.port
            with pytest.raises(TransportError, match=rf"cannot bind UDP 127\.0\.0\.1:{port}: "):
                await open_transport("udp", "127.0.0.1", port)

    run(go())


def test_send_to_localhost_name_is_resolved_off_loop() -> None:
    async def go() -> None:
        server = await open_transport("udp", "127.0.0.1")
        client = await open_transport("udp", "127.0.0.1")
        async with server, client:
            await client.send(options(), Address("localhost", server.local_address.port, "udp"))
            event = await server.recv(timeout=2)
            assert isinstance(event, Received)

    run(go())


def test_a_failing_callback_is_reported_and_the_transport_lives_on() -> None:
    async def go() -> None:
        reported: list[dict[str, object]] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        calls: list[TransportEvent] = []
        second = asyncio.Event()

        def flaky(event: TransportEvent) -> None:
            calls.append(event)
            if len(calls) == 1:
                raise RuntimeError("agent bug")
            second.set()

        server = await open_transport("udp", "127.0.0.1")
        client = await open_transport("udp", "127.0.0.1")
        async with server, client:
            server.set_callback(flaky)
            await client.send(options(cseq=1), server.local_address)
            await client.send(options(cseq=2), server.local_address)
            await asyncio.wait_for(second.wait(), 2)
        assert len(calls) == 2
        assert len(reported) == 1
        assert isinstance(reported[0]["exception"], RuntimeError)

    run(go())
