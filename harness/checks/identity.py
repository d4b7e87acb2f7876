"""Identity checks: the number and the domain where the number file says they belong."""

from __future__ import annotations

from collections.abc import Iterator

from harness.checks.registry import CheckContext, Item, Severity, check, failed, passed
from harness.checks.sipview import (
    first_requests,
    header_uri,
    name_addr,
    request_uri,
    uri_host,
    uri_user,
)

TOPIC = "identity"


def _digits(number: str | None) -> str:
    return "".join(ch for ch in number or "" if ch.isdigit())


@check(
    "ID-001",
    title="Outbound calls present the number in From",
    reference="RFC 3261 §8.1.1.3; number-file: phone_number",
    severity=Severity.ERROR,
    remediation=(
        "Set phone_number to the exact number the carrier assigned to this trunk, in E.164 "
        "with the leading + (e.g. +15550100001); it is sent as the user part of From on "
        "every outbound call and carriers reject or re-brand calls whose From they do not own."
    ),
    topic=TOPIC,
    needs_number=True,
)
def from_user_is_number(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    expected = ctx.number.phone_number
    for _, captured, msg in first_requests(ctx, "INVITE", initial=True, outbound=True):
        user = uri_user(header_uri(msg, "From"))
        if user == expected:
            yield passed(f"From user is {expected}", captured, subject=msg.call_id)
        else:
            yield failed(
                f"From user is {user!r}, the number file's phone_number is {expected}",
                captured,
                subject=msg.call_id,
            )


@check(
    "ID-002",
    title="P-Asserted-Identity carries the number",
    reference="RFC 3325 §9.1; number-file: phone_number",
    severity=Severity.WARNING,
    remediation=(
        "Make P-Asserted-Identity carry phone_number (the same E.164 number as From), or ask "
        "the carrier which identity it expects there; a mismatching asserted identity makes "
        "carriers show the wrong caller ID or reject the call."
    ),
    topic=TOPIC,
    needs_number=True,
)
def pai_is_number(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    expected = ctx.number.phone_number
    for _, captured, msg in first_requests(ctx, "INVITE", initial=True, outbound=True):
        values = msg.headers.get_all("P-Asserted-Identity")
        if not values:
            continue
        parsed = (name_addr(value) for value in values)
        users = [uri_user(item.uri) if item is not None else None for item in parsed]
        if expected in users:
            yield passed(f"P-Asserted-Identity names {expected}", captured, subject=msg.call_id)
        else:
            yield failed(
                f"P-Asserted-Identity names {users[0]!r}, phone_number is {expected}",
                captured,
                subject=msg.call_id,
            )


@check(
    "ID-003",
    title="Request-URI of INVITE and REGISTER names the SIP domain",
    reference="RFC 3261 §10.2 and §8.1.1.1; number-file: sip_domain",
    severity=Severity.ERROR,
    remediation=(
        "Set sip_domain to the domain (or address) the carrier expects in the Request-URI; "
        "when the carrier gave a separate proxy address put that in outbound_proxy, not in "
        "sip_domain."
    ),
    topic=TOPIC,
    needs_number=True,
)
def request_uri_domain(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    expected = ctx.number.sip_domain.host.lower()
    for _, captured, msg in first_requests(ctx, "INVITE", "REGISTER", initial=True, outbound=True):
        host = uri_host(request_uri(msg))
        if host == expected:
            yield passed(f"{msg.method} Request-URI host is {expected}", captured)
        else:
            yield failed(
                f"{msg.method} Request-URI {msg.uri} does not name sip_domain {expected}",
                captured,
                subject=msg.call_id,
            )


@check(
    "ID-004",
    title="REGISTER To is the address of record",
    reference="RFC 3261 §10.2; number-file: username, sip_domain",
    severity=Severity.ERROR,
    remediation=(
        "Set username to the user the carrier registers (the extension or account name) and "
        "sip_domain to its domain: REGISTER's To must be sip:username@sip_domain, the "
        "address of record the carrier delivers calls to."
    ),
    topic=TOPIC,
    needs_number=True,
)
def register_to_is_aor(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    number = ctx.number
    user = number.username if number.username is not None else number.phone_number
    host = number.sip_domain.host.lower()
    for _, captured, msg in first_requests(ctx, "REGISTER", outbound=True):
        to = header_uri(msg, "To")
        seen_user, seen_host = uri_user(to), uri_host(to)
        if seen_user == user and seen_host == host:
            yield passed(f"To is sip:{user}@{host}", captured, subject=msg.call_id)
        else:
            yield failed(
                f"REGISTER To is {to} but the address of record is sip:{user}@{host}",
                captured,
                subject=msg.call_id,
            )


@check(
    "ID-005",
    title="From of outbound requests names the SIP domain",
    reference="RFC 3261 §8.1.1.3; number-file: sip_domain",
    severity=Severity.WARNING,
    remediation=(
        "Set sip_domain to the carrier's domain: it is the host of From on calls and "
        "registrations, and carriers that match the caller by From domain reject others."
    ),
    topic=TOPIC,
    needs_number=True,
)
def from_host_domain(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    expected = ctx.number.sip_domain.host.lower()
    for _, captured, msg in first_requests(ctx, "INVITE", "REGISTER", initial=True, outbound=True):
        frm = header_uri(msg, "From")
        if uri_host(frm) == expected:
            yield passed(f"From host is {expected}", captured, subject=msg.call_id)
        else:
            yield failed(
                f"{msg.method} From {frm} does not name sip_domain {expected}",
                captured,
                subject=msg.call_id,
            )


@check(
    "ID-006",
    title="Inbound calls are delivered for the number",
    reference="RFC 3261 §8.2.2.1; number-file: phone_number",
    severity=Severity.WARNING,
    remediation=(
        "Ask the carrier to deliver calls for phone_number to the origination_uri with the "
        "number in the Request-URI (or To) user part; calls for another number are not "
        "routed to this agent."
    ),
    topic=TOPIC,
    needs_number=True,
)
def inbound_for_number(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    expected = ctx.number.phone_number
    for _, captured, msg in first_requests(ctx, "INVITE", initial=True, outbound=False):
        users = (uri_user(request_uri(msg)), uri_user(header_uri(msg, "To")))
        if any(_digits(u) == _digits(expected) for u in users if u):
            yield passed(f"inbound call for {expected}", captured, subject=msg.call_id)
        else:
            yield failed(
                f"inbound INVITE {msg.uri} is for {users[0]!r}, not phone_number {expected}",
                captured,
                subject=msg.call_id,
            )
