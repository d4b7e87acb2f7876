"""The platform-side agent (harness.agent) against the real Kamailio and Asterisk peers.

Every bundled profile's peers start once per module (one at a time: the tests are
grouped by profile), in an address block of their own (``base``, one per xdist
worker) so this module runs beside the other peer tests. The agent is driven the
way the CLI drives it (:mod:`harness.agent.runner`) where one operation is enough,
and through its parts where a test needs one agent for two things (register, then
answer the call the carrier sends to the registered contact).

What is shown for each profile: the peers are ready before their deadline; the
agent registers with the profile's number overlay applied (outbound proxy over TCP,
Authorization ID, TLS trusting the run's CA) and a wrong password ends as
"credentials rejected" after exactly one answered challenge; a call reaches
Asterisk and the RTP the agent sends comes back (echo counted, round trip measured);
Asterisk's inbound call reaches the agent's UAS (registered contact or origination
URI) and is answered, acknowledged and hung up; the trunk refuses a source it does
not allow; nothing this process started is left behind.

Inbound media: the peer's side of an originated call runs Echo() and the UAS echoes
too, so neither side starts audio; inbound tests check the SIP outcome and that
media ran, not packet counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness.agent.common import open_outbound_agent
from harness.agent.register import Registration
from harness.agent.results import AnswerResult, CallResult, RegisterResult
from harness.agent.runner import AgentSettings, run_call, run_register
from harness.agent.uas import InboundServer, open_inbound_agent
from harness.errors import HarnessError
from harness.numbers import NumberConfig, effective_view, load_number_file
from harness.peers.containers import Peers, managed_containers, owner_token, start_peers
from harness.peers.engine import Engine
from harness.peers.images import IMAGES, image_present
from harness.peers.profiles import MAX_BASE, PeerSpec, load_profile
from harness.sip.timers import TimerConfig
from harness.sip.uri import SipUri

pytestmark = pytest.mark.integration

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "fixtures" / "numbers" / "example.yaml"

FIRST_BASE = 230
"""Address block of the first worker: far from the blocks other peer tests use (0-43)."""
T1 = 0.1
"""A short T1 (Timer B/F 6.4 s) so a lost request fails a test quickly; loopback is fast."""
DIALLED = "15550109999"
"""Any number: every media peer and the PBX answer it with Echo()."""
WRONG_PASSWORD = "not-the-password"
NOT_ALLOWED_SOURCE = "127.0.0.251"
"""A loopback address the trunk does not allow (it trusts 127.0.0.1, the harness)."""
CALL_SECONDS = 1.0
INBOUND_SECONDS = 0.5
"""The UAS hangs up this long after the ACK."""
TEST_DEADLINE = 30.0

REGISTERING = ("registrar-udp", "proxy-tcp-5065", "pbx-asterisk", "tls-5061")
ALL_PROFILES = (*REGISTERING, "ip-trunk")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test's agent work on a fresh loop, bounded by TEST_DEADLINE."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, TEST_DEADLINE)

    return asyncio.run(bounded())


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    try:
        engine = Engine.connect()
    except HarnessError as err:
        pytest.skip(f"no Docker engine: {err}")
    missing = [
        s.name
        for s in IMAGES
        if s.name in {"kamailio", "asterisk"} and not image_present(engine, s)
    ]
    if missing:
        engine.close()
        pytest.skip(f"peer images missing ({', '.join(missing)}): run sipharness images build")
    before = {c.name for c in managed_containers(engine)}
    yield engine
    # Nothing this module started may outlive it; containers of other processes (other
    # workers, other helpers' runs) are not ours to judge.
    mine = owner_token()
    left = [c.name for c in managed_containers(engine) if c.name not in before and c.owner == mine]
    engine.close()
    assert left == [], f"containers left behind: {left}"


@pytest.fixture(scope="module")
def base(worker_id: str) -> int:
    """This worker's address block: 127.0.0.x of every profile becomes 127.0.<base>.x."""
    index = int(worker_id[2:]) if re.fullmatch(r"gw\d+", worker_id) else 0
    chosen = FIRST_BASE + index
    assert chosen <= MAX_BASE, f"too many workers for address blocks from {FIRST_BASE}"
    return chosen


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def number() -> NumberConfig:
    """The example number with an origination URI on a free port (the trunk calls it)."""
    example = load_number_file(EXAMPLE)
    return dataclasses.replace(
        example, origination_uri=SipUri(host="127.0.0.1", port=_free_udp_port())
    )


@pytest.fixture(scope="module")
def peers(
    request: pytest.FixtureRequest, engine: Engine, number: NumberConfig, base: int
) -> Iterator[Peers]:
    """The peers of the profile named by the test's parameter, started once per module."""
    name = request.param
    started = start_peers(load_profile(name), number, engine=engine, base=base)
    try:
        yield started
    finally:
        run_id = started.run_id
        started.stop()
        assert managed_containers(engine, run_id=run_id) == []


def settings_for(peers: Peers, **options: Any) -> AgentSettings:
    """Agent settings as the CLI builds them: short T1, trusting only the run's CA."""
    return AgentSettings(t1=T1, ca_file=peers.rendered.ca_file, **options)


def _entry_of(peers: Peers) -> PeerSpec:
    return peers.profile.entry


# --- readiness ------------------------------------------------------------------------


@pytest.mark.parametrize("peers", ALL_PROFILES, indirect=True)
def test_peers_are_ready_in_their_own_address_block(peers: Peers, base: int) -> None:
    assert peers.startup_seconds is not None
    assert peers.startup_seconds < peers.deadline
    assert [r.name for r in peers.running] == [p.name for p in peers.profile.peers]
    for running in peers.running:
        assert running.ready_seconds is not None
        assert running.ready_seconds <= peers.startup_seconds
        assert running.rendered.spec.address.startswith(f"127.0.{base}.")
        running.container.reload()
        assert running.container.status == "running"


# --- registration ---------------------------------------------------------------------


def _register(peers: Peers, config: NumberConfig) -> RegisterResult:
    outcome = run(run_register(config, settings_for(peers), expires=120, unregister=True))
    assert isinstance(outcome.result, RegisterResult)
    return outcome.result


# Per profile: the peer the agent's requests must reach first, its transport and port,
# and the digest username (what the profile's number overlay dictates).
FIRST_HOP = {
    "registrar-udp": ("registrar", "udp", 5060, "15550100001"),
    "proxy-tcp-5065": ("proxy", "tcp", 5065, "15550100001"),
    "pbx-asterisk": ("pbx", "udp", 5060, "auth-7781"),
    "tls-5061": ("registrar", "tls", 5061, "15550100001"),
}


@pytest.mark.parametrize("peers", REGISTERING, indirect=True)
def test_agent_registers_with_the_profiles_overlay(peers: Peers) -> None:
    config = peers.number
    peer_name, transport, port, digest_username = FIRST_HOP[peers.profile.name]
    entry = peers.profile.peer(peer_name)
    assert entry.port == port
    result = _register(peers, config)

    assert result.success, result.error
    assert result.status == 200
    assert [t.status for t in result.transactions] == [401, 200, 200]  # challenge, OK, un-REGISTER
    assert result.unregistered is True
    # Where the request went comes from the number overlay (placed with the peers): the
    # outbound proxy when the profile sets one, else the sip_domain.
    assert result.endpoints.remote == f"{entry.address}:{port}"
    assert result.endpoints.transport == transport
    assert result.endpoints.via == ("outbound_proxy" if config.outbound_proxy else "sip_domain")
    assert result.request_uri.startswith(f"sip:{config.sip_domain.host}")
    # The digest username is the Authorization ID where the profile sets one.
    assert result.auth.used
    assert result.auth.header == "Authorization"
    assert result.auth.digest_username == digest_username
    # The first REGISTER goes without credentials; the rest carry them (the un-REGISTER
    # reuses the answered challenge).
    assert [t.authorization for t in result.transactions] == [
        None,
        "Authorization",
        "Authorization",
    ]
    assert result.expires_granted is not None
    assert 0 < result.expires_granted <= 120


@pytest.mark.parametrize("peers", REGISTERING, indirect=True)
def test_a_wrong_password_is_rejected_without_a_loop(peers: Peers) -> None:
    wrong = dataclasses.replace(peers.number, password=WRONG_PASSWORD)
    result = _register(peers, wrong)

    assert not result.success
    assert result.error_kind == "credentials-rejected"
    assert result.error is not None
    assert result.error.startswith("credentials rejected")
    assert WRONG_PASSWORD not in result.error
    # One challenge answered, the second challenge ends it: never a third REGISTER.
    assert [t.status for t in result.transactions] == [401, 401]
    assert result.unregistered is None


# --- outbound calls -------------------------------------------------------------------


def _call(peers: Peers, **options: Any) -> CallResult:
    settings = settings_for(peers, **options)
    outcome = run(run_call(peers.number, settings, to=DIALLED, duration=CALL_SECONDS))
    assert isinstance(outcome.result, CallResult)
    return outcome.result


@pytest.mark.parametrize("peers", ALL_PROFILES, indirect=True)
def test_a_call_reaches_asterisk_and_rtp_echoes_back(peers: Peers) -> None:
    entry = _entry_of(peers)
    result = _call(peers)

    assert result.success, result.error
    assert result.outcome == "completed"
    assert (result.status, result.answered, result.ended_by) == (200, True, "local")
    assert result.bye_status == 200
    # Through the profile's entry (the TCP proxy, the TLS registrar, the trunk...).
    assert result.endpoints.remote == f"{entry.address}:{entry.port}"
    assert result.endpoints.transport == entry.transport.value
    # Authentication as the carrier wants it: a registrar proxy-challenges (407), the
    # PBX challenges (401) and matches the Authorization ID; the trunk trusts the address.
    config = peers.number
    if peers.profile.name == "ip-trunk":
        assert not result.auth.used
        assert result.endpoints.local.startswith("127.0.0.1:")
    else:
        pbx = peers.profile.name == "pbx-asterisk"
        assert result.auth.header == ("Authorization" if pbx else "Proxy-Authorization")
        assert result.auth.digest_username == (config.auth_username or config.username)
    # Asterisk answered with media on its own address, and echoed our audio back.
    asterisk = next(p for p in peers.profile.peers if p.software.value == "asterisk")
    assert result.remote_media is not None
    assert result.remote_media.startswith(f"{asterisk.address}:")
    rtp = result.rtp
    assert rtp is not None
    assert rtp.packets_sent > 0
    assert rtp.echo_received > 0
    assert rtp.echo_received >= rtp.packets_sent // 2
    assert rtp.rtt_ms_avg is not None
    assert 0 < rtp.rtt_ms_avg < 200


@pytest.mark.parametrize("peers", ["ip-trunk"], indirect=True)
def test_trunk_refuses_a_source_it_does_not_allow(peers: Peers) -> None:
    result = _call(peers, local_ip=NOT_ALLOWED_SOURCE)

    assert result.endpoints.local.startswith(f"{NOT_ALLOWED_SOURCE}:")
    assert not result.success
    assert (result.status, result.outcome, result.error_kind) == (403, "rejected", "rejected")
    assert not result.answered
    assert [t.status for t in result.transactions] == [403]
    assert result.rtp is None


# --- inbound calls --------------------------------------------------------------------


def _check_answered(answer: AnswerResult, peers: Peers) -> None:
    entry = _entry_of(peers)
    assert answer.success, answer.error
    assert len(answer.calls) == 1
    call = answer.calls[0]
    assert call.source == f"{entry.address}:{entry.port}"
    assert (call.outcome, call.status, call.ack_received) == ("completed", 200, True)
    assert call.ended_by == "local"
    assert call.bye_status == 200
    assert call.rtp is not None  # media ran until our BYE (see the module docstring)


async def _register_and_answer(
    peers: Peers,
) -> tuple[RegisterResult, AnswerResult | None, bool]:
    config = peers.number
    view = effective_view(config)
    agent, outbound = await open_outbound_agent(
        config, view, timers=TimerConfig(t1=T1), ca_file=peers.rendered.ca_file
    )
    async with agent:
        registration = Registration(agent, config, view, outbound, expires=120)
        registered = await registration.register()
        if not registered.success:
            return registered, None, False
        server = InboundServer(agent, config, view, hangup_after=INBOUND_SECONDS)
        # originate() asks Asterisk through the engine (blocking, bounded by its timeout).
        await asyncio.to_thread(peers.originate)
        answer = await server.serve(1, timeout=10.0)
        agent.request_handler = None
        unregistered = await registration.unregister()
    return registered, answer, unregistered


@pytest.mark.parametrize("peers", REGISTERING, indirect=True)
def test_asterisk_calls_the_registered_contact_and_the_uas_answers(peers: Peers) -> None:
    registered, answer, unregistered = run(_register_and_answer(peers))

    assert registered.success, registered.error
    assert answer is not None
    _check_answered(answer, peers)
    call = answer.calls[0]
    # The carrier delivers to the registered contact: the extension / AoR user.
    assert call.request_uri.startswith(f"sip:{peers.number.username}@")
    assert unregistered


async def _answer_at_origination(peers: Peers) -> AnswerResult:
    config = peers.number
    view = effective_view(config)
    async with await open_inbound_agent(view, timers=TimerConfig(t1=T1)) as agent:
        server = InboundServer(agent, config, view, hangup_after=INBOUND_SECONDS)
        await asyncio.to_thread(peers.originate)
        answer = await server.serve(1, timeout=10.0)
        agent.request_handler = None
    return answer


@pytest.mark.parametrize("peers", ["ip-trunk"], indirect=True)
def test_trunk_sends_an_inbound_call_to_the_origination_uri(peers: Peers) -> None:
    answer = run(_answer_at_origination(peers))

    _check_answered(answer, peers)
    origination = peers.number.origination_uri
    assert origination is not None
    assert answer.endpoints.local == f"{origination.host}:{origination.port}"
    call = answer.calls[0]
    assert call.to_number  # delivered for the number's phone_number
    assert call.request_uri.startswith(f"sip:{peers.number.phone_number}@127.0.0.1:")
