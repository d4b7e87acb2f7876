"""Labels carried by every image and container the harness makes.

A container or image with :data:`MANAGED` set to :data:`MANAGED_VALUE` belongs to the
harness and may be removed by it; :data:`RUN` names the run that started a container,
so that leftovers of a killed run can be found and reaped at the next start.
"""

from __future__ import annotations

import re

from harness.errors import InputError

PREFIX = "org.sipharness"
MANAGED = f"{PREFIX}.managed"
MANAGED_VALUE = "1"
RUN = f"{PREFIX}.run"
IMAGE = f"{PREFIX}.image"
"""On images: the harness's name for the image (``kamailio``, ``asterisk``...)."""
RECIPE_HASH = f"{PREFIX}.recipe-hash"
"""On images: the recipe hash the image was built from (the tag's suffix)."""

# Docker accepts almost anything as a label value; a run id also ends up in container
# names and file names, so keep it to a safe alphabet.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def managed_labels() -> dict[str, str]:
    """The labels that mark an image or container as the harness's own."""
    return {MANAGED: MANAGED_VALUE}


def run_labels(run_id: str) -> dict[str, str]:
    """The labels for a container started by run ``run_id``.

    Raises :class:`InputError` when ``run_id`` is not 1–64 characters of letters,
    digits, ``_``, ``.`` or ``-`` (starting with a letter or digit).
    """
    if not _RUN_ID.fullmatch(run_id):
        raise InputError(f"run id {run_id!r} is not 1-64 letters, digits, '_', '.' or '-'")
    return {**managed_labels(), RUN: run_id}


def run_filter(run_id: str | None = None) -> dict[str, list[str]]:
    """A Docker ``filters`` argument selecting managed objects (of one run when given)."""
    wanted = [f"{MANAGED}={MANAGED_VALUE}"]
    if run_id is not None:
        wanted.append(f"{RUN}={run_id}")
    return {"label": wanted}
