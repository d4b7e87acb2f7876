"""The outbound-proxy rule: where out-of-dialog requests go and what they carry.

With ``outbound_proxy`` set, every outbound request (REGISTER included) goes to the
proxy's address, port and transport, carries a pre-loaded ``Route: <proxy;lr>``
first, and its Request-URI still names ``sip_domain``. Without it the domain is the
destination. Only out-of-dialog requests are checked: in-dialog requests follow
the dialog's route set (INV-007).
"""

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
    first_requests,
    name_addr,
    request_uri,
    same_ip,
    target_text,
    uri_host,
)
from harness.numbers.model import Transport
from harness.sip.uri import SipUri

TOPIC = "routing"
_OUT_OF_DIALOG = ("INVITE", "REGISTER", "OPTIONS", "MESSAGE", "SUBSCRIBE")


@check(
    "ROUTE-001",
    title="Outbound requests go to the configured proxy or domain",
    reference="number-file: outbound_proxy; RFC 3263 §4",
    severity=Severity.ERROR,
    remediation=(
        "Set outbound_proxy to the address and port the carrier gave for signalling (for "
        "example sip:proxy.carrier.example:5065); without it every request goes to "
        "sip_domain, registrations included."
    ),
    topic=TOPIC,
    needs_number=True,
)
def destination_is_target(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.effective is not None
    target = ctx.effective.target
    field = ctx.effective.via
    if not target.host_is_ip and not target.port_explicit:
        yield not_applicable(
            f"{field} {target.host} has no port: DNS chooses the address, not checked"
        )
        return
    for _, captured, msg in first_requests(ctx, *_OUT_OF_DIALOG, initial=True, outbound=True):
        dst = captured.dst
        ip_ok = same_ip(dst.ip, target.host) if target.host_is_ip else True
        if ip_ok and dst.port == target.port:
            yield passed(f"{msg.method} sent to {dst} ({field})", captured)
        else:
            yield failed(
                f"{msg.method} sent to {dst}, {field} says {target_text(target)}",
                captured,
                subject=msg.call_id,
            )


@check(
    "ROUTE-002",
    title="Outbound requests use the configured transport",
    reference="number-file: outbound_proxy transport; RFC 3263 §4.1",
    severity=Severity.ERROR,
    remediation=(
        "Add ;transport=tcp (or udp) to outbound_proxy to match what the carrier listens "
        "on, or change the carrier's listener; a proxy that only accepts TCP never sees "
        "requests sent over UDP."
    ),
    topic=TOPIC,
    needs_number=True,
)
def transport_is_target(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.effective is not None
    target = ctx.effective.target
    if target.transport is Transport.TLS:
        yield not_applicable("the target uses TLS: see TLS-001")
        return
    if not (target.transport_explicit or target.host_is_ip):
        yield not_applicable(f"no transport configured for {target.host}: DNS may choose it")
        return
    expected = target.transport.value
    for _, captured, msg in first_requests(ctx, *_OUT_OF_DIALOG, initial=True, outbound=True):
        if captured.transport == expected:
            yield passed(f"{msg.method} sent over {expected}", captured)
        else:
            yield failed(
                f"{msg.method} sent over {captured.transport}, "
                f"{ctx.effective.via} says {target.transport.via_name}",
                captured,
                subject=msg.call_id,
            )


def _same_hop(route: SipUri, proxy: SipUri) -> bool:
    if not same_ip(route.host, proxy.host):
        return False
    default = 5061 if proxy.scheme == "sips" else 5060
    return (route.port or default) == (proxy.port or default)


@check(
    "ROUTE-003",
    title="Route header pre-loaded with the outbound proxy (loose routing)",
    reference="RFC 3261 §8.1.2 and §16.12.1.1; number-file: outbound_proxy",
    severity=Severity.ERROR,
    remediation=(
        "Keep outbound_proxy in the number file as the carrier gave it; the platform must "
        "send Route: <outbound_proxy;lr> first on every out-of-dialog request, otherwise a "
        "proxy that expects loose routing forwards the request to the wrong place."
    ),
    topic=TOPIC,
    needs_number=True,
)
def route_preloaded(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    proxy = ctx.number.outbound_proxy
    if proxy is None:
        yield not_applicable("no outbound_proxy configured")
        return
    for _, captured, msg in first_requests(ctx, *_OUT_OF_DIALOG, initial=True, outbound=True):
        routes = msg.headers.get_all("Route")
        if not routes:
            yield failed(f"{msg.method} has no Route header", captured, subject=msg.call_id)
            continue
        first = name_addr(routes[0])
        uri = first.uri if first is not None else None
        if not isinstance(uri, SipUri) or not _same_hop(uri, proxy):
            yield failed(
                f"first Route is {routes[0]}, not the outbound proxy {proxy}",
                captured,
                subject=msg.call_id,
            )
        elif not uri.has_param("lr"):
            yield failed(
                f"first Route {routes[0]} lacks ;lr (strict routing)",
                captured,
                subject=msg.call_id,
            )
        else:
            yield passed(f"first Route is {routes[0]}", captured, subject=msg.call_id)


@check(
    "ROUTE-004",
    title="Request-URI keeps the domain when an outbound proxy is used",
    reference="RFC 3261 §8.1.2; number-file: outbound_proxy, sip_domain",
    severity=Severity.ERROR,
    remediation=(
        "Put the carrier's domain in sip_domain and only the proxy address in "
        "outbound_proxy: the Request-URI must name the domain, the proxy is reached "
        "through the Route header."
    ),
    topic=TOPIC,
    needs_number=True,
)
def request_uri_not_proxy(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.number is not None
    proxy = ctx.number.outbound_proxy
    domain = ctx.number.sip_domain.host.lower()
    if proxy is None:
        yield not_applicable("no outbound_proxy configured")
        return
    if same_ip(proxy.host, domain):
        yield not_applicable("outbound_proxy and sip_domain name the same host")
        return
    for _, captured, msg in first_requests(ctx, *_OUT_OF_DIALOG, initial=True, outbound=True):
        host = uri_host(request_uri(msg))
        if host is not None and same_ip(host, proxy.host):
            yield failed(
                f"{msg.method} Request-URI {msg.uri} names the proxy, not {domain}",
                captured,
                subject=msg.call_id,
            )
        else:
            yield passed(f"{msg.method} Request-URI {msg.uri} keeps the domain", captured)
