"""``sipharness run [--number FILE] [--profile P]... [--scenario S]... [--out DIR] [--json]``.

The conformance matrix: every applicable scenario on every selected profile, against
real Kamailio/Asterisk peers.  Without arguments: the bundled example number on every
bundled profile.  Writes ``DIR/results.json`` (and the HTML/JUnit/Markdown reports);
exit 0 all passed, 1 a scenario failed (or a peer died during one), 2 bad input or a
set-up failure (no engine, missing image, peers that do not start).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.commands.common import print_json, user_errors
from harness.results import RunResults
from harness.scenarios.matrix import MatrixOptions, Placement, default_progress, run_matrix
from harness.scenarios.session import DEFAULT_OUT, exit_code, select, write_reports


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""
    app.command("run")(run_command)


def run_command(
    *,
    number: Annotated[
        Path | None,
        typer.Option(
            "--number", metavar="FILE", help="Number file (default: the bundled example)."
        ),
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", metavar="P", help="Profile name or file; repeat (default: all)."),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario", metavar="S", help="Scenario name or file; repeat (default: all)."
        ),
    ] = None,
    scenarios_dir: Annotated[
        Path | None,
        typer.Option("--scenarios-dir", metavar="DIR", help="Folder of scenario files to use."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Where results.json and reports go.")
    ] = DEFAULT_OUT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print results.json on stdout (no progress).")
    ] = False,
    base: Annotated[
        int,
        typer.Option(
            "--address-base",
            min=0,
            max=255,
            help="Move the peers to 127.0.BASE.x and the origination port by 10*BASE.",
        ),
    ] = 0,
    capture: Annotated[
        bool,
        typer.Option(
            "--capture/--no-capture",
            help="Capture each scenario to DIR/pcaps/ and run the conformance checks on it "
            "(needs root or CAP_NET_RAW).",
        ),
    ] = True,
) -> None:
    """Run the conformance matrix; exit 0 all passed, 1 a scenario failed, 2 bad input/set-up."""
    with user_errors():
        chosen = select(
            number_file=number,
            profiles=profile or (),
            scenarios=scenario or (),
            scenarios_dir=scenarios_dir,
        )
        results = run_matrix(
            chosen.number,
            chosen.profiles,
            chosen.scenarios,
            options=MatrixOptions(
                placement=Placement(base=base, slot=base),
                capture_dir=out / "pcaps" if capture else None,
            ),
            progress=default_progress(quiet=as_json),
        )
        secrets = [chosen.number.password] if chosen.number.password else []
        path = write_reports(results, out, secrets=secrets)
    if as_json:
        print_json(RunResults.to_dict(_reloaded(path)))
    else:
        _summary(results, path)
    raise typer.Exit(code=exit_code(results))


def _reloaded(path: Path) -> RunResults:
    # What was written (secrets scrubbed), not what is in memory.
    from harness.results import load_results  # noqa: PLC0415

    return load_results(path)


def _summary(results: RunResults, path: Path) -> None:
    for record in results.records:
        line = f"{record.verdict.value.upper():5} {record.id} ({record.duration_s:.1f} s)"
        if record.reason and record.verdict.value != "pass":
            line += f": {record.reason}"
        typer.echo(line)
    counts = results.counts()
    typer.echo(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, "
        f"{counts['skip']} skipped of {counts['total']} in {results.duration_s:.1f} s; "
        f"results: {path}"
    )
