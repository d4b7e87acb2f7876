"""Clocks: where the adapters read ``now`` from.

The sans-IO core takes ``now`` as an argument; the adapters read it from a
:class:`Clock` so that tests can drive time by hand with :class:`FakeClock`.
Every clock here is monotonic and counts seconds as a float.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything with a monotonic ``now()`` in seconds."""

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        ...


class MonotonicClock:
    """``time.monotonic()``: the same scale as the default event loop's ``loop.time()``."""

    def now(self) -> float:
        return time.monotonic()


class LoopClock:
    """The running event loop's ``loop.time()`` (the scale ``loop.call_at`` uses).

    Must be called from inside a running loop.
    """

    def now(self) -> float:
        return asyncio.get_running_loop().time()


class FakeClock:
    """A clock that moves only when told to (for tests of timer-driven code)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        self._now += seconds
        return self._now

    def set(self, value: float) -> None:
        """Jump to ``value``, which must not be earlier than the current time."""
        if value < self._now:
            raise ValueError("a monotonic clock cannot go backwards")
        self._now = value
