"""The customer's mode: probe a real trunk with nothing but the number file.

No containers: the number file is all the probe knows.  Stages run in order and
stop at the first failure (later stages are recorded as ``skip`` saying why):

1. ``dns`` — where the number's requests go (RFC 3263: NAPTR/SRV/A/AAAA, or the IP
   address as written), through :class:`~harness.transport.SipResolver`;
2. ``reachability`` — UDP: an OPTIONS gets any response; TCP/TLS: the connection
   (and the TLS handshake, certificate verified) completes;
3. ``options`` — OPTIONS gets a 2xx (challenges answered when the number has
   credentials);
4. ``register`` — only when the number has credentials: REGISTER succeeds (it is
   removed again at the end);
5. ``call`` — only with ``to``: a test call is answered, carries media, hangs up;
6. ``inbound`` — only with ``inbound``: a call arrives at the origination URI (or the
   registered contact) within ``inbound_timeout`` s and is answered.

The results have the ``results.json`` shape of ``run``: **one record per stage**
(``scenario`` is the stage name, ``profile`` is :data:`PROBE_PROFILE`), so a report
lists each stage with its verdict, what it found (``reason`` and the step detail) and
the agent's events of that stage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from harness.errors import HarnessError
from harness.numbers import NumberConfig, Resolution, effective_view
from harness.report.redact import redact_text
from harness.results import Event, RunResults, ScenarioRecord, Step, Verdict
from harness.scenarios.platform import Platform, StepOutcome
from harness.scenarios.runner import CaptureFactory
from harness.scenarios.seams import (
    attach_findings,
    interface_for,
    live_capture_factory,
    no_capture,
)
from harness.transport import SipResolver, is_ip_literal

PROBE_PROFILE: Final = "trunk"
STAGE_DEADLINE: Final = 40.0


@dataclass(frozen=True)
class ProbeOptions:
    to: str | None = None
    inbound: bool = False
    inbound_timeout: float = 60.0
    call_duration: float = 2.0
    ca_file: Path | None = None
    verify: bool = True
    local_host: str | None = None
    resolver: SipResolver | None = None
    #: When set, each stage after ``dns`` is captured into this folder
    #: (``probe-<stage>.pcap``) and the conformance checks run on it.
    capture_dir: Path | None = None


STAGE_TITLES: Final = {
    "dns": "Where the number's requests go (DNS, RFC 3263)",
    "reachability": "The target is reachable on its transport",
    "options": "The target answers OPTIONS with 2xx",
    "register": "The number registers",
    "call": "A test call is answered and hung up",
    "inbound": "A call for the number reaches the origination URI",
}


async def _dns(platform: Platform, resolver: SipResolver) -> StepOutcome:
    view = platform.view
    target = view.target
    if is_ip_literal(target.host):
        return StepOutcome(
            True,
            f"{target.host} is an IP address: no DNS; {target.transport.value.upper()} "
            f"port {target.port} (from {view.via})",
        )
    await platform.outbound()
    queries = [str(q) for q in resolver.queries]
    dest = platform.destination
    assert dest is not None  # set by outbound()
    how = {
        Resolution.NONE: "",
        Resolution.ADDRESS: "A/AAAA",
        Resolution.SRV: "SRV then A/AAAA",
        Resolution.NAPTR: "NAPTR, SRV then A/AAAA",
    }.get(target.resolution, "")
    return StepOutcome(
        True,
        f"{target.host} resolves to {dest} ({dest.transport.upper()}; {how}): "
        + "; ".join(queries[-6:]),
        data={"queries": queries, "target": str(dest)},
    )


async def run_probe(number: NumberConfig, options: ProbeOptions | None = None) -> RunResults:
    """Run the probe's stages against the number's own target; see the module docstring."""
    opts = options or ProbeOptions()
    results = RunResults(
        command="probe",
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        number=number.to_public_dict(),
        profiles=[PROBE_PROFILE],
    )
    started = time.monotonic()
    resolver = opts.resolver or SipResolver()
    view = effective_view(number)
    secrets = [number.password] if number.password else []
    stages: list[tuple[str, Callable[[], Awaitable[StepOutcome]]]] = []
    platform = Platform(
        number,
        local_host=opts.local_host,
        resolver=resolver,
        ca_file=opts.ca_file,
        verify=opts.verify,
    )
    stages.append(("dns", lambda: _dns(platform, resolver)))
    stages.append(("reachability", platform.reach))
    stages.append(("options", platform.options))
    if view.registers:
        stages.append(("register", platform.register))
    if opts.to is not None:
        to = opts.to
        stages.append(("call", lambda: platform.call(to, duration=opts.call_duration)))
    if opts.inbound:

        async def inbound() -> StepOutcome:
            await platform.start_answer(
                hangup_after=opts.call_duration, timeout=opts.inbound_timeout
            )
            return await platform.wait_answer()

        stages.append(("inbound", inbound))
    loop = asyncio.get_running_loop()
    failed: str | None = None
    try:
        for name, action in stages:
            record = ScenarioRecord(
                scenario=name,
                profile=PROBE_PROFILE,
                verdict=Verdict.SKIP,
                title=STAGE_TITLES[name],
                started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            )
            results.records.append(record)
            if failed is not None:
                record.reason = f"not run: stage {failed} failed"
                continue
            mark = len(platform.events())
            begun = loop.time()
            deadline = opts.inbound_timeout + 10.0 if name == "inbound" else STAGE_DEADLINE
            capture = _capture(platform, opts) if name != "dns" else no_capture
            with capture(f"probe-{name}") as pcap:
                try:
                    outcome = await asyncio.wait_for(action(), deadline)
                except TimeoutError:
                    outcome = StepOutcome(False, f"{name} did not finish within {deadline:g} s")
                except HarnessError as err:
                    outcome = StepOutcome(False, str(err))
            record.duration_s = round(loop.time() - begun, 3)
            record.verdict = Verdict.PASS if outcome.success else Verdict.FAIL
            record.reason = "" if outcome.success else outcome.detail
            record.steps.append(
                Step(
                    name=name,
                    status=record.verdict.value,
                    detail=redact_text(outcome.detail, secrets),
                    duration_s=record.duration_s,
                    data=outcome.data,
                )
            )
            record.events = _stage_events(platform, mark, begun, secrets)
            if pcap is not None:
                record.pcap = str(pcap)
                attach_findings(
                    record, pcap, number, local_addresses=platform.local_addresses() or None
                )
            if not outcome.success:
                failed = name
    finally:
        await platform.close()
    results.duration_s = round(time.monotonic() - started, 3)
    return results


def _capture(platform: Platform, opts: ProbeOptions) -> CaptureFactory:
    """The capture of one stage: every packet to or from the platform's own address
    (the carrier's media servers are not known in advance) and the target's, on the
    interface that holds the platform's address."""
    if opts.capture_dir is None:
        return no_capture
    hosts = list(platform.local_addresses())
    dest = platform.destination
    target = platform.view.target
    if dest is not None:
        hosts.append(dest.host)
    elif target.host_is_ip:
        hosts.append(target.host)
    if not hosts:
        return no_capture  # neither end known (the dns stage failed)
    interface = interface_for(hosts[0])
    return live_capture_factory(opts.capture_dir, hosts, interface=interface)


def _stage_events(platform: Platform, mark: int, origin: float, secrets: list[str]) -> list[Event]:
    events = platform.events()[mark:]
    return [
        Event(
            t=round(e.time - origin, 6),
            kind=e.kind,
            direction=e.direction or "",
            transport=e.transport,
            local=e.local,
            remote=e.remote,
            summary=redact_text(e.summary, secrets),
            text=redact_text(e.raw.decode("utf-8", errors="replace"), secrets)
            if e.kind == "sip"
            else "",
        )
        for e in events
    ]


def probe_exit_code(results: RunResults) -> int:
    """0 every stage passed, 1 a stage failed."""
    return 0 if results.ok else 1
