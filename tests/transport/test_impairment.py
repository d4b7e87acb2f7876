"""Loss impairment: seeded, reproducible drop ratios in each direction."""

from __future__ import annotations

import asyncio

import pytest

from harness.transport import ImpairedTransport, Received, Transport, UdpTransport
from tests.transport.helpers import options, run

COUNT = 1000
BATCH = 25  # small batches keep the receiver's socket buffer far from overflowing


async def _drain(transport: Transport) -> list[int]:
    """CSeq numbers of everything delivered, until 0.5 s pass with nothing new."""
    seen: list[int] = []
    while True:
        try:
            event = await transport.recv(timeout=0.5)
        except TimeoutError:
            return seen
        assert isinstance(event, Received)
        assert event.message.cseq is not None
        seen.append(event.message.cseq[0])


async def _send_side(seed: int, loss: float) -> tuple[list[int], int]:
    receiver = await UdpTransport.open("127.0.0.2")
    sender = ImpairedTransport(await UdpTransport.open("127.0.0.1"), send_loss=loss, seed=seed)
    async with receiver, sender:
        for n in range(COUNT):
            await sender.send(options(cseq=n), receiver.local_address)
            if n % BATCH == BATCH - 1:
                await asyncio.sleep(0.002)
        seen = await _drain(receiver)
        assert sender.messages_sent + sender.sent_dropped == COUNT
        return seen, sender.sent_dropped


async def _recv_side(seed: int, loss: float) -> tuple[list[int], int]:
    inner = await UdpTransport.open("127.0.0.2")
    receiver = ImpairedTransport(inner, recv_loss=loss, seed=seed)
    sender = await UdpTransport.open("127.0.0.1")
    async with receiver, sender:
        for n in range(COUNT):
            await sender.send(options(cseq=n), receiver.local_address)
            if n % BATCH == BATCH - 1:
                await asyncio.sleep(0.002)
        seen = await _drain(receiver)
        assert inner.messages_received == COUNT  # the kernel lost nothing: drops are ours
        return seen, receiver.received_dropped


@pytest.mark.parametrize("side", [_send_side, _recv_side])
def test_twenty_percent_loss_is_within_bounds_and_reproducible(side: object) -> None:
    assert callable(side)
    seen, dropped = run(side(42, 0.2), timeout=60)
    # Binomial(1000, 0.2): mean 200, sd ≈ 12.6; ±60 is beyond 4.5 sd.
    assert 140 <= dropped <= 260
    assert len(seen) == COUNT - dropped
    assert seen == sorted(seen)  # loopback keeps order; nothing duplicated
    again, dropped_again = run(side(42, 0.2), timeout=60)
    assert (again, dropped_again) == (seen, dropped)
    other, _ = run(side(43, 0.2), timeout=60)
    assert other != seen


def test_directions_are_independent_and_zero_loss_drops_nothing() -> None:
    async def go() -> None:
        a = ImpairedTransport(
            await UdpTransport.open("127.0.0.1"), send_loss=0.0, recv_loss=1.0, seed=1
        )
        b = await UdpTransport.open("127.0.0.2")
        async with a, b:
            for n in range(20):
                await a.send(options(cseq=n), b.local_address)
            assert len(await _drain(b)) == 20  # nothing lost on the way out
            for n in range(20):
                await b.send(options(cseq=n), a.local_address)
            assert await _drain(a) == []  # everything lost on the way in
            assert (a.sent_dropped, a.received_dropped) == (0, 20)

    run(go())


def test_only_udp_and_valid_shares_are_accepted() -> None:
    async def go() -> None:
        from harness.transport import TcpTransport

        async with await TcpTransport.open("127.0.0.1") as tcp:
            with pytest.raises(ValueError, match="UDP only"):
                ImpairedTransport(tcp, send_loss=0.1)
        async with await UdpTransport.open("127.0.0.1") as udp:
            with pytest.raises(ValueError, match="send_loss must be between 0 and 1"):
                ImpairedTransport(udp, send_loss=1.5)

    run(go())
