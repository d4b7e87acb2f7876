"""Running one scenario on one started peer set (or a real trunk): a ScenarioRecord.

What a caller may rely on (:func:`run_scenario`):

* Steps run in order; each is bounded by its ``within`` deadline and, when a
  :class:`PeerWatch` is given, raced against the death of a peer.
* Verdicts: ``pass`` when every step met its expectation; ``fail`` at the first step
  that did not (the record's ``reason`` is that step's one-line detail, and later
  steps are listed as ``skip``); ``error`` when the harness could not run the
  scenario: a peer died (its name in the reason), a set-up problem (bind, TLS files,
  DNS), or a bug (its exception type).  Peer logs are attached to every record that
  did not pass.
* The agent's event stream (every SIP message sent and received, timeouts,
  transport errors) is in ``events``, message texts redacted (no password, no
  digest response).
* Clean-up always runs: the inbound UAS stops, a registration left behind is
  removed, every agent is closed.
* A capture seam (:data:`CaptureFactory`) wraps each scenario; when it yields a pcap
  path, :func:`harness.scenarios.seams.attach_findings` adds the checks' findings.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from harness.agent.events import AgentEvent
from harness.errors import HarnessError
from harness.numbers import NumberConfig
from harness.report.redact import redact_text
from harness.results import Event, ScenarioRecord, Step, Verdict
from harness.scenarios.model import Expectation, Outcome, Scenario, StepKind
from harness.scenarios.model import Step as ScenarioStep
from harness.scenarios.platform import PeerControl, Platform, StepOutcome
from harness.scenarios.seams import attach_findings, no_capture
from harness.sip.timers import TimerConfig

CaptureFactory = Callable[[str], AbstractContextManager[Path | None]]
"""Given a record id (``register[registrar-udp]``), a context manager around the
scenario that yields the pcap it captures to, or None."""


class PeerWatch(Protocol):
    """Knows when a peer of the running set died, and has the peers' logs."""

    def failure(self) -> str | None:
        """A one-line description of a dead peer, or None while all run."""
        ...

    async def wait_failure(self) -> str:
        """Resolves (with the description) when a peer dies."""
        ...

    def logs(self) -> dict[str, str]:
        """The recent log lines of each peer, by peer name."""
        ...


class _PeerDied(Exception):
    pass


def apply_overrides(number: NumberConfig, scenario: Scenario) -> NumberConfig:
    """The number with the scenario's ``number:`` fields (a wrong password...)."""
    if not scenario.number:
        return number
    changes: dict[str, Any] = dict(scenario.number)
    if "password" in changes and number.password is None:
        return number  # nothing to get wrong on a number without credentials
    return dataclasses.replace(number, **changes)


def expectation_met(expect: Expectation, outcome: StepOutcome) -> bool:
    """Whether ``outcome`` is what ``expect`` asks for."""
    if expect.status is not None:
        return expect.matches_status(outcome.status)
    word = expect.outcome
    if word is Outcome.SUCCESS:
        return outcome.success
    if word is Outcome.FAILURE:
        return not outcome.success
    if word is Outcome.ERROR_RESPONSE:
        return (
            outcome.status is not None and outcome.status >= 300 and "timeout" not in outcome.kinds
        )
    wanted = {
        Outcome.CREDENTIALS_REJECTED: "credentials-rejected",
        Outcome.REJECTED: "rejected",
        Outcome.TIMEOUT: "timeout",
        Outcome.COMPLETED: "completed",
        Outcome.CANCELLED: "cancelled",
    }[word]  # type: ignore[index]  # SUCCESS/FAILURE/ERROR_RESPONSE handled above
    return wanted in outcome.kinds


async def _run_action(platform: Platform, step: ScenarioStep) -> StepOutcome:
    args = step.args
    kind = step.kind
    if kind is StepKind.OPTIONS:
        return await platform.options()
    if kind is StepKind.REGISTER:
        return await platform.register(int(args.get("expires", 300)))  # type: ignore[call-overload]
    if kind is StepKind.REFRESH:
        return await platform.refresh()
    if kind is StepKind.UNREGISTER:
        return await platform.unregister(bool(args.get("wildcard", False)))
    if kind is StepKind.CALL:
        return await platform.call(
            str(args["to"]),
            duration=float(args["duration"]),  # type: ignore[arg-type]
            no_answer_timeout=max(1.0, step.within - 2.0),
        )
    if kind is StepKind.CANCEL:
        return await platform.call(
            str(args["to"]),
            duration=0.0,
            cancel_after=float(args["after"]),  # type: ignore[arg-type]
            no_answer_timeout=max(1.0, step.within - 2.0),
        )
    if kind is StepKind.ANSWER:
        reject = args.get("reject")
        return await platform.start_answer(
            hangup_after=float(args["hangup_after"]),  # type: ignore[arg-type]
            ring=float(args["ring"]),  # type: ignore[arg-type]
            reject=int(reject) if reject is not None else None,  # type: ignore[call-overload]
            calls=int(args["calls"]),  # type: ignore[call-overload]
            timeout=60.0,
        )
    if kind is StepKind.WAIT:
        value = args["value"]
        if value == "answer":
            return await platform.wait_answer()
        await asyncio.sleep(float(value))  # type: ignore[arg-type]
        return StepOutcome(True, f"waited {float(value):g} s")  # type: ignore[arg-type]
    if args["value"] == "originate":
        return await platform.originate()
    return await platform.network_call(within=step.within)


async def _bounded(coro: Any, within: float, watch: PeerWatch | None) -> StepOutcome:
    """``coro`` bounded by ``within`` s, raising _PeerDied as soon as a peer dies."""
    task: asyncio.Task[StepOutcome] = asyncio.ensure_future(coro)
    waiters: set[asyncio.Future[Any]] = {task}
    death: asyncio.Task[str] | None = None
    if watch is not None:
        death = asyncio.ensure_future(watch.wait_failure())
        waiters.add(death)
    try:
        done, _ = await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        if death is not None and death in done:
            raise _PeerDied(death.result())
        raise TimeoutError
    finally:
        for pending in (task, death):
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    # The step's own failure after cancellation says nothing new.
                    await pending


def _events(events: list[AgentEvent], origin: float, secrets: list[str]) -> list[Event]:
    result = []
    for event in events:
        text = ""
        if event.kind == "sip" and event.raw:
            text = redact_text(event.raw.decode("utf-8", errors="replace"), secrets)
        result.append(
            Event(
                t=round(event.time - origin, 6),
                kind=event.kind,
                direction=event.direction or "",
                transport=event.transport,
                local=event.local,
                remote=event.remote,
                summary=redact_text(event.summary, secrets),
                text=text,
            )
        )
    return result


async def run_scenario(
    scenario: Scenario,
    number: NumberConfig,
    *,
    profile: str,
    peers: PeerControl | None = None,
    watch: PeerWatch | None = None,
    capture: CaptureFactory = no_capture,
    local_host: str | None = None,
    timers: TimerConfig | None = None,
) -> ScenarioRecord:
    """Run ``scenario`` with ``number`` (already the profile's effective number)."""
    record = ScenarioRecord(
        scenario=scenario.name,
        profile=profile,
        verdict=Verdict.PASS,
        title=scenario.title,
        started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    effective = apply_overrides(number, scenario)
    secrets = [p for p in (number.password, effective.password) if p]
    loop = asyncio.get_running_loop()
    origin = loop.time()
    started = time.monotonic()
    with capture(record.id) as pcap:
        platform = Platform(effective, peers=peers, local_host=local_host, timers=timers)
        try:
            await _run_steps(scenario, platform, record, origin, watch)
        finally:
            try:
                await asyncio.wait_for(platform.close(), 2 * 5.0 + 1.0)
            except (HarnessError, OSError, TimeoutError) as err:
                # The verdict stands; a clean-up problem is recorded, not raised.
                record.steps.append(
                    Step(name="clean-up", status="error", detail=f"clean-up failed: {err}")
                )
            record.events = _events(platform.events(), origin, secrets)
            local_addresses = platform.local_addresses()
    if pcap is not None:
        record.pcap = str(pcap)
        attach_findings(record, pcap, effective, local_addresses=local_addresses or None)
    record.duration_s = round(time.monotonic() - started, 3)
    if record.verdict is not Verdict.PASS and watch is not None:
        record.peer_logs = {name: redact_text(text, secrets) for name, text in watch.logs().items()}
    return record


async def _run_steps(
    scenario: Scenario,
    platform: Platform,
    record: ScenarioRecord,
    origin: float,
    watch: PeerWatch | None,
) -> None:
    loop = asyncio.get_running_loop()
    for index, step in enumerate(scenario.steps):
        name = step.name
        if record.verdict is not Verdict.PASS:
            record.steps.append(Step(name=name, status="skip", detail="not run: an earlier step"))
            continue
        begun = loop.time()
        status, detail, data = "pass", "", {}
        try:
            dead = watch.failure() if watch is not None else None
            if dead is not None:
                raise _PeerDied(dead)
            outcome = await _bounded(_run_action(platform, step), step.within, watch)
        except _PeerDied as died:
            status, detail = "error", f"peer died during step {index + 1} ({name}): {died}"
            record.verdict, record.reason = Verdict.ERROR, detail
        except TimeoutError:
            dead = watch.failure() if watch is not None else None
            if dead is not None:
                status, detail = "error", f"peer died during step {index + 1} ({name}): {dead}"
                record.verdict = Verdict.ERROR
            else:
                status = "fail"
                detail = f"step {index + 1} ({name}) did not finish within {step.within:g} s"
                record.verdict = Verdict.FAIL
            record.reason = detail
        except HarnessError as err:
            status, detail = "error", f"step {index + 1} ({name}): {err}"
            record.verdict, record.reason = Verdict.ERROR, detail
        except (OSError, ValueError, AssertionError) as err:
            # A local failure the agent did not wrap (a socket error...): the run goes
            # on with the next scenario; the type names it for a bug report.
            status = "error"
            detail = f"step {index + 1} ({name}): {type(err).__name__}: {err}"
            record.verdict, record.reason = Verdict.ERROR, detail
        else:
            detail, data = outcome.detail, outcome.data
            if outcome.skipped:
                status = "skip"
            elif not expectation_met(step.expect, outcome):
                status = "fail"
                dead = watch.failure() if watch is not None else None
                if dead is not None:
                    status = "error"
                    record.verdict = Verdict.ERROR
                    record.reason = f"peer died during step {index + 1} ({name}): {dead}"
                else:
                    record.verdict = Verdict.FAIL
                    record.reason = f"step {index + 1} ({name}) expected {step.expect}: {detail}"
        record.steps.append(
            Step(
                name=name,
                status=status,
                detail=detail,
                started_s=round(begun - origin, 6),
                duration_s=round(loop.time() - begun, 6),
                data={"expect": str(step.expect), **data} if data else {"expect": str(step.expect)},
            )
        )
