"""``sipharness probe FILE [--to NUMBER] [--inbound] [--out DIR] [--json]``.

The customer's mode: no containers, only the number file.  Stages (DNS,
reachability, OPTIONS, REGISTER when the number has credentials, a test call with
``--to``, an inbound call with ``--inbound``) run in order and stop at the first
failure; each says what it found.  Writes ``DIR/results.json`` (one record per
stage) and the reports; exit 0 every stage passed, 1 a stage failed, 2 bad input.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from harness.commands.common import print_json, user_errors
from harness.numbers import load_number_file
from harness.results import RunResults, load_results
from harness.scenarios.probe import ProbeOptions, probe_exit_code, run_probe
from harness.scenarios.session import DEFAULT_OUT, write_reports


def register(app: typer.Typer) -> None:
    """Add the ``probe`` command to ``app``."""
    app.command("probe")(probe_command)


def probe_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The number file (YAML).", show_default=False)
    ],
    *,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="NUMBER", help="Place a test call to this number."),
    ] = None,
    inbound: Annotated[
        bool,
        typer.Option("--inbound", help="Wait for a call to the number at the origination URI."),
    ] = False,
    inbound_timeout: Annotated[
        float,
        typer.Option("--inbound-timeout", min=1.0, help="Seconds to wait for the inbound call."),
    ] = 60.0,
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca-file", metavar="PEM", help="Trust this CA for a TLS target."),
    ] = None,
    local_ip: Annotated[
        str | None, typer.Option("--local-ip", help="Local address to send from.")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Where results.json and reports go.")
    ] = DEFAULT_OUT,
    as_json: Annotated[bool, typer.Option("--json", help="Print results.json on stdout.")] = False,
    capture: Annotated[
        bool,
        typer.Option(
            "--capture/--no-capture",
            help="Capture each stage to DIR/pcaps/ and run the conformance checks on it "
            "(needs root or CAP_NET_RAW).",
        ),
    ] = True,
) -> None:
    """Probe the number's real trunk stage by stage; exit 0 all passed, 1 failed, 2 bad input."""
    with user_errors():
        if to is not None and (not to or any(ch.isspace() or ch == "@" for ch in to)):
            raise typer.BadParameter(f"{to!r} is not a number or user part", param_hint="--to")
        number = load_number_file(file)
        options = ProbeOptions(
            to=to,
            inbound=inbound,
            inbound_timeout=inbound_timeout,
            ca_file=ca_file,
            local_host=local_ip,
            capture_dir=out / "pcaps" if capture else None,
        )
        results = asyncio.run(run_probe(number, options))
        secrets = [number.password] if number.password else []
        path = write_reports(results, out, secrets=secrets)
    if as_json:
        print_json(RunResults.to_dict(load_results(path)))
    else:
        for record in results.records:
            detail = record.steps[0].detail if record.steps else record.reason
            typer.echo(f"{record.verdict.value.upper():5} {record.scenario}: {detail}")
        typer.echo(f"results: {path}")
    raise typer.Exit(code=probe_exit_code(results))
