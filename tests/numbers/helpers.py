"""Shared helpers for the number-file tests: run the real CLI, parse its output."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from harness.cli import app

REPO = Path(__file__).resolve().parents[2]
BAD_DIR = Path(__file__).resolve().parent / "bad"
FIXTURES = REPO / "fixtures" / "numbers"
SIPHARNESS = REPO / ".venv" / "bin" / "sipharness"


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line]

    @property
    def fields(self) -> list[str]:
        """The field named at the start of each stderr line."""
        return [line.split(":", 1)[0] for line in self.stderr_lines]

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(args: Sequence[str], env: Mapping[str, str | None] | None = None) -> Run:
    """Invoke ``sipharness ARGS`` in-process; fail on any exception but SystemExit."""
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command raised {result.exception!r}") from result.exception
    return Run(result.exit_code, result.stdout, result.stderr)
