"""Where the bundled data folders are (scenarios, fixtures, reports, compose).

In a source checkout (or an editable install) they are the top-level folders of
the repository; in an installed wheel they are packaged under ``harness/_data``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The bundled folder ``name`` (``"scenarios"``, ``"fixtures"``...)."""
    packaged = _PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / name
