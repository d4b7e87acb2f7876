"""The checks on real runs: the agent against Kamailio/Asterisk peers, live-captured.

Each test drives the platform agent with a number (the right one, or one with a
deliberate mistake a customer makes), captures the traffic between the harness and
the peers, and runs what ``sipharness analyze`` runs on the pcap with the number the
customer typed; where it tells more, also with the number the carrier expects. A
good run passes; a broken one fails the checks that name the mistake. Checks the
real peers cannot be made to break keep their synthetic tests (test_checks.py).

Peers use loopback blocks 127.0.70-73.x so this module runs beside other suites.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.agent.register import Registration
from harness.agent.results import CallResult, RegisterResult
from harness.checks.registry import Outcome
from harness.checks.sipview import credentials
from harness.numbers import HostPort
from harness.peers.containers import Peers
from harness.peers.engine import Engine
from harness.peers.profiles import Quirk
from harness.sip.message import Request, Response
from harness.sip.uri import parse_sip_uri
from tests.checks.real_runs import (
    FAST_T1,
    Session,
    engine_or_skip,
    explain,
    outcomes,
    profile_peers,
    record,
)

pytestmark = pytest.mark.integration

PASS, FAIL, NA = Outcome.PASS, Outcome.FAIL, Outcome.NOT_APPLICABLE


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = engine_or_skip()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def registrar(engine: Engine) -> Iterator[Peers]:
    with profile_peers(engine, "registrar-udp", base=70) as peers:
        yield peers


@pytest.fixture(scope="module")
def proxy(engine: Engine) -> Iterator[Peers]:
    with profile_peers(engine, "proxy-tcp-5065", base=71) as peers:
        yield peers


@pytest.fixture(scope="module")
def pbx(engine: Engine) -> Iterator[Peers]:
    with profile_peers(engine, "pbx-asterisk", base=72) as peers:
        yield peers


@pytest.fixture(scope="module")
def tls(engine: Engine) -> Iterator[Peers]:
    with profile_peers(engine, "tls-5061", base=74) as peers:
        yield peers


@pytest.fixture(scope="module")
def quirky(engine: Engine) -> Iterator[Peers]:
    quirks = [Quirk.REALM, Quirk.SHA256, Quirk.MIN_EXPIRES, Quirk.STALE_NONCE]
    with profile_peers(
        engine, "registrar-udp", base=73, quirks=[*quirks, Quirk.STRICT_DIGEST_URI]
    ) as peers:
        yield peers


def expect(analysis: object, wanted: dict[str, Outcome]) -> None:
    """Assert each check's outcome; the message lists every finding's reasons."""
    from harness.evidence import CaptureAnalysis

    assert isinstance(analysis, CaptureAnalysis)
    got = outcomes(analysis, *wanted)
    assert got == wanted, explain(analysis)


def all_of(outcome: Outcome, *check_ids: str) -> dict[str, Outcome]:
    return dict.fromkeys(check_ids, outcome)


async def _register_call(session: Session) -> tuple[object, ...]:
    return (
        await session.options(),
        await session.register(60),
        await session.call(duration=1.0),
        await session.unregister(),
    )


# --- good runs -------------------------------------------------------------------------------

GOOD_PASSES = (
    "AUTH-001", "AUTH-002", "AUTH-003", "AUTH-004", "AUTH-005",
    "DEC-001", "DEC-002",
    "HDR-001", "HDR-002", "HDR-003", "HDR-004",
    "ID-001", "ID-002", "ID-003", "ID-004", "ID-005",
    "INV-001", "INV-004", "INV-005", "INV-006", "INV-007",
    "OPT-001",
    "REG-001", "REG-003", "REG-004", "REG-005", "REG-006",
    "ROUTE-001", "ROUTE-002",
    "RTP-001", "RTP-002",
    "SDP-002", "SDP-003", "SDP-004",
    "SEC-001", "SEC-002", "SEC-003",
    "TRN-001", "TRN-002",
    "TXN-001", "TXN-003", "TXN-004", "TXN-005", "TXN-006",
)  # fmt: skip


def test_good_registrar_run_passes_every_check(registrar: Peers, tmp_path: Path) -> None:
    run = record(tmp_path / "good.pcap", registrar, _register_call)
    assert all(r.success for r in run.result if not isinstance(r, bool)), run.result
    analysis = run.analyze(registrar.number, rtp=True)
    assert analysis.checks.failed == (), explain(analysis)
    expect(analysis, all_of(PASS, *GOOD_PASSES))
    # No outbound proxy: the proxy checks have nothing to judge.
    expect(analysis, all_of(NA, "ROUTE-003", "ROUTE-004", "REG-002", "TLS-001"))

    # The same capture judged against number files that do not describe it.
    trunk = dataclasses.replace(
        registrar.number, username=None, password=None, password_source=None
    )
    elsewhere = dataclasses.replace(registrar.number, sip_domain=HostPort("127.0.70.9", None))
    expect(run.analyze(trunk), {"REG-005": FAIL})
    expect(run.analyze(elsewhere), {"SEC-002": FAIL, "ROUTE-001": FAIL, "ID-003": FAIL})


def test_good_proxy_run_passes_the_route_checks(proxy: Peers, tmp_path: Path) -> None:
    run = record(tmp_path / "proxy.pcap", proxy, _register_call)
    assert all(r.success for r in run.result if not isinstance(r, bool)), run.result
    analysis = run.analyze(proxy.number, rtp=True)
    assert analysis.checks.failed == (), explain(analysis)
    expect(
        analysis,
        all_of(PASS, "ROUTE-001", "ROUTE-002", "ROUTE-003", "ROUTE-004", "INV-007", "TXN-003"),
    )
    # Everything went over TCP to the proxy.
    assert {m.transport for m in analysis.decoded.messages} == {"tcp"}


def test_inbound_call_is_delivered_for_the_number(registrar: Peers, tmp_path: Path) -> None:
    async def scenario(session: Session) -> tuple[object, ...]:
        registered = await session.register(60)
        answered = await session.inbound(registrar)
        await session.unregister()
        return registered, answered

    run = record(tmp_path / "inbound.pcap", registrar, scenario)
    registered, answered = run.result
    assert registered.success, run.result
    assert answered.success, run.result
    analysis = run.analyze(registrar.number, rtp=True)
    # The agent (callee) hangs up: its BYE must follow the Record-Route of the INVITE.
    expect(analysis, {"ID-006": PASS, "INV-008": PASS, "INV-004": PASS, "TXN-002": PASS})
    # The caller's ACK is seen after the carrier's proxy consumed its Route: not judged.
    expect(analysis, {"INV-007": NA})
    # The answering agent sends a tone and Asterisk's Echo() returns it.
    expect(analysis, {"RTP-001": PASS, "RTP-002": PASS})


def test_cancelled_call_ends_with_487(registrar: Peers, tmp_path: Path) -> None:
    async def scenario(session: Session) -> CallResult:
        # The media service's "ring" extension rings and never answers.
        return await session.call("ring", cancel_after=0.5)

    run = record(tmp_path / "cancel.pcap", registrar, scenario)
    assert run.result.status == 487, run.result
    analysis = run.analyze(registrar.number)
    assert analysis.checks.failed == (), explain(analysis)
    expect(analysis, all_of(PASS, "INV-002", "INV-003", "INV-005", "AUTH-004"))


def test_tls_is_used_when_the_number_asks_for_it(tls: Peers, tmp_path: Path) -> None:
    async def scenario(session: Session) -> RegisterResult:
        return await session.register(60)

    run = record(tmp_path / "tls.pcap", tls, scenario)
    assert run.result.success, run.result
    analysis = run.analyze(tls.number)
    assert analysis.decoded.messages == ()
    assert analysis.decoded.tls_streams
    expect(analysis, {"TLS-001": PASS})

    # The customer typed the carrier's edge without TLS; the edge answers on UDP too.
    assert tls.number.outbound_proxy is not None
    edge = tls.number.outbound_proxy
    typed = dataclasses.replace(
        tls.number, outbound_proxy=parse_sip_uri(f"sip:{edge.host}:{edge.port}")
    )
    run = record(tmp_path / "plain.pcap", tls, scenario, number=typed)
    assert run.analyze(typed).decoded.tls_streams == ()
    expect(run.analyze(tls.number), {"TLS-001": FAIL, "ROUTE-001": PASS})


def test_pbx_auth_username_passes(pbx: Peers, tmp_path: Path) -> None:
    run = record(tmp_path / "pbx.pcap", pbx, _register_call)
    analysis = run.analyze(pbx.number, rtp=True)
    expect(analysis, all_of(PASS, "AUTH-001", "AUTH-004", "REG-001", "INV-001", "RTP-001"))
    sent = [
        c.message
        for c in analysis.decoded.messages
        if isinstance(c.message, Request) and "Authorization" in c.message.headers
    ]
    users = {p.username for msg in sent for _, _, p in credentials(msg) if p is not None}
    assert users == {"auth-7781"}


# --- deliberately wrong number files ----------------------------------------------------------


def test_wrong_auth_username_is_rejected(pbx: Peers, tmp_path: Path) -> None:
    # The customer left out the PBX's Authorization ID: the digest user is the extension.
    typed = dataclasses.replace(pbx.number, auth_username=None)

    async def scenario(session: Session) -> RegisterResult:
        return await session.register(60)

    run = record(tmp_path / "auth.pcap", pbx, scenario, number=typed)
    assert not run.result.success
    expect(run.analyze(typed), {"AUTH-004": FAIL, "AUTH-001": PASS})
    # Against the carrier's expectation the digest username itself is the finding.
    expect(run.analyze(pbx.number), {"AUTH-001": FAIL, "AUTH-004": FAIL})


def test_wrong_password_is_rejected(registrar: Peers, tmp_path: Path) -> None:
    typed = dataclasses.replace(registrar.number, password="not-the-password")

    async def scenario(session: Session) -> tuple[RegisterResult, CallResult]:
        return await session.register(60), await session.call(duration=0.5)

    run = record(tmp_path / "password.pcap", registrar, scenario, number=typed)
    assert not any(r.success for r in run.result)
    analysis = run.analyze(typed)
    expect(analysis, {"AUTH-004": FAIL, "AUTH-001": PASS, "AUTH-002": PASS, "AUTH-005": PASS})
    failures = {r.reason for r in analysis.checks.finding("AUTH-004").failures}
    assert any("REGISTER" in r and "401" in r for r in failures), failures
    assert any("INVITE" in r and "407" in r for r in failures), failures


def test_missing_outbound_proxy_is_refused(proxy: Peers, tmp_path: Path) -> None:
    # The registrar answers 403 to requests that skip the carrier's edge proxy.
    typed = dataclasses.replace(proxy.number, outbound_proxy=None)

    async def scenario(session: Session) -> RegisterResult:
        return await session.register(60)

    run = record(tmp_path / "noproxy.pcap", proxy, scenario, number=typed)
    assert run.result.status == 403
    analysis = run.analyze(typed)
    expect(analysis, {"REG-001": FAIL, "ROUTE-001": PASS})
    assert "403" in analysis.checks.finding("REG-001").failures[0].reason
    expect(
        run.analyze(proxy.number), all_of(FAIL, "REG-001", "ROUTE-001", "ROUTE-002", "ROUTE-003")
    )


def test_udp_where_tcp_is_required(proxy: Peers, tmp_path: Path) -> None:
    assert proxy.number.outbound_proxy is not None
    typed = dataclasses.replace(
        proxy.number, outbound_proxy=parse_sip_uri(f"sip:{proxy.number.outbound_proxy.host}:5065")
    )

    async def scenario(session: Session) -> RegisterResult:
        return await session.register(60)

    run = record(tmp_path / "udp.pcap", proxy, scenario, number=typed)
    # The mock proxy also listens on UDP 5065 (its hops to the registrar use it), so
    # the registration goes through; the carrier's expectation is what flags it.
    assert {m.transport for m in run.analyze(typed).decoded.messages} == {"udp"}
    expect(run.analyze(proxy.number), {"ROUTE-002": FAIL, "ROUTE-001": PASS})


def test_wrong_port_never_reaches_a_sip_server(registrar: Peers, tmp_path: Path) -> None:
    domain = registrar.number.sip_domain
    typed = dataclasses.replace(registrar.number, sip_domain=HostPort(domain.host, 5070))

    async def scenario(session: Session) -> list[object]:
        return list(await asyncio.gather(session.options(), session.register(60), session.call()))

    run = record(tmp_path / "port.pcap", registrar, scenario, number=typed, t1=FAST_T1)
    assert not any(r.success for r in run.result)
    analysis = run.analyze(typed)
    assert analysis.decoded.unreachable, "no ICMP port unreachable captured"
    expect(analysis, all_of(FAIL, "OPT-001", "REG-001", "INV-001"))
    for check_id in ("OPT-001", "REG-001", "INV-001"):
        finding = analysis.checks.finding(check_id)
        assert "ICMP port unreachable" in finding.failures[0].reason
        assert any(e.summary.startswith("ICMP") for e in finding.evidence)
    expect(run.analyze(registrar.number), {"ROUTE-001": FAIL})


def test_truncated_capture_is_reported(registrar: Peers, tmp_path: Path) -> None:
    async def scenario(session: Session) -> object:
        return await session.options()

    run = record(tmp_path / "cut.pcap", registrar, scenario)
    data = run.pcap.read_bytes()
    run.pcap.write_bytes(data[: len(data) - 20])  # the file ends inside the last record
    expect(run.analyze(None), {"DEC-002": FAIL})


# --- carrier quirks ---------------------------------------------------------------------------


def test_quirks_realm_sha256_min_expires_stale_nonce(quirky: Peers, tmp_path: Path) -> None:
    settings = quirky.profile.settings

    async def scenario(session: Session) -> tuple[object, ...]:
        registered = await session.register(60)
        # Past the nonce lifetime: the refresh's reused nonce is stale.
        await asyncio.sleep(settings.nonce_expire + 0.5)
        refreshed = await session.refresh()
        called = await session.call(duration=0.5)
        return registered, refreshed, called, await session.unregister()

    run = record(tmp_path / "quirks.pcap", quirky, scenario)
    registered, refreshed, called, _ = run.result
    assert registered.success, run.result
    assert refreshed.success, run.result
    assert called.success, run.result
    analysis = run.analyze(quirky.number, rtp=True)
    assert analysis.checks.failed == (), explain(analysis)
    expect(analysis, all_of(PASS, "AUTH-001", "AUTH-002", "AUTH-003", "AUTH-004", "AUTH-005"))
    expect(analysis, {"REG-002": PASS, "REG-001": PASS, "INV-001": PASS})

    messages = [c.message for c in analysis.decoded.messages]
    answers = [p for m in messages if isinstance(m, Request) for _, _, p in credentials(m)]
    # SHA-256 only, and the challenge's realm, which is not the SIP domain.
    assert answers
    assert {(p.algorithm, p.realm) for p in answers if p} == {("SHA-256", settings.realm)}
    assert settings.realm != quirky.number.sip_domain.host
    # 423 with Min-Expires, then the retry asks for it.
    assert any(isinstance(m, Response) and m.status == 423 for m in messages)
    # The stale nonce was answered once with the fresh one, not reported as rejected.
    reasons = [r.reason for r in analysis.checks.finding("AUTH-004").results]
    assert sum("stale" in r for r in reasons) == 1, reasons


class _IgnoresMinExpires(Registration):
    """A client that retries a 423 with the interval it asked for before."""

    @staticmethod
    def _min_expires(response: Response, asked: int) -> int:
        del response
        return asked


def test_ignoring_min_expires_fails(quirky: Peers, tmp_path: Path) -> None:
    async def scenario(session: Session) -> RegisterResult:
        session.registration = _IgnoresMinExpires(
            session.agent, session.number, session.view, session.outbound, expires=60
        )
        return await session.registration.register()

    run = record(tmp_path / "423.pcap", quirky, scenario)
    assert run.result.status == 423
    analysis = run.analyze(quirky.number)
    expect(analysis, {"REG-002": FAIL})
    assert "Min-Expires is 600" in analysis.checks.finding("REG-002").failures[0].reason
