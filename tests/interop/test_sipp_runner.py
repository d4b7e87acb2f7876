"""The SIPp runner and every interop scenario, proven SIPp against SIPp.

Each agent-facing scenario runs against a SIPp counterpart (``peer_*.xml``, or the
opposite agent-facing scenario) over UDP and TCP on kernel-chosen ports of distinct
loopback addresses, so the scenarios are known good before the agent exists.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from tests.interop.sipp import (
    SippError,
    SippPeer,
    Transport,
    digest_response_ok,
    free_port,
    parse_message_log,
    port_is_bound,
    run_pair,
    scenario,
    sipp_binary,
)

needs_sipp = pytest.mark.skipif(
    sipp_binary() is None, reason="sipp not on PATH (install Debian's sip-tester)"
)
pytestmark = [pytest.mark.integration, needs_sipp]

TRANSPORTS: list[Transport] = ["u1", "t1"]
RUN_TIMEOUT_S = 5.0

DOMAIN = "carrier.invalid"
REALM = "carrier.invalid"
USER = "+15551230001"
AUTH_USER = "auth-15551230001"
PASSWORD = "s3cret pass"

# Loopback addresses handed out two per test, cycling over 127.0.0.10-127.0.0.60.
_ADDRESSES = itertools.cycle(f"127.0.0.{n}" for n in range(10, 61))


@pytest.fixture
def addrs() -> tuple[str, str]:
    """A (server, client) pair of loopback addresses no other test here is using."""
    return next(_ADDRESSES), next(_ADDRESSES)


def _server(
    addr: str,
    name: str,
    transport: Transport,
    tmp_path: Path,
    *,
    port: int | None = None,
    **kwargs: object,
) -> SippPeer:
    return SippPeer(
        scenario(name),
        local_ip=addr,
        local_port=port if port is not None else free_port(addr),
        transport=transport,
        timeout_s=RUN_TIMEOUT_S,
        log_dir=tmp_path / "server",
        **kwargs,  # type: ignore[arg-type]
    )


def _client(
    addr: str, name: str, transport: Transport, server: SippPeer, tmp_path: Path, **kwargs: object
) -> SippPeer:
    extra = list(kwargs.pop("extra_args", []))  # type: ignore[call-overload]
    return SippPeer(
        scenario(name),
        local_ip=addr,
        local_port=free_port(addr),
        transport=transport,
        remote=f"{server.local_ip}:{server.local_port}",
        timeout_s=RUN_TIMEOUT_S,
        log_dir=tmp_path / "client",
        # No default BYE/CANCEL on failures: the counterpart's verdict stays its own.
        extra_args=["-nd", *extra],
        **kwargs,  # type: ignore[arg-type]
    )


def _both(server: SippPeer, client: SippPeer) -> str:
    return f"{server.describe()}\n\n{client.describe()}"


# --------------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------------

_INVITE = (
    b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\nRoute: <sip:p;lr>\r\nContent-Length: 12\r\n\r\n"
    b"v=0\r\n\r\ns=-\r\n"
)
_RINGING = b"SIP/2.0 180 Ringing\r\ni: x\r\nCSeq: 1 INVITE\r\n\r\n"
# The layout SIPp 3.6.1 writes to -message_file (see the runner's docstring).
_SAMPLE_LOG = (
    b"----------------------------------------------- 2024-01-01 10:00:00.000001\n"
    b"UDP message received [%d] bytes :\n\n%b\n\n"
    b"----------------------------------------------- 2024-01-01 10:00:00.000002\n"
    b"TCP message sent (%d bytes):\n\n%b\n\n"
) % (len(_INVITE), _INVITE, len(_RINGING), _RINGING)


def test_message_log_parser_splits_on_byte_counts() -> None:
    messages = parse_message_log(_SAMPLE_LOG)

    assert [(m.direction, m.transport) for m in messages] == [
        ("received", "UDP"),
        ("sent", "TCP"),
    ]
    invite, ringing = messages
    assert invite.method == "INVITE"
    assert invite.request_uri == "sip:a@b"
    assert invite.headers.get_all("Route") == ["<sip:p;lr>"]
    # A blank line inside the body does not end the message: the byte count does.
    assert invite.body == b"v=0\r\n\r\ns=-\r\n"
    assert ringing.status_code == 180
    assert ringing.headers.get("Call-ID") == "x"  # compact form i: expanded
    assert ringing.cseq_method == "INVITE"


def test_digest_check_matches_rfc2617_example() -> None:
    # RFC 2617 §3.5: password "Circle Of Life", method GET.
    header = (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
        'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert digest_response_ok(header, method="GET", password="Circle Of Life")
    assert digest_response_ok(header, method="GET", password="Circle Of Life", username="Mufasa")
    assert not digest_response_ok(header, method="GET", password="Circle of Life")
    assert not digest_response_ok(header, method="GET", password="Circle Of Life", username="x")


def test_free_port_is_bindable_for_udp_and_tcp(addrs: tuple[str, str]) -> None:
    ip = addrs[0]
    port = free_port(ip)
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((ip, port))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_peer_is_ready_on_enter_and_gone_when_body_raises(
    transport: Transport, addrs: tuple[str, str], tmp_path: Path
) -> None:
    peer = _server(addrs[0], "uas_ring_cancel.xml", transport, tmp_path)
    kind: Literal["udp", "tcp"] = "udp" if transport == "u1" else "tcp"
    started = time.monotonic()
    seen: list[int | None] = []

    def body() -> None:
        with peer:
            assert port_is_bound(peer.local_ip, peer.local_port, kind)
            seen.append(peer.pid)
            raise RuntimeError("test body failed")

    with pytest.raises(RuntimeError, match="test body failed"):
        body()
    (pid,) = seen
    assert pid is not None

    # Stopped at once, not after SIPp's own timeout, and reaped.
    assert time.monotonic() - started < RUN_TIMEOUT_S
    assert peer.pid is None
    assert peer.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_is_bound(peer.local_ip, peer.local_port, kind)


def test_global_timeout_is_a_failure_exit(addrs: tuple[str, str], tmp_path: Path) -> None:
    peer = SippPeer(
        scenario("registrar_auth.xml"),
        local_ip=addrs[0],
        local_port=free_port(addrs[0]),
        keys={"realm": REALM, "username": AUTH_USER, "password": PASSWORD},
        timeout_s=1,
    )
    with peer:
        pass  # nobody registers
    assert peer.returncode == 255, peer.describe()
    assert "timed out" in peer.error_log
    assert peer.messages() == []


def test_start_fails_fast_when_the_port_is_taken(addrs: tuple[str, str]) -> None:
    ip = addrs[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((ip, 0))
        port = squatter.getsockname()[1]
        peer = SippPeer(
            scenario("registrar_auth.xml"),
            local_ip=ip,
            local_port=port,
            keys={"realm": REALM, "username": AUTH_USER, "password": PASSWORD},
            timeout_s=RUN_TIMEOUT_S,
        )
        started = time.monotonic()
        with pytest.raises(SippError, match="exited with"), peer:
            pytest.fail("SIPp should not have started")
    assert time.monotonic() - started < 2
    assert peer.pid is None


# --------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------

_REGISTRAR_KEYS = {"realm": REALM, "username": AUTH_USER, "password": PASSWORD}
_REGISTER_KEYS = {"domain": DOMAIN, "user": USER, "retry_expires": "120"}


def _register(
    registrar: str,
    transport: Transport,
    addrs: tuple[str, str],
    tmp_path: Path,
    *,
    auth_user: str = AUTH_USER,
    password: str = PASSWORD,
    retry_expires: str = "120",
) -> tuple[SippPeer, SippPeer]:
    server = _server(addrs[0], registrar, transport, tmp_path, keys=_REGISTRAR_KEYS)
    client = _client(
        addrs[1],
        "peer_register.xml",
        transport,
        server,
        tmp_path,
        keys={**_REGISTER_KEYS, "retry_expires": retry_expires},
        extra_args=["-au", auth_user, "-ap", password],
    )
    run_pair(server, client)
    return server, client


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_registrar_auth_accepts_right_credentials(
    transport: Transport, addrs: tuple[str, str], tmp_path: Path
) -> None:
    server, client = _register("registrar_auth.xml", transport, addrs, tmp_path)

    assert (server.returncode, client.returncode) == (0, 0), _both(server, client)
    first, second = server.received("REGISTER")
    assert first.request_uri == f"sip:{DOMAIN}"
    assert "Authorization" not in first.headers
    authorization = second.headers.get("Authorization")
    assert authorization is not None
    assert f'username="{AUTH_USER}"' in authorization
    assert f'realm="{REALM}"' in authorization
    assert "qop=auth" in authorization
    assert digest_response_ok(
        authorization, method="REGISTER", password=PASSWORD, username=AUTH_USER
    )
    (challenge,) = server.sent(401)
    assert 'qop="auth"' in (challenge.headers.get("WWW-Authenticate") or "")
    (ok,) = client.received(200)
    assert ok.headers.get("Contact") == second.headers.get("Contact")
    assert ok.headers.get("Expires") == "120"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_registrar_auth_rejects_a_wrong_password(
    transport: Transport, addrs: tuple[str, str], tmp_path: Path
) -> None:
    server, client = _register(
        "registrar_auth.xml", transport, addrs, tmp_path, password="not the password"
    )

    assert server.returncode == 1, server.describe()
    assert "credentials rejected" in server.error_log
    assert [m.status_code for m in client.received()] == [401, 403]
    assert client.returncode == 1


def test_registrar_auth_names_a_wrong_username(addrs: tuple[str, str], tmp_path: Path) -> None:
    server, client = _register("registrar_auth.xml", "u1", addrs, tmp_path, auth_user=USER)

    assert server.returncode == 1, server.describe()
    assert f"digest username '{USER}' (expected '{AUTH_USER}')" in server.error_log
    assert client.received(403)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_registrar_423_then_challenge_then_200(
    transport: Transport, addrs: tuple[str, str], tmp_path: Path
) -> None:
    server, client = _register("registrar_423.xml", transport, addrs, tmp_path)

    assert (server.returncode, client.returncode) == (0, 0), _both(server, client)
    assert [m.status_code for m in server.sent()] == [423, 401, 200]
    assert server.sent(423)[0].headers.get("Min-Expires") == "120"
    assert [m.headers.get("Expires") for m in server.received("REGISTER")] == ["60", "120", "120"]


def test_registrar_423_fails_a_retry_still_too_brief(
    addrs: tuple[str, str], tmp_path: Path
) -> None:
    server, _ = _register("registrar_423.xml", "u1", addrs, tmp_path, retry_expires="90")

    assert server.returncode == 1, server.describe()
    assert "expiry still too brief" in server.error_log
    assert [m.status_code for m in server.sent()] == [423, 423]


def _call_with_407(
    transport: Transport,
    addrs: tuple[str, str],
    tmp_path: Path,
    *,
    auth_user: str,
    media_port: int,
) -> tuple[SippPeer, SippPeer]:
    server = _server(
        addrs[0],
        "uas_407_echo.xml",
        transport,
        tmp_path,
        keys={"realm": REALM, "username": AUTH_USER},
        extra_args=["-rtp_echo", "-mp", str(media_port)],
    )
    client = _client(
        addrs[1],
        "peer_call_auth.xml",
        transport,
        server,
        tmp_path,
        extra_args=["-au", auth_user, "-ap", PASSWORD, "-d", "200", "-s", USER],
    )
    return server, client


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_uas_407_echo_challenges_answers_and_echoes_rtp(
    transport: Transport, addrs: tuple[str, str], tmp_path: Path
) -> None:
    media_port = free_port(addrs[0], kinds=("udp",))
    server, client = _call_with_407(
        transport, addrs, tmp_path, auth_user=AUTH_USER, media_port=media_port
    )
    with server:
        # RTP sent to the answered media port comes straight back.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
            rtp.bind((addrs[1], 0))
            rtp.settimeout(2.0)
            packet = bytes([0x80, 0x00, 0x00, 0x01]) + bytes(168)
            rtp.sendto(packet, (addrs[0], media_port))
            echoed, source = rtp.recvfrom(2048)
        assert (echoed, source) == (packet, (addrs[0], media_port))
        with client:
            client.wait()
        server.wait()

    assert (server.returncode, client.returncode) == (0, 0), _both(server, client)
    assert [m.method or m.status_code for m in server.messages()] == [
        "INVITE", 407, "ACK", "INVITE", 100, 180, 200, "ACK", "BYE", 200,
    ]  # fmt: skip
    retry = server.received("INVITE")[1]
    proxy_auth = retry.headers.get("Proxy-Authorization")
    assert proxy_auth is not None
    assert digest_response_ok(proxy_auth, method="INVITE", password=PASSWORD, username=AUTH_USER)
    assert not digest_response_ok(proxy_auth, method="INVITE", password="wrong")
    sdp = server.sent(200)[0].body.decode()
    assert f"m=audio {media_port} RTP/AVP 0 101" in sdp
    assert f"c=IN IP4 {addrs[0]}" in sdp


def test_uas_407_echo_rejects_a_wrong_username(addrs: tuple[str, str], tmp_path: Path) -> None:
    server, client = _call_with_407(
        "u1", addrs, tmp_path, auth_user=USER, media_port=free_port(addrs[0], kinds=("udp",))
    )
    run_pair(server, client)

    assert server.returncode == 1, server.describe()
    assert "credentials rejected" in server.error_log
    assert server.sent(403)
    assert server.received("ACK")[-1].headers.get("CSeq") == "2 ACK"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_uas_bye_from_peer_against_uac_call_wait_bye(
    transport: Transport, addrs: tuple[str, str], tmp_path: Path
) -> None:
    server = _server(
        addrs[0], "uas_bye_from_peer.xml", transport, tmp_path, extra_args=["-d", "200"]
    )
    client = _client(
        addrs[1], "uac_call_wait_bye.xml", transport, server, tmp_path, extra_args=["-s", USER]
    )
    run_pair(server, client)

    assert (server.returncode, client.returncode) == (0, 0), _both(server, client)
    (invite,) = server.received("INVITE")
    assert invite.request_uri == f"sip:{USER}@{addrs[0]}:{server.local_port}"
    (bye,) = client.received("BYE")
    # The BYE is in the caller's dialog: its Contact as target, the tags swapped.
    assert (
        bye.request_uri == f"sip:sipp@{addrs[1]}:{client.local_port};transport={_name(transport)}"
    )
    assert bye.headers.get("To") == invite.headers.get("From")
    ok = server.sent(200)[0]
    assert (bye.headers.get("From") or "").endswith(
        (ok.headers.get("To") or "").rsplit(";tag=", 1)[1]
    )


def _name(transport: Transport) -> str:
    return "UDP" if transport == "u1" else "TCP"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_uac_call_against_an_answering_uas(
    transport: Transport, addrs: tuple[str, str], tmp_path: Path
) -> None:
    server = _server(addrs[0], "peer_uas_answer.xml", transport, tmp_path)
    client = _client(
        addrs[1], "uac_call.xml", transport, server, tmp_path, extra_args=["-s", USER, "-d", "200"]
    )
    run_pair(server, client)

    assert (server.returncode, client.returncode) == (0, 0), _both(server, client)
    assert [m.method or m.status_code for m in client.messages()] == [
        "INVITE", 100, 180, 200, "ACK", "BYE", 200,
    ]  # fmt: skip
    (invite,) = server.received("INVITE")
    assert invite.request_uri == f"sip:{USER}@{addrs[0]}:{server.local_port}"
    assert b"a=rtpmap:101 telephone-event/8000" in invite.body
    # ACK and BYE follow the answer's Contact.
    contact = f"sip:{addrs[0]}:{server.local_port};transport={_name(transport)}"
    assert [m.request_uri for m in server.received() if m.method in ("ACK", "BYE")] == [
        contact,
        contact,
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_uas_ring_cancel(transport: Transport, addrs: tuple[str, str], tmp_path: Path) -> None:
    server = _server(addrs[0], "uas_ring_cancel.xml", transport, tmp_path)
    client = _client(
        addrs[1], "peer_call_cancel.xml", transport, server, tmp_path, keys={"cancel_cseq": "1"}
    )
    run_pair(server, client)

    assert (server.returncode, client.returncode) == (0, 0), _both(server, client)
    assert [m.method or m.status_code for m in server.messages()] == [
        "INVITE", 100, 180, "CANCEL", 200, 487, "ACK",
    ]  # fmt: skip
    terminated = server.sent(487)[0]
    assert terminated.headers.get("CSeq") == "1 INVITE"
    assert server.sent(200)[0].cseq_method == "CANCEL"


def test_uas_ring_cancel_rejects_a_cancel_with_another_cseq(
    addrs: tuple[str, str], tmp_path: Path
) -> None:
    server = _server(addrs[0], "uas_ring_cancel.xml", "u1", tmp_path)
    client = _client(
        addrs[1], "peer_call_cancel.xml", "u1", server, tmp_path, keys={"cancel_cseq": "2"}
    )
    run_pair(server, client)

    assert server.returncode == 1, server.describe()
    assert "CANCEL does not match the INVITE: CSeq 2 vs 1" in server.error_log
    assert server.sent(481)


def _via_proxy(
    transport: Transport,
    addrs: tuple[str, str],
    tmp_path: Path,
    *,
    domain: str = DOMAIN,
    route: str = "<sip:{proxy}{transport_param};lr>",
) -> tuple[SippPeer, SippPeer]:
    """REGISTER for ``domain`` sent to proxy_check.xml with the Route ``route``
    (``{proxy}`` is the proxy's host:port)."""
    port = free_port(addrs[0])
    proxy = f"{addrs[0]}:{port}"
    server = _server(
        addrs[0],
        "proxy_check.xml",
        transport,
        tmp_path,
        port=port,
        keys={"sip_domain": DOMAIN, "proxy": proxy},
    )
    transport_param = ";transport=tcp" if transport == "t1" else ""
    client = _client(
        addrs[1],
        "peer_register_via_proxy.xml",
        transport,
        server,
        tmp_path,
        keys={
            "domain": domain,
            "user": USER,
            "route": route.format(proxy=proxy, transport_param=transport_param),
        },
    )
    run_pair(server, client)
    return server, client


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_proxy_check_accepts_domain_uri_with_route(
    transport: Transport, addrs: tuple[str, str], tmp_path: Path
) -> None:
    server, client = _via_proxy(transport, addrs, tmp_path)

    assert (server.returncode, client.returncode) == (0, 0), _both(server, client)
    (register,) = server.received("REGISTER")
    assert register.request_uri == f"sip:{DOMAIN}"
    assert register.transport == _name(transport)
    (route,) = register.headers.get_all("Route")
    assert route.endswith(";transport=tcp;lr>" if transport == "t1" else ";lr>")


@pytest.mark.parametrize(
    ("domain", "route", "why"),
    [
        ("127.0.0.99", "<sip:{proxy};lr>", "Request-URI host '127.0.0.99'"),
        (DOMAIN, "<sip:127.0.0.99:5065;lr>", "Route '<sip:127.0.0.99:5065;lr>'"),
        (DOMAIN, "<sip:{proxy};transport=tcp>", ";transport=tcp>' (expected"),
    ],
    ids=["uri-names-proxy", "route-elsewhere", "route-without-lr"],
)
def test_proxy_check_rejects_broken_outbound_proxy_rule(
    domain: str, route: str, why: str, addrs: tuple[str, str], tmp_path: Path
) -> None:
    server, client = _via_proxy("u1", addrs, tmp_path, domain=domain, route=route)

    assert server.returncode == 1, server.describe()
    assert "outbound proxy rule broken" in server.error_log
    assert why in server.error_log
    assert client.received(403)


@pytest.fixture(autouse=True)
def _no_sipp_left_behind() -> Iterator[None]:
    """Every test must leave no SIPp child process behind."""
    yield
    children = Path("/proc/self/task").glob("*/children")
    pids = [pid for path in children for pid in path.read_text().split()]
    leftovers = [pid for pid in pids if _is_sipp(pid)]
    assert leftovers == [], f"SIPp processes left running: {leftovers}"


def _is_sipp(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "sipp"
    except FileNotFoundError:
        return False
