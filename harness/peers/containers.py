"""Running a rendered profile's peers as containers, and cleaning up after them.

:class:`Peers` is a context manager over one run: :meth:`Peers.start` starts every
peer of a :class:`~harness.peers.render.RenderedRun` with host networking, its rendered
folder bind-mounted read-only, an ``/etc/hosts`` and ``/etc/resolv.conf`` that keep
its look-ups on loopback, and the run's labels; then it waits until each peer is
ready (readiness checks below) or a deadline passes. A peer that fails to start
raises :class:`PeerStartError` (a :class:`SetupError`) carrying the peer's logs, after
everything started so far was removed. :meth:`Peers.stop` removes every container of
the run and the rendered folder, on success, failure and Ctrl-C alike.

Every container records the process that owns it (``org.sipharness.owner``: PID and
process start time) and the host it was started from, so :func:`reap_leftovers` can
remove what a killed run left behind; peers started with ``detached=True`` (``sipharness
peers up``) are left alone until :func:`remove_runs` (``sipharness peers down``).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol

import docker.errors
import requests
from docker.models.containers import Container
from docker.types import Mount as DockerMount

from harness.errors import HarnessError, SetupError
from harness.numbers import NumberConfig, Transport
from harness.peers import labels
from harness.peers.engine import Engine
from harness.peers.images import IMAGES, image_tag
from harness.peers.profiles import Profile, Quirk, Role, Software
from harness.peers.render import RenderedPeer, RenderedRun, render_run
from harness.sip.message import make_request

OWNER: Final = f"{labels.PREFIX}.owner"
"""``<pid>:<start time>`` of the process that started the container."""
HOST: Final = f"{labels.PREFIX}.host"
PEER: Final = f"{labels.PREFIX}.peer"
PROFILE: Final = f"{labels.PREFIX}.profile"
FOLDER: Final = f"{labels.PREFIX}.folder"
"""The rendered folder on the host, removed with the run's last container."""
DETACHED: Final = f"{labels.PREFIX}.detached"
"""Set on peers meant to outlive their process (``peers up``); reaped only when asked."""

DEFAULT_DEADLINE: Final = 15.0
"""Seconds a run's peers get to become ready (they need about 0.5 s once images exist)."""
FOLDER_PREFIX: Final = "sipharness-run-"
LOG_TAIL: Final = 60
"""Log lines a start failure carries per peer."""
ORIGINATE_TIMEOUT: Final = 10
RETRY_PAUSE: Final = 0.05
"""Seconds between two failed attempts of one readiness check."""
ATTEMPT_TIMEOUT: Final = 0.3
"""Seconds one readiness attempt may wait for an answer."""

_rng = random.SystemRandom()


class PeerStartError(SetupError):
    """A peer did not become ready. ``str()`` is one line; ``logs`` maps peer to log text."""

    def __init__(self, message: str, logs: dict[str, str]) -> None:
        super().__init__(message)
        self.logs = logs


# --- readiness ---------------------------------------------------------------------------


class Readiness(Protocol):
    """One readiness condition of a peer."""

    @property
    def description(self) -> str:
        """What is checked, for messages (``answers OPTIONS on udp:127.0.0.2:5060``)."""
        ...

    def probe(self, timeout: float) -> bool:
        """One attempt, waiting at most ``timeout`` s; True when the condition holds."""
        ...


def _options(address: str, port: int, transport: str, local: tuple[str, int]) -> bytes:
    tag = f"{_rng.getrandbits(48):x}"
    branch = f"z9hG4bK{_rng.getrandbits(64):x}"
    host, local_port = local
    request = make_request(
        "OPTIONS",
        f"sip:{address}:{port}",
        [
            ("Via", f"SIP/2.0/{transport.upper()} {host}:{local_port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:ready@{host}>;tag={tag}"),
            ("To", f"<sip:{address}:{port}>"),
            ("Call-ID", f"{_rng.getrandbits(96):x}@sipharness-ready"),
            ("CSeq", "1 OPTIONS"),
        ],
    )
    return request.to_bytes()


@dataclass(frozen=True)
class AnswersSip:
    """The peer answers an OPTIONS with any SIP response (Asterisk may say 401).

    Sent from 127.0.0.1 over UDP or TCP.
    """

    address: str
    port: int
    transport: str = "udp"

    @property
    def description(self) -> str:
        return f"answers OPTIONS on {self.transport}:{self.address}:{self.port}"

    def probe(self, timeout: float) -> bool:
        kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.settimeout(timeout)
            sock.bind(("127.0.0.1", 0))
            try:
                sock.connect((self.address, self.port))
                local = sock.getsockname()
                sock.sendall(_options(self.address, self.port, self.transport, local))
                data = sock.recv(65535)
            except OSError:
                # Refused (not listening yet), reset or timed out: not ready.
                return False
        return data.startswith(b"SIP/2.0 ")


@dataclass(frozen=True)
class CompletesTls:
    """A TCP connection to the peer completes a TLS handshake that verifies with ``ca_file``."""

    address: str
    port: int
    ca_file: Path

    @property
    def description(self) -> str:
        return f"completes a TLS handshake on {self.address}:{self.port}"

    def probe(self, timeout: float) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with (
                socket.create_connection(
                    (self.address, self.port), timeout=timeout, source_address=("127.0.0.1", 0)
                ) as raw,
                context.wrap_socket(raw, server_hostname=self.address) as tls,
            ):
                return tls.version() is not None
        except ssl.SSLCertVerificationError:
            raise
        except OSError:
            return False


@dataclass(frozen=True)
class CommandSucceeds:
    """A command run inside the peer's container exits 0 (e.g. Asterisk fully booted)."""

    what: str
    run: Callable[[float], bool]

    @property
    def description(self) -> str:
        return self.what

    def probe(self, timeout: float) -> bool:
        return self.run(timeout)


@dataclass(frozen=True)
class Waited:
    """The outcome of :func:`wait_ready`: ``pending`` lists the checks that never passed."""

    seconds: float
    pending: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.pending


def wait_ready(
    checks: Sequence[Readiness],
    *,
    deadline: float,
    still_running: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited:
    """Probe ``checks`` in order until each passed once or ``deadline`` (a ``clock`` time).

    Stops early, with the remaining checks pending, when ``still_running()`` turns False
    (the container exited). Returns how long it took, measured with ``clock``.
    """
    started = clock()
    pending = list(checks)
    while pending:
        remaining = deadline - clock()
        if remaining <= 0 or not still_running():
            break
        if pending[0].probe(min(ATTEMPT_TIMEOUT, remaining)):
            pending.pop(0)
            continue
        sleep(min(RETRY_PAUSE, max(deadline - clock(), 0)))
    return Waited(seconds=clock() - started, pending=tuple(c.description for c in pending))


# --- ownership -------------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def owner_token(pid: int | None = None) -> str:
    """``<pid>:<start time>`` of this process (or ``pid``): survives PID reuse."""
    own = os.getpid() if pid is None else pid
    return f"{own}:{_start_time(own) or '?'}"


def owner_alive(token: str) -> bool:
    """Whether the process an owner token names still runs (same PID, same start time)."""
    pid_text, _, start = token.partition(":")
    if not pid_text.isdigit():
        return False
    current = _start_time(int(pid_text))
    return current is not None and (start in {"", "?"} or current == start)


def new_run_id() -> str:
    """A fresh run id: time, PID and randomness (fits labels.run_labels)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{_rng.getrandbits(24):06x}"


# --- the peer set ------------------------------------------------------------------------------


@dataclass
class RunningPeer:
    """A started peer: its rendering, container and how long it took to be ready."""

    rendered: RenderedPeer
    container: Container
    ready_seconds: float | None = None

    @property
    def name(self) -> str:
        return self.rendered.spec.name


def _image_reference(engine: Engine, name: str) -> str:
    spec = next(s for s in IMAGES if s.name == name)
    tag = image_tag(spec)
    if engine.image_exists(tag):
        return tag
    # An image built from another checkout's recipe still runs the same software.
    latest = f"{spec.repository}:latest"
    if engine.image_exists(latest):
        return latest
    raise SetupError(
        f"the {name} peer image is missing; build it with `sipharness images build --only {name}`"
    )


def _readiness(peer: RenderedPeer, container: Container) -> list[Readiness]:
    spec = peer.spec
    checks: list[Readiness] = []
    if spec.transport is Transport.TLS:
        assert peer.tls_ca_file is not None  # render makes one for every TLS peer
        checks.append(CompletesTls(spec.address, spec.port, peer.tls_ca_file))
        # The UDP socket on the same port carries the hops to the other peers.
        checks.append(AnswersSip(spec.address, spec.port, "udp"))
    else:
        checks.append(AnswersSip(spec.address, spec.port, spec.transport.value))
    if spec.software is Software.ASTERISK:
        # SIP answers before the dialplan is loaded; calls need both.
        checks.append(
            CommandSucceeds(
                "Asterisk is fully booted",
                lambda timeout: _exec_ok(
                    container, ["asterisk", "-rx", "core waitfullybooted"], timeout
                ),
            )
        )
    return checks


_VERSION_COMMANDS: dict[Software, list[str]] = {
    Software.KAMAILIO: ["kamailio", "-v"],  # "version: kamailio 5.6.3 (x86_64/linux)"
    Software.ASTERISK: ["asterisk", "-V"],  # "Asterisk 22.10.1"
}
_VERSION = re.compile(r"(?:kamailio|asterisk)\s+(\d+(?:\.\d+)*)", re.IGNORECASE)


def _exec(container: Container, argv: Sequence[str], timeout: float) -> tuple[int, str]:
    # exec_run has no timeout of its own: coreutils' timeout bounds the command.
    seconds = max(1, int(timeout + 0.999))
    result = container.exec_run(["timeout", str(seconds), *argv], stdout=True, stderr=True)
    output = result.output.decode(errors="replace") if result.output else ""
    return int(result.exit_code if result.exit_code is not None else -1), output


def _exec_ok(container: Container, argv: Sequence[str], timeout: float) -> bool:
    try:
        code, _ = _exec(container, argv, timeout)
    except docker.errors.APIError:
        return False
    return code == 0


class Peers:
    """The running peers of one run; a context manager that always cleans up.

    ``number`` is the effective number to use against them; ``rendered`` says what
    was rendered; :attr:`startup_seconds` how long start-up took (run to ready).
    """

    def __init__(
        self,
        rendered: RenderedRun,
        *,
        engine: Engine | None = None,
        run_id: str | None = None,
        deadline: float = DEFAULT_DEADLINE,
        detached: bool = False,
        remove_folder: bool = True,
    ) -> None:
        self.rendered = rendered
        self.run_id = run_id or new_run_id()
        self.deadline = deadline
        self.detached = detached
        self.remove_folder = remove_folder
        self._engine = engine
        self._own_engine = engine is None
        self._versions: dict[str, str] | None = None
        self.running: list[RunningPeer] = []
        self.startup_seconds: float | None = None

    # -- public ------------------------------------------------------------------

    @property
    def number(self) -> NumberConfig:
        """The effective number (the profile's overlay applied)."""
        return self.rendered.number

    @property
    def profile(self) -> Profile:
        return self.rendered.profile

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine.connect()
        return self._engine

    def peer(self, name: str) -> RunningPeer:
        """The running peer called ``name`` (KeyError when there is none)."""
        for running in self.running:
            if running.name == name:
                return running
        raise KeyError(name)

    def labels_for(self, peer: RenderedPeer) -> dict[str, str]:
        """The labels a peer's container carries."""
        result = {
            **labels.run_labels(self.run_id),
            OWNER: owner_token(),
            HOST: socket.gethostname(),
            PEER: peer.spec.name,
            PROFILE: self.profile.name,
            FOLDER: str(self.rendered.folder),
        }
        if self.detached:
            result[DETACHED] = "1"
        return result

    def start(self) -> Peers:
        """Start every peer and wait until all are ready.

        Raises :class:`PeerStartError` with the failing peer's logs when one exits or is
        not ready by the deadline, :class:`SetupError` when an image is missing or the
        engine refuses; in every failure case (Ctrl-C included) all is removed first.
        """
        started = time.monotonic()
        try:
            references = {
                p.image: _image_reference(self.engine, p.image) for p in self.rendered.peers
            }
            for peer in self.rendered.peers:
                self.running.append(RunningPeer(peer, self._run(peer, references[peer.image])))
            deadline = started + self.deadline
            for running in self.running:
                waited = wait_ready(
                    _readiness(running.rendered, running.container),
                    deadline=deadline,
                    still_running=partial(self._is_running, running),
                )
                if not waited.ready:
                    self._fail(running, waited)
                running.ready_seconds = time.monotonic() - started
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Remove every container of the run and the rendered folder. Safe to repeat."""
        errors: list[str] = []
        try:
            removed = remove_runs(self.engine, run_id=self.run_id, include_detached=True)
            del removed
        except HarnessError as err:
            errors.append(str(err))
        self.running.clear()
        if self.remove_folder:
            shutil.rmtree(self.rendered.folder, ignore_errors=True)
        if self._own_engine and self._engine is not None:
            self._engine.close()
            self._engine = None
        if errors:
            raise SetupError(f"removing the peers of run {self.run_id} failed: {errors[0]}")

    def logs(self, peer: str | None = None, *, tail: int = 200) -> dict[str, str]:
        """The last ``tail`` log lines of each peer (or of ``peer``), by peer name."""
        chosen = [r for r in self.running if peer is None or r.name == peer]
        if peer is not None and not chosen:
            raise KeyError(peer)
        return {r.name: _container_logs(r.container, tail) for r in chosen}

    def versions(self) -> dict[str, str]:
        """``{peer name: "kamailio 5.6.3"}`` for each running Kamailio and Asterisk,
        asked of the software itself (once; a peer that does not say is left out)."""
        if self._versions is None:
            found: dict[str, str] = {}
            for running in self.running:
                software = running.rendered.spec.software
                argv = _VERSION_COMMANDS.get(software)
                if argv is None:
                    continue
                try:
                    code, text = _exec(running.container, argv, 5.0)
                except docker.errors.APIError:
                    continue
                match = _VERSION.search(text)
                if code == 0 and match:
                    found[running.name] = f"{software.value} {match.group(1)}"
            self._versions = found
        return dict(self._versions)

    def originate(self, to: str | None = None, *, timeout: float = ORIGINATE_TIMEOUT) -> str:
        """Make the carrier call the customer; returns Asterisk's answer text.

        ``pbx`` profiles call the registered extension (``to`` defaults to the number's
        username); ``media`` peers call ``to`` (default: the number's username when it
        registers, else its phone number) through their Kamailio, which sends it to the
        registered contact (registrar) or to the origination URI (trunk). The call is
        answered on the far side by whatever the customer runs; the peer plays Echo.
        Raises :class:`SetupError` when the profile has no Asterisk peer or Asterisk
        refuses the command.
        """
        asterisk = [r for r in self.running if r.rendered.spec.software is Software.ASTERISK]
        if not asterisk:
            raise SetupError(f"profile {self.profile.name} has no Asterisk peer to originate from")
        running = asterisk[0]
        number = self.number
        target = to or number.username or number.phone_number
        if running.rendered.spec.role is Role.PBX:
            dial = f"PJSIP/{target}"
        else:
            dial = f"PJSIP/{target}@carrier"
        command = f"channel originate {dial} application Echo"
        try:
            code, output = _exec(running.container, ["asterisk", "-rx", command], timeout)
        except docker.errors.APIError as err:
            raise SetupError(f"originate on {running.name} failed: {err.explanation}") from err
        text = " ".join(output.split())
        # `channel originate` is asynchronous and silent when it accepts the call.
        if code != 0 or text:
            raise SetupError(f"originate on {running.name} failed ({code}): {text[:200]}")
        return text

    def __enter__(self) -> Peers:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------

    def _run(self, peer: RenderedPeer, image: str) -> Container:
        mounts = [
            DockerMount(target=m.target, source=str(m.source), type="bind", read_only=m.read_only)
            for m in peer.mounts
        ]
        try:
            container: Container = self.engine.client.containers.run(
                image, list(peer.command), name=f"sipharness-{self.run_id}-{peer.spec.name}",
                detach=True, network_mode="host", labels=self.labels_for(peer),
                mounts=mounts, stdin_open=False, tty=False,
            )  # fmt: skip
        except (docker.errors.DockerException, requests.RequestException) as err:
            raise SetupError(f"starting peer {peer.spec.name} failed: {_explain(err)}") from err
        return container

    def _is_running(self, running: RunningPeer) -> bool:
        try:
            running.container.reload()
        except docker.errors.NotFound:
            return False
        return str(running.container.status) in {"created", "running"}

    def _fail(self, running: RunningPeer, waited: Waited) -> None:
        exited = not self._is_running(running)
        logs = {r.name: _container_logs(r.container, LOG_TAIL) for r in self.running}
        reason = "exited" if exited else f"was not ready within {self.deadline:.0f} s"
        spec = running.rendered.spec
        last = [line for line in logs.get(running.name, "").splitlines() if line.strip()]
        hint = f"; last log line: {last[-1].strip()[:160]}" if last else ""
        raise PeerStartError(
            f"peer {running.name} ({spec.software.value} {spec.role.value} on "
            f"{spec.transport.value}:{spec.address}:{spec.port}) {reason}; "
            f"not done: {', '.join(waited.pending)}{hint}",
            logs,
        )


def _explain(err: BaseException) -> str:
    explanation = getattr(err, "explanation", None)
    return " ".join(str(explanation or err).split())[:300]


def _container_logs(container: Container, tail: int) -> str:
    try:
        raw: bytes = container.logs(stdout=True, stderr=True, tail=tail)
    except docker.errors.DockerException as err:
        return f"(no logs: {_explain(err)})"
    return raw.decode(errors="replace")


def start_peers(
    profile: Profile,
    number: NumberConfig,
    *,
    quirks: Sequence[Quirk | str] | None = None,
    allowed_sources: Sequence[str] | None = None,
    base: int = 0,
    port_offset: int = 0,
    log_requests: bool = False,
    deadline: float = DEFAULT_DEADLINE,
    detached: bool = False,
    engine: Engine | None = None,
    run_id: str | None = None,
) -> Peers:
    """Render ``profile`` for ``number`` into a private temporary folder and start it.

    Returns the started :class:`Peers` (use it as a context manager so it is removed).
    Arguments as for :func:`~harness.peers.render.render_run` and :class:`Peers`.
    """
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    try:
        rendered = render_run(
            profile, number, folder, quirks=quirks, allowed_sources=allowed_sources,
            base=base, port_offset=port_offset, log_requests=log_requests,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    peers = Peers(rendered, engine=engine, run_id=run_id, deadline=deadline, detached=detached)
    return peers.start()


# --- leftovers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagedContainer:
    """A harness container as the engine reports it."""

    name: str
    run_id: str
    peer: str
    profile: str
    status: str
    detached: bool
    owner: str
    host: str
    folder: str


def managed_containers(engine: Engine, *, run_id: str | None = None) -> list[ManagedContainer]:
    """Every harness container (of one run when ``run_id`` is given), running or not."""
    try:
        found = engine.client.containers.list(
            all=True, filters=labels.run_filter(run_id), ignore_removed=True
        )
    except (docker.errors.DockerException, requests.RequestException) as err:
        raise SetupError(f"listing the harness's containers failed: {_explain(err)}") from err
    result = []
    for container in found:
        tags: dict[str, str] = dict(container.labels or {})
        item = ManagedContainer(
            name=str(container.name), run_id=tags.get(labels.RUN, ""),
            peer=tags.get(PEER, ""), profile=tags.get(PROFILE, ""),
            status=str(container.status), detached=tags.get(DETACHED) == "1",
            owner=tags.get(OWNER, ""), host=tags.get(HOST, ""), folder=tags.get(FOLDER, ""),
        )  # fmt: skip
        result.append(item)
    return sorted(result, key=lambda c: (c.run_id, c.name))


def _remove(engine: Engine, chosen: Sequence[ManagedContainer]) -> list[str]:
    removed: list[str] = []
    failures: list[str] = []
    folders: set[str] = set()
    for item in chosen:
        try:
            engine.client.containers.get(item.name).remove(force=True)
        except docker.errors.NotFound:
            pass  # Already gone (a concurrent stop): the goal is reached.
        except (docker.errors.DockerException, requests.RequestException) as err:
            failures.append(f"{item.name}: {_explain(err)}")
            continue
        removed.append(item.name)
        if item.folder:
            folders.add(item.folder)
    for folder in folders:
        path = Path(folder)
        # Only folders this module made (a label cannot make it delete anything else).
        if path.name.startswith(FOLDER_PREFIX) and path.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(path, ignore_errors=True)
    if failures:
        raise SetupError(f"could not remove {len(failures)} container(s): {failures[0]}")
    return removed


def remove_runs(
    engine: Engine, *, run_id: str | None = None, include_detached: bool = True
) -> list[str]:
    """Remove the harness's containers (of one run when given); returns their names."""
    chosen = [
        c for c in managed_containers(engine, run_id=run_id) if include_detached or not c.detached
    ]
    return _remove(engine, chosen)


def reap_leftovers(engine: Engine, *, everything: bool = False) -> list[str]:
    """Remove containers whose owning process is gone; returns their names.

    A container is a leftover when it was started on this host, is not detached and
    the process named by its owner label no longer runs (checked by PID and start
    time, so a reused PID does not keep it alive). ``everything`` removes every
    harness container instead, detached ones included.
    """
    here = socket.gethostname()
    chosen = [
        c
        for c in managed_containers(engine)
        if everything or (not c.detached and c.host == here and not owner_alive(c.owner))
    ]
    return _remove(engine, chosen)


@contextlib.contextmanager
def running_peers(profile: Profile, number: NumberConfig, **options: Any) -> Iterator[Peers]:
    """``with running_peers(profile, number) as peers:`` — start, yield, always remove."""
    peers = start_peers(profile, number, **options)
    try:
        yield peers
    finally:
        peers.stop()
