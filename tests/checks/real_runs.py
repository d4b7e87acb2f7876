"""Real runs for the check tests: peers in containers, the agent, a live capture.

A test starts a profile's peers (:func:`profile_peers`, moved to its own loopback
block so it runs beside other suites), then records one run::

    run = record(tmp_path / "x.pcap", peers, scenario, number=wrong_number)
    analysis = run.analyze(typed_number)

``scenario`` is an async function given a :class:`Session` (one platform agent for
the number: OPTIONS, REGISTER, calls, inbound calls); :func:`record` wraps it in a
:class:`~harness.capture.live.LiveCapture` of the traffic between the harness
(127.0.0.1) and the peers, and returns the pcap with whatever the scenario returned.
The analysis is :func:`harness.evidence.analyze_capture`: what ``sipharness
analyze`` does with the file and the number the customer typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.agent.call import place_call
from harness.agent.common import Outbound, resolve_outbound
from harness.agent.core import UserAgent
from harness.agent.options import options_ping
from harness.agent.register import Registration
from harness.agent.results import AnswerResult, CallResult, OptionsResult, RegisterResult
from harness.agent.uas import InboundServer
from harness.capture.live import LiveCapture
from harness.capture.pcapfile import LINKTYPE_ETHERNET, PcapWriter, open_capture
from harness.checks.registry import Finding, Outcome
from harness.errors import HarnessError
from harness.evidence import CaptureAnalysis, analyze_capture
from harness.numbers import NumberConfig, effective_view, load_number_file
from harness.peers.containers import Peers, start_peers
from harness.peers.engine import Engine
from harness.peers.images import IMAGES, image_present
from harness.peers.profiles import Quirk, load_profile
from harness.sip.timers import TimerConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "fixtures" / "numbers" / "example.yaml"
HARNESS_IP = "127.0.0.1"
#: A short T1 for runs that expect no answer: the agent gives up after 64*T1 = 1.28 s.
FAST_T1 = 0.02


def engine_or_skip() -> Engine:
    """The Docker engine with the Kamailio and Asterisk images, or skip the test."""
    try:
        engine = Engine.connect()
    except HarnessError as err:
        pytest.skip(f"no Docker engine: {err}")
    missing = [
        spec.name
        for spec in IMAGES
        if spec.name in {"kamailio", "asterisk"} and not image_present(engine, spec)
    ]
    if missing:
        engine.close()
        pytest.skip(f"peer images missing ({', '.join(missing)}): run sipharness images build")
    return engine


def example_number() -> NumberConfig:
    return load_number_file(EXAMPLE)


@contextlib.contextmanager
def profile_peers(
    engine: Engine,
    profile: str,
    *,
    base: int,
    quirks: list[Quirk] | None = None,
    number: NumberConfig | None = None,
) -> Iterator[Peers]:
    """Start ``profile``'s peers in block 127.0.<base>.x; always removed on exit."""
    peers = start_peers(
        load_profile(profile),
        number or example_number(),
        engine=engine,
        base=base,
        quirks=[q.value for q in quirks] if quirks is not None else None,
    )
    try:
        yield peers
    finally:
        peers.stop()


@dataclass
class Session:
    """One platform agent for ``number`` and where its requests go."""

    number: NumberConfig
    agent: UserAgent
    outbound: Outbound
    registration: Registration | None = None

    @property
    def view(self) -> Any:
        return effective_view(self.number)

    async def options(self) -> OptionsResult:
        return await options_ping(self.agent, self.number, self.view, self.outbound)

    async def register(self, expires: int = 300) -> RegisterResult:
        self.registration = Registration(
            self.agent, self.number, self.view, self.outbound, expires=expires
        )
        return await self.registration.register()

    async def refresh(self) -> RegisterResult:
        assert self.registration is not None, "register first"
        return await self.registration.refresh()

    async def unregister(self) -> bool:
        assert self.registration is not None, "register first"
        return await self.registration.unregister()

    async def call(
        self, to: str = "echo", *, duration: float = 1.0, cancel_after: float | None = None
    ) -> CallResult:
        return await place_call(
            self.agent,
            self.number,
            self.view,
            self.outbound,
            to=to,
            duration=duration,
            cancel_after=cancel_after,
            no_answer_timeout=10.0,
        )

    async def inbound(self, peers: Peers, *, hangup_after: float = 1.0) -> AnswerResult:
        """Have the carrier call the registered number; answer on this agent."""
        server = InboundServer(self.agent, self.number, self.view, hangup_after=hangup_after)
        serving = asyncio.create_task(server.serve(1, 15.0))
        try:
            await asyncio.to_thread(peers.originate)
            return await serving
        finally:
            self.agent.request_handler = None
            if not serving.done():
                serving.cancel()


Scenario = Callable[[Session], Awaitable[Any]]


async def _session_run(
    number: NumberConfig, scenario: Scenario, t1: float | None, ca_file: Path | None
) -> Any:
    timers = TimerConfig() if t1 is None else TimerConfig(t1=t1, t2=max(4.0, t1))
    outbound = await resolve_outbound(effective_view(number))
    agent = await UserAgent.open(
        outbound.dest.transport,
        HARNESS_IP,
        0,
        timers=timers,
        rng=random.Random(),
        ca_file=ca_file,
    )
    async with agent:
        return await scenario(Session(number, agent, outbound))


@dataclass(frozen=True)
class RealRun:
    """A recorded run: its pcap (the platform's view), the whole capture, the result.

    ``everything`` also holds the carrier's internal hops (registrar to media).
    """

    pcap: Path
    result: Any
    everything: Path

    def analyze(self, number: NumberConfig | None, *, rtp: bool = False) -> CaptureAnalysis:
        """What ``sipharness analyze PCAP --number FILE`` computes (addresses inferred)."""
        return analyze_capture(self.pcap, number, rtp=rtp)


def record(
    pcap: Path,
    peers: Peers,
    scenario: Scenario,
    *,
    number: NumberConfig | None = None,
    t1: float | None = None,
) -> RealRun:
    """Run ``scenario`` with ``number`` (default: the peers' own) under a live capture."""
    hosts = [HARNESS_IP, *(p.address for p in peers.profile.peers)]
    raw = pcap.with_suffix(".all.pcap")
    with LiveCapture(raw, hosts=hosts, match="both") as capture:
        result = asyncio.run(
            _session_run(number or peers.number, scenario, t1, peers.rendered.ca_file)
        )
    assert capture.stats.dropped == 0, capture.stats
    platform_view(raw, pcap)
    return RealRun(pcap, result, raw)


def platform_view(source: Path, target: Path) -> int:
    """Copy the frames to or from the harness's address; returns how many.

    The live capture also holds the carrier's internal hops (registrar to media
    service); a capture taken at the platform, which is what the checks judge, sees
    only its own traffic. Loopback frames are Ethernet with IPv4 here.
    """
    harness = socket.inet_aton(HARNESS_IP)
    kept = 0
    with open_capture(source) as reader, target.open("wb") as out:
        writer = PcapWriter(out, linktype=LINKTYPE_ETHERNET)
        for frame in reader:
            assert frame.linktype == LINKTYPE_ETHERNET, frame.linktype
            data = frame.data
            if data[12:14] == b"\x08\x00" and harness in (data[26:30], data[30:34]):
                writer.write(data, frame.timestamp, orig_len=frame.orig_len)
                kept += 1
    return kept


def outcome(analysis: CaptureAnalysis, check_id: str) -> Outcome:
    return analysis.checks.finding(check_id).outcome


def outcomes(analysis: CaptureAnalysis, *check_ids: str) -> dict[str, Outcome]:
    return {check_id: outcome(analysis, check_id) for check_id in check_ids}


def explain(analysis: CaptureAnalysis, *check_ids: str) -> str:
    """Every named finding with its reasons: the assertion message of a failed test."""
    lines = []
    for check_id in check_ids or tuple(f.check.id for f in analysis.checks.findings):
        finding: Finding = analysis.checks.finding(check_id)
        reasons = "; ".join(dict.fromkeys(r.reason for r in finding.results))
        lines.append(f"{check_id} {finding.outcome.value}: {reasons}")
    return "\n".join(lines)


def with_fields(number: NumberConfig, **changes: Any) -> NumberConfig:
    return dataclasses.replace(number, **changes)
