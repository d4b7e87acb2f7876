"""The conformance matrix: scenarios × profiles, peers started once per profile.

What a caller may rely on:

* :func:`plan` pairs every scenario with every selected profile and says, for each
  pair, whether the scenario applies (``profiles:`` names, ``applies_to:``
  capabilities, :func:`capabilities`); pairs that do not apply are left out, pairs
  whose number cannot fit the profile become ``skip`` records with the reason.
* :class:`ProfilePeers` runs one profile's peers for a run: started once, watched
  (a peer that dies is noticed at once, through the engine's event stream), reset
  between scenarios when the previous one did not pass (a wildcard un-register),
  restarted when a peer died, and always removed (``with``).
* :func:`run_matrix` runs the plan profile after profile and returns a
  :class:`~harness.results.RunResults`; peers are removed on success, failure,
  Ctrl-C and SIGTERM, and leftovers of killed runs are reaped first.
* :class:`Placement` moves a run to another loopback block (``base``) and shifts the
  origination port, so parallel runs (pytest-xdist workers) do not collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import docker.errors
import requests

from harness.errors import HarnessError, InputError, SetupError
from harness.numbers import NumberConfig
from harness.peers import labels
from harness.peers.containers import (
    PEER,
    Peers,
    PeerStartError,
    reap_leftovers,
    start_peers,
)
from harness.peers.engine import Engine
from harness.peers.profiles import Profile, Role, Software, apply_profile
from harness.results import PeerInfo, RunResults, ScenarioRecord, Verdict
from harness.scenarios.model import Scenario
from harness.scenarios.platform import Platform
from harness.scenarios.runner import CaptureFactory, run_scenario
from harness.scenarios.seams import live_capture_factory, no_capture
from harness.sip.uri import SipUri
from harness.transport import Address

#: How the reason of a record whose profile's peers did not start begins.
PEERS_DID_NOT_START = "peers did not start"
#: Seconds the reset between two scenarios may take.
RESET_DEADLINE = 10.0
#: How far apart two placements' origination ports are (5080 and 5081 are both used).
ORIGINATION_STRIDE = 10


# --- selection -----------------------------------------------------------------------------


def capabilities(profile: Profile) -> dict[str, object]:
    """What a profile can do, as ``applies_to:`` names it."""
    entry = profile.entry
    transport = entry.transport.value
    proxy = profile.number.outbound_proxy
    if proxy is not None:
        transport = "tls" if proxy.scheme == "sips" else (proxy.transport or transport)
    registrar = profile.authenticator
    return {
        "registers": profile.number.registers,
        "outbound_proxy": proxy is not None,
        "transport": transport,
        "inbound": any(p.software is Software.ASTERISK for p in profile.peers),
        "network_calls": registrar is not None
        and registrar.next_hop is not None
        and profile.peer(registrar.next_hop).role is Role.MEDIA,
        "trunk": any(p.role is Role.TRUNK for p in profile.peers),
    }


def applies(scenario: Scenario, profile: Profile) -> bool:
    """Whether ``scenario`` is meant for ``profile`` (names and capabilities)."""
    wanted = scenario.applies_to
    if wanted.profiles is not None and profile.name not in wanted.profiles:
        return False
    caps = capabilities(profile)
    return all(caps.get(key) == value for key, value in wanted.capabilities)


@dataclass(frozen=True)
class PlanItem:
    scenario: Scenario
    profile: Profile


def plan(scenarios: Sequence[Scenario], profiles: Sequence[Profile]) -> list[PlanItem]:
    """The pairs to run, profile by profile, scenarios in the order given."""
    return [
        PlanItem(scenario, profile)
        for profile in profiles
        for scenario in scenarios
        if applies(scenario, profile)
    ]


# --- placement -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a run's peers live: address block ``base`` (127.0.<base>.x) and the
    origination port shifted by ``slot * ORIGINATION_STRIDE``."""

    base: int = 0
    slot: int = 0

    @classmethod
    def for_worker(cls, worker_id: str, *, first_base: int = 0) -> Placement:
        """The placement of a pytest-xdist worker (``gw0``, ``gw1``...; ``master`` is 0)."""
        index = int(worker_id[2:]) if worker_id.startswith("gw") and worker_id[2:].isdigit() else 0
        return cls(base=first_base + index, slot=index)

    def number(self, number: NumberConfig) -> NumberConfig:
        """``number`` with its origination port shifted for this placement."""
        uri = number.origination_uri
        if uri is None or self.slot == 0:
            return number
        default = 5061 if uri.scheme == "sips" or uri.transport == "tls" else 5060
        port = (uri.port or default) + self.slot * ORIGINATION_STRIDE
        moved = SipUri(uri.scheme, uri.user, uri.password, uri.host, port, uri.params)
        return dataclasses.replace(number, origination_uri=moved)


# --- one profile's peers ------------------------------------------------------------------------


class ProfilePeers:
    """One profile's running peers for a run: start, watch, reset, restart, stop.

    Implements the runner's ``PeerControl`` and ``PeerWatch``.  Use as a context manager.
    """

    def __init__(
        self,
        profile: Profile,
        number: NumberConfig,
        *,
        placement: Placement = Placement(),
        engine: Engine | None = None,
        log_tail: int = 200,
    ) -> None:
        self.profile = profile
        self.number_in = placement.number(number)
        self.placement = placement
        self._engine = engine
        self.log_tail = log_tail
        self.peers: Peers | None = None
        self.starts = 0
        self._watch: _DeathWatch | None = None

    # -- lifecycle ------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine.connect()
        return self._engine

    @property
    def running(self) -> Peers:
        if self.peers is None:
            raise SetupError(f"the peers of profile {self.profile.name} are not running")
        return self.peers

    @property
    def number(self) -> NumberConfig:
        """The effective number to use against these peers."""
        return self.running.number

    def start(self) -> ProfilePeers:
        """Start the peers and their watch (PeerStartError carries the logs)."""
        peers = start_peers(
            self.profile, self.number_in, base=self.placement.base, engine=self.engine
        )
        self.peers = peers
        self.starts += 1
        self._watch = _DeathWatch(self.engine, peers)
        return self

    def stop(self) -> None:
        """Stop the watch, remove the containers (safe to repeat)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()
        peers, self.peers = self.peers, None
        if peers is not None:
            peers.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> ProfilePeers:
        if self.peers is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver the watch's news to ``loop`` (the loop scenarios run on)."""
        if self._watch is not None:
            self._watch.bind(loop)

    # -- PeerControl ------------------------------------------------------------------
    @property
    def profile_name(self) -> str:
        return self.profile.name

    @property
    def ca_file(self) -> Path | None:
        return self.running.rendered.ca_file

    def originate(self, to: str | None = None) -> str:
        return self.running.originate(to)

    def network_entry(self) -> tuple[str, Address] | None:
        profile = self.running.profile
        registrar = profile.authenticator
        if registrar is None or registrar.next_hop is None:
            return None
        media = profile.peer(registrar.next_hop)
        if media.role is not Role.MEDIA:
            return None
        # The registrar treats requests from its media peer as calls for customers;
        # over UDP (a TLS registrar listens for UDP on the same port for its peers).
        return media.address, Address(registrar.address, registrar.port, "udp")

    # -- PeerWatch ------------------------------------------------------------------------
    def failure(self) -> str | None:
        return self._watch.failure() if self._watch is not None else None

    async def wait_failure(self) -> str:
        if self._watch is None:
            await asyncio.Event().wait()  # never: nothing is watched
        assert self._watch is not None
        return await self._watch.wait_failure()

    def logs(self) -> dict[str, str]:
        if self.peers is None:
            return {}
        try:
            return self.peers.logs(tail=self.log_tail)
        except (docker.errors.DockerException, requests.RequestException) as err:
            return {"engine": f"(no logs: {err})"}

    # -- reset ------------------------------------------------------------------------------
    async def reset(self, local_host: str | None = None) -> None:
        """Remove every binding of the number (register, then ``Contact: *``)."""
        number = self.number
        if not number.has_credentials:
            return
        async with Platform(number, peers=self, local_host=local_host, serves_inbound=False) as p:
            outcome = await asyncio.wait_for(p.register(60), RESET_DEADLINE)
            if outcome.success:
                await asyncio.wait_for(p.unregister(wildcard=True), RESET_DEADLINE)

    def peer_infos(self) -> list[PeerInfo]:
        if self.peers is None:
            return []
        versions = self.peers.versions()
        return [
            PeerInfo(
                profile=self.profile.name,
                role=r.spec.role.value,
                kind=r.spec.software.value,
                version=versions.get(r.spec.name, ""),
                address=r.spec.address,
                port=r.spec.port,
                transport=r.spec.transport.value,
            )
            for r in self.peers.rendered.peers
        ]


class _DeathWatch:
    """Follows the engine's ``die`` events for one run's containers, in a thread."""

    def __init__(self, engine: Engine, peers: Peers) -> None:
        self._dead: str | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._client = engine.client_with_timeout(24 * 3600)
        self._stream = self._client.api.events(
            decode=True,
            filters={
                "type": "container",
                "event": "die",
                "label": [f"{labels.RUN}={peers.run_id}"],
            },
        )
        self._thread = threading.Thread(target=self._read, name="peer-watch", daemon=True)
        self._thread.start()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        if self._dead is not None:
            self._event.set()

    def _read(self) -> None:
        try:
            for event in self._stream:
                if self._stopping:
                    return
                attributes = event.get("Actor", {}).get("Attributes", {})
                name = attributes.get(PEER, attributes.get("name", "?"))
                code = attributes.get("exitCode", "?")
                self._dead = f"peer {name} exited (exit code {code})"
                if self._loop is not None and self._event is not None:
                    self._loop.call_soon_threadsafe(self._event.set)
        except (docker.errors.DockerException, requests.RequestException, OSError, ValueError):
            # The stream ends this way when stop() closes it; after a real engine
            # failure the next scenario's own steps report it.
            return

    def failure(self) -> str | None:
        return self._dead

    async def wait_failure(self) -> str:
        if self._event is None:
            self.bind(asyncio.get_running_loop())
        assert self._event is not None
        await self._event.wait()
        return self._dead or "a peer exited"

    def stop(self) -> None:
        self._stopping = True
        self._stream.close()
        self._thread.join(timeout=5.0)
        self._client.close()


# --- progress -------------------------------------------------------------------------------------


class Progress(Protocol):
    """Told what the matrix does, to show it."""

    def start(self, total: int) -> None: ...

    def phase(self, text: str) -> None: ...

    def done(self, record: ScenarioRecord) -> None: ...

    def stop(self) -> None: ...


class QuietProgress:
    """Shows nothing (CI, no terminal, ``--json``)."""

    def start(self, total: int) -> None:
        del total

    def phase(self, text: str) -> None:
        del text

    def done(self, record: ScenarioRecord) -> None:
        del record

    def stop(self) -> None:
        return None


class RichProgress:
    """A progress bar and one line per finished record, on stderr."""

    def __init__(self) -> None:
        from rich.console import Console  # noqa: PLC0415  # only on a terminal
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bar  # noqa: PLC0415

        self.console = Console(stderr=True)
        self.bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.task: Any = None

    def start(self, total: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("matrix", total=total)

    def phase(self, text: str) -> None:
        self.bar.update(self.task, description=text)

    def done(self, record: ScenarioRecord) -> None:
        style = {"pass": "green", "fail": "red", "error": "magenta", "skip": "yellow"}
        verdict = record.verdict.value
        line = f"[{style[verdict]}]{verdict.upper():5}[/] {record.id} ({record.duration_s:.1f} s)"
        if record.reason and verdict != "pass":
            line += f"  {record.reason}"
        self.bar.console.print(line, markup=True, highlight=False, soft_wrap=True)
        self.bar.advance(self.task)

    def stop(self) -> None:
        self.bar.stop()


def default_progress(*, quiet: bool = False) -> Progress:
    """Rich on a terminal; quiet when asked, when ``CI`` is true or stderr is no TTY."""
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if quiet or ci or not sys.stderr.isatty():
        return QuietProgress()
    return RichProgress()


# --- the run ---------------------------------------------------------------------------


@dataclass
class MatrixOptions:
    placement: Placement = field(default_factory=Placement)
    local_host: str | None = None
    capture: CaptureFactory = no_capture
    #: When set, every scenario is captured live into this folder (one pcap each)
    #: and the checks run on the capture; ``capture`` is then ignored.
    capture_dir: Path | None = None
    reap: bool = True


def _skip(item: PlanItem, reason: str) -> ScenarioRecord:
    return ScenarioRecord(
        scenario=item.scenario.name,
        profile=item.profile.name,
        verdict=Verdict.SKIP,
        title=item.scenario.title,
        reason=reason,
    )


def _error(item: PlanItem, reason: str, logs: dict[str, str]) -> ScenarioRecord:
    return ScenarioRecord(
        scenario=item.scenario.name,
        profile=item.profile.name,
        verdict=Verdict.ERROR,
        title=item.scenario.title,
        reason=reason,
        peer_logs=logs,
    )


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C while the matrix runs, so clean-up runs on both."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_matrix(
    number: NumberConfig,
    profiles: Sequence[Profile],
    scenarios: Sequence[Scenario],
    *,
    options: MatrixOptions | None = None,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> RunResults:
    """Run every applicable scenario on every profile; see the module docstring.

    Raises :class:`SetupError` when no engine answers; a profile whose peers do not
    start gives ``error`` records for its scenarios (with the peers' logs) and the
    run goes on with the next profile.
    """
    opts = options or MatrixOptions()
    show = progress or QuietProgress()
    items = plan(scenarios, profiles)
    results = RunResults(
        command="run",
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        number=number.to_public_dict(),
        profiles=[p.name for p in profiles],
    )
    started = time.monotonic()
    own_engine = engine is None
    engine = engine or Engine.connect()
    try:
        if opts.reap:
            reap_leftovers(engine)
        show.start(len(items))
        with _terminate_as_interrupt():
            for profile in profiles:
                chosen = [item for item in items if item.profile is profile]
                if chosen:
                    results.records.extend(
                        _run_profile(
                            profile,
                            number=number,
                            items=chosen,
                            opts=opts,
                            show=show,
                            engine=engine,
                            results=results,
                        )
                    )
    finally:
        show.stop()
        if own_engine:
            engine.close()
    results.duration_s = round(time.monotonic() - started, 3)
    return results


def _run_profile(
    profile: Profile,
    *,
    number: NumberConfig,
    items: list[PlanItem],
    opts: MatrixOptions,
    show: Progress,
    engine: Engine,
    results: RunResults,
) -> list[ScenarioRecord]:
    try:
        apply_profile(opts.placement.number(number), profile)
    except InputError as err:
        records = [_skip(item, f"the number does not fit this profile: {err}") for item in items]
        for record in records:
            show.done(record)
        return records
    show.phase(f"{profile.name}: starting peers")
    session = ProfilePeers(profile, number, placement=opts.placement, engine=engine)
    try:
        session.start()
    except PeerStartError as err:
        records = [_error(item, f"{PEERS_DID_NOT_START}: {err}", err.logs) for item in items]
        for record in records:
            show.done(record)
        return records
    except SetupError as err:
        records = [_error(item, f"{PEERS_DID_NOT_START}: {err}", {}) for item in items]
        for record in records:
            show.done(record)
        return records
    try:
        results.peers.extend(session.peer_infos())
        return asyncio.run(_run_items(session, items, opts, show))
    finally:
        session.stop()


def _capture_for(session: ProfilePeers, opts: MatrixOptions) -> CaptureFactory:
    if opts.capture_dir is None:
        return opts.capture
    hosts = [info.address for info in session.peer_infos() if info.address]
    return live_capture_factory(opts.capture_dir, hosts)


async def _run_items(
    session: ProfilePeers, items: list[PlanItem], opts: MatrixOptions, show: Progress
) -> list[ScenarioRecord]:
    loop = asyncio.get_running_loop()
    session.bind(loop)
    records: list[ScenarioRecord] = []
    previous_ok = True
    for item in items:
        show.phase(f"{item.profile.name}: {item.scenario.name}")
        if session.failure() is not None:
            # A peer died in the previous scenario: a fresh set for the next one.
            await asyncio.to_thread(session.restart)
            session.bind(loop)
            previous_ok = True
        if not previous_ok:
            try:
                await session.reset(opts.local_host)
            except (HarnessError, OSError, TimeoutError):
                # The binding may be stuck: fresh peers give the next scenario a clean
                # registrar (the previous record already tells what went wrong).
                await asyncio.to_thread(session.restart)
                session.bind(loop)
        record = await run_scenario(
            item.scenario,
            session.number,
            profile=item.profile.name,
            peers=session,
            watch=session,
            capture=_capture_for(session, opts),
            local_host=opts.local_host,
        )
        records.append(record)
        show.done(record)
        previous_ok = record.verdict is Verdict.PASS
    return records


__all__ = [
    "PEERS_DID_NOT_START",
    "MatrixOptions",
    "Placement",
    "PlanItem",
    "ProfilePeers",
    "Progress",
    "QuietProgress",
    "RichProgress",
    "applies",
    "capabilities",
    "default_progress",
    "plan",
    "run_matrix",
]
