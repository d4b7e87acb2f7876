"""Agreement with tshark on captures of the harness's own runs.

The agent registers, pings and calls through real Kamailio and Asterisk peers over
UDP (registrar-udp, pbx-asterisk) and TCP (proxy-tcp-5065, the proxy on 5065); the
run is live-captured (carrier-internal hops included) and the decoder must find the
same SIP messages as tshark: the same count and the same multiset of (Call-ID,
CSeq, method or status). Peers use loopback blocks 127.0.75-77.x.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.capture import decode_capture
from harness.peers.engine import Engine
from tests.capture.test_tshark_agreement import TSHARK, our_keys, tshark_keys
from tests.checks.real_runs import Session, engine_or_skip, profile_peers, record

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(TSHARK is None, reason="tshark is not installed"),
]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = engine_or_skip()
    yield engine
    engine.close()


async def _everything(session: Session) -> tuple[object, ...]:
    return (
        await session.options(),
        await session.register(60),
        await session.call(duration=1.0),
        await session.call("ring", cancel_after=0.3),
        await session.unregister(),
    )


async def _rejected(session: Session) -> tuple[object, ...]:
    return (await session.register(60), await session.call(duration=0.5))


@pytest.mark.parametrize(
    ("profile", "base", "transport"),
    [("registrar-udp", 75, "udp"), ("proxy-tcp-5065", 76, "tcp"), ("pbx-asterisk", 77, "udp")],
)
def test_harness_run_capture_agrees_with_tshark(
    engine: Engine, tmp_path: Path, profile: str, base: int, transport: str
) -> None:
    with profile_peers(engine, profile, base=base) as peers:
        good = record(tmp_path / "good.pcap", peers, _everything)
        wrong = dataclasses.replace(peers.number, password="not-the-password")
        bad = record(tmp_path / "bad.pcap", peers, _rejected, number=wrong)
    for path in (good.everything, good.pcap, bad.everything):
        ours = our_keys(path)
        theirs = tshark_keys(path)
        assert sum(ours.values()) == sum(theirs.values()), path.name
        assert ours == theirs, path.name
    # The platform's own leg went over the profile's transport, and a run is not tiny.
    ours = our_keys(good.pcap)
    assert sum(ours.values()) >= 20
    methods = {what for _, _, what in ours}
    assert {"OPTIONS", "REGISTER", "INVITE", "ACK", "BYE", "200"} <= methods
    assert {m.transport for m in decode_capture(good.pcap).messages} == {transport}
