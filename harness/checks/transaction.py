"""Transaction-layer checks: tags, CSeq, Via branch and rport."""

from __future__ import annotations

from collections.abc import Iterator

from harness.capture.decode import CapturedMessage
from harness.capture.flows import MAGIC_COOKIE, from_tag, to_tag
from harness.checks.registry import CheckContext, Item, Severity, check, failed, passed
from harness.checks.sipview import (
    first_requests,
    request_of,
    response_of,
    status_of,
    top_via,
    transactions,
)

TOPIC = "transaction"


@check(
    "TXN-001",
    title="Responses other than 100 carry a To tag",
    reference="RFC 3261 §8.2.6.2",
    severity=Severity.ERROR,
    remediation=(
        "Every response except 100 Trying must add a tag to To; without it the caller "
        "cannot build a dialog and hangs up. Report it to the vendor of the answering side."
    ),
    topic=TOPIC,
)
def responses_have_to_tag(ctx: CheckContext) -> Iterator[Item]:
    missing: list[CapturedMessage] = []
    checked = 0
    for txn in ctx.flows.transactions:
        for captured in txn.responses:
            response = response_of(captured)
            if response is None or response.status <= 100:
                continue
            checked += 1
            if to_tag(response) is None:
                missing.append(captured)
    for captured in missing:
        yield failed(
            f"{status_of(captured)} response without To tag",
            captured,
            subject=captured.call_id,
        )
    if checked and not missing:
        yield passed(f"all {checked} responses above 100 carry a To tag")


@check(
    "TXN-002",
    title="One To tag for the provisional and final responses of a dialog",
    reference="RFC 3261 §12.1.1 and §13.2.2.4",
    severity=Severity.ERROR,
    remediation=(
        "The 200 OK must carry the same To tag as the 180/183 of the same dialog; a changed "
        "tag creates a second dialog and breaks early media and CANCEL. Report it to the "
        "vendor of the answering side."
    ),
    topic=TOPIC,
)
def stable_to_tag(ctx: CheckContext) -> Iterator[Item]:
    for txn in ctx.flows.transactions:
        if txn.method != "INVITE":
            continue
        early = {to_tag(m.message): m for m in txn.responses if 100 < status_of(m) < 200}
        early.pop(None, None)
        finals = [m for m in txn.responses if 200 <= status_of(m) < 300]
        if not early or not finals:
            continue
        final = finals[0]
        tag = to_tag(final.message)
        if tag in early:
            yield passed("2xx keeps the To tag of the provisional response", early[tag], final)
        elif len(early) == 1:
            first = next(iter(early.values()))
            yield failed(
                f"2xx To tag {tag!r} differs from the provisional {to_tag(first.message)!r}",
                first,
                final,
                subject=txn.call_id,
            )
        else:
            yield passed("several early dialogs (forking); the 2xx picks a new one", final)


@check(
    "TXN-003",
    title="CSeq increases within a dialog",
    reference="RFC 3261 §12.2.1.1 and §8.1.1.5",
    severity=Severity.ERROR,
    remediation=(
        "Each new request from one side of a call must have a higher CSeq than the last; "
        "peers reject a lower one with 500 and the BYE or re-INVITE fails. Report it to the "
        "vendor of the sending side."
    ),
    topic=TOPIC,
)
def cseq_increases(ctx: CheckContext) -> Iterator[Item]:
    for call in ctx.flows.calls:
        last: dict[str | None, CapturedMessage] = {}
        bad = False
        count = 0
        for txn in transactions(call):
            captured = txn.request
            msg = request_of(captured)
            if captured is None or msg is None or msg.method in ("ACK", "CANCEL"):
                continue
            cseq = msg.cseq
            if cseq is None:
                continue
            count += 1
            sender = from_tag(msg)
            before = last.get(sender)
            previous = request_of(before)
            if before is not None and previous is not None:
                prev = previous.cseq
                if prev is not None and tuple(cseq) == tuple(prev):
                    # The same request on another hop (a proxy forwarding it opens a
                    # transaction of its own with the same CSeq): not a new request.
                    continue
                if prev is not None and cseq[0] <= prev[0]:
                    bad = True
                    yield failed(
                        f"{msg.method} CSeq {cseq[0]} after {previous.method} CSeq {prev[0]}",
                        before,
                        captured,
                        subject=call.call_id,
                    )
            last[sender] = captured
        if count > 1 and not bad:
            yield passed(f"{count} requests with increasing CSeq", subject=call.call_id)


@check(
    "TXN-004",
    title="CSeq method matches the request",
    reference="RFC 3261 §8.1.1.5 and §8.2.6.2",
    severity=Severity.ERROR,
    remediation=(
        "The CSeq method must be the request's method (and a response must copy the "
        "request's CSeq); a mismatch makes the transaction unmatchable. Report it to the "
        "vendor of the sending side."
    ),
    topic=TOPIC,
)
def cseq_method(ctx: CheckContext) -> Iterator[Item]:
    checked = 0
    bad = False
    for txn in ctx.flows.transactions:
        request = request_of(txn.request)
        if txn.request is None or request is None:
            continue
        checked += 1
        cseq = request.cseq
        if cseq is None or cseq[1] != request.method:
            bad = True
            yield failed(
                f"{request.method} carries CSeq {request.headers.get('CSeq')!r}",
                txn.request,
                subject=request.call_id,
            )
            continue
        for captured in txn.responses:
            response = response_of(captured)
            if response is not None and response.cseq != cseq:
                bad = True
                yield failed(
                    f"response CSeq {response.cseq} differs from the request's {cseq}",
                    txn.request,
                    captured,
                    subject=request.call_id,
                )
    if checked and not bad:
        yield passed(f"{checked} requests with matching CSeq")


@check(
    "TXN-005",
    title="Via branch starts with the magic cookie z9hG4bK",
    reference="RFC 3261 §8.1.1.7",
    severity=Severity.WARNING,
    remediation=(
        "Requests must carry a Via branch starting with z9hG4bK; without it proxies fall "
        "back to RFC 2543 matching and may mismatch retransmissions. Update the sending "
        "side's SIP stack."
    ),
    topic=TOPIC,
)
def branch_cookie(ctx: CheckContext) -> Iterator[Item]:
    checked = 0
    bad = False
    for _, captured, msg in first_requests(ctx):
        checked += 1
        via = top_via(msg)
        branch = via.branch if via is not None else None
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            bad = True
            yield failed(f"{msg.method} top Via branch is {branch!r}", captured)
    if checked and not bad:
        yield passed(f"{checked} requests with an RFC 3261 branch")


@check(
    "TXN-006",
    title="Responses fill in rport when the request asks for it",
    reference="RFC 3581 §4; RFC 3261 §18.2.1",
    severity=Severity.WARNING,
    remediation=(
        "The request asked for rport (symmetric response routing) but the response lacks "
        "rport/received: behind NAT, responses then go to the wrong port. Ask the carrier "
        "to enable RFC 3581 (force_rport / nat=force_rport)."
    ),
    topic=TOPIC,
)
def rport_filled(ctx: CheckContext) -> Iterator[Item]:
    for txn, captured, msg in first_requests(ctx):
        via = top_via(msg)
        if via is None or not via.has_rport or via.rport is not None:
            continue
        for response_captured in txn.responses[:1]:
            response = response_of(response_captured)
            if response is None:
                continue
            answer = top_via(response)
            if answer is not None and answer.rport is not None:
                yield passed("response carries rport", captured, response_captured)
            else:
                yield failed(
                    "request asked for rport, the response has no rport value",
                    captured,
                    response_captured,
                    subject=msg.call_id,
                )
