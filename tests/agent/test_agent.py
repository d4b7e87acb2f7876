"""The agent's own logic: digest decisions (sans-IO), agent-to-agent calls, TLS, deadlines,
garbage, and the CLI's contract on bad input.

Peers here are the agent itself (its UAS, or a TLS registrar built on its engine):
SIPp has no TLS in this build, and the sans-IO parts need no peer at all.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from typer.testing import CliRunner

from harness.agent.call import place_call, with_route
from harness.agent.common import Authenticator, OperationFailed, open_outbound_agent
from harness.agent.core import ServerTransactionHandle, UserAgent, build_response
from harness.agent.options import options_ping
from harness.agent.register import register_number
from harness.agent.uas import answer_calls, open_inbound_agent
from harness.cli import app
from harness.numbers import NumberConfig, effective_view
from harness.numbers.loader import check_number_data
from harness.sip.digest import parse_credentials
from harness.sip.message import Headers, Request, Response
from harness.sip.timers import TimerConfig
from harness.transport import TransportError
from tests.transport.helpers import TestPki, make_pki

T = TypeVar("T")
FAST = TimerConfig(t1=0.05)
PASSWORD = "pa55-w0rd-never-shown"


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def number(**fields: str) -> NumberConfig:
    fields.setdefault("phone_number", "+15551230001")
    result = check_number_data(fields, base_dir=Path("."))
    assert result.config is not None, result.problems
    return result.config


def free_port(ip: str, kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


def challenge(status: int = 401, *, stale: bool = False, nonce: str = "n1") -> Response:
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    value = f'Digest realm="r.test", nonce="{nonce}", algorithm=MD5, qop="auth"'
    if stale:
        value += ", stale=true"
    return Response(
        status=status,
        reason="Unauthorized",
        headers=Headers([("CSeq", "1 REGISTER"), (name, value)]),
    )


# --- sans-IO decisions -------------------------------------------------------------------


def test_authenticator_answers_with_auth_username_and_rejects_a_second_challenge() -> None:
    config = number(sip_domain="d.test", username="alice", auth_username="id-9", password=PASSWORD)
    auth = Authenticator(config, effective_view(config), random.Random(1))
    name, value = auth.answer(challenge(), method="REGISTER", request_uri="sip:d.test")
    assert name == "Authorization"
    assert parse_credentials(value).username == "id-9"
    assert PASSWORD not in value
    with pytest.raises(OperationFailed) as failure:
        auth.answer(challenge(nonce="n2"), method="REGISTER", request_uri="sip:d.test")
    assert failure.value.kind == "credentials-rejected"
    assert "id-9" in failure.value.message
    assert auth.info.digest_username == "id-9"
    assert auth.info.algorithm == "MD5"


def test_authenticator_retries_a_stale_nonce_once_only() -> None:
    config = number(sip_domain="d.test", username="bob", password=PASSWORD)
    auth = Authenticator(config, effective_view(config), random.Random(2))
    auth.answer(challenge(407), method="INVITE", request_uri="sip:1@d.test")
    name, _ = auth.answer(
        challenge(407, stale=True, nonce="n2"), method="INVITE", request_uri="sip:1@d.test"
    )
    assert name == "Proxy-Authorization"
    assert auth.info.stale_nonce_retries == 1
    with pytest.raises(OperationFailed, match="credentials rejected"):
        auth.answer(
            challenge(407, stale=True, nonce="n3"), method="INVITE", request_uri="sip:1@d.test"
        )


def test_authenticator_without_credentials_says_so() -> None:
    config = number(sip_domain="d.test")
    auth = Authenticator(config, effective_view(config), random.Random(3))
    with pytest.raises(OperationFailed) as failure:
        auth.answer(challenge(), method="OPTIONS", request_uri="sip:d.test")
    assert failure.value.kind == "auth-required"


def test_with_route_puts_the_proxy_route_after_the_vias() -> None:
    request = Request(
        method="BYE",
        uri="sip:x@1.2.3.4",
        headers=Headers([("Via", "SIP/2.0/UDP a:1;branch=z9hG4bK1"), ("CSeq", "2 BYE")]),
    )
    with_route(request, "<sip:proxy.test;lr>")
    assert [name for name, _ in request.headers] == ["Via", "Route", "CSeq"]
    with_route(request, "<sip:proxy.test;lr>")
    assert request.headers.get_all("Route") == ["<sip:proxy.test;lr>"]


def test_build_response_copies_dialog_headers_and_adds_a_to_tag() -> None:
    request = Request(
        method="INVITE",
        uri="sip:1@a",
        headers=Headers(
            [
                ("Via", "SIP/2.0/UDP a:1;branch=z9hG4bK1"),
                ("Via", "SIP/2.0/UDP b:2;branch=z9hG4bK2"),
                ("From", "<sip:c@a>;tag=f1"),
                ("To", "<sip:1@a>"),
                ("Call-ID", "c1"),
                ("CSeq", "7 INVITE"),
            ]
        ),
    )
    response = build_response(request, 486, to_tag="t9")
    assert response.reason == "Busy Here"
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.headers.get("To") == "<sip:1@a>;tag=t9"
    assert response.cseq == (7, "INVITE")


# --- agent to agent ----------------------------------------------------------------------


async def _uas_and_call(
    uas_ip: str,
    uac_ip: str,
    *,
    answer: dict[str, Any],
    call: dict[str, Any],
    transport: str = "udp",
) -> tuple[Any, Any]:
    port = free_port(uas_ip, socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
    callee = number(
        origination_uri=f"sip:{uas_ip}:{port};transport={transport}", sip_domain="platform.test"
    )
    caller = number(
        phone_number="+15550001111",
        sip_domain=f"{uas_ip}:{port}",
        outbound_proxy=f"sip:{uas_ip}:{port};transport={transport}",
    )
    callee_view = effective_view(callee)
    uas_agent = await open_inbound_agent(callee_view, timers=FAST)
    async with uas_agent:
        serving = asyncio.create_task(
            answer_calls(uas_agent, callee, callee_view, calls=1, timeout=10, **answer)
        )
        view = effective_view(caller)
        agent, outbound = await open_outbound_agent(caller, view, local_host=uac_ip, timers=FAST)
        async with agent:
            result = await place_call(agent, caller, view, outbound, to=callee.phone_number, **call)
        inbound = await serving
    return result, inbound


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_inbound_uas_echoes_media_so_the_caller_measures_round_trips(transport: str) -> None:
    result, inbound = run(
        _uas_and_call(
            "127.0.0.105", "127.0.0.106", answer={}, call={"duration": 1.0}, transport=transport
        )
    )
    assert result.success, result.error
    assert result.rtp is not None
    assert result.rtp.echo_received >= 40
    assert result.rtp.rtt_ms_avg is not None
    assert inbound.success, inbound.error
    (call,) = inbound.calls
    assert call.ended_by == "remote"
    assert call.rtp is not None
    assert call.rtp.packets_received >= 40
    assert call.to_number


def test_inbound_uas_cancel_while_ringing_and_uac_cancel() -> None:
    result, inbound = run(
        _uas_and_call(
            "127.0.0.107", "127.0.0.108", answer={"ring": 3.0}, call={"cancel_after": 0.3}
        )
    )
    assert result.outcome == "cancelled"
    assert result.status == 487
    assert result.cancel_status == 200
    (call,) = inbound.calls
    assert call.outcome == "cancelled"
    assert call.status == 487
    assert call.ack_received


def test_inbound_uas_hangs_up_and_the_caller_ends_early() -> None:
    loop_start = time.monotonic()
    result, inbound = run(
        _uas_and_call(
            "127.0.0.109", "127.0.0.110", answer={"hangup_after": 0.5}, call={"duration": 8.0}
        )
    )
    assert time.monotonic() - loop_start < 5.0
    assert result.success, result.error
    assert result.ended_by == "remote"
    (call,) = inbound.calls
    assert call.ended_by == "local"
    assert call.bye_status == 200


def test_inbound_reject_code_is_reported_to_the_caller() -> None:
    result, inbound = run(
        _uas_and_call("127.0.0.111", "127.0.0.112", answer={"reject": 486}, call={})
    )
    assert not result.success
    assert result.outcome == "rejected"
    assert result.status == 486
    assert result.error == "486 Busy Here"
    assert inbound.success


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("agent-pki"), san="IP:127.0.0.94")


def _tls_registrar(agent: UserAgent) -> None:
    def handler(handle: ServerTransactionHandle) -> None:
        request = handle.request
        if request.method == "REGISTER" and "Authorization" not in request.headers:
            handle.reply(
                401,
                extra_headers=(
                    ("WWW-Authenticate", 'Digest realm="tls.test", nonce="t1", qop="auth"'),
                ),
            )
        elif request.method == "REGISTER":
            contact = request.headers.get("Contact")
            handle.reply(200, contact=contact, extra_headers=(("Expires", "120"),))
        else:
            handle.reply(200)

    agent.request_handler = handler


def test_tls_options_and_register_against_a_local_tls_peer(pki: TestPki) -> None:
    async def go() -> Any:
        server = await UserAgent.open(
            "tls",
            "127.0.0.94",
            0,
            listen=True,
            cert_file=pki.server_cert,
            key_file=pki.server_key,
            timers=FAST,
        )
        async with server:
            _tls_registrar(server)
            port = server.local_address.port
            config = number(
                sip_domain="tls.test",
                username="tina",
                password=PASSWORD,
                outbound_proxy=f"sip:127.0.0.94:{port};transport=tls",
            )
            view = effective_view(config)
            agent, outbound = await open_outbound_agent(
                config, view, local_host="127.0.0.93", timers=FAST, ca_file=pki.ca_cert
            )
            async with agent:
                options = await options_ping(agent, config, view, outbound)
                registered = await register_number(agent, config, view, outbound)
            return options, registered, list(server.events)

    options, registered, server_events = run(go())
    assert options.success, options.error
    assert options.endpoints.transport == "tls"
    assert registered.success, registered.error
    assert registered.expires_granted == 120
    assert registered.auth.used
    assert "transport=tls" in registered.contact
    received = [e for e in server_events if e.direction == "in" and e.kind == "sip"]
    assert [e.summary.split()[0] for e in received] == ["OPTIONS", "REGISTER", "REGISTER"]
    assert all(e.transport == "tls" for e in received)


def test_tls_certificate_mismatch_is_a_clear_setup_error(pki: TestPki, tmp_path: Path) -> None:
    other = make_pki(tmp_path, san="IP:127.0.0.1")  # a certificate for another address
    result: dict[str, Any] = {}

    async def serve(ready: asyncio.Event, stop: asyncio.Event) -> None:
        server = await UserAgent.open(
            "tls",
            "127.0.0.95",
            0,
            listen=True,
            cert_file=other.server_cert,
            key_file=other.server_key,
        )
        async with server:
            result["port"] = server.local_address.port
            ready.set()
            await asyncio.wait_for(stop.wait(), 15)

    async def go() -> None:
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(ready, stop))
        await ready.wait()
        config = number(
            sip_domain="tls.test",
            outbound_proxy=f"sip:127.0.0.95:{result['port']};transport=tls",
        )
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.96", ca_file=other.ca_cert
        )
        try:
            async with agent:
                with pytest.raises(TransportError) as err:
                    await options_ping(agent, config, view, outbound)
                result["error"] = str(err.value)
        finally:
            stop.set()
            await task

    run(go())
    message = result["error"]
    assert "certificate verify failed" in message
    assert f"127.0.0.95:{result['port']}" in message
    assert "\n" not in message


# --- deadlines, garbage, CLI contract ----------------------------------------------------


def write_number(tmp_path: Path, **fields: str) -> Path:
    fields.setdefault("phone_number", "+15551230001")
    path = tmp_path / "number.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


def test_unreachable_udp_target_times_out_naming_it_within_the_deadline(tmp_path: Path) -> None:
    port = free_port("127.0.0.98")
    path = write_number(tmp_path, sip_domain=f"127.0.0.98:{port}", username="u", password=PASSWORD)
    start = time.monotonic()
    out = CliRunner().invoke(
        app, ["register", str(path), "--json", "--t1", "0.02", "--local-ip", "127.0.0.97"]
    )
    elapsed = time.monotonic() - start
    assert out.exit_code == 1, out.output
    assert elapsed < 64 * 0.02 + 2.0
    data = json.loads(out.stdout)
    assert data["error_kind"] == "timeout"
    assert f"127.0.0.98:{port}" in data["error"]
    assert "Timer F" in data["error"]
    assert f"127.0.0.98:{port}" in out.stderr
    assert any(e["kind"] == "timeout" for e in data["events"])
    # Timer E retransmitted the REGISTER before Timer F gave up.
    assert sum(1 for e in data["events"] if e["direction"] == "out") >= 5
    assert PASSWORD not in out.stdout


def test_unreachable_tcp_target_is_a_one_line_setup_error(tmp_path: Path) -> None:
    port = free_port("127.0.0.99", socket.SOCK_STREAM)
    path = write_number(
        tmp_path, sip_domain="x.test", outbound_proxy=f"sip:127.0.0.99:{port};transport=tcp"
    )
    out = CliRunner().invoke(app, ["options", str(path), "--local-ip", "127.0.0.100"])
    assert out.exit_code == 2
    assert out.stderr.count("\n") == 1
    assert f"127.0.0.99:{port}" in out.stderr
    assert "refused" in out.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["call", "{file}", "--to", "a b"], "--to"),
        (["answer", "{file}", "--reject", "200"], "--reject"),
        (["options", "{file}", "--local-ip", "192.0.2.1"], "cannot bind"),
        (["options", "{missing}"], "error:"),
        (["register", "{nocreds}"], "no credentials"),
        (["answer", "{nocreds}"], "origination_uri"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    good = write_number(
        tmp_path,
        sip_domain="127.0.0.98:5999",
        username="u",
        password=PASSWORD,
        origination_uri="sip:127.0.0.98:5998",
    )
    nocreds = tmp_path / "nocreds.yaml"
    nocreds.write_text(yaml.safe_dump({"phone_number": "+15551230001", "sip_domain": "d.test"}))
    argv = [a.format(file=good, missing=tmp_path / "missing.yaml", nocreds=nocreds) for a in args]
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == 2, out.output
    assert expected in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.output


def test_garbage_during_registration_is_reported_and_the_agent_carries_on() -> None:
    async def go() -> Any:
        registrar = await UserAgent.open("udp", "127.0.0.101", 0, timers=FAST)
        async with registrar:
            _tls_registrar(registrar)  # the same registrar logic works over UDP
            port = registrar.local_address.port
            config = number(sip_domain=f"127.0.0.101:{port}", username="gus", password=PASSWORD)
            view = effective_view(config)
            agent, outbound = await open_outbound_agent(
                config, view, local_host="127.0.0.102", timers=FAST
            )
            async with agent:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
                    junk.bind(("127.0.0.103", 0))
                    for payload in (b"\x16\x03\x01garbage", b"SIP/2.0 200\r\n\r\n", b"x" * 100):
                        junk.sendto(payload, agent.local_address.hostport)
                    result = await register_number(agent, config, view, outbound)
                    await asyncio.sleep(0.05)
                    return result, list(agent.events), agent.garbage_received

    result, events, garbage = run(go())
    assert result.success, result.error
    assert garbage == 3
    assert [e.remote.split(":")[0] for e in events if e.kind == "garbage"] == ["127.0.0.103"] * 3
