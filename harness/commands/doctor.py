"""``sipharness doctor [--json]``: is this machine ready to run the harness?

Each check is a line ``OK``, ``MISSING`` or ``OPTIONAL`` (missing, but the harness
works without it: the compiled modules) with a sentence saying how to fix it. The
command exits 0 when every check but the optional ones passes and 1 otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import asdict, dataclass
from typing import Annotated

import typer

from harness import accel
from harness.commands.common import EXIT_FAILURE, print_json, user_errors
from harness.peers.engine import Engine, EngineUnavailable
from harness.peers.images import IMAGES, image_tag

_ETH_P_ALL = 0x0003


@dataclass(frozen=True)
class Check:
    """One readiness check: ``fix`` is empty when ``ok``.

    An ``optional`` check that fails is shown (``OPTIONAL``) but does not make the
    command fail: the harness works without it, only slower or with less.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    optional: bool = False


def check_engine() -> tuple[Check, Engine | None]:
    """Whether a Docker engine answers; the engine is returned for the image checks."""
    try:
        engine = Engine.connect()
    except EngineUnavailable as err:
        return Check("docker engine", False, err.problem, err.fix), None
    return Check("docker engine", True, f"Docker {engine.version()} at {engine.where}"), engine


def check_images(engine: Engine | None) -> list[Check]:
    """One check per default image: present with the tag of its current recipe."""
    checks = []
    for spec in IMAGES:
        if not spec.default:
            continue
        tag = image_tag(spec)
        name = f"image {spec.name}"
        if engine is None:
            checks.append(Check(name, False, f"{tag}: no engine to ask", "start the engine first"))
        elif engine.image_exists(tag):
            checks.append(Check(name, True, tag))
        else:
            checks.append(
                Check(name, False, f"{tag} is not built", "run `sipharness images build`")
            )
    return checks


def check_capture() -> Check:
    """Whether this process may capture packets (root or CAP_NET_RAW)."""
    name = "packet capture"
    family = getattr(socket, "AF_PACKET", None)
    if family is None:
        return Check(name, False, "this platform has no AF_PACKET sockets", "run on Linux")
    try:
        probe = socket.socket(family, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    except PermissionError:
        return Check(
            name,
            False,
            "opening a raw packet socket is not permitted",
            "run as root, or grant the capability: "
            "setcap cap_net_raw,cap_net_admin=eip $(readlink -f .venv/bin/python)",
        )
    except OSError as err:
        return Check(name, False, f"cannot open a raw packet socket: {err.strerror}", "run as root")
    probe.close()
    who = "root" if os.geteuid() == 0 else "CAP_NET_RAW"
    return Check(name, True, f"raw packet socket allowed ({who})")


def check_program(program: str, package: str, purpose: str) -> Check:
    """Whether ``program`` is on PATH."""
    path = shutil.which(program)
    if path is not None:
        return Check(program, True, path)
    return Check(
        program,
        False,
        f"{program} not found on PATH ({purpose})",
        f"install it: apt-get install {package}",
    )


def check_compiled() -> Check:
    """Whether the compiled (mypyc) decoder and checks are in use; see harness.accel."""
    state = accel.status()
    if state.active:
        return Check("compiled modules", True, state.reason)
    problem = accel.missing_toolchain()
    fix = (
        f"optional, for speed: {problem}, then run ./bootstrap.sh setup"
        if problem
        else "optional, for speed: run ./bootstrap.sh setup (or python -m harness.build_accel)"
    )
    return Check("compiled modules", False, state.reason, fix, optional=True)


def run_checks() -> list[Check]:
    """Every readiness check, in the order they are shown."""
    engine_check, engine = check_engine()
    try:
        checks = [engine_check, *check_images(engine)]
    finally:
        if engine is not None:
            engine.close()
    checks.append(check_capture())
    checks.append(check_program("tshark", "tshark", "RTP statistics"))
    checks.append(check_program("sipp", "sip-tester", "load scenarios on the host"))
    checks.append(check_compiled())
    return checks


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
) -> None:
    """Check that this machine can run the harness: engine, images, capture, tools."""
    with user_errors():
        checks = run_checks()
    if as_json:
        print_json([asdict(check) for check in checks])
    else:
        for check in checks:
            status = "OK" if check.ok else "OPTIONAL" if check.optional else "MISSING"
            line = f"{status:<8} {check.name:<16} {check.detail}"
            if check.fix:
                line = f"{line} — {check.fix}"
            typer.echo(line)
    if not all(check.ok or check.optional for check in checks):
        raise typer.Exit(code=EXIT_FAILURE)


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to ``app``."""
    app.command("doctor")(doctor)
