"""The command line's shared contract: version, help, usage errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from typer.testing import CliRunner

from harness import __version__
from harness.cli import app

VENV_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"sipharness {__version__}"


def test_console_script_installed() -> None:
    out = subprocess.run(
        [str(VENV_BIN / "sipharness"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0
    assert __version__ in out.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code == 2


def test_usage_errors_are_one_line_with_exit_2() -> None:
    out = subprocess.run(
        [str(VENV_BIN / "sipharness"), "call", "fixtures/numbers/example.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: sipharness call: Missing option '--to'")
    assert "Traceback" not in out.stderr
