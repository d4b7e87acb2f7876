"""Run SIPp as a real SIP peer for interop tests.

:class:`SippPeer` is a context manager around one ``sipp`` process:

* entering starts SIPp (no shell, stdin from /dev/null, screen output to a log file)
  with message and error tracing, ``-m calls``, ``-timeout`` and ``-timeout_error``, and
  returns once SIPp's SIP port is bound on ``local_ip`` (read from ``/proc/net``);
* leaving waits for SIPp to finish within ``timeout_s`` plus a grace period (or at
  once, when the ``with`` body raised), then terminates and finally kills it. SIPp is
  never left running, whatever happens in the body;
* afterwards :attr:`SippPeer.returncode`, :attr:`SippPeer.messages_log`,
  :attr:`SippPeer.error_log`, :attr:`SippPeer.output` and :meth:`SippPeer.messages`
  say what happened.

SIPp's exit codes: 0 every call succeeded, 1 at least one call failed, 97 stopped by
an internal command, 99 ended without processing a call, 255 a fatal error, which
includes reaching ``-timeout`` with ``-timeout_error`` (measured with SIPp 3.6.1),
254 it could not bind its socket.

The parser relies on SIPp's ``-message_file`` format (checked against SIPp 3.6.1)::

    ----------------------------------------------- 2024-01-01 10:00:00.000000
    UDP message received [522] bytes :
    <blank line>
    <exactly 522 bytes of the message>

and ``... message sent (318 bytes):`` for sent messages, ``TCP`` for stream
transports. The byte count delimits the message, so bodies are kept exactly.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

from harness.sip.message import Headers

Transport = Literal["u1", "t1", "tn"]
Direction = Literal["received", "sent"]

#: Folder of the scenarios shipped next to this module.
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

#: How long SIPp gets to bind its port after starting.
DEFAULT_START_TIMEOUT_S = 5.0
#: Time allowed past SIPp's own -timeout before it is terminated on exit.
EXIT_GRACE_S = 3.0
#: Time between terminate and kill.
KILL_GRACE_S = 2.0
#: Interval between two reads of /proc/net while waiting for the port.
_POLL_INTERVAL_S = 0.01

_SOCKET_BUFFER = "4194304"

_HEADER_RE = re.compile(
    rb"-{10,} (?P<ts>[^\n]*)\n"
    rb"(?P<transport>[A-Za-z0-9]+) message (?P<dir>received|sent) "
    rb"(?:\[(?P<received_len>\d+)\] bytes :|\((?P<sent_len>\d+) bytes\):)\n\n"
)


class SippError(RuntimeError):
    """SIPp could not be started, or did not become ready in time."""


def sipp_binary() -> str | None:
    """Path of the ``sipp`` executable on PATH, or None when SIPp is not installed."""
    return shutil.which("sipp")


def scenario(name: str) -> Path:
    """Path of a shipped scenario, by file name (``"registrar_auth.xml"``).

    Raises FileNotFoundError naming the folder when there is no such scenario.
    """
    path = SCENARIO_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"no SIPp scenario {name!r} in {SCENARIO_DIR}")
    return path


def free_port(ip: str, *, kinds: Sequence[Literal["udp", "tcp"]] = ("udp", "tcp")) -> int:
    """A port that is free on ``ip`` for every socket kind in ``kinds`` right now.

    The kernel picks the port; it is released before returning, so another process
    could take it in between: use distinct addresses per test to make that moot.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, _socktype(kinds[0])) as first:
            first.bind((ip, 0))
            port: int = first.getsockname()[1]
            if all(_can_bind(ip, port, kind) for kind in kinds[1:]):
                return port
    raise SippError(f"found no port free for {'+'.join(kinds)} on {ip}")


def _socktype(kind: Literal["udp", "tcp"]) -> socket.SocketKind:
    return socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM


def _can_bind(ip: str, port: int, kind: Literal["udp", "tcp"]) -> bool:
    with socket.socket(socket.AF_INET, _socktype(kind)) as probe:
        try:
            probe.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _proc_net_address(ip: str, port: int) -> str:
    """The ``local_address`` column of /proc/net/{udp,tcp} for an IPv4 address."""
    # The kernel prints the address as a native-endian 32-bit integer in hex.
    packed = int.from_bytes(socket.inet_aton(ip), sys.byteorder)
    return f"{packed:08X}:{port:04X}"


def _socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets process ``pid`` holds open (empty if unreadable)."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue  # closed since listing
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def port_is_bound(
    ip: str, port: int, kind: Literal["udp", "tcp"], *, pid: int | None = None
) -> bool:
    """Whether a socket is bound to ``ip:port`` (UDP) or listens there (TCP).

    With ``pid``, only that process's sockets count, so a port some other process
    holds is not mistaken for SIPp's. Reads /proc/net on Linux; elsewhere falls
    back to a bind attempt (which ignores ``pid`` and can race with the process
    it probes for).
    """
    table = Path("/proc/net") / kind
    if not table.exists():
        return not _can_bind(ip, port, kind)
    wanted = {_proc_net_address(ip, port), _proc_net_address("0.0.0.0", port)}
    owned = _socket_inodes(pid) if pid is not None else None
    for line in table.read_text().splitlines()[1:]:
        # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        fields = line.split()
        if len(fields) < 10 or fields[1] not in wanted:
            continue
        if owned is not None and fields[9] not in owned:
            continue
        # TCP state 0A is LISTEN; a UDP socket only needs to be bound.
        if kind == "udp" or fields[3] == "0A":
            return True
    return False


@dataclass(frozen=True)
class SippMessage:
    """One SIP message SIPp logged as received or sent.

    ``raw`` is the message exactly as logged; ``headers`` holds the header fields in
    order with canonical names (folded lines joined), so ``headers.get_all("Route")``
    works whatever spelling the sender used.
    """

    direction: Direction
    transport: str
    timestamp: str
    raw: bytes

    @property
    def _head_and_body(self) -> tuple[str, bytes]:
        head, sep, body = self.raw.partition(b"\r\n\r\n")
        if not sep:
            head, _, body = self.raw.partition(b"\n\n")
        return head.decode("utf-8", errors="replace"), body

    @property
    def start_line(self) -> str:
        return self._head_and_body[0].splitlines()[0] if self.raw else ""

    @property
    def headers(self) -> Headers:
        lines = self._head_and_body[0].splitlines()[1:]
        fields: list[tuple[str, str]] = []
        for line in lines:
            if line[:1] in (" ", "\t") and fields:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}")
                continue
            name, sep, value = line.partition(":")
            if sep:
                fields.append((name.strip(), value.strip()))
        return Headers(fields)

    @property
    def body(self) -> bytes:
        return self._head_and_body[1]

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/")

    @property
    def method(self) -> str | None:
        """The request method, or None for a response."""
        return self.start_line.split(" ", 1)[0] if self.is_request else None

    @property
    def request_uri(self) -> str | None:
        """The Request-URI as written, or None for a response."""
        if not self.is_request:
            return None
        parts = self.start_line.split(" ")
        return parts[1] if len(parts) >= 3 else None

    @property
    def status_code(self) -> int | None:
        """The status code, or None for a request."""
        if self.is_request:
            return None
        parts = self.start_line.split(" ", 2)
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None

    @property
    def cseq_method(self) -> str | None:
        """The method named in CSeq (which request a response answers)."""
        cseq = self.headers.get("CSeq")
        parts = cseq.split() if cseq else []
        return parts[1] if len(parts) == 2 else None

    def is_(self, what: str | int) -> bool:
        """Whether this is a request of method ``what`` (str) or a response of that code."""
        if isinstance(what, int):
            return self.status_code == what
        return self.method == what


def parse_message_log(data: bytes) -> list[SippMessage]:
    """Split a SIPp ``-message_file`` into its messages, in log order.

    Entries that are not SIP message traces are skipped.
    """
    messages: list[SippMessage] = []
    pos = 0
    while (match := _HEADER_RE.search(data, pos)) is not None:
        length = int(match["received_len"] or match["sent_len"])
        start = match.end()
        raw = data[start : start + length]
        direction: Direction = "received" if match["dir"] == b"received" else "sent"
        messages.append(
            SippMessage(
                direction=direction,
                transport=match["transport"].decode("ascii"),
                timestamp=match["ts"].decode("ascii", errors="replace").strip(),
                raw=raw,
            )
        )
        pos = start + len(raw)
    return messages


def digest_response_ok(
    authorization: str, *, method: str, password: str, username: str | None = None
) -> bool:
    """Whether an MD5 Digest ``Authorization``/``Proxy-Authorization`` value is right.

    Recomputes the response of RFC 2617 §3.2.2 (with or without ``qop=auth``) from the
    header's own parameters and ``password``; when ``username`` is given the header's
    username must equal it. For checks SIPp's ``verifyauth`` cannot do (it reads only
    ``Authorization``).
    """
    pairs: list[tuple[str, str]] = re.findall(r'([A-Za-z-]+)=("[^"]*"|[^,\s]+)', authorization)
    params = {key.lower(): value.strip('"') for key, value in pairs}
    if username is not None and params.get("username") != username:
        return False
    if params.get("algorithm", "MD5").upper() != "MD5":
        return False

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    ha1 = md5(f"{params.get('username', '')}:{params.get('realm', '')}:{password}")
    ha2 = md5(f"{method}:{params.get('uri', '')}")
    if "qop" in params:
        expected = md5(
            f"{ha1}:{params.get('nonce', '')}:{params.get('nc', '')}:"
            f"{params.get('cnonce', '')}:{params['qop']}:{ha2}"
        )
    else:
        expected = md5(f"{ha1}:{params.get('nonce', '')}:{ha2}")
    return params.get("response", "").lower() == expected


class SippPeer:
    """One SIPp process playing ``scenario``; use it as a context manager.

    ``transport`` is SIPp's ``-t`` (``u1`` UDP, ``t1`` one TCP connection, ``tn`` one
    per call); ``remote`` (``host:port``) makes SIPp a client of that address;
    ``keys`` become ``-key name value`` (the ``[name]`` keywords of the scenarios);
    ``calls`` is ``-m``; ``timeout_s`` is SIPp's global ``-timeout`` (rounded up to
    whole seconds, as SIPp counts them), after which SIPp fails (``-timeout_error``).
    Logs go to ``log_dir`` (kept) or to a temporary folder that is removed on exit
    once its content has been read into this object.
    """

    def __init__(
        self,
        scenario: Path,
        *,
        local_ip: str,
        local_port: int,
        transport: Transport = "u1",
        remote: str | None = None,
        extra_args: Sequence[str] = (),
        keys: Mapping[str, str] | None = None,
        calls: int = 1,
        timeout_s: float = 10.0,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        log_dir: Path | None = None,
        wait_for_port: bool = True,
    ) -> None:
        if not scenario.is_file():
            raise FileNotFoundError(f"SIPp scenario {scenario} does not exist")
        self.scenario = scenario
        self.local_ip = local_ip
        self.local_port = local_port
        self.transport: Transport = transport
        self.remote = remote
        self.extra_args = list(extra_args)
        self.keys = dict(keys or {})
        self.calls = calls
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.wait_for_port = wait_for_port
        self._log_dir = log_dir
        self._own_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: BinaryIO | None = None
        self.returncode: int | None = None
        #: True when the runner had to terminate or kill SIPp (its exit code then
        #: says nothing about the calls).
        self.stopped_by_runner = False
        self.messages_raw: bytes = b""
        self.error_log: str = ""
        self.output: str = ""
        self.command: list[str] = []

    # --- paths -------------------------------------------------------------------
    @property
    def log_dir(self) -> Path:
        """Folder holding this run's logs (only until exit when it is temporary)."""
        if self._log_dir is not None:
            return self._log_dir
        if self._own_dir is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="sipp-"))
        return self._own_dir

    @property
    def _stem(self) -> str:
        return f"{self.scenario.stem}-{self.local_ip}-{self.local_port}"

    @property
    def message_file(self) -> Path:
        return self.log_dir / f"{self._stem}.messages.log"

    @property
    def error_file(self) -> Path:
        return self.log_dir / f"{self._stem}.errors.log"

    @property
    def output_file(self) -> Path:
        return self.log_dir / f"{self._stem}.output.log"

    def build_command(self, binary: str) -> list[str]:
        """The argument vector SIPp is started with."""
        args = [
            binary,
            "-sf",
            str(self.scenario),
            "-t",
            self.transport,
            "-i",
            self.local_ip,
            "-p",
            str(self.local_port),
            "-m",
            str(self.calls),
            # SIPp keeps whole seconds of -timeout, and 0 means "never" (3.6.1).
            "-timeout",
            f"{max(1, math.ceil(self.timeout_s))}s",
            "-timeout_error",
            "-nostdin",
            "-buff_size",
            _SOCKET_BUFFER,
            "-trace_msg",
            "-message_file",
            str(self.message_file),
            "-trace_err",
            "-error_file",
            str(self.error_file),
        ]
        if "-cp" not in self.extra_args:
            # SIPp's control socket listens on 0.0.0.0:8888 by default; parallel runs
            # would compete for it, so each run gets a port of its own.
            args += ["-cp", str(free_port("0.0.0.0", kinds=("udp",)))]
        for name, value in self.keys.items():
            args += ["-key", name, value]
        args += self.extra_args
        if self.remote is not None:
            args.append(self.remote)
        return args

    # --- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> SippPeer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # When the body failed there is nothing left to wait for: stop SIPp now.
        if exc_type is not None:
            self.stop(wait_s=0.0)
            return
        self.stop()
        if self.stopped_by_runner:
            raise SippError(
                f"SIPp did not end within its {self.timeout_s}s timeout; stopped\n{self.describe()}"
            )

    def start(self) -> None:
        """Start SIPp and return once its port is bound (when ``wait_for_port``).

        Raises :class:`SippError` with SIPp's output when it exits early or its
        port is not bound within ``start_timeout_s``; SIPp is stopped first.
        """
        binary = sipp_binary()
        if binary is None:
            raise SippError("sipp is not on PATH (Debian package sip-tester)")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.command = self.build_command(binary)
        output = self._output = self.output_file.open("wb")
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.log_dir,
            )
        except BaseException:
            self._output = None
            output.close()
            raise
        try:
            if self.wait_for_port:
                self._wait_bound()
        except BaseException:
            self.stop(wait_s=0.0)
            raise

    def _wait_bound(self) -> None:
        assert self._proc is not None
        kind: Literal["udp", "tcp"] = "udp" if self.transport == "u1" else "tcp"
        deadline = time.monotonic() + self.start_timeout_s
        while not port_is_bound(self.local_ip, self.local_port, kind, pid=self._proc.pid):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SippError(
                    f"SIPp did not bind {kind} {self.local_ip}:{self.local_port} "
                    f"within {self.start_timeout_s}s"
                )
            # Waiting on the process both paces the polling and notices an early exit.
            try:
                code = self._proc.wait(timeout=min(_POLL_INTERVAL_S, remaining))
            except subprocess.TimeoutExpired:
                continue
            self._collect()
            raise SippError(
                f"SIPp exited with {code} before binding {self.local_ip}:{self.local_port}:\n"
                f"{self.output[-2000:]}{self.error_log[-2000:]}"
            )

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for SIPp to end by itself; its exit code.

        ``timeout_s`` defaults to what is left of SIPp's own ``-timeout`` plus a
        grace period. Raises :class:`SippError` when SIPp is still running then (it
        is stopped first).
        """
        if self._proc is None:
            raise SippError("SIPp was not started")
        if timeout_s is None:
            timeout_s = self.timeout_s + EXIT_GRACE_S
        try:
            code = self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(wait_s=0.0)
            raise SippError(f"SIPp still running after {timeout_s}s; stopped") from None
        self._collect()
        return code

    def stop(self, wait_s: float | None = None) -> None:
        """Let SIPp end within ``wait_s`` (default: its timeout plus grace), then
        terminate it, then kill it; always reaps it and reads its logs. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if wait_s is None:
            wait_s = self.timeout_s + EXIT_GRACE_S
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.stopped_by_runner = True
            proc.terminate()
            try:
                proc.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=KILL_GRACE_S)
        finally:
            if proc.poll() is None:
                self.stopped_by_runner = True
                proc.kill()
                proc.wait(timeout=KILL_GRACE_S)
            self._collect()

    def _collect(self) -> None:
        """Record the exit code and read the logs; remove a temporary log folder."""
        proc = self._proc
        if proc is None:
            return
        self.returncode = proc.returncode
        if self._output is not None:
            self._output.close()
            self._output = None
        if self.message_file.exists():
            self.messages_raw = self.message_file.read_bytes()
        if self.error_file.exists():
            self.error_log = self.error_file.read_text(errors="replace")
        if self.output_file.exists():
            self.output = self.output_file.read_text(errors="replace")
        if self._own_dir is not None:
            # The logs now live in this object; the paths keep naming the old folder.
            shutil.rmtree(self._own_dir, ignore_errors=True)
        self._proc = None

    @property
    def pid(self) -> int | None:
        """SIPp's process id while it runs, else None."""
        return self._proc.pid if self._proc is not None else None

    # --- results -----------------------------------------------------------------
    @property
    def messages_log(self) -> str:
        """The ``-message_file`` text (valid after exit)."""
        return self.messages_raw.decode("utf-8", errors="replace")

    def messages(self) -> list[SippMessage]:
        """Every message SIPp logged, in order (valid after exit)."""
        return parse_message_log(self.messages_raw)

    def received(self, what: str | int | None = None) -> list[SippMessage]:
        """Messages SIPp received; only requests of that method / responses of that code."""
        return [
            m
            for m in self.messages()
            if m.direction == "received" and (what is None or m.is_(what))
        ]

    def sent(self, what: str | int | None = None) -> list[SippMessage]:
        """Messages SIPp sent; only requests of that method / responses of that code."""
        return [
            m for m in self.messages() if m.direction == "sent" and (what is None or m.is_(what))
        ]

    def describe(self) -> str:
        """A summary for assertion messages: exit code, error log, end of the output."""
        forced = " (stopped by the runner)" if self.stopped_by_runner else ""
        ladder = "\n".join(f"  {m.direction:8} {m.start_line}" for m in self.messages())
        return (
            f"SIPp {self.scenario.name} on {self.local_ip}:{self.local_port}/{self.transport} "
            f"exit={self.returncode}{forced}\ncommand: {' '.join(self.command)}\n"
            f"messages:\n{ladder}\nerrors:\n{self.error_log[-3000:]}\n"
            f"output (end):\n{self.output[-1500:]}"
        )


def run_pair(
    server: SippPeer, client: SippPeer, *, timeout_s: float | None = None
) -> tuple[int, int]:
    """Run ``server`` then ``client`` to completion; both exit codes.

    Both processes are stopped whatever happens.
    """
    with server, client:
        client_code = client.wait(timeout_s)
        server_code = server.wait(timeout_s)
    return server_code, client_code


__all__ = [
    "SCENARIO_DIR",
    "SippError",
    "SippMessage",
    "SippPeer",
    "Transport",
    "digest_response_ok",
    "free_port",
    "parse_message_log",
    "port_is_bound",
    "run_pair",
    "scenario",
    "sipp_binary",
]
