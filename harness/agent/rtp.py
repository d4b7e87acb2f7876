"""RTP for calls: send G.711 at a fixed packet time, receive, and measure.

What a caller may rely on:

* :class:`RtpEndpoint` owns one UDP socket (bound to the address put in our SDP).
* :meth:`RtpEndpoint.run` sends a tone for ``duration`` seconds at ``ptime``
  (20 ms by default, paced against absolute deadlines so it does not drift) while
  receiving, then returns :class:`RtpStats` from the agent's own view.
* Echo measurement: every packet we send carries a tag in the first bytes of its
  payload; when the peer echoes media back (SIPp ``-rtp_echo``, Asterisk
  ``Echo()``), a received packet carrying one of our tags gives a round trip.
  Echoes rewrite RTP headers (new SSRC, sequence numbers), so the tag lives in the
  payload.
* Loss and jitter of the received stream follow RFC 3550 (§6.4.1 and A.8).
"""

from __future__ import annotations

import asyncio
import random
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.agent import g711

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
CLOCK_RATE = 8000
PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
_TAG = struct.Struct("!II")  # (session salt, packet counter)


@dataclass(frozen=True)
class RtpPacket:
    """The fixed RTP header fields we use, and the payload."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def to_bytes(self) -> bytes:
        first = RTP_VERSION << 6
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = HEADER.pack(
            first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
        )
        return header + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket | None:
        """Parse a datagram; None when it is not RTP version 2 (RTCP, garbage)."""
        if len(data) < HEADER.size:
            return None
        first, second, seq, timestamp, ssrc = HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            return None
        payload_type = second & 0x7F
        if 72 <= payload_type <= 76:  # RTCP packet types share this byte (RFC 5761)
            return None
        offset = HEADER.size + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            if len(data) < offset + 4:
                return None
            (length_words,) = struct.unpack_from("!H", data, offset + 2)
            offset += 4 + 4 * length_words
        payload = data[offset:]
        if first & 0x20 and payload:  # padding
            payload = payload[: -payload[-1]] if payload[-1] <= len(payload) else b""
        return cls(payload_type, seq, timestamp, ssrc, payload, bool(second & 0x80))


@dataclass
class RtpStats:
    """RTP figures of one call from the agent's view; all counts are packets."""

    codec: str
    payload_type: int
    local: str
    remote: str
    packets_sent: int = 0
    packets_received: int = 0
    #: RFC 3550 cumulative loss of the received stream (expected - received).
    packets_lost: int = 0
    #: Interarrival jitter of the received stream, RFC 3550 A.8, in milliseconds.
    jitter_ms: float = 0.0
    #: Received packets that carry one of our tags (echoed back by the peer).
    echo_received: int = 0
    rtt_ms_min: float | None = None
    rtt_ms_avg: float | None = None
    rtt_ms_max: float | None = None
    duration_s: float = 0.0
    non_rtp_datagrams: int = 0
    _rtts: list[float] = field(default_factory=list, repr=False)

    @property
    def echo_loss_ratio(self) -> float | None:
        """Share of our packets that never came back; None when nothing came back at all."""
        if not self.packets_sent or not self.echo_received:
            return None
        return max(0.0, 1.0 - self.echo_received / self.packets_sent)

    @property
    def two_way(self) -> bool:
        """Media flowed both ways (the peer sent or echoed at least one packet)."""
        return self.packets_sent > 0 and self.packets_received > 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_rtts")
        data["echo_loss_ratio"] = self.echo_loss_ratio
        data["two_way"] = self.two_way
        return data


class _ReceiveState:
    """RFC 3550 receiver statistics for one SSRC (the first one seen)."""

    def __init__(self) -> None:
        self.ssrc: int | None = None
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.jitter = 0.0
        self.last_transit: float | None = None

    def update(self, packet: RtpPacket, arrival: float) -> None:
        if self.ssrc is None:
            self.ssrc = packet.ssrc
            self.base_seq = self.max_seq = packet.sequence
        elif packet.ssrc != self.ssrc:
            return
        delta = (packet.sequence - self.max_seq) & 0xFFFF
        if 0 < delta < 0x8000:
            if packet.sequence < self.max_seq:
                self.cycles += 0x10000
            self.max_seq = packet.sequence
        self.received += 1
        transit = arrival * CLOCK_RATE - packet.timestamp
        if self.last_transit is not None:
            difference = abs(transit - self.last_transit)
            self.jitter += (difference - self.jitter) / 16.0
        self.last_transit = transit

    @property
    def lost(self) -> int:
        if self.ssrc is None:
            return 0
        expected = self.cycles + self.max_seq - self.base_seq + 1
        return max(0, expected - self.received)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.endpoint._on_datagram(data, (str(addr[0]), int(addr[1])))


class RtpEndpoint:
    """One RTP socket; use :meth:`open` and close it with :meth:`close`."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._salt = self._rng.getrandbits(32)
        self._sent_at: dict[int, float] = {}
        self._stats: RtpStats | None = None
        self._recv = _ReceiveState()
        self._echo_to_sender = False

    @classmethod
    async def open(
        cls, host: str, port: int = 0, *, rng: random.Random | None = None
    ) -> RtpEndpoint:
        """Bind a UDP socket on ``host:port`` (0: any free port)."""
        endpoint = cls(rng)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(endpoint), local_addr=(host, port)
        )
        endpoint._transport = transport
        endpoint._loop = loop
        return endpoint

    @property
    def local_address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("RTP endpoint is not open")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def closed(self) -> bool:
        return self._transport is None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> RtpEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _on_datagram(self, data: bytes, source: tuple[str, int]) -> None:
        if self._loop is None:
            return
        now = self._loop.time()
        stats = self._stats
        packet = RtpPacket.parse(data)
        if stats is None:
            return
        if packet is None:
            stats.non_rtp_datagrams += 1
            return
        stats.packets_received += 1
        self._recv.update(packet, now)
        ours = False
        if len(packet.payload) >= _TAG.size:
            salt, counter = _TAG.unpack_from(packet.payload)
            ours = salt == self._salt
            if ours:
                sent_at = self._sent_at.pop(counter, None)
                if sent_at is not None:
                    stats.echo_received += 1
                    stats._rtts.append((now - sent_at) * 1000.0)
        if self._echo_to_sender and not ours and self._transport is not None:
            # Reflect media as an echo service does (inbound calls answered by the
            # agent), but never our own packets coming back from a peer that echoes
            # too: they would bounce between the two for ever.
            self._transport.sendto(data, source)

    async def run(
        self,
        remote: tuple[str, int],
        duration: float,
        *,
        codec: str = "PCMU",
        payload_type: int | None = None,
        ptime: float = 0.020,
        send: bool = True,
        echo: bool = False,
        linger: float = 0.3,
        stop: asyncio.Event | None = None,
    ) -> RtpStats:
        """Send (when ``send``) and receive for ``duration`` seconds, then report.

        ``echo`` reflects every received datagram to its sender (an echo service).
        ``linger`` keeps receiving a little after the last packet so echoes of
        the last packets are counted. Setting ``stop`` ends the run early (a BYE
        arrived); the figures then cover what was sent and received until then.
        """
        if self._transport is None or self._loop is None:
            raise RuntimeError("RTP endpoint is not open")
        codec = codec.upper()
        pt = PAYLOAD_TYPES.get(codec) if payload_type is None else payload_type
        if pt is None:
            raise ValueError(f"unsupported codec {codec!r}")
        local_host, local_port = self.local_address
        stats = RtpStats(
            codec=codec,
            payload_type=pt,
            local=f"{local_host}:{local_port}",
            remote=f"{remote[0]}:{remote[1]}",
        )
        self._stats = stats
        self._recv = _ReceiveState()
        self._echo_to_sender = echo
        samples_per_packet = round(CLOCK_RATE * ptime)
        audio = g711.encode(codec, g711.tone(440.0, samples_per_packet))
        ssrc = self._rng.getrandbits(32)
        seq = self._rng.getrandbits(16)
        timestamp = self._rng.getrandbits(32)
        start = self._loop.time()
        count = max(1, round(duration / ptime)) if send else 0
        try:
            for n in range(count):
                deadline = start + n * ptime
                delay = deadline - self._loop.time()
                if delay > 0 and await _stopped_within(stop, delay):
                    break
                if stop is not None and stop.is_set():
                    break
                payload = _TAG.pack(self._salt, n) + audio[_TAG.size :]
                packet = RtpPacket(
                    pt, seq + n, timestamp + n * samples_per_packet, ssrc, payload, marker=n == 0
                )
                self._sent_at[n] = self._loop.time()
                self._transport.sendto(packet.to_bytes(), remote)
                stats.packets_sent += 1
            if stop is None or not stop.is_set():
                remaining = start + duration - self._loop.time()
                await _stopped_within(stop, max(0.0, remaining) + linger)
        finally:
            stats.duration_s = round(self._loop.time() - start, 3)
            stats.packets_lost = self._recv.lost
            stats.jitter_ms = round(self._recv.jitter / CLOCK_RATE * 1000.0, 3)
            if stats._rtts:
                stats.rtt_ms_min = round(min(stats._rtts), 3)
                stats.rtt_ms_max = round(max(stats._rtts), 3)
                stats.rtt_ms_avg = round(sum(stats._rtts) / len(stats._rtts), 3)
            self._stats = None
            self._sent_at.clear()
        return stats


async def _stopped_within(stop: asyncio.Event | None, delay: float) -> bool:
    """Sleep ``delay`` seconds, or less when ``stop`` is set; True when it was."""
    if stop is None:
        await asyncio.sleep(delay)
        return False
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        return False
    return True


class _EchoProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)


async def echo_server(host: str, port: int = 0) -> asyncio.DatagramTransport:
    """A UDP socket reflecting every datagram to its sender; close the returned transport."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_EchoProtocol, local_addr=(host, port))
    return transport
