"""``sipharness validate FILE [--json]``: check a number file, show where packets go.

Contract (scripts rely on it):

* exit 0: valid; a short summary of the effective view on stdout (password masked);
* exit 1: invalid; one line per problem on stderr, each ``field: message``;
* exit 2: the file is missing, unreadable, not UTF-8 YAML or not a mapping;
  one line ``error: ...`` on stderr.

With ``--json`` stdout holds exactly one JSON object in every case:
``{"valid", "errors": [{"field", "message"}], "number", "effective"}`` where
``number`` and ``effective`` are present only when valid; on exit 2 ``errors``
holds one entry whose ``field`` is null (the file as a whole).  stderr is the
same as without ``--json``.  The password never appears in any output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harness.commands.common import EXIT_FAILURE, EXIT_OK, fail, print_json
from harness.errors import InputError
from harness.numbers import (
    PASSWORD_MASK,
    Effective,
    NumberConfig,
    Resolution,
    Target,
    check_number_file,
    effective_view,
)

_RESOLUTION_NOTES = {
    Resolution.NONE: "IP address, no DNS",
    Resolution.ADDRESS: "port given: DNS A/AAAA only",
    Resolution.SRV: "DNS SRV may choose host and port",
    Resolution.NAPTR: "DNS NAPTR/SRV may choose transport, host and port",
}


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command to ``app``."""
    app.command("validate")(validate)


def validate(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="The number file (YAML) to check.", show_default=False),
    ],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: valid, errors and the effective view."),
    ] = False,
) -> None:
    """Check a number file and print its effective view (where packets really go).

    Exit 0 valid, 1 invalid (one line per problem on stderr), 2 unreadable file.
    """
    code = run_validate(path=file, as_json=as_json)
    if code != EXIT_OK:
        raise typer.Exit(code=code)


def run_validate(*, path: Path, as_json: bool) -> int:
    """Validate ``path`` and print the outcome; return the exit code (0 or 1).

    A file that cannot be used raises the :class:`typer.Exit` of exit code 2
    after printing its one-line error.
    """
    try:
        result = check_number_file(path)
    except InputError as err:
        message = _one_line(str(err))
        if as_json:
            print_json({"valid": False, "errors": [{"field": None, "message": message}]})
        raise fail(message, code=err.exit_code) from None

    for problem in result.problems:
        typer.echo(_one_line(str(problem)), err=True)
    config = result.config
    if config is None:
        if as_json:
            errors = [{"field": p.field, "message": _one_line(p.message)} for p in result.problems]
            print_json({"valid": False, "errors": errors})
        return EXIT_FAILURE

    view = effective_view(config)
    if as_json:
        payload: dict[str, Any] = {
            "valid": True,
            "errors": [],
            "number": config.to_public_dict(),
            "effective": view.to_dict(),
        }
        print_json(payload)
    else:
        typer.echo(_summary(path, config, view))
    return EXIT_OK


def _summary(path: Path, config: NumberConfig, view: Effective) -> str:
    """The human summary: the effective view, one labelled line each."""
    rows: list[tuple[str, str]] = [("phone_number", config.phone_number)]
    if config.name:
        rows.insert(0, ("name", config.name))
    rows.append(("sip_domain", str(config.sip_domain)))
    rows.append(("target", _target(view.target, source=view.via)))
    rows.append(("request_uri", view.register_uri))
    rows.append(("route", view.route or "none"))
    if view.registers and config.password_source is not None:
        registers = (
            f"yes: digest username {view.digest_username},"
            f" password {PASSWORD_MASK} ({config.password_source.describe()})"
        )
    else:
        registers = "no (no credentials: IP-authenticated trunk)"
    rows.append(("registers", registers))
    rows.append(("from_uri", view.from_uri))
    rows.append(("aor", view.aor))
    origination = "none" if view.origination is None else _target(view.origination, source=None)
    rows.append(("origination", origination))
    width = max(len(label) for label, _ in rows)
    lines = [f"{path}: valid"]
    lines.extend(f"  {label.ljust(width)}  {_one_line(value)}" for label, value in rows)
    return "\n".join(lines)


def _target(target: Target, *, source: str | None) -> str:
    notes = [_RESOLUTION_NOTES[target.resolution]]
    if source is not None:
        notes.insert(0, f"from {source}")
    return f"{target.hostport} over {target.transport.via_name} ({'; '.join(notes)})"


def _one_line(text: str) -> str:
    """Keep a message on one line whatever it quotes."""
    return text.replace("\r", "\\r").replace("\n", "\\n")
