"""Transport checks: datagram size, Via transport, TLS when the number asks for it."""

from __future__ import annotations

from collections.abc import Iterator

from harness.capture.decode import CapturedMessage
from harness.checks.registry import (
    CheckContext,
    Item,
    Severity,
    check,
    failed,
    not_applicable,
    passed,
)
from harness.checks.sipview import request_of, same_ip, top_via
from harness.numbers.effective import Target
from harness.numbers.model import Transport

TOPIC = "transport"


@check(
    "TRN-001",
    title="Messages over UDP fit in 1300 bytes",
    reference="RFC 3261 §18.1.1",
    severity=Severity.WARNING,
    remediation=(
        "A request larger than 1300 bytes must go over TCP; over UDP it is fragmented and "
        "often dropped by firewalls. Add ;transport=tcp to outbound_proxy (if the carrier "
        "supports TCP) or trim headers and codecs from the SDP."
    ),
    topic=TOPIC,
)
def udp_size(ctx: CheckContext) -> Iterator[Item]:
    limit = ctx.settings.udp_size_limit
    checked = 0
    bad = False
    for captured in ctx.messages:
        if captured.transport != "udp":
            continue
        checked += 1
        if captured.size > limit:
            bad = True
            yield failed(
                f"{captured.size} bytes over UDP (limit {limit})",
                captured,
                subject=captured.call_id,
            )
    if checked and not bad:
        yield passed(f"{checked} UDP messages within {limit} bytes")


@check(
    "TRN-002",
    title="Via names the transport the request travelled on",
    reference="RFC 3261 §18.1.1 and §20.42",
    severity=Severity.ERROR,
    remediation=(
        "The top Via names another transport than the one used, so responses are sent back "
        "the wrong way: align the PBX's transport setting with outbound_proxy's "
        ";transport= and check for a SIP ALG rewriting Via."
    ),
    topic=TOPIC,
)
def via_transport(ctx: CheckContext) -> Iterator[Item]:
    checked = 0
    bad = False
    for captured in ctx.messages:
        msg = request_of(captured)
        if msg is None:
            continue
        via = top_via(msg)
        if via is None:
            continue
        checked += 1
        if via.transport.lower() != captured.transport:
            bad = True
            yield failed(
                f"{msg.method} Via says {via.transport}, sent over {captured.transport.upper()}",
                captured,
                subject=msg.call_id,
            )
    if checked and not bad:
        yield passed(f"{checked} requests with a matching Via transport")


def _to_target(captured: CapturedMessage, target: Target) -> bool:
    if target.host_is_ip:
        return same_ip(captured.dst.ip, target.host)
    return captured.dst.port in (target.port, 5060, 5061)


@check(
    "TLS-001",
    title="TLS used when the number asks for it",
    reference="RFC 3261 §26.2; number-file: outbound_proxy (sips:, transport=tls)",
    severity=Severity.ERROR,
    remediation=(
        "The number file asks for TLS (sips: or ;transport=tls) but SIP went in clear text: "
        "the carrier will refuse it and credentials are exposed. Enable TLS on the PBX/trunk "
        "or, if the carrier really uses plain SIP, remove sips:/transport=tls from "
        "outbound_proxy and origination_uri."
    ),
    topic="tls",
    needs_number=True,
)
def tls_when_configured(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.effective is not None
    target = ctx.effective.target
    origination = ctx.effective.origination
    wants_out = target.transport is Transport.TLS
    wants_in = origination is not None and origination.transport is Transport.TLS
    if not wants_out and not wants_in:
        yield not_applicable("the number does not ask for TLS")
        return
    clear: list[CapturedMessage] = []
    for captured in ctx.messages:
        if (wants_out and ctx.outbound(captured) and _to_target(captured, target)) or (
            wants_in
            and origination is not None
            and ctx.inbound(captured)
            and captured.dst.port == origination.port
        ):
            clear.append(captured)
    if clear:
        yield failed(
            f"{len(clear)} SIP message(s) in clear text where TLS is configured", *clear[:3]
        )
    elif ctx.tls_streams:
        yield passed(
            f"{len(ctx.tls_streams)} TLS connection(s), no clear SIP", *ctx.tls_streams[:1]
        )
    else:
        yield not_applicable("neither TLS nor clear SIP to the configured peers in the capture")
