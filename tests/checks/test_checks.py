"""Every check fails on a flow made to break it and passes on a good one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.capture.decode import DecodeIssue, Endpoint, TlsStream
from harness.checks import CheckRun, Outcome, all_checks
from harness.numbers.model import NumberConfig
from tests.checks.builders import (
    CALLEE,
    CARRIER,
    DOMAIN,
    NUMBER,
    OTHER,
    PLATFORM,
    ROUTE,
    Trace,
    call,
    cancelled_call,
    good_trace,
    number,
    options,
    register,
    request,
    response,
    rtp_stream,
    sdp,
)

Case = Callable[[], CheckRun]


def _assert_no_errors(run: CheckRun) -> None:
    errors = [
        (f.check.id, r.reason)
        for f in run.findings
        for r in f.results
        if r.outcome is Outcome.ERROR
    ]
    assert errors == []


@pytest.fixture(scope="module")
def good_run() -> CheckRun:
    return good_trace().run(number())


def test_catalogue_is_complete_and_well_formed() -> None:
    checks = all_checks()
    assert len(checks) >= 30
    ids = [c.id for c in checks]
    assert len(set(ids)) == len(ids)
    for item in checks:
        prefix, _, digits = item.id.partition("-")
        assert prefix.isupper(), item.id
        assert len(digits) == 3, item.id
        assert digits.isdigit(), item.id
        assert item.title, item.id
        assert item.reference, item.id
        assert item.remediation.endswith("."), item.id
    assert {"DEC-001", "REG-002", "AUTH-001", "ROUTE-003", "SEC-001", "TLS-001"} <= set(ids)


def test_good_trace_has_no_failure(good_run: CheckRun) -> None:
    _assert_no_errors(good_run)
    assert [f.check.id for f in good_run.failed] == []


PASS_ON_GOOD = [
    "AUTH-001", "AUTH-002", "AUTH-003", "AUTH-004", "AUTH-005", "DEC-001", "DEC-002",
    "HDR-001", "HDR-002", "HDR-003", "HDR-004", "ID-001", "ID-003", "ID-004", "ID-005",
    "INV-001", "INV-002", "INV-003", "INV-004", "INV-005", "INV-006", "INV-007", "OPT-001",
    "REG-001", "REG-004", "REG-005", "REG-006", "ROUTE-001", "ROUTE-002", "ROUTE-003",
    "ROUTE-004", "SDP-001", "SDP-002", "SDP-003", "SDP-004", "SEC-001", "SEC-002", "SEC-003",
    "TRN-001", "TRN-002", "TXN-001", "TXN-002", "TXN-003", "TXN-004", "TXN-005", "TXN-006",
]  # fmt: skip


@pytest.mark.parametrize("check_id", PASS_ON_GOOD)
def test_passes_on_good_trace(good_run: CheckRun, check_id: str) -> None:
    finding = good_run.finding(check_id)
    assert finding.outcome is Outcome.PASS, [r.reason for r in finding.results]
    assert finding.evidence or finding.check.id in _SUMMARY_ONLY


# Checks whose pass is a summary over every message (no single message proves it).
_SUMMARY_ONLY = {"DEC-001", "DEC-002", "HDR-001", "HDR-002", "HDR-003", "HDR-004", "SEC-003",
                 "TRN-001", "TRN-002", "TXN-001", "TXN-003", "TXN-004", "TXN-005"}  # fmt: skip


# --- traces that break one thing ------------------------------------------------------------


def _after_timeout(tr: Trace) -> Trace:
    """Extend the capture past Timer B/F so a missing answer counts as missing."""
    tr.wait(40.0)
    options(tr, call_id="late-ping")
    return tr


def _inbound_invite(tr: Trace, user: str) -> None:
    uri = f"sip:{user}@{PLATFORM[0]}"
    inv = request(
        "INVITE", uri, cseq=1, branch="z9hG4bKin1", call_id="in-1", src=CARRIER,
        from_uri=f"sip:+15557770000@{DOMAIN}", body=sdp(CARRIER[0], 50010),
    )  # fmt: skip
    tr.back(inv)
    tr.out(response(inv, 180, "Ringing"))


def _register_423(asked: int) -> Trace:
    tr = Trace()
    aor = f"sip:15550100001@{DOMAIN}"
    common = {"call_id": "r423", "from_uri": aor, "to_uri": aor, "extra": [("Route", ROUTE)]}
    first = request(
        "REGISTER", f"sip:{DOMAIN}", cseq=1, branch="z9hG4bKr1",
        contact=f"<sip:u@{PLATFORM[0]}>;expires=60", **common,  # type: ignore[arg-type]
    )  # fmt: skip
    tr.out(first)
    tr.back(response(first, 423, "Interval Too Brief", extra=[("Min-Expires", "300")]))
    second = request(
        "REGISTER", f"sip:{DOMAIN}", cseq=2, branch="z9hG4bKr2",
        contact=f"<sip:u@{PLATFORM[0]}>;expires={asked}", **common,  # type: ignore[arg-type]
    )  # fmt: skip
    tr.out(second)
    tr.back(response(second, 200, "OK", contact=f"<sip:u@{PLATFORM[0]}>;expires={asked}"))
    return tr


def _refresh(late: bool) -> Trace:
    tr = Trace()
    register(tr, granted=60)
    tr.wait(100.0 if late else 50.0)
    register(tr, cseq=3, granted=60, challenge=False)
    return tr


def _auth_loop(rounds: int) -> Trace:
    tr = Trace()
    for cseq in range(1, rounds + 1):
        register(tr, cseq=cseq, final=(401, "Unauthorized"), challenge=False)
    register(tr, cseq=rounds + 1, challenge=False)
    return tr


def _callee_bye(with_route: bool) -> Trace:
    tr = Trace()
    call(tr, bye=False)
    routes = [("Route", "<sip:44.1.2.3;lr>")] if with_route else []
    bye = request(
        "BYE", f"sip:{NUMBER}@{PLATFORM[0]}:{PLATFORM[1]}", cseq=10, branch="z9hG4bKcbye",
        call_id="call-1", src=CARRIER, from_uri=f"sip:{CALLEE}@{DOMAIN}", from_tag="tt1",
        to_uri=f"sip:{NUMBER}@{DOMAIN}", to_tag="ft1", contact=None, extra=routes,
    )  # fmt: skip
    tr.back(bye)
    tr.out(response(bye, 200, "OK"))
    return tr


def _single(method: str = "OPTIONS", **kw: object) -> Trace:
    tr = Trace()
    opts: dict[str, object] = {"cseq": 1, "branch": "z9hG4bKs1", "call_id": "s1"}
    opts.update(kw)
    transport = str(opts.pop("wire", "udp"))
    uri = str(opts.pop("uri", f"sip:{DOMAIN}"))
    req = request(method, uri, **opts)  # type: ignore[arg-type]
    tr.add(PLATFORM, CARRIER, req, transport=transport)
    tr.add(CARRIER, PLATFORM, response(req, 200, "OK"), transport=transport)
    return tr


def _raw(data: bytes, *, transport: str = "udp") -> Trace:
    tr = Trace()
    tr.add(PLATFORM, CARRIER, data, transport=transport)
    return tr


def _issue(kind: str, reason: str) -> Trace:
    tr = Trace()
    options(tr)
    tr.issues.append(
        DecodeIssue(kind, 7, tr.clock, Endpoint(*CARRIER), Endpoint(*PLATFORM), reason, "SIP/2.0")
    )
    return tr


def _with_rtp(*, both: bool, loss: float = 0.0) -> CheckRun:
    tr = Trace()
    call(tr)
    streams = [rtp_stream((*CARRIER[:1], 50000), (*PLATFORM[:1], 40000), lost_percent=loss)]
    if both:
        streams.append(rtp_stream((*PLATFORM[:1], 40000), (*CARRIER[:1], 50000)))
    return tr.run(number(), rtp={"call-1": tuple(streams)})


def _tls(clear: bool) -> CheckRun:
    tr = Trace()
    num = number(proxy="sips:44.1.2.3")
    if clear:
        register(tr)
    stream = TlsStream(
        Endpoint(PLATFORM[0], 40123),
        Endpoint(CARRIER[0], 5061),
        1,
        1.0,
        2.0,
        10,
        4000,
        "tls-record",
    )
    return tr.run(num, tls=[stream])


def _t(build: Callable[[Trace], object], num: NumberConfig | None = None) -> Case:
    def case() -> CheckRun:
        tr = Trace()
        build(tr)
        return tr.run(num if num is not None else number())

    return case


def _unanswered_invite(tr: Trace) -> Trace:
    uri = f"sip:{CALLEE}@{DOMAIN}"
    inv = request("INVITE", uri, cseq=1, branch="z9hG4bKna", call_id="na", extra=[("Route", ROUTE)])
    tr.out(inv)
    tr.back(response(inv, 100, "Trying", to_tag=None))
    return tr


def _unfilled_rport(tr: Trace) -> None:
    req = request("OPTIONS", f"sip:{DOMAIN}", cseq=1, branch="z9hG4bKnr", call_id="nr")
    tr.out(req)
    tr.back(response(req, 200, "OK", fill_rport=False))


def _no_length() -> bytes:
    lines = [
        f"OPTIONS sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/TCP {PLATFORM[0]}:{PLATFORM[1]};branch=z9hG4bKnl",
        "Max-Forwards: 70",
        f"From: <sip:{NUMBER}@{DOMAIN}>;tag=a",
        f"To: <sip:{DOMAIN}>",
        "Call-ID: nl",
        "CSeq: 1 OPTIONS",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _no_call_id() -> bytes:
    return _no_length().replace(b"Call-ID: nl\r\n", b"").replace(b"SIP/2.0/TCP", b"SIP/2.0/UDP")


NO_URI_PASSWORD = "pw-in-uri-77"

FAILING: dict[str, Case] = {
    "ID-001": _t(lambda tr: call(tr, from_uri=f"sip:15550100001@{DOMAIN}")),
    "ID-002": _t(lambda tr: call(tr, pai=f"<sip:+15550000000@{DOMAIN}>")),
    "ID-003": _t(lambda tr: call(tr, uri=f"sip:{CALLEE}@other.example.net")),
    "ID-004": _t(lambda tr: register(tr, to_user="someone-else")),
    "ID-005": _t(lambda tr: call(tr, from_uri=f"sip:{NUMBER}@wrong.example.net")),
    "ID-006": _t(lambda tr: _inbound_invite(tr, "+15551112222")),
    "ROUTE-001": _t(lambda tr: register(tr, dst=OTHER)),
    "ROUTE-002": _t(lambda tr: register(tr, transport="tcp")),
    "ROUTE-003": _t(lambda tr: register(tr, route=None)),
    "ROUTE-004": _t(lambda tr: register(tr, uri="sip:44.1.2.3")),
    "AUTH-001": _t(lambda tr: register(tr, digest_user="15550100001")),
    "AUTH-002": _t(lambda tr: register(tr, digest_uri=f"sip:{DOMAIN}:5060")),
    "AUTH-003": lambda: _auth_loop(3).run(number()),
    "AUTH-004": _t(lambda tr: register(tr, final=(403, "Forbidden"))),
    "AUTH-005": _t(lambda tr: register(tr, auth_header="Proxy-Authorization")),
    "REG-001": _t(lambda tr: register(tr, final=(404, "Not Found"))),
    "REG-002": lambda: _register_423(120).run(number()),
    "REG-003": lambda: _refresh(late=True).run(number()),
    "REG-004": _t(lambda tr: (register(tr), register(tr, call_id="reg-2"))),
    "REG-005": _t(register, number(credentials=False)),
    "REG-006": _t(lambda tr: register(tr, granted=None)),
    "OPT-001": _t(lambda tr: _after_timeout((options(tr, answered=False), tr)[1])),
    "INV-001": _t(lambda tr: _after_timeout(_unanswered_invite(tr))),
    "INV-002": _t(lambda tr: cancelled_call(tr, cancel_branch="z9hG4bKother")),
    "INV-003": _t(lambda tr: cancelled_call(tr, final=(486, "Busy Here"))),
    "INV-004": _t(lambda tr: _after_timeout((call(tr, bye_answered=False), tr)[1])),
    "INV-005": _t(lambda tr: _after_timeout((cancelled_call(tr, ack=False), tr)[1])),
    "INV-006": _t(lambda tr: call(tr, ack_branch="z9hG4bKcall-1b")),
    "INV-007": _t(lambda tr: call(tr, ack_route=())),
    "INV-008": lambda: _callee_bye(with_route=False).run(number()),
    "TXN-001": _t(lambda tr: call(tr, ringing_tag="")),
    "TXN-002": _t(lambda tr: call(tr, ringing_tag="early", final_tag="other")),
    "TXN-003": _t(lambda tr: call(tr, bye_cseq=1)),
    "TXN-004": lambda: _single(cseq_method="INFO").run(number()),
    "TXN-005": lambda: _single(branch="abc123").run(number()),
    "TXN-006": _t(_unfilled_rport),
    "HDR-001": lambda: _single(max_forwards=None).run(number()),
    "HDR-002": lambda: _raw(_no_length(), transport="tcp").run(number()),
    "HDR-003": lambda: _single("INVITE", contact=None).run(number()),
    "HDR-004": lambda: _raw(_no_call_id()).run(number()),
    "SDP-001": _t(lambda tr: call(tr, offer=sdp("10.1.2.3", 40000))),
    "SDP-002": _t(lambda tr: call(tr, answer=sdp(CARRIER[0], 50000, "18"))),
    "SDP-003": _t(
        lambda tr: call(tr, answer=sdp(CARRIER[0], 50000, extra=["m=video 0 RTP/AVP 96"]))
    ),
    "SDP-004": _t(lambda tr: call(tr, answer=sdp(CARRIER[0], 0))),
    "RTP-001": lambda: _with_rtp(both=False),
    "RTP-002": lambda: _with_rtp(both=True, loss=12.0),
    "TRN-001": _t(lambda tr: call(tr, pai=f"<sip:{NUMBER}@{DOMAIN}>;x-pad=" + "a" * 1400)),
    "TRN-002": lambda: _single(transport="UDP", wire="tcp").run(number(proxy=None)),
    "TLS-001": lambda: _tls(clear=True),
    "SEC-001": _t(lambda tr: (register(tr), cancelled_call(tr, credentials=False))),
    "SEC-002": _t(lambda tr: register(tr, dst=OTHER)),
    "SEC-003": lambda: _single(uri=f"sip:bob:{NO_URI_PASSWORD}@{DOMAIN}").run(number()),
    "DEC-001": lambda: _issue("unparseable-sip", "SIP over UDP could not be parsed: bad").run(),
    "DEC-002": lambda: _issue("tcp-gap", "12 bytes missing from a TCP stream").run(),
}


def test_every_check_has_a_failing_case() -> None:
    assert set(FAILING) == {c.id for c in all_checks()}


@pytest.mark.parametrize("check_id", sorted(FAILING))
def test_fails_on_broken_flow(check_id: str) -> None:
    run = FAILING[check_id]()
    _assert_no_errors(run)
    finding = run.finding(check_id)
    assert finding.outcome is Outcome.FAIL, [r.reason for r in finding.results]
    assert finding.failures[0].reason
    assert finding.evidence, "a failure names the messages that prove it"


PASSING_ELSEWHERE: dict[str, Case] = {
    "ID-002": _t(lambda tr: call(tr, pai=f"<sip:{NUMBER}@{DOMAIN}>")),
    "ID-006": _t(lambda tr: _inbound_invite(tr, "15550100001")),
    "REG-002": lambda: _register_423(300).run(number()),
    "REG-003": lambda: _refresh(late=False).run(number()),
    "AUTH-003": lambda: _auth_loop(1).run(number()),
    "INV-008": lambda: _callee_bye(with_route=True).run(number()),
    "RTP-001": lambda: _with_rtp(both=True),
    "RTP-002": lambda: _with_rtp(both=True, loss=1.0),
    "TLS-001": lambda: _tls(clear=False),
}


@pytest.mark.parametrize("check_id", sorted(PASSING_ELSEWHERE))
def test_passes_on_dedicated_good_flow(check_id: str) -> None:
    run = PASSING_ELSEWHERE[check_id]()
    _assert_no_errors(run)
    finding = run.finding(check_id)
    assert finding.outcome is Outcome.PASS, [r.reason for r in finding.results]


def test_every_check_has_a_passing_case() -> None:
    assert set(PASS_ON_GOOD) | set(PASSING_ELSEWHERE) == {c.id for c in all_checks()}


def test_uri_password_never_in_evidence() -> None:
    run = FAILING["SEC-003"]()
    text = repr([f.to_dict() for f in run.findings])
    assert NO_URI_PASSWORD not in text
    assert "********" in text
