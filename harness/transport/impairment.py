"""Datagram loss on purpose: a wrapper that drops a share of UDP traffic each way.

Used to check that retransmission (Timers A/E/G) copes with a lossy path.  Loss
is drawn from a :class:`random.Random` seeded by the caller, so a run with the
same seed drops the same datagrams in the same order of traffic.
"""

from __future__ import annotations

import random

from harness.sip.message import Request, Response
from harness.transport.base import (
    DEFAULT_QUEUE_LIMIT,
    Address,
    Transport,
    TransportEvent,
)


class ImpairedTransport(Transport):
    """Wraps a UDP transport; ``send_loss`` / ``recv_loss`` are shares in [0, 1].

    The wrapper takes over the inner transport's receive side (its callback):
    read events from the wrapper, not from the inner transport.  Closing the
    wrapper closes the inner transport.
    """

    def __init__(
        self,
        inner: Transport,
        *,
        send_loss: float = 0.0,
        recv_loss: float = 0.0,
        seed: int | None = 0,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
    ) -> None:
        if inner.kind != "udp":
            raise ValueError(f"loss impairment applies to UDP only, not {inner.kind.upper()}")
        for name, share in (("send_loss", send_loss), ("recv_loss", recv_loss)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {share}")
        super().__init__(clock=inner.clock, queue_limit=queue_limit)
        self.kind = inner.kind
        self.inner = inner
        self.send_loss = send_loss
        self.recv_loss = recv_loss
        # Two streams so that the send pattern does not depend on how much was received.
        base = random.Random(seed)
        self._send_rng = random.Random(base.getrandbits(64))
        self._recv_rng = random.Random(base.getrandbits(64))
        self.sent_dropped = 0
        self.received_dropped = 0
        inner.set_callback(self._on_inner_event)

    @property
    def local_address(self) -> Address:
        return self.inner.local_address

    async def send(
        self, message: Request | Response, dest: Address, *, server_name: str | None = None
    ) -> None:
        """Send through the inner transport unless this datagram is chosen to be lost."""
        if self._send_rng.random() < self.send_loss:
            self.sent_dropped += 1
            return
        await self.inner.send(message, dest, server_name=server_name)
        self.messages_sent += 1

    async def close(self) -> None:
        await self.inner.close()
        self._finish()

    def _on_inner_event(self, event: TransportEvent) -> None:
        if self._recv_rng.random() < self.recv_loss:
            self.received_dropped += 1
            return
        self._deliver(event)
