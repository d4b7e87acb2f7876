"""Registration checks: accepted, 423 handled, refreshed in time, on one Call-ID."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

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
from harness.checks.sipview import (
    capture_end,
    first_requests,
    header_uri,
    name_addr,
    response_of,
    status_of,
    unreachable_evidence,
    unreachable_for,
)
from harness.sip.message import Request, Response

TOPIC = "registration"
TIMER_F = 32.0  # RFC 3261 §17.1.2.2: 64*T1, when a non-INVITE client gives up


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None


def requested_expiry(msg: Request) -> int | None:
    """Expiry a REGISTER asks for: the first Contact's expires, else Expires; None if absent."""
    for value in msg.headers.get_all("Contact"):
        parsed = name_addr(value)
        if parsed is not None and _int(parsed.param("expires")) is not None:
            return _int(parsed.param("expires"))
    return _int(msg.headers.get("Expires"))


def granted_expiry(msg: Response) -> int | None:
    """Expiry a 2xx grants: the smallest Contact expires, else Expires; None if absent."""
    found = []
    for value in msg.headers.get_all("Contact"):
        parsed = name_addr(value)
        expires = _int(parsed.param("expires")) if parsed is not None else None
        if expires is not None:
            found.append(expires)
    if found:
        return min(found)
    return _int(msg.headers.get("Expires"))


@dataclass(frozen=True)
class _Register:
    request: CapturedMessage
    message: Request
    final: CapturedMessage | None
    aor: str


def _registers(ctx: CheckContext) -> tuple[_Register, ...]:
    """Every REGISTER transaction, in capture order; computed once per context."""
    found = ctx.memo.get("registers")
    if found is None:
        registers: list[_Register] = []
        for txn, captured, msg in first_requests(ctx, "REGISTER"):
            to = header_uri(msg, "To")
            registers.append(_Register(captured, msg, txn.final, str(to) if to else msg.uri))
        found = ctx.memo["registers"] = tuple(registers)
    return cast(tuple[_Register, ...], found)


@check(
    "REG-001",
    title="Registration accepted",
    reference="RFC 3261 §10.3",
    severity=Severity.ERROR,
    remediation=(
        "The registrar refused the registration: check username, password and sip_domain "
        "against the carrier's account page; the response code in the evidence says why "
        "(403 forbidden account, 404 unknown user, 503 registrar down)."
    ),
    topic=TOPIC,
)
def registration_accepted(ctx: CheckContext) -> Iterator[Item]:
    end = capture_end(ctx)
    for reg in _registers(ctx):
        icmp = unreachable_for(ctx, reg.request) if reg.final is None else None
        if icmp is not None:
            yield failed(
                f"REGISTER never reached the registrar: ICMP {icmp.reason} "
                f"from {icmp.reporter} for {icmp.dst} (UDP)",
                reg.request,
                unreachable_evidence(icmp),
                subject=reg.aor,
            )
            continue
        if reg.final is None:
            if end - reg.request.timestamp >= TIMER_F:
                yield failed("REGISTER never answered", reg.request, subject=reg.aor)
            continue
        status = status_of(reg.final)
        if status in (401, 407, 423):
            continue  # an intermediate step; AUTH-* and REG-002 judge what follows
        if 200 <= status < 300:
            yield passed(f"REGISTER accepted ({status})", reg.request, reg.final, subject=reg.aor)
        else:
            response = response_of(reg.final)
            reason = response.reason if response is not None else ""
            yield failed(
                f"REGISTER refused: {status} {reason}".rstrip(),
                reg.request,
                reg.final,
                subject=reg.aor,
            )


@check(
    "REG-002",
    title="423 Interval Too Brief honoured",
    reference="RFC 3261 §10.2.8 and §10.3",
    severity=Severity.ERROR,
    remediation=(
        "The registrar demands a longer registration: the next REGISTER must ask for at "
        "least Min-Expires seconds; raise the registration interval to the carrier's "
        "minimum (commonly 60-3600 s)."
    ),
    topic=TOPIC,
)
def interval_too_brief(ctx: CheckContext) -> Iterator[Item]:
    registers = _registers(ctx)
    for position, reg in enumerate(registers):
        response = response_of(reg.final)
        if reg.final is None or response is None or response.status != 423:
            continue
        minimum = _int(response.headers.get("Min-Expires"))
        later = [
            r
            for r in registers[position + 1 :]
            if r.aor == reg.aor and r.request.src == reg.request.src
        ]
        if not later:
            yield failed("REGISTER not retried after 423", reg.request, reg.final, subject=reg.aor)
            continue
        retry = later[0]
        asked = requested_expiry(retry.message)
        if minimum is None:
            yield failed("423 without Min-Expires (the registrar's fault)", reg.final)
        elif asked is not None and asked >= minimum:
            yield passed(f"retry asks {asked} s >= Min-Expires {minimum}", reg.final, retry.request)
        else:
            yield failed(
                f"retry asks {asked if asked is not None else 'no'} expiry, "
                f"Min-Expires is {minimum}",
                reg.final,
                retry.request,
                subject=reg.aor,
            )


@check(
    "REG-003",
    title="Registration refreshed before it expires",
    reference="RFC 3261 §10.2.4",
    severity=Severity.ERROR,
    remediation=(
        "Refresh the registration before the expiry the registrar granted (in the 200 OK "
        "Contact expires); a lapsed registration makes inbound calls fail until the next "
        "REGISTER. Lower the refresh interval or check that the client is still running."
    ),
    topic=TOPIC,
)
def refreshed_in_time(ctx: CheckContext) -> Iterator[Item]:
    end = capture_end(ctx)
    margin = ctx.settings.refresh_margin
    registers = _registers(ctx)
    for position, reg in enumerate(registers):
        response = response_of(reg.final)
        if reg.final is None or response is None or not 200 <= response.status < 300:
            continue
        granted = granted_expiry(response)
        if granted is None or granted == 0 or requested_expiry(reg.message) == 0:
            continue  # an un-registration, or no expiry to keep
        deadline = reg.final.timestamp + granted
        later = [
            r
            for r in registers[position + 1 :]
            if r.aor == reg.aor and r.request.src.ip == reg.request.src.ip
        ]
        if later and later[0].request.timestamp <= deadline + margin:
            yield passed(
                f"refreshed {later[0].request.timestamp - reg.final.timestamp:.0f} s after a "
                f"{granted} s grant",
                reg.final,
                later[0].request,
                subject=reg.aor,
            )
        elif end > deadline + margin:
            yield failed(
                f"granted {granted} s, no refresh before expiry "
                f"(capture goes on {end - deadline:.0f} s after it)",
                reg.final,
                *(r.request for r in later[:1]),
                subject=reg.aor,
            )
        else:
            yield not_applicable(
                f"capture ends {end - reg.final.timestamp:.0f} s after a {granted} s grant",
                reg.final,
                subject=reg.aor,
            )


@check(
    "REG-004",
    title="Refreshes keep the Call-ID and increase CSeq",
    reference="RFC 3261 §10.2.4 and §8.1.1.5",
    severity=Severity.WARNING,
    remediation=(
        "Reuse the Call-ID of the first REGISTER for every refresh and increase CSeq by one; "
        "registrars such as Kamailio treat a new Call-ID as a new binding and may reject an "
        "old CSeq as a replay."
    ),
    topic=TOPIC,
)
def refresh_identity(ctx: CheckContext) -> Iterator[Item]:
    chains: dict[tuple[str, str], list[_Register]] = {}
    for reg in _registers(ctx):
        chains.setdefault((reg.aor, reg.request.src.ip), []).append(reg)
    for (aor, _), chain in chains.items():
        if len(chain) < 2:
            continue
        ok = True
        for before, after in itertools.pairwise(chain):
            if after.message.call_id != before.message.call_id:
                ok = False
                yield failed(
                    "a refresh uses a new Call-ID", before.request, after.request, subject=aor
                )
                continue
            first, second = before.message.cseq, after.message.cseq
            if first is None or second is None or second[0] <= first[0]:
                ok = False
                yield failed(
                    f"CSeq does not increase ({first} then {second})",
                    before.request,
                    after.request,
                    subject=aor,
                )
        if ok:
            yield passed(
                f"{len(chain)} REGISTERs on one Call-ID, CSeq increasing",
                chain[0].request,
                chain[-1].request,
                subject=aor,
            )


@check(
    "REG-005",
    title="Only numbers with credentials register",
    reference="number-file: username, password",
    severity=Severity.WARNING,
    remediation=(
        "An IP-authenticated trunk must not register: remove username/password from the "
        "number file, or add them if the carrier expects registration."
    ),
    topic=TOPIC,
    needs_number=True,
)
def registers_when_configured(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.effective is not None
    sent = [captured for _, captured, _ in first_requests(ctx, "REGISTER", outbound=True)]
    if ctx.effective.registers:
        if sent:
            yield passed("the number has credentials and registers", sent[0])
        else:
            yield not_applicable("no REGISTER in the capture")
    elif sent:
        yield failed("REGISTER sent for a number without credentials", *sent[:3])
    else:
        yield passed("no REGISTER for an IP-authenticated number")


@check(
    "REG-006",
    title="Registrar states the granted expiry",
    reference="RFC 3261 §10.3 step 8",
    severity=Severity.INFO,
    remediation=(
        "The registrar's 200 OK should list the binding with its expires; ask the carrier "
        "to enable it, or registrations will be refreshed on the client's own interval."
    ),
    topic=TOPIC,
)
def expiry_stated(ctx: CheckContext) -> Iterator[Item]:
    for reg in _registers(ctx):
        response = response_of(reg.final)
        if reg.final is None or response is None or not 200 <= response.status < 300:
            continue
        if requested_expiry(reg.message) == 0:
            continue
        if granted_expiry(response) is None:
            yield failed("200 OK to REGISTER names no expiry", reg.final, subject=reg.aor)
        else:
            yield passed(f"granted {granted_expiry(response)} s", reg.final, subject=reg.aor)
