"""``sipharness report RESULTS.json [--out DIR] [--templates DIR] [--redact-pcap]``.

Re-renders the reports of an earlier ``run``, ``probe`` or ``analyze`` (any
``results.json`` this harness or an older one wrote) into ``--out`` (default
``reports/out`` under the current directory).

Contract:

* exit 0: ``index.html``, ``junit.xml``, ``summary.md`` and ``results.json`` were
  written; their paths are printed, one per line (redacted pcap copies too);
* exit 2: the results file is missing, not JSON, not ours or from a newer harness,
  the templates folder is not usable, or a template does not render; one line
  ``error: ...`` on stderr.

The exit code does not reflect the run's verdicts: rendering a failed run succeeds.
With ``--redact-pcap`` every record's capture is copied into ``DIR/redacted/`` with
its Authorization/Proxy-Authorization values masked (the originals stay as captured).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.commands.common import user_errors
from harness.errors import InputError
from harness.report.redact import redact_pcap
from harness.report.render import DEFAULT_OUT_DIR, render_all
from harness.results import RunResults, load_results


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command("report")(report)


def report(
    results_file: Annotated[
        Path,
        typer.Argument(
            metavar="RESULTS.json", help="A results.json written by run, probe or analyze."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder to write the reports into."),
    ] = DEFAULT_OUT_DIR,
    templates: Annotated[
        Path | None,
        typer.Option(
            "--templates",
            help="Folder with your own index.html.j2 / summary.md.j2 (others fall back).",
        ),
    ] = None,
    redact: Annotated[
        bool,
        typer.Option(
            "--redact-pcap",
            help="Also write copies of the pcaps with Authorization values masked.",
        ),
    ] = False,
) -> None:
    """Render the HTML, JUnit, Markdown and JSON reports of a results file."""
    with user_errors():
        written = run_report(
            results_file=results_file, out_dir=out, templates_dir=templates, redact_pcaps=redact
        )
    for path in written:
        typer.echo(str(path))


def write_redacted_pcaps(results: RunResults, *, base: Path, out_dir: Path) -> dict[str, Path]:
    """Write a redacted copy of each record's pcap into ``out_dir/redacted``.

    Returns ``{record.pcap: copy}`` for the captures that exist; a missing capture
    is skipped (the report still links the original path). Raises
    :class:`~harness.errors.InputError` for a file that is not a capture.
    """
    copies: dict[str, Path] = {}
    used: set[str] = set()
    for record in results.records:
        if not record.pcap or record.pcap in copies:
            continue
        source = Path(record.pcap)
        if not source.is_absolute():
            source = base / source
        if not source.is_file():
            continue
        name, n = source.name, 1
        while name in used:
            n += 1
            name = f"{source.stem}-{n}{source.suffix}"
        used.add(name)
        target = out_dir / "redacted" / name
        redact_pcap(source, target)
        copies[record.pcap] = target
    return copies


def run_report(
    *, results_file: Path, out_dir: Path, templates_dir: Path | None, redact_pcaps: bool
) -> list[Path]:
    """Render ``results_file`` into ``out_dir``; return the files written.

    Raises :class:`~harness.errors.InputError` (exit 2) as the module docstring says.
    """
    if results_file.is_dir():
        raise InputError(f"{results_file}: is a directory, not a results file")
    results = load_results(results_file)
    base = results_file.resolve().parent
    copies = write_redacted_pcaps(results, base=base, out_dir=out_dir) if redact_pcaps else {}
    paths = render_all(results, out_dir, templates_dir, pcap_base=base, redacted_pcaps=copies)
    return [*paths, *copies.values()]
