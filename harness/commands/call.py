"""``sipharness call FILE --to NUMBER [--duration S] [--cancel-after S]``."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.agent.call import DEFAULT_NO_ANSWER_TIMEOUT
from harness.agent.runner import run_call
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
    """Add the ``call`` command to ``app``."""
    app.command("call")(call)


def call(
    file: FileArg,
    *,
    to: Annotated[str, typer.Option("--to", help="The number to call.", show_default=False)],
    as_json: JsonOpt = False,
    duration: Annotated[
        float, typer.Option("--duration", min=0.0, help="Seconds of RTP once answered.")
    ] = 5.0,
    cancel_after: Annotated[
        float | None,
        typer.Option(
            "--cancel-after",
            min=0.0,
            help="CANCEL the call if it is not answered after this many seconds.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="Give up (CANCEL) if not answered by then."),
    ] = DEFAULT_NO_ANSWER_TIMEOUT,
    local_ip: LocalIpOpt = None,
    local_port: LocalPortOpt = 0,
    t1: T1Opt = None,
    ca_file: CaFileOpt = None,
    insecure: InsecureOpt = False,
) -> None:
    """Call a number from the custom number: INVITE, RTP with echo measurement, BYE."""
    agent_settings = settings(
        local_ip=local_ip, local_port=local_port, t1=t1, ca_file=ca_file, insecure=insecure
    )
    run_command(
        file,
        as_json,
        lambda config: run_call(
            config,
            agent_settings,
            to=to,
            duration=duration,
            cancel_after=cancel_after,
            no_answer_timeout=timeout,
        ),
    )
