"""Security checks: toll-fraud exposure and credentials going to the wrong place."""

from __future__ import annotations

from collections.abc import Iterator

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
    CHALLENGE_HEADERS,
    first_requests,
    has_credentials,
    header_uri,
    is_ip,
    request_uri,
    same_ip,
    status_of,
)
from harness.sip.uri import SipUri

TOPIC = "security"


@check(
    "SEC-001",
    title="Carrier does not accept unauthenticated calls it would challenge",
    reference="RFC 3261 §22.1 and §26.3.2.2",
    severity=Severity.ERROR,
    remediation=(
        "The carrier challenges REGISTER but put through an INVITE that carried no "
        "credentials: anyone who can reach it can place calls billed to this account (toll "
        "fraud). Ask the carrier to require digest authentication or an IP allow-list for "
        "INVITE on this trunk."
    ),
    topic=TOPIC,
)
def unauthenticated_invite(ctx: CheckContext) -> Iterator[Item]:
    challengers: set[str] = set()
    for txn, _, _ in first_requests(ctx, "REGISTER"):
        if any(status_of(m) in CHALLENGE_HEADERS for m in txn.responses) and txn.server:
            challengers.add(txn.server.rsplit(":", 1)[0].strip("[]"))
    if not challengers:
        yield not_applicable("no server challenged a REGISTER in this capture")
        return
    # Calls between the carrier's own elements are not the platform's to judge: with
    # the platform's addresses known, only the INVITEs it sent count.
    mine = True if ctx.locality.known else None
    for txn, captured, msg in first_requests(ctx, "INVITE", initial=True, outbound=mine):
        if captured.dst.ip not in challengers or has_credentials(msg):
            continue
        statuses = [status_of(m) for m in txn.responses]
        accepted = [m for m in txn.responses if 180 <= status_of(m) < 300]
        if any(s in CHALLENGE_HEADERS or s == 403 for s in statuses):
            yield passed("unauthenticated INVITE challenged or refused", captured)
        elif accepted:
            yield failed(
                f"INVITE without credentials answered {status_of(accepted[0])} by a "
                "server that challenges REGISTER",
                captured,
                accepted[0],
                subject=msg.call_id,
            )


@check(
    "SEC-002",
    title="Credentials sent only to the configured registrar or proxy",
    reference="RFC 3261 §22.1; number-file: sip_domain, outbound_proxy",
    severity=Severity.ERROR,
    remediation=(
        "Digest credentials were sent to an address that is neither sip_domain nor "
        "outbound_proxy: check both fields, and whether a redirect or DNS points the "
        "platform somewhere unexpected before go-live."
    ),
    topic=TOPIC,
    needs_number=True,
)
def credentials_destination(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    assert ctx.effective is not None
    hosts = {ctx.number.sip_domain.host, ctx.effective.target.host}
    if ctx.number.outbound_proxy is not None:
        hosts.add(ctx.number.outbound_proxy.host)
    addresses = {h for h in hosts if is_ip(h)}
    if not addresses:
        yield not_applicable("sip_domain and outbound_proxy are names: addresses unknown")
        return
    for _, captured, msg in first_requests(ctx, outbound=True):
        if not has_credentials(msg):
            continue
        if any(same_ip(captured.dst.ip, a) for a in addresses):
            yield passed(f"credentials sent to {captured.dst}", captured)
        else:
            yield failed(
                f"credentials sent to {captured.dst.ip}, not to {', '.join(sorted(addresses))}",
                captured,
                subject=msg.call_id,
            )


@check(
    "SEC-003",
    title="No password inside SIP URIs",
    reference="RFC 3261 §19.1.1",
    severity=Severity.ERROR,
    remediation=(
        "A SIP URI carries a password in clear text (user:password@host): remove it from "
        "the PBX's trunk settings and sip_domain/outbound_proxy, and change the password."
    ),
    topic=TOPIC,
)
def uri_password(ctx: CheckContext) -> Iterator[Item]:
    checked = 0
    bad = False
    for _, captured, msg in first_requests(ctx, initial=None):
        checked += 1
        uris = [request_uri(msg), header_uri(msg, "From"), header_uri(msg, "To")]
        uris.append(header_uri(msg, "Contact"))
        if any(isinstance(u, SipUri) and u.password is not None for u in uris):
            bad = True
            yield failed(f"{msg.method} carries a password in a URI", captured)
    if checked and not bad:
        yield passed(f"{checked} requests without URI passwords")
