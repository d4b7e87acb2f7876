"""Call checks: INVITE, ACK, BYE, CANCEL and OPTIONS behaviour."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from harness.capture.decode import CapturedMessage
from harness.capture.flows import Call, Transaction, from_tag, to_tag, top_via_branch
from harness.checks.registry import (
    CheckContext,
    Item,
    Severity,
    check,
    failed,
    not_applicable,
    passed,
)
from harness.checks.sipview import (
    capture_end,
    first_requests,
    is_initial,
    request_of,
    response_of,
    route_uris,
    status_of,
    transactions,
    unreachable_evidence,
    unreachable_for,
)
from harness.sip.errors import RemoteProtocolError
from harness.sip.uri import hop_key, parse_sip_uri

TOPIC = "invite"
TIMER_B = 32.0  # RFC 3261 §17.1.1.2: 64*T1, when an INVITE client gives up


def _answered(ctx: CheckContext, method: str, timeout: float) -> Iterator[Item]:
    end = capture_end(ctx)
    for txn, captured, msg in first_requests(ctx, method):
        final = txn.final
        icmp = unreachable_for(ctx, captured) if final is None else None
        if final is not None:
            yield passed(f"{method} answered {status_of(final)}", captured, final)
        elif icmp is not None and not txn.responses:
            yield failed(
                f"{method} never reached a SIP server: ICMP {icmp.reason} "
                f"from {icmp.reporter} for {icmp.dst} (UDP)",
                captured,
                unreachable_evidence(icmp),
                subject=msg.call_id,
            )
        elif end - captured.timestamp < timeout:
            yield not_applicable(
                f"capture ends {end - captured.timestamp:.1f} s after the {method}", captured
            )
        else:
            last = txn.responses[-1:] if txn.responses else ()
            yield failed(
                f"{method} got no final response in {end - captured.timestamp:.0f} s",
                captured,
                *last,
                subject=msg.call_id,
            )


@check(
    "INV-001",
    title="INVITE gets a final response",
    reference="RFC 3261 §13.3.1 and §17.1.1",
    severity=Severity.ERROR,
    remediation=(
        "The callee side never gave a final answer: check that the carrier routes "
        "phone_number to a destination that answers, and that its responses can reach the "
        "platform (firewall, NAT, origination_uri)."
    ),
    topic=TOPIC,
)
def invite_answered(ctx: CheckContext) -> Iterator[Item]:
    yield from _answered(ctx, "INVITE", TIMER_B)


def _matching_invite(call: Call, cancel: Transaction) -> Transaction | None:
    for txn in transactions(call, "INVITE"):
        if txn.branch == cancel.branch:
            return txn
    for txn in transactions(call, "INVITE"):
        if txn.cseq == cancel.cseq:
            return txn
    return None


def _cancels(ctx: CheckContext) -> Iterator[tuple[Call, Transaction, Transaction | None]]:
    for call in ctx.flows.calls:
        for cancel in transactions(call, "CANCEL"):
            if cancel.request is not None:
                yield call, cancel, _matching_invite(call, cancel)


@check(
    "INV-002",
    title="CANCEL matches the INVITE it cancels",
    reference="RFC 3261 §9.1",
    severity=Severity.ERROR,
    remediation=(
        "A CANCEL must repeat the INVITE's Request-URI, Call-ID, CSeq number and top Via "
        "branch; otherwise the callee cannot match it and the phone keeps ringing. This is "
        "a client defect: report it to the vendor of the side that sent the CANCEL."
    ),
    topic=TOPIC,
)
def cancel_matches(ctx: CheckContext) -> Iterator[Item]:
    for _, cancel, invite in _cancels(ctx):
        cmsg = request_of(cancel.request)
        assert cancel.request is not None
        assert cmsg is not None
        imsg = request_of(invite.request) if invite is not None else None
        if invite is None or invite.request is None or imsg is None:
            yield failed("no INVITE in the call matches this CANCEL", cancel.request)
            continue
        problems = []
        if cancel.branch != invite.branch:
            problems.append(f"branch {cancel.branch} != {invite.branch}")
        if cmsg.uri != imsg.uri:
            problems.append(f"Request-URI {cmsg.uri} != {imsg.uri}")
        if cancel.cseq != invite.cseq:
            problems.append(f"CSeq {cancel.cseq} != {invite.cseq}")
        if problems:
            yield failed(
                "CANCEL differs from its INVITE: " + "; ".join(problems),
                invite.request,
                cancel.request,
                subject=cmsg.call_id,
            )
        else:
            yield passed("CANCEL matches its INVITE", invite.request, cancel.request)


@check(
    "INV-003",
    title="A cancelled INVITE ends with 487",
    reference="RFC 3261 §9.2",
    severity=Severity.WARNING,
    remediation=(
        "After a CANCEL the callee must answer 200 to the CANCEL and 487 Request Terminated "
        "to the INVITE; ask the carrier to fix its CANCEL handling, or calls stay half-open."
    ),
    topic=TOPIC,
)
def cancel_487(ctx: CheckContext) -> Iterator[Item]:
    end = capture_end(ctx)
    for _, cancel, invite in _cancels(ctx):
        assert cancel.request is not None
        if invite is None:
            continue
        final = invite.final
        if final is None:
            if end - cancel.request.timestamp >= TIMER_B:
                yield failed("the cancelled INVITE got no final response", cancel.request)
            continue
        status = status_of(final)
        if status == 487:
            yield passed("INVITE ended 487 after CANCEL", cancel.request, final)
        elif 200 <= status < 300 and final.timestamp <= cancel.request.timestamp + 0.5:
            yield passed("the 2xx crossed the CANCEL (race allowed by §9.2)", final)
        else:
            yield failed(
                f"the cancelled INVITE ended {status}, expected 487",
                cancel.request,
                final,
                subject=invite.call_id,
            )


@check(
    "INV-004",
    title="BYE answered",
    reference="RFC 3261 §15.1.2",
    severity=Severity.WARNING,
    remediation=(
        "The BYE got no response: the other side may not receive in-dialog requests (check "
        "Record-Route and the Contact address, NAT keep-alives, firewall pinholes)."
    ),
    topic=TOPIC,
)
def bye_answered(ctx: CheckContext) -> Iterator[Item]:
    yield from _answered(ctx, "BYE", TIMER_B)


@check(
    "INV-005",
    title="Non-2xx final response acknowledged on the same branch",
    reference="RFC 3261 §17.1.1.3",
    severity=Severity.ERROR,
    remediation=(
        "The side that sent the INVITE must ACK a failure response with the INVITE's Via "
        "branch; otherwise the other side retransmits it for 32 s. Report it to the vendor "
        "of the calling side."
    ),
    topic=TOPIC,
)
def ack_non_2xx(ctx: CheckContext) -> Iterator[Item]:
    end = capture_end(ctx)
    for call in ctx.flows.calls:
        for txn in transactions(call, "INVITE"):
            final = txn.final
            if txn.request is None or final is None or status_of(final) < 300:
                continue
            if txn.ack is not None:
                yield passed("ACK on the INVITE's branch", final, txn.ack)
                continue
            other = [
                t.request
                for t in transactions(call, "ACK")
                if t.cseq == txn.cseq and t.request is not None
            ]
            if other:
                yield failed(
                    "ACK for a non-2xx response uses a new branch",
                    final,
                    other[0],
                    subject=call.call_id,
                )
            elif end - final.timestamp >= TIMER_B:
                yield failed("no ACK for the non-2xx response", final, subject=call.call_id)


def _two_xx(txn: Transaction) -> CapturedMessage | None:
    for message in txn.responses:
        if 200 <= status_of(message) < 300:
            return message
    return None


@check(
    "INV-006",
    title="2xx to INVITE acknowledged in a new transaction",
    reference="RFC 3261 §13.2.2.4 and §17.1.1.3",
    severity=Severity.ERROR,
    remediation=(
        "The caller must ACK a 200 OK with a new Via branch; a missing ACK makes the callee "
        "retransmit the 200 and hang up after 32 s. Check that the 200 OK reaches the "
        "caller (Contact, NAT) and report the defect to the caller's vendor."
    ),
    topic=TOPIC,
)
def ack_2xx(ctx: CheckContext) -> Iterator[Item]:
    end = capture_end(ctx)
    for call in ctx.flows.calls:
        for txn in transactions(call, "INVITE"):
            ok = _two_xx(txn)
            if txn.request is None or ok is None:
                continue
            acks = [
                t.request
                for t in transactions(call, "ACK")
                if t.cseq == txn.cseq and t.request is not None
            ]
            same = [a for a in acks if a is not None and _branch(a) == txn.branch]
            if same:
                yield failed(
                    "ACK for 2xx reuses the INVITE's branch", ok, same[0], subject=call.call_id
                )
            elif acks:
                yield passed("ACK for 2xx on a new branch", ok, acks[0])
            elif end - ok.timestamp >= TIMER_B:
                yield failed("no ACK for the 2xx", ok, subject=call.call_id)
            else:
                yield not_applicable("capture ends before the ACK was due", ok)


def _branch(captured: CapturedMessage) -> str | None:
    msg = request_of(captured)
    if msg is None:
        return None
    return top_via_branch(msg)


def _dialogs(ctx: CheckContext) -> Iterator[tuple[Call, Transaction, CapturedMessage]]:
    """Established INVITE dialogs: (call, INVITE transaction, its 2xx)."""
    for call in ctx.flows.calls:
        for txn in transactions(call, "INVITE"):
            msg = request_of(txn.request)
            ok = _two_xx(txn)
            if msg is not None and ok is not None and is_initial(msg):
                yield call, txn, ok


def _in_dialog(call: Call, tag: str | None, ok: CapturedMessage) -> Iterator[CapturedMessage]:
    """First copies of in-dialog requests sent by the party whose From tag is ``tag``.

    Only copies seen as that party sent them (a single Via) count: a proxy on the
    route removes its own Route entry (RFC 3261 §16.4, loose routing), so a request
    captured after a proxy rightly carries fewer Route headers than the route set.
    """
    for txn in transactions(call):
        captured = txn.request
        msg = request_of(captured)
        if captured is None or msg is None or captured.index < ok.index:
            continue
        if not is_initial(msg) and from_tag(msg) == tag and len(msg.headers.get_all("Via")) == 1:
            yield captured


def _route_key(text: str) -> tuple[object, ...]:
    """The hop a route URI leads to (:func:`~harness.sip.uri.hop_key`) and whether it
    routes loosely: peers rewrite ``lr=on`` as ``lr`` and add the default port, and
    both reach the same proxy, so neither is a fault here."""
    try:
        uri = parse_sip_uri(text)
    except RemoteProtocolError:
        return (text,)
    return (*hop_key(uri), uri.has_param("lr"))


def _same_routes(seen: Sequence[str], expected: Sequence[str]) -> bool:
    return [_route_key(u) for u in seen] == [_route_key(u) for u in expected]


def _route_check(ctx: CheckContext, *, caller: bool) -> Iterator[Item]:
    for call, txn, ok in _dialogs(ctx):
        response = response_of(ok)
        assert response is not None
        assert txn.request is not None
        record = route_uris(response.headers.get_all("Record-Route"))
        if not record:
            continue
        expected = tuple(reversed(record)) if caller else record
        tag = from_tag(txn.request.message) if caller else to_tag(response)
        for captured in _in_dialog(call, tag, ok):
            msg = request_of(captured)
            assert msg is not None
            seen = route_uris(msg.headers.get_all("Route"))
            if _same_routes(seen, expected):
                yield passed(f"{msg.method} follows the route set", ok, captured)
            else:
                yield failed(
                    f"{msg.method} Route {list(seen)} but the route set is {list(expected)}",
                    ok,
                    captured,
                    subject=call.call_id,
                )


@check(
    "INV-007",
    title="Caller's in-dialog requests follow the route set (reversed Record-Route)",
    reference="RFC 3261 §12.1.2 and §12.2.1.1",
    severity=Severity.ERROR,
    remediation=(
        "ACK and BYE from the caller must carry Route headers copied from the 200 OK's "
        "Record-Route in reverse order, so they pass through the carrier's proxies; "
        "otherwise the proxy never sees the ACK/BYE and the call is dropped or billed on."
    ),
    topic=TOPIC,
)
def caller_route_set(ctx: CheckContext) -> Iterator[Item]:
    yield from _route_check(ctx, caller=True)


@check(
    "INV-008",
    title="Callee's in-dialog requests honour Record-Route",
    reference="RFC 3261 §12.1.1 and §12.2.1.1",
    severity=Severity.ERROR,
    remediation=(
        "BYE (and re-INVITE) from the called side must carry Route headers equal to the "
        "Record-Route of the INVITE, in order; ask the carrier (or fix the PBX) to honour "
        "Record-Route."
    ),
    topic=TOPIC,
)
def callee_route_set(ctx: CheckContext) -> Iterator[Item]:
    yield from _route_check(ctx, caller=False)


@check(
    "OPT-001",
    title="OPTIONS answered",
    reference="RFC 3261 §11.2",
    severity=Severity.WARNING,
    remediation=(
        "The peer does not answer OPTIONS: carriers use them as keep-alives and mark a "
        "silent trunk as down. Allow OPTIONS from the carrier's addresses in the firewall "
        "and enable OPTIONS answering on the PBX."
    ),
    topic=TOPIC,
)
def options_answered(ctx: CheckContext) -> Iterator[Item]:
    yield from _answered(ctx, "OPTIONS", TIMER_B)
