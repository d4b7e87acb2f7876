"""The sip-harness pytest plugin (entry point ``pytest11``).

Two ways to use it:

* **The matrix as test items.**  ``pytest --sip-run`` (or any of ``--number``,
  ``--profile``, ``--scenario``) adds one item per scenario × profile, with ids such
  as ``register[proxy-tcp-5065]`` and the marker ``sip_scenario`` (``-m sip_scenario``
  selects only them).  Without those options nothing is added, so a project's own
  ``pytest`` run never runs the matrix by accident.  Peers start once per profile
  per session (per worker under pytest-xdist) and are removed at the end; a
  registration left by a failed item is removed before the next one.
  ``--sip-report-dir DIR`` writes ``results.json`` and the reports there (one
  sub-folder per xdist worker).
* **Fixtures for Python tests.**  ``number`` (the number file as a NumberConfig),
  ``sip_profile`` (a profile name; parametrize it indirectly), ``peers`` (that
  profile's running peers, a :class:`~harness.scenarios.matrix.ProfilePeers`) and
  ``agent`` (a :class:`~harness.scenarios.platform.SyncPlatform` for the number
  against those peers).  Each wraps a context manager that works without pytest.

pytest-xdist: each worker gets its own loopback block (127.0.<base+N>.x) and
origination port (+10·N), from ``worker_id``; ``--dist loadgroup`` keeps each
profile on one worker (items carry ``xdist_group`` = the profile).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.numbers import NumberConfig
from harness.peers.profiles import Profile, load_profile
from harness.results import RunResults, ScenarioRecord, Verdict
from harness.scenarios.matrix import Placement, ProfilePeers, applies
from harness.scenarios.model import Scenario
from harness.scenarios.platform import SyncPlatform, platform_agent
from harness.scenarios.runner import run_scenario
from harness.scenarios.session import Selection, select, write_reports

DEFAULT_PROFILE = "registrar-udp"
MARKER = "sip_scenario"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sipharness", "sip-harness conformance runs")
    group.addoption(
        "--sip-run",
        action="store_true",
        default=False,
        help="Add the conformance matrix (scenario × profile) as test items.",
    )
    group.addoption("--number", metavar="FILE", help="Number file (default: the bundled example).")
    group.addoption(
        "--profile", action="append", default=[], metavar="P", help="Profile (repeat; default all)."
    )
    group.addoption(
        "--scenario", action="append", default=[], metavar="S", help="Scenario (repeat)."
    )
    group.addoption("--sip-scenarios-dir", metavar="DIR", help="Folder of scenario files.")
    group.addoption("--sip-report-dir", metavar="DIR", help="Write results.json and reports here.")
    group.addoption(
        "--sip-address-base",
        type=int,
        default=0,
        metavar="N",
        help="First loopback block (127.0.N.x); xdist worker gwK uses N+K.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a sip-harness scenario × profile item")


def _enabled(config: pytest.Config) -> bool:
    return bool(
        config.getoption("--sip-run")
        or config.getoption("--number")
        or config.getoption("--profile")
        or config.getoption("--scenario")
    )


def _worker_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "master"


@dataclass
class _State:
    """The session's selection, started peers and records."""

    config: pytest.Config
    selection: Selection | None = None
    placement: Placement = field(default_factory=Placement)
    sessions: dict[str, ProfilePeers] = field(default_factory=dict)
    previous_ok: dict[str, bool] = field(default_factory=dict)
    records: list[ScenarioRecord] = field(default_factory=list)

    def select(self) -> Selection:
        if self.selection is None:
            number = self.config.getoption("--number")
            scenarios_dir = self.config.getoption("--sip-scenarios-dir")
            self.selection = select(
                number_file=Path(number) if number else None,
                profiles=self.config.getoption("--profile"),
                scenarios=self.config.getoption("--scenario"),
                scenarios_dir=Path(scenarios_dir) if scenarios_dir else None,
            )
            self.placement = Placement.for_worker(
                _worker_id(self.config), first_base=self.config.getoption("--sip-address-base")
            )
        return self.selection

    def peers_for(self, profile: Profile) -> ProfilePeers:
        """The profile's peers, started on first use and kept for the session."""
        session = self.sessions.get(profile.name)
        if session is None:
            session = ProfilePeers(profile, self.select().number, placement=self.placement)
            self.sessions[profile.name] = session
        if session.peers is None:
            session.start()
        elif session.failure() is not None:
            session.restart()
        return session

    def close(self) -> None:
        errors: list[str] = []
        for session in self.sessions.values():
            try:
                session.stop()
            except HarnessError as err:
                errors.append(str(err))
        self.sessions.clear()
        if errors:
            raise HarnessError(errors[0])


_STATE = pytest.StashKey[_State]()


def _state(config: pytest.Config) -> _State:
    if _STATE not in config.stash:
        config.stash[_STATE] = _State(config)
    return config.stash[_STATE]


class SipMatrix(pytest.Collector):
    """The collector that holds the matrix items."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        selection = _state(self.config).select()
        items: list[pytest.Item | pytest.Collector] = []
        for profile in selection.profiles:
            for scenario in selection.scenarios:
                if applies(scenario, profile):
                    item = SipScenarioItem.from_parent(
                        self, name=f"{scenario.name}[{profile.name}]", scenario=scenario,
                        profile=profile,
                    )  # fmt: skip
                    item.add_marker(MARKER)
                    item.add_marker(pytest.mark.xdist_group(profile.name))
                    items.append(item)
        return items


class ScenarioFailed(Exception):
    """A scenario's verdict was fail or error; ``str()`` is its reason and steps."""


class SipScenarioItem(pytest.Item):
    """One scenario on one profile."""

    def __init__(self, *, scenario: Scenario, profile: Profile, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.profile = profile
        self.record: ScenarioRecord | None = None

    def runtest(self) -> None:
        state = _state(self.config)
        peers = state.peers_for(self.profile)

        async def go() -> ScenarioRecord:
            peers.bind(asyncio.get_running_loop())
            if not state.previous_ok.get(self.profile.name, True):
                await peers.reset()
            return await run_scenario(
                self.scenario,
                peers.number,
                profile=self.profile.name,
                peers=peers,
                watch=peers,
            )

        record = asyncio.run(go())
        self.record = record
        state.records.append(record)
        state.previous_ok[self.profile.name] = record.verdict is Verdict.PASS
        if record.verdict is Verdict.SKIP:
            pytest.skip(record.reason)
        if record.verdict is not Verdict.PASS:
            raise ScenarioFailed(_explain(record))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, ScenarioFailed | HarnessError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return self.scenario.source or "scenarios", None, self.name


def _explain(record: ScenarioRecord) -> str:
    lines = [f"{record.verdict.value}: {record.reason}"]
    for step in record.steps:
        lines.append(f"  {step.status:5} {step.name}: {step.detail}")
    for name, text in record.peer_logs.items():
        tail = text.strip().splitlines()[-10:]
        lines.append(f"  --- last log lines of peer {name} ---")
        lines.extend(f"  {line}" for line in tail)
    return "\n".join(lines)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not _enabled(config):
        return
    matrix = SipMatrix.from_parent(session, name="sipharness")
    for node in matrix.collect():
        assert isinstance(node, pytest.Item)
        items.append(node)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    del exitstatus
    config = session.config
    if _STATE not in config.stash:
        return
    state = config.stash[_STATE]
    try:
        state.close()
    finally:
        report_dir = config.getoption("--sip-report-dir")
        if report_dir and state.records and state.selection is not None:
            worker = _worker_id(config)
            out = Path(report_dir) if worker == "master" else Path(report_dir) / worker
            results = RunResults(
                command="run",
                started_at=state.records[0].started_at,
                number=state.selection.number.to_public_dict(),
                profiles=[p.name for p in state.selection.profiles],
                records=list(state.records),
                duration_s=round(sum(r.duration_s for r in state.records), 3),
            )
            password = state.selection.number.password
            write_reports(results, out, secrets=[password] if password else [])


# --- fixtures for Python tests ------------------------------------------------------------------


@pytest.fixture(scope="session")
def number(pytestconfig: pytest.Config) -> NumberConfig:
    """The number under test (``--number``, default the bundled example)."""
    return _state(pytestconfig).select().number


@pytest.fixture
def sip_profile(request: pytest.FixtureRequest) -> str:
    """The profile name: ``request.param`` when parametrized indirectly, else the first
    ``--profile``, else ``registrar-udp``."""
    param = getattr(request, "param", None)
    if param is not None:
        return str(param)
    chosen: list[str] = request.config.getoption("--profile")
    return chosen[0] if chosen else DEFAULT_PROFILE


@pytest.fixture
def peers(pytestconfig: pytest.Config, sip_profile: str) -> ProfilePeers:
    """The running peers of ``sip_profile`` (started once per session, reset per test)."""
    state = _state(pytestconfig)
    state.select()
    session = state.peers_for(load_profile(sip_profile))
    asyncio.run(session.reset())
    return session


@pytest.fixture
def agent(peers: ProfilePeers) -> Iterator[SyncPlatform]:
    """The platform side for the number against ``peers`` (closed after the test)."""
    with platform_agent(peers.number, peers=peers) as platform:
        yield platform
