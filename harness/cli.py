"""The ``sipharness`` command line: thin typer commands over the library.

Exit codes, for every command: 0 success, 1 the SIP outcome (or validation) is
a failure, 2 bad input or a set-up error.  Errors are one line on stderr, never
a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

try:  # typer >= 0.22 carries its own copy of click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # older typer runs on click itself
    from click import ClickException, UsageError  # type: ignore[import-not-found,no-redef,unused-ignore]

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
    """Console-script entry point.

    Usage errors (a missing or malformed flag) are one line on stderr and exit 2,
    like every other bad input, instead of click's framed message.
    """
    try:
        code = app(standalone_mode=False)
    except UsageError as err:
        where = err.ctx.command_path if err.ctx is not None else "sipharness"
        message = " ".join(err.format_message().split())
        if not message:  # no arguments at all: the help was shown
            sys.exit(err.exit_code)
        sys.stderr.write(f"error: {where}: {message} (see {where} --help)\n")
        sys.exit(2)
    except typer.Abort:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except ClickException as err:
        sys.stderr.write(f"error: {' '.join(err.format_message().split())}\n")
        sys.exit(err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
