"""Real Kamailio and Asterisk peers for every profile (integration: engine and images).

Each profile's peers start once per module. Registrations and calls go through the
platform-side agent (harness.agent, as the CLI runs it); the quirk tests stay on
tests/peers/sipwire.py, a small synchronous client that can send deliberately wrong
requests (expired nonces, a digest uri that differs from the Request-URI).
tests/peers/test_agent_on_peers.py holds the agent's acceptance on every profile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner

from harness.agent.common import open_outbound_agent
from harness.agent.register import Registration
from harness.agent.results import AnswerResult, CallResult, RegisterResult
from harness.agent.runner import AgentSettings, run_call, run_register
from harness.agent.uas import InboundServer, open_inbound_agent
from harness.cli import app
from harness.errors import HarnessError
from harness.numbers import NumberConfig, effective_view, load_number_file
from harness.peers.containers import (
    Peers,
    managed_containers,
    owner_token,
    reap_leftovers,
    remove_runs,
    start_peers,
)
from harness.peers.engine import Engine
from harness.peers.images import IMAGES, image_present
from harness.peers.profiles import Quirk, load_profile
from harness.sip.digest import challenges_from_response
from harness.sip.message import Response
from harness.sip.timers import TimerConfig
from harness.sip.uri import SipUri
from tests.peers.sipwire import SipClient, retry_with_credentials

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "fixtures" / "numbers" / "example.yaml"
T = TypeVar("T")
FAST = TimerConfig(t1=0.1)
"""Timer B/F 6.4 s: a lost request fails a test quickly (loopback needs no more)."""
SETTINGS = AgentSettings(t1=0.1)
DIALLED = "15550109999"


def _engine_or_skip() -> Engine:
    try:
        engine = Engine.connect()
    except HarnessError as err:
        pytest.skip(f"no Docker engine: {err}")
    missing = [s.name for s in IMAGES if s.name in {"kamailio", "asterisk"}]
    missing = [name for name in missing if not image_present(engine, _spec(name))]
    if missing:
        engine.close()
        pytest.skip(f"peer images missing ({', '.join(missing)}): run sipharness images build")
    return engine


def _spec(name: str):  # type: ignore[no-untyped-def]
    return next(s for s in IMAGES if s.name == name)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = _engine_or_skip()
    before = {c.name for c in managed_containers(engine)}
    yield engine
    # Nothing this module started may outlive it (containers owned by this process:
    # another harness run on the same engine is not ours to judge).
    mine = owner_token()
    left = [c.name for c in managed_containers(engine) if c.name not in before and c.owner == mine]
    engine.close()
    assert left == [], f"containers left behind: {left}"


@pytest.fixture(scope="module")
def number() -> NumberConfig:
    return load_number_file(EXAMPLE)


def _start(engine: Engine, profile: str, number: NumberConfig, **options: object) -> Peers:
    peers = start_peers(load_profile(profile), number, engine=engine, **options)  # type: ignore[arg-type]
    # Timings belong to benchmarks; here only that readiness came before the deadline.
    assert peers.startup_seconds is not None
    assert peers.startup_seconds < peers.deadline
    return peers


@pytest.fixture(scope="module")
def registrar_udp(engine: Engine, number: NumberConfig) -> Iterator[Peers]:
    with _start(engine, "registrar-udp", number) as peers:
        yield peers


@pytest.fixture(scope="module")
def quirky(engine: Engine, number: NumberConfig) -> Iterator[Peers]:
    # Every quirk at once, moved to 127.0.1.x so it runs beside registrar-udp.
    with _start(engine, "registrar-udp", number, quirks=[q.value for q in Quirk], base=1) as peers:
        yield peers


# --- helpers --------------------------------------------------------------------------


def _register(
    client: SipClient,
    number: NumberConfig,
    *,
    password: str | None = None,
    expires: int = 60,
    digest_uri: str | None = None,
) -> tuple[Response, Response]:
    """REGISTER, answer the challenge; returns (challenge, final answer)."""
    assert number.username is not None
    domain = number.sip_domain
    aor = f"sip:{number.username}@{domain.host}"
    uri = str(SipUri(host=domain.host, port=domain.port))
    request = client.request(
        "REGISTER", uri, from_uri=aor, to_uri=aor,
        extra=[("Contact", client.contact(number.username)), ("Expires", str(expires))],
    )  # fmt: skip
    challenge = client.final_response(request)
    assert challenge.status == 401, challenge
    digest_user = number.auth_username or number.username
    retry = retry_with_credentials(
        request, challenge, username=digest_user, client=client,
        password=number.password if password is None else password, digest_uri=digest_uri,
    )  # fmt: skip
    return challenge, client.final_response(retry)


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run agent work on a fresh event loop, bounded by ``timeout``."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def agent_register(
    number: NumberConfig, settings: AgentSettings = SETTINGS, **options: Any
) -> RegisterResult:
    """Register (and un-register) the number with the agent, as the CLI does."""
    outcome = run(run_register(number, settings, expires=120, unregister=True, **options))
    assert isinstance(outcome.result, RegisterResult)
    return outcome.result


def agent_call(number: NumberConfig, settings: AgentSettings = SETTINGS) -> CallResult:
    """A short call to DIALLED with the agent; the result holds SIP and RTP figures."""
    outcome = run(run_call(number, settings, to=DIALLED, duration=0.3))
    assert isinstance(outcome.result, CallResult)
    return outcome.result


def assert_echoed_call(result: CallResult, media_address: str) -> None:
    """Answered by Asterisk (media on its address), audio echoed, hung up with 200."""
    assert result.success, result.error
    assert (result.status, result.outcome, result.bye_status) == (200, "completed", 200)
    assert result.remote_media is not None
    assert result.remote_media.startswith(f"{media_address}:")
    assert result.rtp is not None
    assert result.rtp.packets_sent > 0
    assert result.rtp.echo_received > 0


async def _register_then_answer(
    peers: Peers, *, reject: int | None = None
) -> tuple[RegisterResult, AnswerResult | None]:
    """Register with one agent, make the peer call the contact, answer (or reject) it."""
    number = peers.number
    view = effective_view(number)
    agent, outbound = await open_outbound_agent(number, view, timers=FAST)
    async with agent:
        registration = Registration(agent, number, view, outbound, expires=120)
        registered = await registration.register()
        if not registered.success:
            return registered, None
        server = InboundServer(agent, number, view, reject=reject, hangup_after=0.3)
        await asyncio.to_thread(peers.originate)
        answer = await server.serve(1, timeout=10.0)
        agent.request_handler = None
        assert await registration.unregister()
    return registered, answer


# --- registrar-udp --------------------------------------------------------------------


def test_registrar_udp_accepts_the_right_credentials(registrar_udp: Peers) -> None:
    result = agent_register(registrar_udp.number)
    assert result.success, result.error
    assert [t.status for t in result.transactions] == [401, 200, 200]
    assert result.endpoints.remote == "127.0.0.2:5060"
    # Without quirks: realm is the domain and MD5 is offered (no algorithm or MD5).
    assert result.auth.realm == "127.0.0.2"
    assert result.auth.algorithm == "MD5"


def test_registrar_udp_rejects_a_wrong_password(registrar_udp: Peers) -> None:
    wrong = dataclasses.replace(registrar_udp.number, password="not-the-password")
    result = agent_register(wrong)
    assert result.error_kind == "credentials-rejected"
    assert [t.status for t in result.transactions] == [401, 401]


def test_registrar_udp_invite_is_answered_by_asterisk_with_sdp(registrar_udp: Peers) -> None:
    outcome = run(run_call(registrar_udp.number, SETTINGS, to=DIALLED, duration=0.3))
    result = outcome.result
    assert isinstance(result, CallResult)
    assert_echoed_call(result, "127.0.0.3")
    assert result.auth.header == "Proxy-Authorization"  # the registrar's 407
    answers = [
        e.message
        for e in outcome.events
        if e.direction == "in" and isinstance(e.message, Response) and e.message.status == 200
    ]
    ok = next(m for m in answers if m.cseq is not None and m.cseq[1] == "INVITE")
    assert "sipharness-media" in (ok.headers.get("Server") or ok.headers.get("User-Agent") or "")


def test_registrar_udp_originate_reaches_the_registered_contact(registrar_udp: Peers) -> None:
    # The contact's answer here is 486: the peer's call ends there, and the ACK for it
    # (hop by hop through Kamailio) reaches the agent.
    registered, answer = run(_register_then_answer(registrar_udp, reject=486))
    assert registered.success, registered.error
    assert answer is not None
    assert answer.success, answer.error
    call = answer.calls[0]
    assert call.request_uri.startswith(f"sip:{registrar_udp.number.username}@127.0.0.1:")
    assert (call.outcome, call.status, call.ack_received) == ("rejected", 486, True)


def test_logs_never_show_the_password(registrar_udp: Peers) -> None:
    password = registrar_udp.number.password
    assert password
    for text in registrar_udp.logs().values():
        assert password not in text


# --- quirks ---------------------------------------------------------------------------


def test_quirk_realm_differs_from_the_domain(quirky: Peers) -> None:
    with SipClient(("127.0.1.2", 5060)) as client:
        challenge, _ = _register(client, quirky.number, expires=3600)
    assert challenges_from_response(challenge)[0].challenge.realm == "realm.carrier.test"


def test_quirk_sha256_only(quirky: Peers) -> None:
    with SipClient(("127.0.1.2", 5060)) as client:
        challenge, answer = _register(client, quirky.number, expires=3600)
    offered = [c.challenge.algorithm_name for c in challenges_from_response(challenge)]
    assert offered == ["SHA-256"]
    assert answer.status == 200


def test_quirk_min_expires_gives_423(quirky: Peers) -> None:
    with SipClient(("127.0.1.2", 5060)) as client:
        _, answer = _register(client, quirky.number, expires=60)
    assert answer.status == 423
    assert answer.headers.get("Min-Expires") == "600"


def test_quirk_stale_nonce(quirky: Peers) -> None:
    number = quirky.number
    assert number.username is not None
    assert number.password is not None
    with SipClient(("127.0.1.2", 5060)) as client:
        aor = f"sip:{number.username}@127.0.1.2"
        request = client.request(
            "REGISTER", "sip:127.0.1.2", from_uri=aor, to_uri=aor,
            extra=[("Contact", client.contact(number.username)), ("Expires", "3600")],
        )  # fmt: skip
        challenge = client.final_response(request)
        assert not challenges_from_response(challenge)[0].challenge.stale
        time.sleep(quirky.profile.settings.nonce_expire + 1.2)
        late = retry_with_credentials(
            request, challenge, username=number.username, password=number.password, client=client
        )
        answer = client.final_response(late)
    assert answer.status == 401
    assert challenges_from_response(answer)[0].challenge.stale


def test_quirk_strict_digest_uri(quirky: Peers, registrar_udp: Peers) -> None:
    with SipClient(("127.0.1.2", 5060)) as client:
        _, strict = _register(client, quirky.number, expires=3600, digest_uri="sip:127.0.1.2:5060")
    assert strict.status == 400
    # Without the quirk the same mismatch is accepted.
    with SipClient(("127.0.0.2", 5060)) as client:
        _, lenient = _register(client, registrar_udp.number, digest_uri="sip:127.0.0.2:5060")
    assert lenient.status == 200


# --- proxy-tcp-5065 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy_tcp(engine: Engine, number: NumberConfig) -> Iterator[Peers]:
    with _start(engine, "proxy-tcp-5065", number) as peers:
        yield peers


def test_proxy_tcp_registers_and_calls_through_the_proxy(proxy_tcp: Peers) -> None:
    number = proxy_tcp.number
    assert str(number.outbound_proxy) == "sip:127.0.0.5:5065;transport=tcp"
    registered = agent_register(number)
    assert registered.success, registered.error
    assert (registered.endpoints.transport, registered.endpoints.remote) == (
        "tcp",
        "127.0.0.5:5065",
    )
    call = agent_call(number)
    assert (call.endpoints.transport, call.endpoints.remote) == ("tcp", "127.0.0.5:5065")
    assert_echoed_call(call, "127.0.0.7")


def test_proxy_tcp_registrar_refuses_requests_not_via_the_proxy(proxy_tcp: Peers) -> None:
    number = proxy_tcp.number
    with SipClient(("127.0.0.6", 5060)) as client:
        aor = f"sip:{number.username}@127.0.0.6"
        request = client.request(
            "REGISTER", "sip:127.0.0.6", from_uri=aor, to_uri=aor,
            extra=[("Contact", client.contact("x"))],
        )  # fmt: skip
        answer = client.final_response(request)
    assert answer.status == 403


# --- pbx-asterisk ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pbx(engine: Engine, number: NumberConfig) -> Iterator[Peers]:
    with _start(engine, "pbx-asterisk", number) as peers:
        yield peers


def test_pbx_registers_with_the_authorization_id(pbx: Peers) -> None:
    number = pbx.number
    assert number.auth_username == "auth-7781"
    registered, answer = run(_register_then_answer(pbx))
    assert registered.success, registered.error
    assert registered.auth.digest_username == "auth-7781"
    assert answer is not None
    assert answer.success, answer.error
    assert (answer.calls[0].status, answer.calls[0].ack_received) == (200, True)


def test_pbx_rejects_a_wrong_password(pbx: Peers) -> None:
    result = agent_register(dataclasses.replace(pbx.number, password="wrong"))
    assert result.error_kind == "credentials-rejected"
    assert [t.status for t in result.transactions][-1] in {401, 403}
    assert len(result.transactions) == 2


# --- ip-trunk -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def origination_port() -> int:
    """A free UDP port on 127.0.0.1 for the number's origination URI (the agent binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def trunk(engine: Engine, number: NumberConfig, origination_port: int) -> Iterator[Peers]:
    origination = SipUri(host="127.0.0.1", port=origination_port)
    trunk_number = dataclasses.replace(number, origination_uri=origination)
    with _start(engine, "ip-trunk", trunk_number) as peers:
        yield peers


def test_trunk_answers_an_allowed_source(trunk: Peers) -> None:
    assert not trunk.number.has_credentials
    call = agent_call(trunk.number)
    assert call.endpoints.local.startswith("127.0.0.1:")
    assert not call.auth.used
    assert_echoed_call(call, "127.0.0.12")


def test_trunk_rejects_a_source_it_does_not_allow(trunk: Peers) -> None:
    call = agent_call(trunk.number, AgentSettings(t1=0.1, local_ip="127.0.0.250"))
    assert (call.status, call.error_kind) == (403, "rejected")


def test_trunk_sends_inbound_calls_to_the_origination_uri(trunk: Peers) -> None:
    number = trunk.number
    view = effective_view(number)

    async def answer() -> AnswerResult:
        async with await open_inbound_agent(view, timers=FAST) as agent:
            server = InboundServer(agent, number, view, hangup_after=0.3)
            await asyncio.to_thread(trunk.originate)
            return await server.serve(1, timeout=10.0)

    result = run(answer())
    assert result.success, result.error
    call = result.calls[0]
    assert call.source == "127.0.0.11:5060"
    assert call.request_uri.startswith(f"sip:{number.phone_number}@127.0.0.1:")
    assert (call.status, call.ack_received, call.bye_status) == (200, True, 200)


# --- tls-5061 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(engine: Engine, number: NumberConfig) -> Iterator[Peers]:
    with _start(engine, "tls-5061", number) as peers:
        yield peers


def test_tls_registers_with_a_certificate_of_the_run_ca(tls: Peers) -> None:
    ca = tls.rendered.ca_file
    assert ca is not None
    settings = AgentSettings(t1=0.1, ca_file=ca)
    good = agent_register(tls.number, settings)
    bad = agent_register(dataclasses.replace(tls.number, password="wrong"), settings)
    assert good.success, good.error
    assert (good.endpoints.transport, good.endpoints.remote) == ("tls", "127.0.0.14:5061")
    assert bad.error_kind == "credentials-rejected"
    assert [t.status for t in bad.transactions] == [401, 401]


# --- lifecycle ------------------------------------------------------------------------


def test_a_killed_run_is_reaped(engine: Engine, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from harness.numbers import load_number_file
        from harness.peers.containers import start_peers
        from harness.peers.profiles import load_profile
        peers = start_peers(load_profile("pbx-asterisk"), load_number_file({str(EXAMPLE)!r}),
                            base=2, run_id="killed-{os.getpid()}")
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    run = f"killed-{os.getpid()}"
    assert [c.peer for c in managed_containers(engine, run_id=run)] == ["pbx"]
    removed = reap_leftovers(engine)
    assert f"sipharness-{run}-pbx" in removed
    assert managed_containers(engine, run_id=run) == []


def test_a_live_run_is_not_reaped(registrar_udp: Peers, engine: Engine) -> None:
    reap_leftovers(engine)
    assert len(managed_containers(engine, run_id=registrar_udp.run_id)) == 2


def test_cli_up_status_down(engine: Engine) -> None:
    runner = CliRunner()
    up = runner.invoke(app, ["peers", "up", "--profile", "registrar-udp", "--base", "3", "--json"])
    assert up.exit_code == 0, up.output
    shown = json.loads(up.output)
    run_id = shown["run_id"]
    try:
        assert shown["peers"][0]["address"] == "127.0.3.2"
        assert shown["credentials"]["password"] == "********"
        assert "harness-example-secret" not in up.output
        # Detached peers survive the reaper.
        reap_leftovers(engine)
        assert len(managed_containers(engine, run_id=run_id)) == 2
        status = runner.invoke(app, ["peers", "status", "--json"])
        assert status.exit_code == 0
        assert run_id in {row["run_id"] for row in json.loads(status.output)}
    finally:
        down = runner.invoke(app, ["peers", "down", "--run", run_id])
    assert down.exit_code == 0, down.output
    assert managed_containers(engine, run_id=run_id) == []
    assert remove_runs(engine, run_id=run_id) == []
