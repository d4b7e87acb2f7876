"""``sipharness images build|list``: the peer images (Kamailio, Asterisk, SIPp)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from harness.commands.common import print_json, user_errors
from harness.peers.engine import Engine
from harness.peers.images import (
    IMAGES,
    BuildEvent,
    ImageBuildError,
    ImageResult,
    ProgressCallback,
    build_images,
    image_tag,
    select_images,
)

images_app = typer.Typer(
    help="Build and list the peer images (Kamailio, Asterisk, SIPp).", no_args_is_help=True
)

_LOG_WIDTH = 70


def _interactive() -> bool:
    """Rich progress only for a person at a terminal; CI logs get one line per image."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in {"true", "1"}


class _RichProgress:
    """A spinner row per step showing its latest log line."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, event: BuildEvent) -> None:
        task = self._tasks.get(event.image)
        if task is None:
            task = self._progress.add_task(event.text, name=event.image, total=None)
            self._tasks[event.image] = task
        if event.kind == "log":
            self._progress.update(task, description=event.text[:_LOG_WIDTH])
        elif event.kind == "done":
            self._progress.update(task, description=event.text, total=1, completed=1)
            self._progress.stop_task(task)


def _print_done(event: BuildEvent) -> None:
    """Quiet mode: one line per image as soon as it is done, nothing else."""
    if event.result is not None:
        typer.echo(_result_line(event.result))


@contextmanager
def _progress_reporter(console: Console) -> Iterator[ProgressCallback]:
    """The progress callback: live rows on a terminal, else one line per finished image."""
    if not _interactive():
        yield _print_done
        return
    columns = (
        SpinnerColumn(finished_text="[green]✓[/green]"),
        TextColumn("{task.fields[name]}", table_column=Column(width=16, no_wrap=True)),
        TextColumn("{task.description}", table_column=Column(ratio=1, no_wrap=True)),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield _RichProgress(progress)


def _result_line(result: ImageResult) -> str:
    return f"{result.name:<16} {result.status:<12} {result.tag:<36} {result.seconds:6.1f} s"


@images_app.command("build")
def build(
    offline: Annotated[
        bool, typer.Option("--offline", help="Never pull from a registry; debootstrap instead.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Build only this image (repeatable): "
            + ", ".join(spec.name for spec in IMAGES)
            + ". Default: every image but kamailio6.",
        ),
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option("--mirror", help="Debian mirror for debootstrap (default: the host's)."),
    ] = None,
) -> None:
    """Build the peer images that are missing; images already up to date are left alone."""
    err_console = Console(stderr=True)
    with user_errors():
        select_images(only or ())  # a misspelt name fails before any engine work
        engine = Engine.connect()
        try:
            with _progress_reporter(err_console) as progress:
                results = build_images(
                    engine, offline=offline, progress=progress, only=only or (), mirror=mirror
                )
        except ImageBuildError as err:
            for line in err.log_tail:
                typer.echo(f"  | {line}", err=True)
            raise
        finally:
            engine.close()
    if _interactive():
        # The live rows went to stderr; the summary goes to stdout, like the quiet lines.
        for result in results:
            typer.echo(_result_line(result))


@images_app.command("list")
def list_images(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every peer image, the tag its current recipe gives, and whether it exists."""
    with user_errors():
        engine = Engine.connect()
        try:
            rows = []
            for spec in IMAGES:
                tag = image_tag(spec)
                rows.append(
                    {
                        "name": spec.name,
                        "summary": spec.summary,
                        "suite": spec.suite,
                        "default": spec.default,
                        "tag": tag,
                        "present": engine.image_exists(tag),
                    }
                )
        finally:
            engine.close()
    if as_json:
        print_json(rows)
        return
    table = Table("image", "what", "suite", "tag", "present")
    for row in rows:
        table.add_row(
            str(row["name"]),
            str(row["summary"]),
            str(row["suite"]),
            str(row["tag"]),
            "yes" if row["present"] else "no",
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the ``images`` command group to ``app``."""
    app.add_typer(images_app, name="images")
