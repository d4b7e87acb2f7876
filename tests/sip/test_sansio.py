"""The SIP core stays sans-IO: no sockets, event loops, clocks, randomness or containers.

Checked on the source (every import statement of every module in harness/sip),
so that an indirect import cannot sneak in unnoticed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SIP_DIR = Path(__file__).resolve().parents[2] / "harness" / "sip"
FORBIDDEN = {
    "socket",
    "asyncio",
    "time",
    "random",
    "secrets",
    "os",
    "select",
    "selectors",
    "ssl",
    "threading",
    "subprocess",
    "docker",
    "pytest",
    "scapy",
    "pyshark",
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_modules_exist() -> None:
    assert len(list(SIP_DIR.glob("*.py"))) >= 5


@pytest.mark.parametrize("path", sorted(SIP_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    bad = _imported_roots(path) & FORBIDDEN
    assert not bad, f"{path.name} imports {sorted(bad)}: harness/sip must stay sans-IO"


def test_importing_core_loads_no_io_module() -> None:
    """Importing the whole core in a fresh interpreter pulls in no I/O module."""
    modules = [
        f"harness.sip.{p.stem}" for p in sorted(SIP_DIR.glob("*.py")) if p.stem != "__init__"
    ]
    code = (
        "import sys\n"
        f"before = set(sys.modules)\n"
        f"import {', '.join(['harness.sip', *modules])}\n"
        "new = set(sys.modules) - before\n"
        "print(' '.join(sorted(m for m in new if m.split('.')[0] in "
        f"{sorted(FORBIDDEN - {'os', 'time', 'select', 'threading'})!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "", f"core import loaded: {out.stdout.strip()}"
