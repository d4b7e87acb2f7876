"""The platform side of a scenario: the agents one scenario uses and its step actions.

:class:`Platform` opens, on demand, the agent that talks to the number's target
(the *platform agent*) and the inbound UAS, runs one step action at a time and
returns a :class:`StepOutcome`; :meth:`Platform.close` hangs up, un-registers what is
still registered (bounded) and closes every agent.

Where the platform agent binds: when the number registers and has an
``origination_uri`` of the same transport (UDP or TCP) as its target, the agent binds
there, so that the contact it registers *is* the origination URI and the carrier's
calls reach the UAS; otherwise on an ephemeral port of ``local_host``.  A number
without credentials gets a separate UAS bound at its origination URI.

:class:`SyncPlatform` is the same for code without an event loop (pytest fixtures,
scripts): every method runs to completion on a private loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.agent.call import place_call
from harness.agent.common import Outbound, resolve_outbound
from harness.agent.core import UserAgent, source_address_for
from harness.agent.events import AgentEvent
from harness.agent.options import options_ping
from harness.agent.register import Registration
from harness.agent.results import AnswerResult, CallResult, OptionsResult, RegisterResult
from harness.agent.uas import InboundServer, open_inbound_agent
from harness.errors import HarnessError, InputError
from harness.numbers import Effective, NumberConfig, effective_view
from harness.sip.timers import TimerConfig
from harness.transport import Address, SipResolver

#: Seconds the clean-up (hang up, un-register) may take at the end of a scenario.
CLOSE_DEADLINE = 5.0


class PeerControl(Protocol):
    """What a scenario may ask of the peers (mock carriers); absent against a real trunk."""

    @property
    def profile_name(self) -> str: ...

    @property
    def ca_file(self) -> Path | None:
        """The CA to trust for TLS peers (None: the system's)."""
        ...

    def originate(self, to: str | None = None) -> str:
        """Make the carrier call the number (blocking; raises SetupError)."""
        ...

    def network_entry(self) -> tuple[str, Address] | None:
        """(source host, carrier address) for a call entering from the carrier's own
        network side; None when the profile has no such side."""
        ...


@dataclass
class StepOutcome:
    """What one step action produced.

    ``success``: the SIP outcome is what the action is for; ``status``: the final
    status code it ended with (None without one); ``kind``: the agent's error kind
    or the call's outcome; ``detail``: one line saying what was found.
    """

    success: bool
    detail: str
    status: int | None = None
    kinds: frozenset[str] = frozenset()
    skipped: bool = False
    data: dict[str, Any] = field(default_factory=dict)


def _status_text(status: int | None, reason: str | None) -> str:
    return f"{status} {reason or ''}".strip() if status is not None else "no final response"


class Platform:
    """The agents of one scenario for one number; use ``async with``."""

    def __init__(
        self,
        number: NumberConfig,
        *,
        peers: PeerControl | None = None,
        local_host: str | None = None,
        timers: TimerConfig | None = None,
        resolver: SipResolver | None = None,
        serves_inbound: bool = True,
        rng: random.Random | None = None,
        ca_file: Path | None = None,
        verify: bool = True,
    ) -> None:
        self.number = number
        self.view: Effective = effective_view(number)
        self.peers = peers
        self.local_host = local_host
        self.timers = timers or TimerConfig()
        self.resolver = resolver
        self.serves_inbound = serves_inbound
        self.rng = rng or random.Random()
        self.ca_file = ca_file
        self.verify = verify
        self.agents: list[UserAgent] = []
        self._network_agents: list[UserAgent] = []
        self._agent: UserAgent | None = None
        self._outbound: Outbound | None = None
        self._uas_agent: UserAgent | None = None
        self._registration: Registration | None = None
        self._registered = False
        self._answer: asyncio.Task[AnswerResult] | None = None
        self._server: InboundServer | None = None

    # --- agents --------------------------------------------------------------------
    def local_addresses(self) -> list[str]:
        """The IP addresses the platform's agents used (for the checks' locality)."""
        # The carrier-side caller of network_call is not the platform.
        hosts = {
            agent.local_address.host
            for agent in self.agents
            if not any(agent is other for other in self._network_agents)
        }
        chosen = sorted(h for h in hosts if h and h not in ("0.0.0.0", "::"))
        if chosen:
            return chosen
        # No platform agent ran (a scenario driven from the carrier's side only): the
        # address it would have used is still the platform's.
        if self.local_host:
            return [self.local_host]
        target = self.view.target
        if target.host_is_ip:
            try:
                return [source_address_for(target.host)]
            except HarnessError:
                return []
        return []

    async def outbound(self) -> tuple[UserAgent, Outbound]:
        """The platform agent and where its requests go (opened on first use)."""
        if self._agent is not None and self._outbound is not None:
            return self._agent, self._outbound
        outbound = await resolve_outbound(self.view, self.resolver)
        kind = outbound.dest.transport
        origination = self.view.origination
        host = self.local_host or source_address_for(outbound.dest.host)
        port = 0
        listen = False
        if (
            self.serves_inbound
            and self.view.registers
            and origination is not None
            and origination.transport.value == kind
            and kind in ("udp", "tcp")
        ):
            host, port, listen = origination.host, origination.port, kind == "tcp"
        ca_file = self.ca_file
        if ca_file is None and self.peers is not None:
            ca_file = self.peers.ca_file
        agent = await UserAgent.open(
            kind, host, port, listen=listen, timers=self.timers, rng=self.rng,
            ca_file=ca_file, verify=self.verify,
        )  # fmt: skip
        self.agents.append(agent)
        self._agent, self._outbound = agent, outbound
        return agent, outbound

    @property
    def destination(self) -> Address | None:
        """Where outbound requests go, once :meth:`outbound` has resolved it."""
        return self._outbound.dest if self._outbound is not None else None

    async def _uas(self) -> UserAgent:
        """The agent the carrier's calls reach: the registered platform agent, else a
        UAS at the origination URI."""
        if self.view.registers:
            agent, _ = await self.outbound()
            return agent
        if self._uas_agent is None:
            self._uas_agent = await open_inbound_agent(self.view, timers=self.timers, rng=self.rng)
            self.agents.append(self._uas_agent)
        return self._uas_agent

    async def reach(self) -> StepOutcome:
        """Is the target reachable? TCP/TLS: the connection (and handshake) completes;
        UDP: an OPTIONS gets any response at all."""
        agent, outbound = await self.outbound()
        dest = outbound.dest
        if dest.transport == "udp":
            result = await options_ping(agent, self.number, self.view, outbound)
            reached = any(t.status is not None for t in result.transactions)
            detail = (
                f"UDP {dest}: answered ({_status_text(result.status, result.reason)})"
                if reached
                else f"UDP {dest}: no response to OPTIONS ({result.error})"
            )
            return StepOutcome(reached, detail, result.status, data=result.to_dict())
        local = await agent.local_for(dest, outbound.server_name)
        what = "TLS handshake completed" if dest.transport == "tls" else "connected"
        return StepOutcome(True, f"{dest.transport.upper()} {dest}: {what} from {local}")

    def events(self) -> list[AgentEvent]:
        """Every event of every agent opened so far, in time order."""
        merged = [event for agent in self.agents for event in agent.events]
        return sorted(merged, key=lambda e: e.time)

    # --- actions ---------------------------------------------------------------------
    async def options(self) -> StepOutcome:
        agent, outbound = await self.outbound()
        result = await options_ping(agent, self.number, self.view, outbound)
        return _from_options(result)

    def _not_registering(self, what: str) -> StepOutcome | None:
        if self.view.registers:
            return None
        return StepOutcome(
            True,
            f"{what} skipped: the number has no credentials (IP-authenticated, no REGISTER)",
            skipped=True,
        )

    async def register(self, expires: int = 300) -> StepOutcome:
        skip = self._not_registering("register")
        if skip is not None:
            return skip
        agent, outbound = await self.outbound()
        registration = Registration(agent, self.number, self.view, outbound, expires=expires)
        previous = self._registration
        if previous is not None and previous.agent is agent:
            # RFC 3261 §10.2.4: one Call-ID for every registration to this registrar
            # during the platform's life, with CSeq going on increasing.
            registration.call_id = previous.call_id
            registration.from_tag = previous.from_tag
            registration.cseq = previous.cseq
            registration.result.call_id = previous.call_id
        self._registration = registration
        result = await registration.register()
        self._registered = result.success
        return _from_register(result, "REGISTER")

    async def refresh(self) -> StepOutcome:
        skip = self._not_registering("refresh")
        if skip is not None:
            return skip
        if self._registration is None:
            raise InputError("refresh: no earlier register step in this scenario")
        result = await self._registration.refresh()
        self._registered = result.success
        return _from_register(result, "REGISTER refresh")

    async def unregister(self, wildcard: bool = False) -> StepOutcome:
        skip = self._not_registering("unregister")
        if skip is not None:
            return skip
        if self._registration is None:
            raise InputError("unregister: no earlier register step in this scenario")
        registration = self._registration
        ok = await registration.unregister(wildcard=wildcard)
        self._registered = not ok and self._registered
        last = registration.result.transactions[-1] if registration.result.transactions else None
        status = last.status if last is not None else None
        reason = last.reason if last is not None else None
        what = "un-REGISTER (Contact: *)" if wildcard else "un-REGISTER (Expires: 0)"
        detail = f"{what}: {_status_text(status, reason)}"
        if not ok:
            detail = registration.result.error or detail
        kinds = {registration.result.error_kind} if registration.result.error_kind else set()
        return StepOutcome(
            ok, detail, status, frozenset(k for k in kinds if k), data=registration.result.to_dict()
        )

    async def call(
        self,
        to: str,
        *,
        duration: float = 1.0,
        cancel_after: float | None = None,
        no_answer_timeout: float = 60.0,
    ) -> StepOutcome:
        agent, outbound = await self.outbound()
        result = await place_call(
            agent,
            self.number,
            self.view,
            outbound,
            to=to,
            duration=duration,
            cancel_after=cancel_after,
            no_answer_timeout=no_answer_timeout,
        )
        return _from_call(result)

    async def start_answer(
        self, *, hangup_after: float = 1.0, ring: float = 0.0, reject: int | None = None,
        calls: int = 1, timeout: float = 30.0,
    ) -> StepOutcome:  # fmt: skip
        """Start serving inbound calls in the background (collect with :meth:`wait_answer`)."""
        if self._answer is not None:
            raise InputError("answer: the inbound UAS is already serving")
        agent = await self._uas()
        server = InboundServer(
            agent, self.number, self.view, reject=reject, ring=ring, hangup_after=hangup_after
        )
        self._server = server
        self._answer = asyncio.create_task(server.serve(calls, timeout), name="scenario-uas")
        return StepOutcome(True, f"the UAS listens at {agent.local_address} ({agent.kind.upper()})")

    async def wait_answer(self) -> StepOutcome:
        if self._answer is None:
            raise InputError("wait: answer needs an earlier answer step")
        task, self._answer = self._answer, None
        try:
            result = await task
        finally:
            if self._server is not None:
                self._server.agent.request_handler = None
                self._server = None
        return _from_answer(result)

    async def originate(self, to: str | None = None) -> StepOutcome:
        if self.peers is None:
            raise InputError("peer: originate needs mock peers (not available against a trunk)")
        text = await asyncio.to_thread(self.peers.originate, to)
        return StepOutcome(True, f"the carrier was asked to call the number: {text or 'accepted'}")

    async def network_call(self, *, within: float) -> StepOutcome:
        """A call for the number entering the carrier from its own network side."""
        entry = self.peers.network_entry() if self.peers is not None else None
        if entry is None:
            raise InputError("peer: network-call needs a profile with a registrar and media peer")
        source, dest = entry
        # As the carrier's network would: no credentials, straight at the carrier.
        caller = dataclasses.replace(
            self.number, username=None, password=None, auth_username=None, password_source=None
        )
        view = effective_view(caller)
        to = self.number.username or self.number.phone_number
        agent = await UserAgent.open("udp", source, 0, timers=self.timers, rng=self.rng)
        self.agents.append(agent)
        self._network_agents.append(agent)
        outbound = Outbound(dest=dest, server_name=dest.host, route=None, via="sip_domain")
        # Ringing past the deadline is the failure this action detects: give up (and
        # CANCEL) a second before the step's own deadline.
        result = await place_call(
            agent,
            caller,
            view,
            outbound,
            to=to,
            duration=0.5,
            no_answer_timeout=max(1.0, within - 1.0),
        )
        outcome = _from_call(result)
        if result.outcome == "timeout":
            outcome.detail = (
                f"the carrier rang the unregistered number for {max(1.0, within - 1.0):g} s "
                "instead of answering with an error"
            )
            outcome.kinds = frozenset({"timeout", "ringing"})
        return outcome

    # --- clean-up ------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop the UAS, un-register what is registered, close every agent (bounded)."""
        try:
            if self._answer is not None:
                if self._server is not None:
                    await asyncio.wait_for(self._server.hang_up_all(), CLOSE_DEADLINE)
                self._answer.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(self._answer, CLOSE_DEADLINE)
            if self._registered and self._registration is not None:
                # A binding left behind would route the next scenario's calls here.
                await asyncio.wait_for(self._registration.unregister(), CLOSE_DEADLINE)
        finally:
            for agent in self.agents:
                await agent.close()

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# --- outcomes ------------------------------------------------------------------------------


def _from_options(result: OptionsResult) -> StepOutcome:
    detail = f"OPTIONS to {result.endpoints.remote}: {_status_text(result.status, result.reason)}"
    if result.rtt_ms is not None:
        detail += f" in {result.rtt_ms:g} ms"
    if result.error:
        detail = f"OPTIONS to {result.endpoints.remote}: {result.error}"
    kinds = {result.error_kind} if result.error_kind else set()
    return StepOutcome(
        result.success,
        detail,
        result.status,
        frozenset(k for k in kinds if k),
        data=result.to_dict(),
    )


def _from_register(result: RegisterResult, what: str) -> StepOutcome:
    if result.success:
        detail = (
            f"{what} {result.aor}: {_status_text(result.status, result.reason)}, "
            f"{result.expires_granted} s granted"
        )
        if result.auth.used:
            detail += f" (digest user {result.auth.digest_username}, {result.auth.algorithm})"
    else:
        detail = f"{what} {result.aor}: {result.error}"
    kinds = {result.error_kind} if result.error_kind else set()
    return StepOutcome(
        result.success,
        detail,
        result.status,
        frozenset(k for k in kinds if k),
        data=result.to_dict(),
    )


def _from_call(result: CallResult) -> StepOutcome:
    detail = (
        f"call {result.to_uri}: {result.outcome} ({_status_text(result.status, result.reason)})"
    )
    if result.rtp is not None:
        rtp = result.rtp
        detail += (
            f"; rtp {rtp.codec}: sent {rtp.packets_sent}, echoed {rtp.echo_received}, "
            f"lost {rtp.packets_lost}"
        )
    if result.error:
        detail += f": {result.error}"
    kinds = {result.outcome}
    if result.error_kind:
        kinds.add(result.error_kind)
    data = result.to_dict()
    data.pop("rtp", None)
    if result.rtp is not None:
        data["rtp"] = result.rtp.to_dict()
    return StepOutcome(result.success, detail, result.status, frozenset(kinds), data=data)


def _from_answer(result: AnswerResult) -> StepOutcome:
    calls = result.calls
    if calls:
        call = calls[0]
        detail = f"call from {call.source} for {call.request_uri}: {call.outcome} ({call.status})"
        if call.rtp is not None:
            detail += f"; rtp received {call.rtp.packets_received}, echoed back"
        if call.error:
            detail += f": {call.error}"
    else:
        detail = "no call arrived"
    if result.error:
        detail = f"{detail}: {result.error}" if calls else result.error
    kinds = {c.outcome for c in calls}
    if result.error_kind:
        kinds.add(result.error_kind)
    if not calls:
        kinds.add("no call")
    status = calls[0].status if calls else None
    return StepOutcome(result.success, detail, status, frozenset(kinds), data=result.to_dict())


# --- without an event loop ------------------------------------------------------------------


class SyncPlatform:
    """:class:`Platform` for code without an event loop; a context manager.

    Each method runs one action to completion and returns its :class:`StepOutcome`.
    """

    def __init__(self, number: NumberConfig, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._options = options
        self._number = number
        self._platform: Platform | None = None

    def _run(self, make: Callable[[Platform], Awaitable[StepOutcome]]) -> StepOutcome:
        platform = self.platform

        async def go() -> StepOutcome:
            return await make(platform)

        return self._loop.run_until_complete(go())

    @property
    def platform(self) -> Platform:
        if self._platform is None:

            async def make() -> Platform:
                return Platform(self._number, **self._options)

            self._platform = self._loop.run_until_complete(make())
        return self._platform

    def options(self) -> StepOutcome:
        return self._run(lambda p: p.options())

    def register(self, expires: int = 300) -> StepOutcome:
        return self._run(lambda p: p.register(expires))

    def unregister(self, wildcard: bool = False) -> StepOutcome:
        return self._run(lambda p: p.unregister(wildcard))

    def call(self, to: str = "echo", duration: float = 1.0) -> StepOutcome:
        return self._run(lambda p: p.call(to, duration=duration))

    def receive_call(self, hangup_after: float = 1.0, timeout: float = 20.0) -> StepOutcome:
        """Answer one call that the peers originate (needs ``peers``)."""

        async def go(p: Platform) -> StepOutcome:
            await p.start_answer(hangup_after=hangup_after, timeout=timeout)
            await p.originate()
            return await p.wait_answer()

        return self._run(go)

    def close(self) -> None:
        try:
            if self._platform is not None:
                self._loop.run_until_complete(self._platform.close())
        finally:
            self._loop.close()

    def __enter__(self) -> SyncPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def platform_agent(number: NumberConfig, **options: Any) -> Iterator[SyncPlatform]:
    """``with platform_agent(number, peers=...) as agent:`` — works without pytest."""
    agent = SyncPlatform(number, **options)
    try:
        yield agent
    finally:
        agent.close()


__all__ = [
    "CLOSE_DEADLINE",
    "PeerControl",
    "Platform",
    "StepOutcome",
    "SyncPlatform",
    "platform_agent",
]
