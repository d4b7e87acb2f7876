"""G.711 codecs and RTP measurement on loopback."""

from __future__ import annotations

import asyncio
import random
import warnings

import pytest

from harness.agent import g711
from harness.agent.rtp import RtpEndpoint, RtpPacket, echo_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # removed in Python 3.13
        audioop = None  # type: ignore[assignment]


@pytest.mark.skipif(audioop is None, reason="audioop (reference codec) not available")
@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_encoding_matches_reference(codec: str) -> None:
    samples = list(range(-32768, 32768, 7))
    linear = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)
    reference = audioop.lin2ulaw(linear, 2) if codec == "PCMU" else audioop.lin2alaw(linear, 2)
    assert g711.encode(codec, samples) == reference


@pytest.mark.skipif(audioop is None, reason="audioop (reference codec) not available")
def test_g711_decoding_matches_reference() -> None:
    every_byte = bytes(range(256))
    ulaw_ref = audioop.ulaw2lin(every_byte, 2)
    alaw_ref = audioop.alaw2lin(every_byte, 2)

    def as_ints(raw: bytes) -> list[int]:
        return [
            int.from_bytes(raw[i : i + 2], "little", signed=True) for i in range(0, len(raw), 2)
        ]

    assert g711.ulaw_decode(every_byte) == as_ints(ulaw_ref)
    assert g711.alaw_decode(every_byte) == as_ints(alaw_ref)


def test_g711_round_trip_is_close() -> None:
    samples = g711.tone(1000.0, 160)
    for encode, decode in (
        (g711.ulaw_encode, g711.ulaw_decode),
        (g711.alaw_encode, g711.alaw_decode),
    ):
        back = decode(encode(samples))
        assert max(abs(a - b) for a, b in zip(samples, back, strict=True)) < 300


def test_rtp_packet_round_trip_and_rejects_non_rtp() -> None:
    packet = RtpPacket(0, 65535, 4294967295, 0xDEADBEEF, b"\xff" * 160, marker=True)
    assert RtpPacket.parse(packet.to_bytes()) == packet
    assert RtpPacket.parse(b"\x00" * 11) is None
    assert RtpPacket.parse(b"\x40" + b"\x00" * 20) is None  # version 1
    assert RtpPacket.parse(bytes([0x80, 200]) + b"\x00" * 10) is None  # RTCP SR


async def _echo_run(duration: float) -> dict[str, object]:
    echo = await echo_server("127.0.0.1")
    try:
        port = echo.get_extra_info("sockname")[1]
        async with await RtpEndpoint.open("127.0.0.1", rng=random.Random(7)) as endpoint:
            stats = await endpoint.run(("127.0.0.1", port), duration, codec="PCMA")
    finally:
        echo.close()
    return stats.to_dict()


def test_echo_measurement_counts_every_packet() -> None:
    stats = asyncio.run(asyncio.wait_for(_echo_run(0.5), timeout=10))
    assert stats["packets_sent"] == 25  # 0.5 s at 20 ms
    assert stats["packets_received"] == 25
    assert stats["echo_received"] == 25
    assert stats["packets_lost"] == 0
    assert stats["echo_loss_ratio"] == 0.0
    assert stats["two_way"] is True
    assert stats["payload_type"] == 8
    assert isinstance(stats["rtt_ms_avg"], float)
    assert 0 <= stats["rtt_ms_avg"] < 50


async def _silent_peer_run() -> dict[str, object]:
    # A bound socket that never answers: one-way audio from our view.
    silent = await echo_server("127.0.0.1")
    silent.pause_reading()  # type: ignore[attr-defined]
    try:
        port = silent.get_extra_info("sockname")[1]
        async with await RtpEndpoint.open("127.0.0.1") as endpoint:
            stats = await endpoint.run(("127.0.0.1", port), 0.2, linger=0.05)
    finally:
        silent.close()
    return stats.to_dict()


def test_one_way_audio_is_visible() -> None:
    stats = asyncio.run(asyncio.wait_for(_silent_peer_run(), timeout=10))
    assert stats["packets_sent"] == 10
    assert stats["packets_received"] == 0
    assert stats["two_way"] is False
    assert stats["rtt_ms_avg"] is None


async def _lossy_sender_run() -> dict[str, object]:
    # A sender that skips every 4th sequence number: RFC 3550 loss must count them.
    async with await RtpEndpoint.open("127.0.0.1") as receiver:
        task = asyncio.ensure_future(receiver.run(("127.0.0.1", 9), 0.4, send=False, linger=0.1))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        sender, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        try:
            for n in range(20):
                if n % 4 != 3:
                    pkt = RtpPacket(0, 100 + n, n * 160, 42, b"\xff" * 160)
                    sender.sendto(pkt.to_bytes(), receiver.local_address)
                await asyncio.sleep(0.005)
        finally:
            sender.close()
        return (await task).to_dict()


def test_receive_loss_follows_rfc3550() -> None:
    stats = asyncio.run(asyncio.wait_for(_lossy_sender_run(), timeout=10))
    assert stats["packets_received"] == 15
    # Sequence 100..118 seen (119 was skipped): expected 19, received 15.
    assert stats["packets_lost"] == 4


async def _stopped_early_run() -> tuple[dict[str, object], float]:
    echo = await echo_server("127.0.0.1")
    stop = asyncio.Event()
    try:
        port = echo.get_extra_info("sockname")[1]
        async with await RtpEndpoint.open("127.0.0.1") as endpoint:
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, stop.set)
            started = loop.time()
            stats = await endpoint.run(("127.0.0.1", port), 5.0, stop=stop)
            elapsed = loop.time() - started
    finally:
        echo.close()
    return stats.to_dict(), elapsed


def test_stop_ends_the_run_early_with_figures() -> None:
    stats, elapsed = asyncio.run(asyncio.wait_for(_stopped_early_run(), timeout=10))
    assert elapsed < 1.0  # not the 5 s asked for
    assert 5 <= stats["packets_sent"] <= 15
    assert stats["echo_received"] >= 5
