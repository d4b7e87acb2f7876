"""The harness's one exception base, for everything above the sans-IO core.

The CLI turns a :class:`HarnessError` into a one-line message and an exit code;
anything else escaping a command is a bug.
"""

from __future__ import annotations


class HarnessError(Exception):
    """An error a user can act on; ``str(err)`` is the one line shown to them."""

    exit_code = 2


class InputError(HarnessError):
    """Bad input: a file, a flag, a scenario. Exit code 2."""

    exit_code = 2


class SetupError(HarnessError):
    """The environment cannot do what was asked (engine, image, permission). Exit code 2."""

    exit_code = 2
