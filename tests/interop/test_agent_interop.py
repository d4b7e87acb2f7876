"""The agent against SIPp: REGISTER, calls out, calls in, the outbound-proxy rule, loss.

Every test uses its own loopback addresses (127.0.0.61-127.0.0.100) and ports SIPp
does not use by default; assertions are made on what SIPp received.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from typer.testing import CliRunner

from harness.agent.call import place_call
from harness.agent.common import open_outbound_agent
from harness.agent.core import LossConfig
from harness.agent.register import Registration, register_number
from harness.agent.uas import answer_calls, open_inbound_agent
from harness.cli import app
from harness.numbers import NumberConfig, effective_view
from harness.numbers.loader import check_number_data
from harness.sip.timers import TimerConfig
from harness.sip.uri import parse_name_addr
from tests.interop.sipp import SippPeer, digest_response_ok, free_port, scenario, sipp_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="sipp (sip-tester) is not installed"),
]

T = TypeVar("T")
FAST = TimerConfig(t1=0.1)
PASSWORD = "s3cret-Pa55"
REALM = "carrier.test"


def run(coro: Coroutine[Any, Any, T], timeout: float = 25.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def number(**fields: str) -> NumberConfig:
    fields.setdefault("phone_number", "+15551230001")
    result = check_number_data(fields, base_dir=Path("."))
    assert result.config is not None, result.problems
    return result.config


def user_of(header: str | None) -> str | None:
    assert header is not None
    uri = parse_name_addr(header).uri
    return getattr(uri, "user", None)


def auth_param(value: str, name: str) -> str | None:
    for part in value.split(","):
        key, _, val = part.strip().partition("=")
        if key.strip().lower().endswith(name):
            return val.strip().strip('"')
    return None


SIPP_T = {"udp": "u1", "tcp": "t1"}


# --- REGISTER ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_uses_auth_username_for_digest_and_username_in_from_to(transport: str) -> None:
    port = free_port("127.0.0.62")
    config = number(
        sip_domain=f"127.0.0.62:{port}",
        username="alice",
        auth_username="auth-id-7",
        password=PASSWORD,
        outbound_proxy=f"sip:127.0.0.62:{port};transport={transport}",
    )
    keys = {"realm": REALM, "username": "auth-id-7", "password": PASSWORD}

    async def scenario_run() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.61", timers=FAST
        )
        async with agent:
            return await register_number(agent, config, view, outbound, expires=300)

    with SippPeer(
        scenario("registrar_auth.xml"),
        local_ip="127.0.0.62",
        local_port=port,
        transport=SIPP_T[transport],  # type: ignore[arg-type]
        keys=keys,
    ) as peer:
        result = run(scenario_run())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.status == 200
    assert result.auth.used
    assert result.auth.digest_username == "auth-id-7"
    assert result.auth.algorithm == "MD5"
    assert result.auth.header == "Authorization"
    assert result.expires_granted == 300
    assert result.endpoints.transport == transport
    registers = peer.received("REGISTER")
    assert len(registers) == 2
    authorization = registers[1].headers.get("Authorization")
    assert authorization is not None
    assert auth_param(authorization, "username") == "auth-id-7"
    assert digest_response_ok(authorization, method="REGISTER", password=PASSWORD)
    for message in registers:
        assert user_of(message.headers.get("From")) == "alice"
        assert user_of(message.headers.get("To")) == "alice"
        assert message.request_uri == f"sip:127.0.0.62:{port}"
        contact = message.headers.get("Contact") or ""
        assert "127.0.0.61" in contact
        assert ("transport=tcp" in contact) == (transport == "tcp")
        assert message.headers.get("Expires") == "300"
    # RFC 3261 §10.2.4: same Call-ID, CSeq + 1.
    assert registers[0].headers.get("Call-ID") == registers[1].headers.get("Call-ID")
    assert [r.headers.get("CSeq") for r in registers] == ["1 REGISTER", "2 REGISTER"]


def write_number(tmp_path: Path, **fields: str) -> Path:
    fields.setdefault("phone_number", "+15551230001")
    path = tmp_path / "number.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


def test_cli_register_wrong_password_is_credentials_rejected(tmp_path: Path) -> None:
    port = free_port("127.0.0.64")
    path = write_number(
        tmp_path,
        sip_domain=f"127.0.0.64:{port}",
        username="alice",
        password="wrong-password",
    )
    keys = {"realm": REALM, "username": "alice", "password": PASSWORD}
    # After its 403 the registrar waits to fail the call: its own timeout ends it.
    with SippPeer(
        scenario("registrar_auth.xml"),
        local_ip="127.0.0.64",
        local_port=port,
        keys=keys,
        timeout_s=1.0,
    ) as peer:
        out = CliRunner().invoke(
            app, ["register", str(path), "--json", "--local-ip", "127.0.0.63", "--t1", "0.1"]
        )
    assert "credentials rejected" in peer.error_log
    assert out.exit_code == 1, out.output
    assert "credentials rejected" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    data = json.loads(out.stdout)
    assert data["success"] is False
    assert data["error_kind"] == "credentials-rejected"
    assert data["status"] == 403
    assert "wrong-password" not in out.stdout + out.stderr
    assert [t["status"] for t in data["transactions"]] == [401, 403]


def test_second_challenge_after_credentials_is_rejected_not_looped() -> None:
    port = free_port("127.0.0.66")
    config = number(sip_domain=f"127.0.0.66:{port}", username="bob", password=PASSWORD)

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.65", timers=FAST
        )
        async with agent:
            return await register_number(agent, config, view, outbound)

    with SippPeer(
        scenario("agent_registrar_rechallenge.xml"),
        local_ip="127.0.0.66",
        local_port=port,
        keys={"realm": REALM},
    ) as peer:
        result = run(go())
    assert peer.returncode == 0, peer.describe()
    assert not result.success
    assert result.error_kind == "credentials-rejected"
    assert result.error is not None
    assert result.error.startswith("credentials rejected")
    assert len(peer.received("REGISTER")) == 2


def test_stale_nonce_is_retried_once_with_the_new_nonce() -> None:
    port = free_port("127.0.0.68")
    config = number(sip_domain=f"127.0.0.68:{port}", username="carol", password=PASSWORD)

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.67", timers=FAST
        )
        async with agent:
            return await register_number(agent, config, view, outbound)

    keys = {"realm": REALM, "username": "carol", "password": PASSWORD}
    with SippPeer(
        scenario("agent_registrar_stale.xml"), local_ip="127.0.0.68", local_port=port, keys=keys
    ) as peer:
        result = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.auth.stale_nonce_retries == 1
    registers = peer.received("REGISTER")
    assert len(registers) == 3
    nonces = [auth_param(r.headers.get("Authorization") or "", "nonce") for r in registers[1:]]
    assert nonces[0] != nonces[1]
    assert "s" in (nonces[1] or "")


def test_refresh_keeps_call_id_increments_cseq_then_unregisters() -> None:
    port = free_port("127.0.0.70")
    config = number(sip_domain=f"127.0.0.70:{port}", username="dave", password=PASSWORD)

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.69", timers=FAST
        )
        async with agent:
            registration = Registration(agent, config, view, outbound, expires=2)
            first = await registration.register()
            assert first.success, first.error
            loop = asyncio.get_running_loop()
            start = loop.time()
            await registration.hold(1.6)
            held = loop.time() - start
            assert await registration.unregister()
            return registration.result, held

    keys = {"realm": REALM, "username": "dave", "password": PASSWORD, "expires": "2"}
    with SippPeer(
        scenario("agent_registrar_refresh.xml"), local_ip="127.0.0.70", local_port=port, keys=keys
    ) as peer:
        result, held = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success
    assert result.refreshes == 1
    assert result.unregistered is True
    assert result.expires_granted == 2
    assert 1.5 <= held < 2.5
    registers = peer.received("REGISTER")
    assert len({r.headers.get("Call-ID") for r in registers}) == 1
    cseqs = [int((r.headers.get("CSeq") or "0").split()[0]) for r in registers]
    assert cseqs == [1, 2, 3, 4]
    assert [r.headers.get("Expires") for r in registers] == ["2", "2", "2", "0"]
    # The refresh reuses the credentials (next nonce count), no new challenge needed.
    assert registers[2].headers.get("Authorization") is not None


def test_423_is_retried_with_min_expires() -> None:
    port = free_port("127.0.0.72")
    config = number(sip_domain=f"127.0.0.72:{port}", username="erin", password=PASSWORD)

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.71", timers=FAST
        )
        async with agent:
            return await register_number(agent, config, view, outbound, expires=60)

    keys = {"realm": REALM, "username": "erin", "password": PASSWORD}
    with SippPeer(
        scenario("registrar_423.xml"), local_ip="127.0.0.72", local_port=port, keys=keys
    ) as peer:
        result = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.min_expires == 120
    assert result.expires_granted == 120
    assert [t.status for t in result.transactions] == [423, 401, 200]


# --- outbound calls ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_call_with_407_challenge_and_rtp_echo(transport: str) -> None:
    port = free_port("127.0.0.74")
    media_port = free_port("127.0.0.74", kinds=("udp",))
    config = number(
        sip_domain=f"127.0.0.74:{port}",
        username="frank",
        password=PASSWORD,
        outbound_proxy=f"sip:127.0.0.74:{port};transport={transport}",
    )

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.73", timers=FAST
        )
        async with agent:
            result = await place_call(agent, config, view, outbound, to="+4930123456", duration=1.0)
            return result, list(agent.events)

    with SippPeer(
        scenario("uas_407_echo.xml"),
        local_ip="127.0.0.74",
        local_port=port,
        transport=SIPP_T[transport],  # type: ignore[arg-type]
        keys={"realm": REALM, "username": "frank"},
        extra_args=["-rtp_echo", "-mp", str(media_port)],
    ) as peer:
        result, events = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.outcome == "completed"
    assert result.auth.header == "Proxy-Authorization"
    assert result.auth.digest_username == "frank"
    assert result.ended_by == "local"
    assert result.bye_status == 200
    assert result.remote_media == f"127.0.0.74:{media_port}"
    rtp = result.rtp
    assert rtp is not None
    assert rtp.packets_sent >= 45
    assert rtp.echo_received > 0
    assert rtp.rtt_ms_avg is not None
    assert rtp.rtt_ms_avg < 100
    invites = peer.received("INVITE")
    assert len(invites) == 2
    first, second = invites
    assert second.headers.get("Call-ID") == first.headers.get("Call-ID")
    assert second.headers.get("CSeq") == "2 INVITE"
    assert first.headers.get("Via") != second.headers.get("Via")  # new branch
    assert first.request_uri == f"sip:+4930123456@127.0.0.74:{port}"
    assert user_of(first.headers.get("From")) == "+15551230001"
    assert user_of(first.headers.get("P-Asserted-Identity")) == "+15551230001"
    proxy_auth = second.headers.get("Proxy-Authorization")
    assert proxy_auth is not None
    assert digest_response_ok(proxy_auth, method="INVITE", password=PASSWORD, username="frank")
    body = first.body.decode()
    assert "c=IN IP4 127.0.0.73" in body
    assert "PCMU/8000" in body
    assert "PCMA/8000" in body
    assert "telephone-event/8000" in body
    assert len(peer.received("ACK")) == 2
    assert len(peer.received("BYE")) == 1
    # The event stream holds every message, in order, with its direction.
    summaries = [(e.direction, e.summary.split()[0]) for e in events if e.kind == "sip"]
    assert summaries[:3] == [("out", "INVITE"), ("in", "407"), ("out", "ACK")]
    assert summaries[-2:] == [("out", "BYE"), ("in", "200")]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_call_cancelled_while_ringing_gets_487(transport: str) -> None:
    port = free_port("127.0.0.76")
    config = number(
        sip_domain=f"127.0.0.76:{port}",
        outbound_proxy=f"sip:127.0.0.76:{port};transport={transport}",
    )

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.75", timers=FAST
        )
        async with agent:
            return await place_call(agent, config, view, outbound, to="+4930999", cancel_after=0.3)

    with SippPeer(
        scenario("uas_ring_cancel.xml"),
        local_ip="127.0.0.76",
        local_port=port,
        transport=SIPP_T[transport],  # type: ignore[arg-type]
    ) as peer:
        result = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.outcome == "cancelled"
    assert result.status == 487
    assert result.cancel_status == 200
    assert not result.answered
    assert result.rtp is None
    assert len(peer.received("CANCEL")) == 1
    assert len(peer.received("ACK")) == 1


def test_bye_from_peer_ends_the_call_early() -> None:
    port = free_port("127.0.0.78")
    media_port = free_port("127.0.0.78", kinds=("udp",))
    config = number(sip_domain=f"127.0.0.78:{port}")

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.77", timers=FAST
        )
        async with agent:
            loop = asyncio.get_running_loop()
            start = loop.time()
            result = await place_call(agent, config, view, outbound, to="+4930777", duration=10)
            return result, loop.time() - start

    with SippPeer(
        scenario("uas_bye_from_peer.xml"),
        local_ip="127.0.0.78",
        local_port=port,
        extra_args=["-rtp_echo", "-mp", str(media_port), "-d", "800"],
    ) as peer:
        result, elapsed = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.ended_by == "remote"
    assert result.bye_status is None
    assert elapsed < 5.0
    assert result.rtp is not None
    assert result.rtp.echo_received > 0
    assert peer.received(200)[-1].cseq_method == "BYE"


# --- inbound calls -----------------------------------------------------------------------


def _inbound(
    transport: str, sipp_scenario: str, *, agent_ip: str, sipp_ip: str, **answer: Any
) -> tuple[Any, SippPeer]:
    port = free_port(agent_ip)
    sipp_port = free_port(sipp_ip)
    config = number(
        sip_domain="carrier.invalid",
        origination_uri=f"sip:{agent_ip}:{port};transport={transport}",
    )
    view = effective_view(config)
    peer = SippPeer(
        scenario(sipp_scenario),
        local_ip=sipp_ip,
        local_port=sipp_port,
        transport=SIPP_T[transport],  # type: ignore[arg-type]
        remote=f"{agent_ip}:{port}",
        extra_args=["-s", config.phone_number, "-d", "600"],
    )

    async def go() -> Any:
        agent = await open_inbound_agent(view, timers=FAST)
        async with agent:
            await asyncio.to_thread(peer.start)
            try:
                return await answer_calls(agent, config, view, calls=1, timeout=8, **answer)
            finally:
                await asyncio.to_thread(peer.stop)

    return run(go()), peer


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_inbound_call_caller_hangs_up(transport: str) -> None:
    result, peer = _inbound(transport, "uac_call.xml", agent_ip="127.0.0.79", sipp_ip="127.0.0.80")
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    (call,) = result.calls
    assert call.outcome == "completed"
    assert call.ended_by == "remote"
    assert call.to_number
    assert call.ack_received
    assert call.status == 200
    ok = next(m for m in peer.received(200) if m.cseq_method == "INVITE")
    assert "m=audio" in ok.body.decode()
    assert "PCMU/8000" in ok.body.decode()
    assert peer.received(180)
    assert (peer.sent("BYE")[0].headers.get("Call-ID")) == call.call_id


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_inbound_call_callee_hangs_up(transport: str) -> None:
    result, peer = _inbound(
        transport,
        "uac_call_wait_bye.xml",
        agent_ip="127.0.0.81",
        sipp_ip="127.0.0.82",
        hangup_after=0.4,
    )
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    (call,) = result.calls
    assert call.ended_by == "local"
    assert call.bye_status == 200
    bye = peer.received("BYE")[0]
    assert bye.headers.get("Call-ID") == call.call_id
    # The BYE goes to the caller's Contact, in the dialog (tags swapped).
    assert bye.request_uri is not None
    assert bye.request_uri.startswith("sip:sipp@127.0.0.82")


def test_inbound_call_rejected_with_configured_code() -> None:
    result, peer = _inbound(
        "udp", "uac_call.xml", agent_ip="127.0.0.83", sipp_ip="127.0.0.84", reject=486
    )
    assert result.success, result.error
    (call,) = result.calls
    assert call.outcome == "rejected"
    assert call.status == 486
    assert call.ack_received
    assert peer.received(486)


# --- the outbound-proxy rule ------------------------------------------------------------


def test_register_goes_to_the_outbound_proxy_with_domain_in_request_uri() -> None:
    port = free_port("127.0.0.86")
    config = number(
        sip_domain="carrier.invalid",
        username="gina",
        password=PASSWORD,
        outbound_proxy=f"sip:127.0.0.86:{port};transport=tcp",
    )

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.85", timers=FAST
        )
        async with agent:
            return await register_number(agent, config, view, outbound)

    with SippPeer(
        scenario("proxy_check.xml"),
        local_ip="127.0.0.86",
        local_port=port,
        transport="t1",
        keys={"sip_domain": "carrier.invalid", "proxy": f"127.0.0.86:{port}"},
    ) as peer:
        result = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.endpoints.via == "outbound_proxy"
    (register,) = peer.received("REGISTER")
    assert register.transport == "TCP"
    assert register.request_uri == "sip:carrier.invalid"
    assert register.headers.get("Route") == f"<sip:127.0.0.86:{port};transport=tcp;lr>"


def test_call_goes_to_the_outbound_proxy_with_domain_in_request_uri() -> None:
    port = free_port("127.0.0.88")
    config = number(
        sip_domain="carrier.invalid",
        outbound_proxy=f"sip:127.0.0.88:{port};transport=tcp",
    )

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.87", timers=FAST
        )
        async with agent:
            return await place_call(agent, config, view, outbound, to="+4930555", duration=0.3)

    with SippPeer(
        scenario("peer_uas_answer.xml"), local_ip="127.0.0.88", local_port=port, transport="t1"
    ) as peer:
        result = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    (invite,) = peer.received("INVITE")
    assert invite.request_uri == "sip:+4930555@carrier.invalid"
    assert invite.headers.get("Route") == f"<sip:127.0.0.88:{port};transport=tcp;lr>"
    assert user_of(invite.headers.get("To")) == "+4930555"
    # In-dialog requests keep going to the proxy, with its Route.
    (bye,) = peer.received("BYE")
    assert bye.headers.get("Route") == f"<sip:127.0.0.88:{port};transport=tcp;lr>"


# --- loss, garbage -----------------------------------------------------------------------


def test_call_over_udp_completes_with_20_percent_loss_each_way() -> None:
    port = free_port("127.0.0.90")
    media_port = free_port("127.0.0.90", kinds=("udp",))
    config = number(sip_domain=f"127.0.0.90:{port}")

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config,
            view,
            local_host="127.0.0.89",
            timers=TimerConfig(t1=0.05),
            loss=LossConfig(send_loss=0.2, recv_loss=0.2, seed=7),
        )
        async with agent:
            result = await place_call(agent, config, view, outbound, to="+4930111", duration=5)
            return result, agent.transport

    with SippPeer(
        scenario("uas_bye_from_peer.xml"),
        local_ip="127.0.0.90",
        local_port=port,
        extra_args=["-rtp_echo", "-mp", str(media_port), "-d", "1500"],
        timeout_s=15,
    ) as peer:
        result, transport = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.outcome == "completed"
    assert result.ended_by == "remote"
    # Loss really happened and retransmission made up for it.
    assert transport.sent_dropped + transport.received_dropped > 0


def test_garbage_from_a_peer_during_a_call_is_reported_not_fatal() -> None:
    port = free_port("127.0.0.92")
    media_port = free_port("127.0.0.92", kinds=("udp",))
    config = number(sip_domain=f"127.0.0.92:{port}", username="hal", password=PASSWORD)

    async def go() -> Any:
        view = effective_view(config)
        agent, outbound = await open_outbound_agent(
            config, view, local_host="127.0.0.91", timers=FAST
        )
        async with agent:
            target = agent.local_address.hostport

            async def spray() -> None:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
                    junk.bind(("127.0.0.93", 0))
                    for n in range(10):
                        junk.sendto(b"\x00\xffNOT SIP AT ALL %d\r\n" % n, target)
                        junk.sendto(b"INVITE bogus\r\n\r\n", target)
                        await asyncio.sleep(0.05)

            sprayer = asyncio.create_task(spray())
            result = await place_call(agent, config, view, outbound, to="+4930222", duration=0.8)
            await sprayer
            return result, list(agent.events)

    with SippPeer(
        scenario("uas_407_echo.xml"),
        local_ip="127.0.0.92",
        local_port=port,
        keys={"realm": REALM, "username": "hal"},
        extra_args=["-rtp_echo", "-mp", str(media_port)],
    ) as peer:
        result, events = run(go())
    assert peer.returncode == 0, peer.describe()
    assert result.success, result.error
    assert result.garbage_received == 20
    garbage = [e for e in events if e.kind == "garbage"]
    assert len(garbage) == 20
    assert all(e.remote.startswith("127.0.0.93:") for e in garbage)


# --- the CLI over SIPp ---------------------------------------------------------------------


def test_cli_call_json_names_status_auth_addresses_and_rtp(tmp_path: Path) -> None:
    port = free_port("127.0.0.114")
    media_port = free_port("127.0.0.114", kinds=("udp",))
    path = write_number(
        tmp_path, sip_domain=f"127.0.0.114:{port}", username="ivan", password=PASSWORD
    )
    with SippPeer(
        scenario("uas_407_echo.xml"),
        local_ip="127.0.0.114",
        local_port=port,
        keys={"realm": REALM, "username": "ivan"},
        extra_args=["-rtp_echo", "-mp", str(media_port)],
    ) as peer:
        out = CliRunner().invoke(
            app,
            [
                "call",
                str(path),
                "--to",
                "+4930333",
                "--duration",
                "0.5",
                "--json",
                "--local-ip",
                "127.0.0.113",
                "--t1",
                "0.1",
            ],
        )
    assert peer.returncode == 0, peer.describe()
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["success"] is True
    assert data["outcome"] == "completed"
    assert [t["status"] for t in data["transactions"]] == [407, 200, 200]
    assert [t["method"] for t in data["transactions"]] == ["INVITE", "INVITE", "BYE"]
    assert data["auth"]["used"] is True
    assert data["auth"]["digest_username"] == "ivan"
    assert data["auth"]["algorithm"] == "MD5"
    assert data["endpoints"]["transport"] == "udp"
    assert data["endpoints"]["remote"] == f"127.0.0.114:{port}"
    assert data["endpoints"]["local"].startswith("127.0.0.113:")
    assert data["rtp"]["echo_received"] > 0
    assert data["rtp"]["rtt_ms_avg"] is not None
    assert PASSWORD not in out.stdout


def test_cli_answer_takes_a_call_from_sipp(tmp_path: Path) -> None:
    port = free_port("127.0.0.115")
    sipp_port = free_port("127.0.0.116")
    path = write_number(
        tmp_path, sip_domain="carrier.invalid", origination_uri=f"sip:127.0.0.115:{port}"
    )
    peer = SippPeer(
        scenario("uac_call.xml"),
        local_ip="127.0.0.116",
        local_port=sipp_port,
        remote=f"127.0.0.115:{port}",
        extra_args=["-s", "+15551230001", "-d", "300"],
        wait_for_port=False,
    )
    # SIPp calls in once the agent listens: start it a moment after the command.
    starter = threading.Timer(0.5, peer.start)
    starter.start()
    try:
        out = CliRunner().invoke(app, ["answer", str(path), "--timeout", "8", "--t1", "0.1"])
    finally:
        starter.join()
        peer.stop()
    assert peer.returncode == 0, peer.describe()
    assert out.exit_code == 0, out.output
    assert "calls answered: 1 of 1" in out.stdout
    assert "completed" in out.stdout
    assert "result: success" in out.stdout
