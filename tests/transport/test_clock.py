from __future__ import annotations

import asyncio
import time

import pytest

from harness.transport import Clock, FakeClock, LoopClock, MonotonicClock


def test_fake_clock_moves_only_forward_when_told() -> None:
    clock = FakeClock(10.0)
    assert clock.now() == 10.0
    assert clock.advance(0.5) == 10.5
    clock.set(12.0)
    assert clock.now() == 12.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(11.0)


def test_real_clocks_share_the_monotonic_scale() -> None:
    async def go() -> None:
        before = time.monotonic()
        loop_now = LoopClock().now()
        mono_now = MonotonicClock().now()
        after = time.monotonic()
        assert before <= loop_now <= after
        assert before <= mono_now <= after

    asyncio.run(asyncio.wait_for(go(), 5))


def test_clocks_satisfy_the_protocol() -> None:
    for clock in (FakeClock(), LoopClock(), MonotonicClock()):
        assert isinstance(clock, Clock)
