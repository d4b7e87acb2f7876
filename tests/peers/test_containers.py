"""Real Kamailio and Asterisk peers for every profile (integration: engine and images).

Each profile's peers start once per module. The SIP side is tests/peers/sipwire.py, a
small synchronous client; these tests should switch to harness.agent once it can
register and call.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import HarnessError
from harness.numbers import NumberConfig, load_number_file
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
from harness.sip.message import Request, Response, make_request
from harness.sip.uri import SipUri
from tests.peers.sipwire import SDP_OFFER, SipClient, retry_with_credentials

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "fixtures" / "numbers" / "example.yaml"


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


def _invite(client: SipClient, uri: str, number: NumberConfig) -> Request:
    from_uri = f"sip:{number.phone_number}@{number.sip_domain.host}"
    body = SDP_OFFER.format(address=client.local[0], port=40000).encode()
    return client.request(
        "INVITE", uri, from_uri=from_uri, to_uri=uri,
        extra=[("Contact", client.contact("harness")), ("Content-Type", "application/sdp")],
        body=body,
    )  # fmt: skip


def _ack_and_bye(client: SipClient, invite: Request, answer: Response) -> Response:
    """ACK a 2xx and hang up; returns the BYE's final response."""
    cseq = invite.cseq
    assert cseq is not None
    contact = answer.headers.get("Contact")
    assert contact is not None
    target = contact.strip().split(">")[0].lstrip("<")
    routes = list(reversed(answer.headers.get_all("Record-Route")))
    common = [
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("From") or ""),
        ("To", answer.headers.get("To") or ""),
        ("Call-ID", invite.call_id or ""),
        *(("Route", route) for route in routes),
    ]
    ack = make_request("ACK", target, [("Via", client.via()), ("CSeq", f"{cseq[0]} ACK"), *common])
    client.send(ack)
    bye = make_request(
        "BYE", target, [("Via", client.via()), ("CSeq", f"{cseq[0] + 1} BYE"), *common]
    )
    return client.final_response(bye)


def _call_with_proxy_auth(client: SipClient, uri: str, number: NumberConfig) -> Response:
    invite = _invite(client, uri, number)
    first = client.final_response(invite)
    assert first.status == 407, first
    assert number.password is not None
    retry = retry_with_credentials(
        invite, first, username=number.auth_username or number.username or "",
        password=number.password, client=client,
    )  # fmt: skip
    answer = client.final_response(retry, timeout=8)
    assert answer.status == 200, answer
    assert answer.headers.get("Content-Type") == "application/sdp"
    assert b"m=audio" in answer.body
    assert _ack_and_bye(client, retry, answer).status == 200
    return answer


# --- registrar-udp --------------------------------------------------------------------


def test_registrar_udp_accepts_the_right_credentials(registrar_udp: Peers) -> None:
    number = registrar_udp.number
    with SipClient(("127.0.0.2", 5060)) as client:
        challenge, answer = _register(client, number)
    assert answer.status == 200
    # Without quirks: realm is the domain and MD5 is offered (no algorithm or MD5).
    offered = challenges_from_response(challenge)[0].challenge
    assert offered.realm == "127.0.0.2"
    assert offered.algorithm_name == "MD5"


def test_registrar_udp_rejects_a_wrong_password(registrar_udp: Peers) -> None:
    with SipClient(("127.0.0.2", 5060)) as client:
        _, answer = _register(client, registrar_udp.number, password="not-the-password")
    assert answer.status == 401


def test_registrar_udp_invite_is_answered_by_asterisk_with_sdp(registrar_udp: Peers) -> None:
    with SipClient(("127.0.0.2", 5060)) as client:
        answer = _call_with_proxy_auth(client, "sip:15550109999@127.0.0.2", registrar_udp.number)
    assert "sipharness-media" in (
        answer.headers.get("Server") or answer.headers.get("User-Agent") or ""
    )
    assert b"c=IN IP4 127.0.0.3" in answer.body


def test_registrar_udp_originate_reaches_the_registered_contact(registrar_udp: Peers) -> None:
    number = registrar_udp.number
    with SipClient(("127.0.0.2", 5060), timeout=5) as client:
        _, answer = _register(client, number)
        assert answer.status == 200
        registrar_udp.originate()
        incoming = client.receive(timeout=5)
        while isinstance(incoming, Response):
            incoming = client.receive(timeout=5)
        assert incoming.method == "INVITE"
        assert incoming.uri.startswith(f"sip:{number.username}@127.0.0.1:{client.local[1]}")
        client.send(client.reply(incoming, 486, "Busy Here"))


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
    with SipClient(("127.0.0.5", 5065), transport="tcp") as client:
        _, answer = _register(client, number)
        assert answer.status == 200
        _call_with_proxy_auth(client, "sip:15550109999@127.0.0.6", number)


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
    with SipClient(("127.0.0.8", 5060), timeout=5) as client:
        _, answer = _register(client, number, expires=120)
        assert answer.status == 200
        pbx.originate()
        incoming = client.receive(timeout=5)
        while isinstance(incoming, Response):
            incoming = client.receive(timeout=5)
        assert incoming.method == "INVITE"
        client.send(client.reply(incoming, 486, "Busy Here"))


def test_pbx_rejects_a_wrong_password(pbx: Peers) -> None:
    with SipClient(("127.0.0.8", 5060)) as client:
        _, answer = _register(client, pbx.number, password="wrong")
    assert answer.status in {401, 403}


# --- ip-trunk -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def origination_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def trunk(
    engine: Engine, number: NumberConfig, origination_socket: socket.socket
) -> Iterator[Peers]:
    port = origination_socket.getsockname()[1]
    trunk_number = dataclasses.replace(number, origination_uri=SipUri(host="127.0.0.1", port=port))
    with _start(engine, "ip-trunk", trunk_number) as peers:
        yield peers


def test_trunk_answers_an_allowed_source(trunk: Peers) -> None:
    assert not trunk.number.has_credentials
    with SipClient(("127.0.0.11", 5060)) as client:
        invite = _invite(client, "sip:15550109999@127.0.0.11", trunk.number)
        answer = client.final_response(invite, timeout=8)
        assert answer.status == 200
        assert b"m=audio" in answer.body
        assert _ack_and_bye(client, invite, answer).status == 200


def test_trunk_rejects_a_source_it_does_not_allow(trunk: Peers) -> None:
    with SipClient(("127.0.0.11", 5060), local_address="127.0.0.250") as client:
        answer = client.final_response(_invite(client, "sip:15550109999@127.0.0.11", trunk.number))
    assert answer.status == 403


def test_trunk_sends_inbound_calls_to_the_origination_uri(
    trunk: Peers, origination_socket: socket.socket
) -> None:
    trunk.originate()
    data, source = origination_socket.recvfrom(65535)
    assert source[0] == "127.0.0.11"
    assert data.startswith(f"INVITE sip:{trunk.number.phone_number}@127.0.0.1:".encode())


# --- tls-5061 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(engine: Engine, number: NumberConfig) -> Iterator[Peers]:
    with _start(engine, "tls-5061", number) as peers:
        yield peers


def test_tls_registers_with_a_certificate_of_the_run_ca(tls: Peers) -> None:
    ca = tls.rendered.ca_file
    assert ca is not None
    with SipClient(("127.0.0.14", 5061), transport="tls", ca_file=ca) as client:
        _, good = _register(client, tls.number)
        _, bad = _register(client, tls.number, password="wrong")
    assert good.status == 200
    assert bad.status == 401


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
