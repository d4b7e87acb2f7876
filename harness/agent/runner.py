"""Run one agent operation from a number file: what the CLI commands call.

Each ``run_*`` function loads nothing itself: it takes the validated number, opens
an agent (the address and transport come from the number's effective view), runs
the operation, closes the agent and returns an :class:`Outcome` holding the result
and the agent's event stream.  Setup problems raise HarnessError subclasses with a
one-line message (bad bind address, TLS files, DNS).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.agent.call import DEFAULT_NO_ANSWER_TIMEOUT, place_call
from harness.agent.common import open_outbound_agent
from harness.agent.core import UserAgent
from harness.agent.events import AgentEvent
from harness.agent.options import options_ping
from harness.agent.register import DEFAULT_EXPIRES, register_number
from harness.agent.results import (
    AnswerResult,
    CallResult,
    OptionsResult,
    RegisterResult,
)
from harness.agent.uas import answer_calls, open_inbound_agent
from harness.errors import InputError
from harness.numbers import NumberConfig, effective_view
from harness.sip.errors import LocalProtocolError
from harness.sip.timers import TimerConfig

Result = OptionsResult | RegisterResult | CallResult | AnswerResult


@dataclass(frozen=True)
class AgentSettings:
    """What every command shares: local address, T1, TLS trust."""

    local_ip: str | None = None
    local_port: int = 0
    t1: float | None = None
    ca_file: Path | None = None
    verify: bool = True
    seed: int | None = None

    def timers(self) -> TimerConfig:
        """T1 as asked (T2 raised to T1 when needed); RFC 3261 defaults otherwise."""
        if self.t1 is None:
            return TimerConfig()
        try:
            return TimerConfig(t1=self.t1, t2=max(4.0, self.t1))
        except LocalProtocolError as exc:
            raise InputError(f"--t1: {exc}") from exc

    def rng(self) -> random.Random:
        return random.Random(self.seed) if self.seed is not None else random.Random()


@dataclass
class Outcome:
    """A result and every event the agent recorded while producing it."""

    result: Result
    events: list[AgentEvent] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.result.success

    def to_dict(self) -> dict[str, Any]:
        data = self.result.to_dict()
        origin = self.events[0].time if self.events else None
        data["events"] = [e.to_dict(origin=origin) for e in self.events]
        return data


async def _outbound(config: NumberConfig, settings: AgentSettings) -> tuple[UserAgent, Any]:
    view = effective_view(config)
    agent, outbound = await open_outbound_agent(
        config,
        view,
        local_host=settings.local_ip,
        local_port=settings.local_port,
        timers=settings.timers(),
        rng=settings.rng(),
        verify=settings.verify,
        ca_file=settings.ca_file,
    )
    return agent, outbound


async def run_options(config: NumberConfig, settings: AgentSettings) -> Outcome:
    """OPTIONS ping to the number's target."""
    agent, outbound = await _outbound(config, settings)
    async with agent:
        result = await options_ping(agent, config, effective_view(config), outbound)
    return Outcome(result, list(agent.events))


async def run_register(
    config: NumberConfig,
    settings: AgentSettings,
    *,
    expires: int = DEFAULT_EXPIRES,
    hold: float = 0.0,
    unregister: bool = False,
) -> Outcome:
    """REGISTER (and optionally hold with refreshes, then un-register)."""
    view = effective_view(config)
    if not view.registers:
        raise InputError(
            "username/password: the number has no credentials, so it does not register "
            "(an IP-authenticated trunk)"
        )
    agent, outbound = await _outbound(config, settings)
    async with agent:
        result = await register_number(
            agent, config, view, outbound, expires=expires, hold=hold, unregister=unregister
        )
    return Outcome(result, list(agent.events))


async def run_call(
    config: NumberConfig,
    settings: AgentSettings,
    *,
    to: str,
    duration: float = 5.0,
    cancel_after: float | None = None,
    no_answer_timeout: float = DEFAULT_NO_ANSWER_TIMEOUT,
) -> Outcome:
    """An outbound call to ``to`` (a number or user part)."""
    if not to or any(ch.isspace() for ch in to) or "@" in to:
        raise InputError(f"--to: {to!r} is not a number or user part (no spaces, no @)")
    agent, outbound = await _outbound(config, settings)
    async with agent:
        result = await place_call(
            agent,
            config,
            effective_view(config),
            outbound,
            to=to,
            duration=duration,
            cancel_after=cancel_after,
            no_answer_timeout=no_answer_timeout,
        )
    return Outcome(result, list(agent.events))


async def run_answer(
    config: NumberConfig,
    settings: AgentSettings,
    *,
    calls: int = 1,
    timeout: float = 60.0,
    reject: int | None = None,
    ring: float = 0.0,
    hangup_after: float | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
) -> Outcome:
    """The inbound UAS at the origination URI for ``calls`` calls or ``timeout`` s."""
    if reject is not None and not 300 <= reject <= 699:
        raise InputError(f"--reject: {reject} is not a final failure status (300-699)")
    view = effective_view(config)
    agent = await open_inbound_agent(
        view,
        local_host=settings.local_ip,
        local_port=settings.local_port or None,
        timers=settings.timers(),
        rng=settings.rng(),
        cert_file=cert_file,
        key_file=key_file,
    )
    async with agent:
        result = await answer_calls(
            agent,
            config,
            view,
            calls=calls,
            timeout=timeout,
            reject=reject,
            ring=ring,
            hangup_after=hangup_after,
        )
    return Outcome(result, list(agent.events))


def _ladder(events: list[AgentEvent]) -> list[str]:
    origin = events[0].time if events else 0.0
    lines = []
    for event in events:
        arrow = {"out": "->", "in": "<-"}.get(event.direction or "", "!!")
        where = event.remote or event.local
        lines.append(f"  {event.time - origin:8.3f}s {arrow} {where:<22} {event.summary}")
    return lines


def _auth_line(result: Result) -> str | None:
    auth = getattr(result, "auth", None)
    if auth is None or not auth.used:
        return None
    return (
        f"auth: digest username {auth.digest_username} ({auth.algorithm}, realm {auth.realm}, "
        f"{auth.header}, {auth.challenges_answered} challenge(s) answered)"
    )


def render_text(outcome: Outcome) -> str:
    """A readable summary: what was done, the message ladder, the verdict."""
    result = outcome.result
    ends = result.endpoints
    lines = [
        f"{ends.transport.upper()} {ends.local} -> {ends.remote or '(listening)'} "
        f"(target from {ends.via})"
    ]
    lines.extend(_ladder(outcome.events))
    if isinstance(result, OptionsResult):
        verdict = f"OPTIONS: {result.status} {result.reason}" if result.status else "OPTIONS"
        if result.rtt_ms is not None:
            verdict += f" in {result.rtt_ms:g} ms"
        if result.peer_agent:
            verdict += f" (peer: {result.peer_agent})"
        lines.append(verdict)
    elif isinstance(result, RegisterResult):
        line = f"REGISTER {result.aor} contact {result.contact}: {result.status} {result.reason}"
        if result.success:
            line += (
                f", expires {result.expires_granted} s granted "
                f"({result.expires_requested} asked), {result.refreshes} refresh(es)"
            )
        lines.append(line)
        if result.unregistered is not None:
            lines.append(f"un-register: {'done' if result.unregistered else 'failed'}")
    elif isinstance(result, CallResult):
        line = f"call {result.to_uri}: {result.outcome} ({result.status} {result.reason})"
        if result.ended_by:
            line += f", ended by {result.ended_by}"
        lines.append(line)
        if result.rtp is not None:
            rtp = result.rtp
            lines.append(
                f"rtp {rtp.codec} to {rtp.remote}: sent {rtp.packets_sent}, received "
                f"{rtp.packets_received}, lost {rtp.packets_lost}, jitter {rtp.jitter_ms} ms, "
                f"echoed {rtp.echo_received}, rtt avg {rtp.rtt_ms_avg} ms"
            )
    else:
        lines.append(f"calls answered: {len(result.calls)} of {result.expected_calls}")
        for call in result.calls:
            line = f"  {call.call_id} from {call.from_uri}: {call.outcome} ({call.status})"
            if call.rtp is not None:
                line += (
                    f", rtp received {call.rtp.packets_received} echoed back, "
                    f"lost {call.rtp.packets_lost}"
                )
            lines.append(line)
    auth_line = _auth_line(result)
    if auth_line:
        lines.append(auth_line)
    if result.garbage_received:
        lines.append(f"garbage received from the peer: {result.garbage_received} datagram(s)")
    lines.append("result: success" if result.success else f"result: FAILED: {result.error}")
    return "\n".join(lines)
