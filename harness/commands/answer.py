"""``sipharness answer FILE [--calls N] [--timeout S] [--reject CODE]``: the inbound UAS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.agent.runner import run_answer
from harness.commands.agent_options import (
    FileArg,
    JsonOpt,
    LocalIpOpt,
    LocalPortOpt,
    T1Opt,
    run_command,
    settings,
)


def register(app: typer.Typer) -> None:
    """Add the ``answer`` command to ``app``."""
    app.command("answer")(answer)


def answer(
    file: FileArg,
    *,
    as_json: JsonOpt = False,
    calls: Annotated[int, typer.Option("--calls", min=1, help="Calls to take.")] = 1,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Give up after this many seconds.")
    ] = 60.0,
    reject: Annotated[
        int | None,
        typer.Option(
            "--reject", help="Reject every call with this status (e.g. 486).", show_default=False
        ),
    ] = None,
    ring: Annotated[
        float, typer.Option("--ring", min=0.0, help="Seconds of ringing before answering.")
    ] = 0.0,
    hangup_after: Annotated[
        float | None,
        typer.Option(
            "--hangup-after",
            min=0.0,
            help="Send BYE this long after answering (default: wait for the caller's).",
            show_default=False,
        ),
    ] = None,
    cert: Annotated[
        Path | None, typer.Option("--cert", help="TLS certificate (PEM).", show_default=False)
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="TLS private key (PEM).", show_default=False)
    ] = None,
    local_ip: LocalIpOpt = None,
    local_port: LocalPortOpt = 0,
    t1: T1Opt = None,
) -> None:
    """Listen at the number's origination URI and answer (or reject) inbound calls."""
    agent_settings = settings(local_ip=local_ip, local_port=local_port, t1=t1)
    run_command(
        file,
        as_json,
        lambda config: run_answer(
            config,
            agent_settings,
            calls=calls,
            timeout=timeout,
            reject=reject,
            ring=ring,
            hangup_after=hangup_after,
            cert_file=cert,
            key_file=key,
        ),
    )
