"""``sipharness options FILE``: OPTIONS ping to the number's target (proxy or domain)."""

from __future__ import annotations

import typer

from harness.agent.runner import run_options
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
    """Add the ``options`` command to ``app``."""
    app.command("options")(options)


def options(
    file: FileArg,
    *,
    as_json: JsonOpt = False,
    local_ip: LocalIpOpt = None,
    local_port: LocalPortOpt = 0,
    t1: T1Opt = None,
    ca_file: CaFileOpt = None,
    insecure: InsecureOpt = False,
) -> None:
    """Send OPTIONS to the number's target; exit 0 on a 2xx, 1 otherwise, 2 on bad input."""
    agent_settings = settings(
        local_ip=local_ip, local_port=local_port, t1=t1, ca_file=ca_file, insecure=insecure
    )
    run_command(file, as_json, lambda config: run_options(config, agent_settings))
