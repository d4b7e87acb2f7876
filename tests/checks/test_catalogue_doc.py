"""docs/checks.md is the catalogue as the code has it, and `sipharness checks` lists it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.checks.catalogue import all_checks
from harness.cli import app
from harness.commands.checks import catalogue_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "checks.md"


def test_docs_checks_md_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == catalogue_markdown(all_checks()), (
        "docs/checks.md is stale: run `sipharness checks --markdown > docs/checks.md`"
    )


def test_checks_command_lists_every_check_once() -> None:
    result = CliRunner().invoke(app, ["checks", "--json"])
    assert result.exit_code == 0
    listed = json.loads(result.output)
    ids = [c["id"] for c in listed]
    assert ids == [c.id for c in all_checks()]
    assert len(set(ids)) == len(ids) >= 30
    assert all(c["remediation"] and c["reference"] for c in listed)


def test_checks_json_and_markdown_exclude_each_other() -> None:
    result = CliRunner().invoke(app, ["checks", "--json", "--markdown"])
    assert result.exit_code == 2
