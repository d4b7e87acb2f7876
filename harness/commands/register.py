"""``sipharness register FILE [--expires S] [--hold S] [--unregister]``."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.agent.register import DEFAULT_EXPIRES
from harness.agent.runner import run_register
from harness.commands.agent_options import (
    CaFileOpt,
    FileArg,
    InsecureOpt,
    JsonOpt,
    LocalIpOpt,
    LocalPortOpt,
    T1Opt,
    run_command,
    settings,
)


def register(app: typer.Typer) -> None:
    """Add the ``register`` command to ``app``."""
    app.command("register")(register_command)


def register_command(
    file: FileArg,
    *,
    as_json: JsonOpt = False,
    expires: Annotated[
        int, typer.Option("--expires", min=1, help="Expiry to ask for, in seconds.")
    ] = DEFAULT_EXPIRES,
    hold: Annotated[
        float,
        typer.Option(
            "--hold", min=0.0, help="Keep the registration this long, refreshing it (seconds)."
        ),
    ] = 0.0,
    unregister: Annotated[
        bool,
        typer.Option("--unregister", help="Remove the binding at the end (Expires: 0)."),
    ] = False,
    local_ip: LocalIpOpt = None,
    local_port: LocalPortOpt = 0,
    t1: T1Opt = None,
    ca_file: CaFileOpt = None,
    insecure: InsecureOpt = False,
) -> None:
    """Register the number (digest, 423, refreshes); exit 0 registered, 1 failed, 2 bad input."""
    agent_settings = settings(
        local_ip=local_ip, local_port=local_port, t1=t1, ca_file=ca_file, insecure=insecure
    )
    run_command(
        file,
        as_json,
        lambda config: run_register(
            config, agent_settings, expires=expires, hold=hold, unregister=unregister
        ),
    )
