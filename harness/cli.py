"""The ``sipharness`` command line: thin typer commands over the library.

Exit codes, for every command: 0 success, 1 the SIP outcome (or validation) is
a failure, 2 bad input or a set-up error.  Errors are one line on stderr, never
a traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from harness import __version__

app = typer.Typer(
    name="sipharness",
    help="Prove with real SIP that a custom-number configuration registers, calls and answers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sipharness {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """sip-harness: SIP testing and diagnostics for bring-your-own-number trunks."""


def _register_commands() -> None:
    # Each command lives in its own module under harness.commands.
    from harness.commands import (  # noqa: PLC0415
        analyze,
        answer,
        call,
        checks,
        doctor,
        images,
        options,
        peers,
        probe,
        register,
        report,
        run,
        validate,
    )

    for module in (
        run,
        probe,
        analyze,
        checks,
        report,
        validate,
        options,
        register,
        call,
        answer,
        peers,
        images,
        doctor,
    ):
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()
