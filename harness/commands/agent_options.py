"""Options and output shared by the agent commands (options, register, call, answer).

Output contract: with ``--json`` stdout holds one JSON object (the result, with its
``events``); otherwise a readable summary.  A failed SIP outcome also prints one
``error: ...`` line on stderr and exits 1; bad input or a setup error exits 2 with
one line and no traceback (:func:`harness.commands.common.user_errors`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.agent.runner import AgentSettings, Outcome, render_text
from harness.commands.common import EXIT_FAILURE, print_json, user_errors
from harness.numbers import NumberConfig, load_number_file

FileArg = Annotated[Path, typer.Argument(help="The number file (YAML).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
LocalIpOpt = Annotated[
    str | None,
    typer.Option(
        "--local-ip",
        help="Local address to bind (default: the source address the OS uses to reach "
        "the target; for answer: the origination URI's host).",
        show_default=False,
    ),
]
LocalPortOpt = Annotated[
    int, typer.Option("--local-port", min=0, max=65535, help="Local port (0: any free port).")
]
T1Opt = Annotated[
    float | None,
    typer.Option(
        "--t1",
        min=0.001,
        help="SIP T1 in seconds (default 0.5); transactions time out after 64*T1.",
        show_default=False,
    ),
]
CaFileOpt = Annotated[
    Path | None,
    typer.Option("--ca-file", help="TLS: trust only this CA bundle.", show_default=False),
]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="TLS: do not verify the peer's certificate.")
]


def settings(
    *,
    local_ip: str | None,
    local_port: int,
    t1: float | None,
    ca_file: Path | None = None,
    insecure: bool = False,
) -> AgentSettings:
    return AgentSettings(
        local_ip=local_ip, local_port=local_port, t1=t1, ca_file=ca_file, verify=not insecure
    )


def run_command(file: Path, as_json: bool, operation: Any) -> None:
    """Load ``file``, run ``operation(config)`` (a coroutine factory), print, exit.

    Exit 0 on success, 1 on a failed SIP outcome, 2 on bad input or setup errors.
    """
    with user_errors():
        config: NumberConfig = load_number_file(file)
        coro: Coroutine[Any, Any, Outcome] = operation(config)
        outcome = asyncio.run(coro)
    if as_json:
        print_json(outcome.to_dict())
    else:
        typer.echo(render_text(outcome))
    if not outcome.success:
        error = getattr(outcome.result, "error", None) or "the SIP outcome is a failure"
        typer.echo(f"error: {' '.join(str(error).split())}", err=True)
        raise typer.Exit(code=EXIT_FAILURE)
