"""Header checks: Max-Forwards, Content-Length, Contact, the mandatory headers."""

from __future__ import annotations

from collections.abc import Iterator

from harness.capture.decode import CapturedMessage
from harness.checks.registry import CheckContext, Item, Severity, check, failed, passed
from harness.checks.sipview import first_requests, response_of, status_of

TOPIC = "headers"
_MANDATORY = ("To", "From", "Call-ID", "CSeq", "Via")


@check(
    "HDR-001",
    title="Max-Forwards present and above zero in requests",
    reference="RFC 3261 §8.1.1.6 and §20.22",
    severity=Severity.WARNING,
    remediation=(
        "Requests must carry Max-Forwards (70 is usual); a missing or zero value makes "
        "proxies reject the request with 483 Too Many Hops. Update the sending side."
    ),
    topic=TOPIC,
)
def max_forwards(ctx: CheckContext) -> Iterator[Item]:
    checked = 0
    bad = False
    for _, captured, msg in first_requests(ctx):
        checked += 1
        value = msg.headers.get("Max-Forwards")
        if value is None:
            bad = True
            yield failed(f"{msg.method} without Max-Forwards", captured, subject=msg.call_id)
        elif not value.strip().isdigit() or int(value) <= 0:
            bad = True
            yield failed(f"{msg.method} Max-Forwards is {value!r}", captured)
    if checked and not bad:
        yield passed(f"{checked} requests carry Max-Forwards above zero")


@check(
    "HDR-002",
    title="Content-Length matches the body",
    reference="RFC 3261 §18.3 and §20.14",
    severity=Severity.ERROR,
    remediation=(
        "Content-Length must equal the body's size in bytes (and is mandatory over TCP); a "
        "wrong value truncates the SDP or breaks framing on TCP. Usually a SIP ALG in a "
        "router rewrote the body: disable SIP ALG on the customer's firewall."
    ),
    topic=TOPIC,
)
def content_length(ctx: CheckContext) -> Iterator[Item]:
    checked = 0
    bad = False
    for issue in ctx.issues:
        if "content-length" in issue.reason.lower():
            bad = True
            yield failed(issue.reason, issue)
    for captured in ctx.messages:
        checked += 1
        value = captured.message.headers.get("Content-Length")
        body = len(captured.message.body)
        if value is None:
            if captured.transport != "udp":
                bad = True
                yield failed("no Content-Length", captured, subject=captured.call_id)
        elif not value.strip().isdigit() or int(value) != body:
            bad = True
            yield failed(f"Content-Length {value!r} but the body has {body} bytes", captured)
    if checked and not bad:
        yield passed(f"{checked} messages with a consistent Content-Length")


@check(
    "HDR-003",
    title="Contact present where a dialog or binding is created",
    reference="RFC 3261 §8.1.1.8, §12.1.1 and §10.2.1",
    severity=Severity.ERROR,
    remediation=(
        "INVITE, its 2xx and REGISTER must carry a Contact: it is where the other side sends "
        "BYE and inbound calls. Check origination_uri and the PBX's external address (NAT) "
        "settings."
    ),
    topic=TOPIC,
)
def contact_present(ctx: CheckContext) -> Iterator[Item]:
    need: list[CapturedMessage] = []
    for txn, captured, msg in first_requests(ctx, "INVITE", "REGISTER"):
        need.append(captured)
        if msg.method == "INVITE":
            need.extend(m for m in txn.responses[:] if 200 <= status_of(m) < 300)
    bad = False
    for captured in need:
        response = response_of(captured)
        if response is not None and response.cseq and response.cseq[1] == "REGISTER":
            continue
        if "Contact" not in captured.message.headers:
            bad = True
            yield failed("no Contact header", captured, subject=captured.call_id)
    if need and not bad:
        yield passed(f"{len(need)} messages carry Contact")


@check(
    "HDR-004",
    title="Mandatory headers present",
    reference="RFC 3261 §8.1.1",
    severity=Severity.ERROR,
    remediation=(
        "Every SIP message needs To, From, Call-ID, CSeq and Via; a message without them is "
        "dropped by the other side. Usually a broken SIP ALG or SBC: disable SIP ALG."
    ),
    topic=TOPIC,
)
def mandatory_headers(ctx: CheckContext) -> Iterator[Item]:
    checked = 0
    bad = False
    for captured in ctx.messages:
        checked += 1
        missing = [name for name in _MANDATORY if name not in captured.message.headers]
        if missing:
            bad = True
            yield failed("missing " + ", ".join(missing), captured, subject=captured.call_id)
    if checked and not bad:
        yield passed(f"{checked} messages carry To, From, Call-ID, CSeq and Via")
