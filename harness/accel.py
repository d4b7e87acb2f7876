"""Compiled fast paths: the SIP core, the decoder, the flows and the checks, built by mypyc.

The modules of :data:`MODULES` are ordinary typed Python. mypyc (shipped with mypy)
compiles the very same sources into C extension modules when a C compiler and
Python's headers are present: ``./bootstrap.sh`` builds them, or ``python -m
harness.build_accel`` by hand. Results are identical (``tests/test_accel.py`` runs
the checks both ways on the test captures and compares every finding); only speed
differs (docs/benchmarks.md: analysing 100,000 messages takes about 60 % of the
time).

The build lives outside the source tree, in ``.build/accel/`` of the checkout, and
:func:`install` (called when :mod:`harness` is imported) uses it only while it was
built from exactly the sources on disk, for this Python: after any edit
of a listed module the whole build is stale and the pure-Python modules are used
until the next build. ``SIPHARNESS_PURE_PYTHON=1`` turns it off. An installed wheel
has no ``.build`` folder and always runs pure Python.

This module itself is never compiled and imports nothing from the harness.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

#: The compiled modules: what a large capture's analysis spends its time in.
MODULES: tuple[str, ...] = (
    "harness.sip.message",
    "harness.sip.parser",
    "harness.sip.uri",
    "harness.sip.sdp",
    "harness.sip.digest",
    "harness.capture.pcapfile",
    "harness.capture.decode",
    "harness.capture.flows",
    "harness.checks.auth",
    "harness.checks.catalogue",
    "harness.checks.decoding",
    "harness.checks.headers",
    "harness.checks.identity",
    "harness.checks.invite",
    "harness.checks.locality",
    "harness.checks.registration",
    "harness.checks.registry",
    "harness.checks.results_json",
    "harness.checks.routing",
    "harness.checks.run",
    "harness.checks.sdp_media",
    "harness.checks.security",
    "harness.checks.sipview",
    "harness.checks.transaction",
    "harness.checks.transport_checks",
)

PURE_ENV = "SIPHARNESS_PURE_PYTHON"
PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_DIR = PACKAGE_DIR.parent / ".build" / "accel"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Status:
    """Whether the compiled modules are in use, and why (one line for ``doctor``)."""

    active: bool
    reason: str


# What install() decided (a one-item list: updated in place, no ``global``).
_state: list[Status] = [Status(False, "not installed yet")]


def source_path(module: str) -> Path:
    """The ``.py`` file of a listed module (``harness.sip.uri`` -> ``harness/sip/uri.py``)."""
    parts = module.split(".")
    return PACKAGE_DIR.parent.joinpath(*parts[:-1], parts[-1] + ".py")


def source_digest(modules: Sequence[str] = MODULES) -> str:
    """SHA-256 of the listed sources and the Python ABI they were compiled for.

    Raises OSError when a listed source cannot be read.
    """
    digest = hashlib.sha256()
    digest.update(f"{sys.implementation.cache_tag} {sysconfig.get_platform()}\n".encode())
    for module in sorted(modules):
        digest.update(f"{module}\n".encode())
        digest.update(source_path(module).read_bytes())
        digest.update(b"\n")
    return digest.hexdigest()


class _CompiledFinder:
    """Finds the listed modules (and mypyc's shared library) in the build folder.

    A meta path finder by protocol (``find_spec``): subclassing importlib.abc's would
    import importlib.resources, tempfile and random into every ``import harness``.
    """

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        where = self.paths.get(fullname)
        if where is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(where))
        return importlib.util.spec_from_file_location(fullname, where, loader=loader)


def install() -> Status:
    """Use the compiled modules when a current build exists; see the module docstring.

    Must run before any listed module is imported. Never raises: whatever goes
    wrong leaves the pure-Python modules in use, and :func:`status` says why.
    """
    _state[0] = _install()
    return _state[0]


def _install() -> Status:
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return Status(False, f"pure Python ({PURE_ENV} is set)")
    manifest_path = BUILD_DIR / MANIFEST
    if not manifest_path.is_file():
        return Status(False, "pure Python (no compiled build; run ./bootstrap.sh setup)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("digest") != source_digest(MODULES):
            return Status(False, "pure Python (the compiled build is stale: sources changed)")
        paths = {name: BUILD_DIR / rel for name, rel in manifest["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return Status(False, f"pure Python (unreadable build manifest: {err})")
    if set(MODULES) - set(paths) or not all(p.is_file() for p in paths.values()):
        return Status(False, "pure Python (the compiled build is incomplete)")
    already = [name for name in MODULES if name in sys.modules]
    if already:
        return Status(False, f"pure Python ({already[0]} was imported before the build)")
    sys.meta_path.insert(0, _CompiledFinder(paths))
    return Status(True, f"in use: {len(MODULES)} modules compiled by mypyc")


def status() -> Status:
    """What :func:`install` decided for this process."""
    return _state[0]


def compiled_in_use() -> bool:
    """True when every listed module that is loaded was loaded from the build."""
    loaded = [sys.modules[name] for name in MODULES if name in sys.modules]
    return bool(loaded) and all(
        str(getattr(module, "__file__", "")).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
        for module in loaded
    )


def missing_toolchain() -> str | None:
    """Why this machine cannot build (no C compiler, no Python headers), or None."""
    if shutil.which(sysconfig.get_config_var("CC") or "cc") is None and shutil.which("cc") is None:
        return "no C compiler (apt-get install gcc)"
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.is_file():
        return f"no Python headers ({include} is missing; apt-get install python3-dev)"
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc is not installed (pip install mypy)"
    return None
