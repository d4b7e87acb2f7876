"""Build SIP flows from structured messages for the check tests.

A :class:`Trace` collects messages as the wire would carry them (serialised with
``to_bytes()`` and parsed back with the real parser), then gives :class:`Flows`
and runs the checks. Scenario functions write well-behaved exchanges; their
keyword knobs break exactly one thing for a failing test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.capture.decode import CapturedMessage, DecodeIssue, Endpoint, TlsStream
from harness.capture.flows import Flows, build_flows
from harness.capture.rtp import RtpStream
from harness.checks.run import CheckRun, run_checks
from harness.numbers.model import HostPort, NumberConfig, PasswordSource
from harness.sip.message import Request, Response, make_request, make_response
from harness.sip.parser import parse_message
from harness.sip.uri import parse_sip_uri

Addr = tuple[str, int]

# Global (public) addresses: they only appear inside synthetic messages, nothing is sent.
PLATFORM: Addr = ("44.9.8.7", 5060)
CARRIER: Addr = ("44.1.2.3", 5060)
OTHER: Addr = ("44.5.5.5", 5060)
DOMAIN = "carrier.example.com"
NUMBER = "+15550100001"
USERNAME = "15550100001"
AUTH_USER = "auth-7781"
SECRET = "Sup3r-Secret-Pw!"
PROXY = "sip:44.1.2.3:5060;transport=udp"
ROUTE = "<sip:44.1.2.3:5060;transport=udp;lr>"
CALLEE = "+15559990000"


def number(
    *,
    proxy: str | None = PROXY,
    credentials: bool = True,
    auth_username: str | None = AUTH_USER,
    origination: str | None = "sip:44.9.8.7:5060",
) -> NumberConfig:
    return NumberConfig(
        phone_number=NUMBER,
        sip_domain=HostPort(DOMAIN),
        username=USERNAME if credentials else None,
        password=SECRET if credentials else None,
        auth_username=auth_username if credentials else None,
        outbound_proxy=parse_sip_uri(proxy) if proxy else None,
        origination_uri=parse_sip_uri(origination) if origination else None,
        password_source=PasswordSource("password") if credentials else None,
    )


def sdp(ip: str, port: int, formats: str = "0 101", *, extra: Iterable[str] = ()) -> bytes:
    lines = [
        "v=0",
        f"o=- 1 1 IN IP4 {ip}",
        "s=-",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {formats}",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def request(
    method: str,
    uri: str,
    *,
    call_id: str,
    cseq: int,
    branch: str,
    src: Addr = PLATFORM,
    transport: str = "UDP",
    from_uri: str = f"sip:{NUMBER}@{DOMAIN}",
    from_tag: str = "ft1",
    to_uri: str | None = None,
    to_tag: str | None = None,
    cseq_method: str | None = None,
    max_forwards: str | None = "70",
    contact: str | None = "default",
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    rport: bool = True,
) -> Request:
    via = f"SIP/2.0/{transport} {src[0]}:{src[1]};branch={branch}" + (";rport" if rport else "")
    headers = [("Via", via)]
    if max_forwards is not None:
        headers.append(("Max-Forwards", max_forwards))
    to = f"<{to_uri or uri}>" + (f";tag={to_tag}" if to_tag else "")
    headers += [
        ("From", f"<{from_uri}>;tag={from_tag}"),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {cseq_method or method}"),
    ]
    if contact == "default":
        contact = f"<sip:{USERNAME}@{src[0]}:{src[1]}>"
    if contact is not None:
        headers.append(("Contact", contact))
    headers.extend(extra)
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return make_request(method, uri, headers, body)


def response(
    req: Request,
    status: int,
    reason: str,
    *,
    to_tag: str | None = "tt1",
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    fill_rport: bool = True,
    contact: str | None = None,
) -> Response:
    headers: list[tuple[str, str]] = []
    for index, via in enumerate(req.headers.get_all("Via")):
        if index == 0 and fill_rport and via.endswith(";rport"):
            host, port = via.split()[1].split(";")[0].split(":")
            headers.append(("Via", f"{via}={port};received={host}"))
        else:
            headers.append(("Via", via))
    to = req.headers.get("To") or ""
    if to_tag and ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    headers += [
        ("From", req.headers.get("From") or ""),
        ("To", to),
        ("Call-ID", req.call_id or ""),
        ("CSeq", req.headers.get("CSeq") or ""),
    ]
    if contact is not None:
        headers.append(("Contact", contact))
    headers.extend(extra)
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return make_response(status, reason, headers, body)


@dataclass
class Trace:
    """Messages in wire order with addresses and times; see the module docstring."""

    messages: list[CapturedMessage] = field(default_factory=list)
    clock: float = 1_700_000_000.0
    issues: list[DecodeIssue] = field(default_factory=list)

    def add(
        self,
        src: Addr,
        dst: Addr,
        message: Request | Response | bytes,
        *,
        transport: str = "udp",
        dt: float = 0.01,
    ) -> CapturedMessage:
        """Append ``message`` (an object, or raw bytes kept exactly as given)."""
        self.clock += dt
        data = message if isinstance(message, bytes) else message.to_bytes()
        parsed = parse_message(data, validate=False)
        captured = CapturedMessage(
            len(self.messages),
            len(self.messages) + 1,
            self.clock,
            Endpoint(*src),
            Endpoint(*dst),
            transport,
            parsed,
            len(data),
        )
        self.messages.append(captured)
        return captured

    def out(self, message: Request | Response, **kw: object) -> CapturedMessage:
        """Platform -> carrier."""
        return self.add(PLATFORM, CARRIER, message, **kw)  # type: ignore[arg-type]

    def back(self, message: Request | Response, **kw: object) -> CapturedMessage:
        """Carrier -> platform."""
        return self.add(CARRIER, PLATFORM, message, **kw)  # type: ignore[arg-type]

    def wait(self, seconds: float) -> None:
        self.clock += seconds

    def flows(self) -> Flows:
        return build_flows(self.messages)

    def run(
        self,
        num: NumberConfig | None = None,
        *,
        rtp: dict[str, tuple[RtpStream, ...]] | None = None,
        local: Iterable[str] | None = (PLATFORM[0],),
        tls: Iterable[TlsStream] = (),
    ) -> CheckRun:
        return run_checks(
            self.flows(),
            num,
            issues=self.issues,
            tls_streams=tls,
            rtp=rtp,
            local_addresses=local,
        )


# --- scenarios ----------------------------------------------------------------------------


def register(
    tr: Trace,
    *,
    call_id: str = "reg-1",
    cseq: int = 1,
    uri: str = f"sip:{DOMAIN}",
    to_user: str = USERNAME,
    digest_user: str = AUTH_USER,
    digest_uri: str | None = None,
    final: tuple[int, str] = (200, "OK"),
    expires: int = 3600,
    granted: int | None = 3600,
    route: str | None = ROUTE,
    dst: Addr = CARRIER,
    transport: str = "udp",
    auth_header: str = "Authorization",
    realm: str = "carrier",
    challenge: bool = True,
) -> list[CapturedMessage]:
    """REGISTER -> 401 -> REGISTER with credentials -> final (200 with the binding)."""
    aor = f"sip:{to_user}@{DOMAIN}"
    common: dict[str, object] = {
        "call_id": call_id,
        "from_uri": aor,
        "to_uri": aor,
        "transport": transport.upper(),
        "contact": f"<sip:{USERNAME}@{PLATFORM[0]}:{PLATFORM[1]}>;expires={expires}",
    }
    extra = [("Route", route)] if route else []
    out: list[CapturedMessage] = []
    number_ = cseq
    if challenge:
        first = request(
            "REGISTER",
            uri,
            cseq=number_,
            branch=f"z9hG4bK{call_id}{number_}",
            extra=extra,
            **common,  # type: ignore[arg-type]
        )
        out.append(tr.add(PLATFORM, dst, first, transport=transport))
        www = ("WWW-Authenticate", f'Digest realm="{realm}", nonce="n{number_}", algorithm=MD5')
        out.append(
            tr.add(
                dst,
                PLATFORM,
                response(first, 401, "Unauthorized", extra=[www]),
                transport=transport,
            )
        )
        number_ += 1
    creds = (
        auth_header,
        f'Digest username="{digest_user}", realm="{realm}", nonce="n{number_ - 1}", '
        f'uri="{digest_uri or uri}", response="0123456789abcdef0123456789abcdef", '
        "algorithm=MD5",
    )
    second = request(
        "REGISTER",
        uri,
        cseq=number_,
        branch=f"z9hG4bK{call_id}{number_}",
        extra=[*extra, creds],
        **common,  # type: ignore[arg-type]
    )
    out.append(tr.add(PLATFORM, dst, second, transport=transport))
    contact = None
    if granted is not None:
        contact = f"<sip:{USERNAME}@{PLATFORM[0]}:{PLATFORM[1]}>;expires={granted}"
    out.append(
        tr.add(dst, PLATFORM, response(second, *final, contact=contact), transport=transport)
    )
    return out


def call(
    tr: Trace,
    *,
    call_id: str = "call-1",
    uri: str = f"sip:{CALLEE}@{DOMAIN}",
    from_uri: str = f"sip:{NUMBER}@{DOMAIN}",
    offer: bytes | None = None,
    answer: bytes | None = None,
    record_route: tuple[str, ...] = ("<sip:44.1.2.3;lr>",),
    ack_route: tuple[str, ...] | None = None,
    ack_branch: str | None = None,
    ringing_tag: str = "tt1",
    final_tag: str = "tt1",
    route: str | None = ROUTE,
    pai: str | None = None,
    challenge: bool = True,
    auth_user: str = AUTH_USER,
    bye_cseq: int = 3,
    bye: bool = True,
    bye_answered: bool = True,
) -> list[CapturedMessage]:
    """INVITE -> 407 -> ACK -> INVITE (credentials) -> 100/180/200 -> ACK -> BYE -> 200."""
    offer = offer if offer is not None else sdp(PLATFORM[0], 40000)
    answer = answer if answer is not None else sdp(CARRIER[0], 50000, "0 101")
    extra: list[tuple[str, str]] = [("Route", route)] if route else []
    if pai:
        extra.append(("P-Asserted-Identity", pai))
    common: dict[str, object] = {"call_id": call_id, "from_uri": from_uri}
    out: list[CapturedMessage] = []
    cseq = 1
    if challenge:
        inv = request(
            "INVITE",
            uri,
            cseq=1,
            branch=f"z9hG4bK{call_id}a",
            extra=extra,
            body=offer,
            **common,  # type: ignore[arg-type]
        )
        out.append(tr.out(inv))
        chal = ("Proxy-Authenticate", 'Digest realm="carrier", nonce="c1", algorithm=MD5')
        rej = response(inv, 407, "Proxy Authentication Required", to_tag="px", extra=[chal])
        out.append(tr.back(rej))
        ack = request(
            "ACK",
            uri,
            cseq=1,
            branch=f"z9hG4bK{call_id}a",
            to_tag="px",
            contact=None,
            extra=[("Route", route)] if route else [],
            **common,  # type: ignore[arg-type]
        )
        out.append(tr.out(ack))
        cseq = 2
    creds = (
        [
            (
                "Proxy-Authorization",
                f'Digest username="{auth_user}", realm="carrier", nonce="c1", uri="{uri}", '
                'response="0123456789abcdef0123456789abcdef"',
            )
        ]
        if challenge
        else []
    )
    inv2 = request(
        "INVITE",
        uri,
        cseq=cseq,
        branch=f"z9hG4bK{call_id}b",
        extra=[*extra, *creds],
        body=offer,
        **common,  # type: ignore[arg-type]
    )
    out.append(tr.out(inv2))
    out.append(tr.back(response(inv2, 100, "Trying", to_tag=None)))
    out.append(tr.back(response(inv2, 180, "Ringing", to_tag=ringing_tag)))
    rr = [("Record-Route", value) for value in record_route]
    ok = response(
        inv2,
        200,
        "OK",
        to_tag=final_tag,
        extra=rr,
        body=answer,
        contact=f"<sip:{CALLEE}@{CARRIER[0]}:{CARRIER[1]}>",
    )
    out.append(tr.back(ok))
    routes = ack_route if ack_route is not None else tuple(reversed(record_route))
    in_dialog: dict[str, object] = {
        "to_tag": final_tag,
        "contact": None,
        "extra": [("Route", r) for r in routes],
        **common,
    }
    ack2 = request(
        "ACK",
        f"sip:{CALLEE}@{CARRIER[0]}:{CARRIER[1]}",
        cseq=cseq,
        branch=ack_branch or f"z9hG4bK{call_id}c",
        to_uri=uri,
        **in_dialog,  # type: ignore[arg-type]
    )
    out.append(tr.out(ack2))
    if bye:
        tr.wait(1.0)
        bye_req = request(
            "BYE",
            f"sip:{CALLEE}@{CARRIER[0]}:{CARRIER[1]}",
            cseq=bye_cseq,
            branch=f"z9hG4bK{call_id}d",
            to_uri=uri,
            **in_dialog,  # type: ignore[arg-type]
        )
        out.append(tr.out(bye_req))
        if bye_answered:
            out.append(tr.back(response(bye_req, 200, "OK", to_tag=None)))
    return out


def cancelled_call(
    tr: Trace,
    *,
    call_id: str = "cancel-1",
    cancel_branch: str | None = None,
    final: tuple[int, str] = (487, "Request Terminated"),
    ack: bool = True,
    credentials: bool = True,
) -> list[CapturedMessage]:
    """INVITE (credentials) -> 100 -> 180 -> CANCEL -> 200 -> 487 -> ACK (same branch)."""
    uri = f"sip:{CALLEE}@{DOMAIN}"
    common: dict[str, object] = {"call_id": call_id, "extra": [("Route", ROUTE)]}
    creds = (
        [
            (
                "Proxy-Authorization",
                f'Digest username="{AUTH_USER}", realm="carrier", nonce="c0", uri="{uri}", '
                'response="0123456789abcdef0123456789abcdef"',
            )
        ]
        if credentials
        else []
    )
    inv = request(
        "INVITE",
        uri,
        cseq=1,
        branch=f"z9hG4bK{call_id}",
        body=sdp(PLATFORM[0], 40002),
        call_id=call_id,
        extra=[("Route", ROUTE), *creds],
    )
    out = [tr.out(inv), tr.back(response(inv, 100, "Trying", to_tag=None))]
    out.append(tr.back(response(inv, 180, "Ringing")))
    cancel = request(
        "CANCEL",
        uri,
        cseq=1,
        branch=cancel_branch or f"z9hG4bK{call_id}",
        contact=None,
        **common,  # type: ignore[arg-type]
    )
    out.append(tr.out(cancel))
    out.append(tr.back(response(cancel, 200, "OK")))
    out.append(tr.back(response(inv, *final)))
    if ack and final[0] >= 300:
        out.append(
            tr.out(
                request(
                    "ACK",
                    uri,
                    cseq=1,
                    branch=f"z9hG4bK{call_id}",
                    to_tag="tt1",
                    contact=None,
                    **common,  # type: ignore[arg-type]
                )
            )
        )
    return out


def options(tr: Trace, *, call_id: str = "opt-1", answered: bool = True) -> list[CapturedMessage]:
    req = request(
        "OPTIONS",
        f"sip:{DOMAIN}",
        cseq=1,
        branch=f"z9hG4bK{call_id}",
        call_id=call_id,
        extra=[("Route", ROUTE)],
    )
    out = [tr.out(req)]
    if answered:
        out.append(tr.back(response(req, 200, "OK")))
    return out


def good_trace() -> Trace:
    """A registration, an authenticated call, a cancelled call and an OPTIONS ping."""
    tr = Trace()
    register(tr)
    call(tr)
    cancelled_call(tr)
    options(tr)
    return tr


def rtp_stream(src: Addr, dst: Addr, *, packets: int = 250, lost_percent: float = 0.0) -> RtpStream:
    return RtpStream(
        src=Endpoint(*src),
        dst=Endpoint(*dst),
        ssrc=0x1234,
        payload="g711U",
        packets=packets,
        lost=int(packets * lost_percent / 100),
        lost_percent=lost_percent,
        start=1_700_000_000.0,
        end=1_700_000_005.0,
        min_delta_ms=19.0,
        mean_delta_ms=20.0,
        max_delta_ms=21.0,
        min_jitter_ms=0.0,
        mean_jitter_ms=0.1,
        max_jitter_ms=0.5,
        problem=False,
    )
