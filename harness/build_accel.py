"""``python -m harness.build_accel [--force]``: compile the modules of harness.accel.

Kept apart from :mod:`harness.accel` (imported by every ``import harness``) so that
importing the sans-IO core never loads subprocess and friends.

Prints one line and exits 0 when the compiled modules are built or already up to
date, 1 when they cannot be built (the pure-Python modules are then used), 2 on a
bad argument.
"""

from __future__ import annotations

import fcntl
import importlib.machinery
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.accel import (
    BUILD_DIR,
    MANIFEST,
    MODULES,
    PACKAGE_DIR,
    missing_toolchain,
    source_digest,
    source_path,
)

BUILD_TIMEOUT = 1800.0


def build(
    *,
    force: bool = False,
    log: Path | None = None,
    announce: Callable[[str], None] | None = None,
) -> str:
    """Compile the listed modules into :data:`BUILD_DIR` unless a current build is there.

    Returns one line saying what happened; ``announce`` is called with one line
    before a compilation starts (it takes about a minute). Raises
    :class:`BuildError` when the toolchain is missing or mypyc fails (its output is
    in ``log``, by default ``.build/accel/build.log``).
    """
    digest = source_digest(MODULES)
    if not force and _built(digest):
        return "compiled modules are up to date"
    problem = missing_toolchain()
    if problem is not None:
        raise BuildError(f"cannot compile: {problem}")
    BUILD_DIR.parent.mkdir(parents=True, exist_ok=True)
    # Two set-ups at once (two terminals, CI and a user) take turns; the second
    # then finds the first one's build current.
    with (BUILD_DIR.parent / "accel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and _built(digest):
            return "compiled modules are up to date (just built by another process)"
        return _compile(digest, log, announce)


def _built(digest: str) -> bool:
    """Whether :data:`BUILD_DIR` holds a build of exactly these sources."""
    try:
        manifest = json.loads((BUILD_DIR / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("digest") == digest


def _compile(digest: str, log: Path | None, announce: Callable[[str], None] | None) -> str:
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    log = log or BUILD_DIR / "build.log"
    if announce is not None:
        announce(
            f"compiling {len(MODULES)} modules with mypyc (about a minute on 2 cores; "
            "again only when they change)"
        )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sipharness-accel-") as tmp:
        work = Path(tmp)
        # A copy of the package: mypyc writes its C files and build/ next to the
        # sources, and must not see the project's pyproject.toml (setuptools reads it).
        shutil.copytree(
            PACKAGE_DIR,
            work / "harness",
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "_data"),
        )
        files = [str(source_path(m).relative_to(PACKAGE_DIR.parent)) for m in MODULES]
        with log.open("w", encoding="utf-8") as out:
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "mypyc", *files],
                    cwd=work,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise BuildError(f"mypyc took over {BUILD_TIMEOUT:.0f} s; see {log}") from None
        if done.returncode != 0:
            raise BuildError(f"mypyc failed (exit {done.returncode}); see {log}")
        staged = BUILD_DIR.parent / "accel.new"
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        files_map: dict[str, str] = {}
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        for module in MODULES:
            rel = Path(*module.split(".")).with_suffix(suffix)
            found = work / rel
            if not found.is_file():
                raise BuildError(f"mypyc produced no {rel}; see {log}")
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, staged / rel)
            files_map[module] = str(rel)
        for shared in work.glob(f"*__mypyc{suffix}"):
            shutil.copy2(shared, staged / shared.name)
            files_map[shared.name[: -len(suffix)]] = shared.name
        shutil.copy2(log, staged / "build.log")
        (staged / MANIFEST).write_text(
            json.dumps({"digest": digest, "files": files_map}, indent=1, sort_keys=True) + "\n",
            encoding="utf-8",
        )
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    staged.rename(BUILD_DIR)
    elapsed = time.monotonic() - started
    return f"compiled {len(MODULES)} modules with mypyc in {elapsed:.0f} s"


class BuildError(Exception):
    """The compiled modules could not be built (the pure-Python ones still work)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if set(args) - {"--force"}:
        print("usage: python -m harness.build_accel [--force]", file=sys.stderr)
        return 2
    try:
        print(build(force="--force" in args, announce=lambda line: print(line, flush=True)))
    except (BuildError, OSError) as err:
        print(f"compiled modules not built: {err}; the pure-Python modules are used")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
