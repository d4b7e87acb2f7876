"""End-to-end tests: real Kamailio and Asterisk containers on loopback.

Each test uses its own loopback block (``BASE`` constants, 127.0.<base>.x) and
origination port, so the tests can run in parallel workers and next to other
suites' peers.  They need the Docker engine and the peer images
(``./bootstrap.sh setup``); without an engine they are skipped.
"""

from __future__ import annotations

import pytest

from harness.errors import SetupError
from harness.peers.engine import Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    try:
        return Engine.connect()
    except SetupError as err:
        pytest.skip(f"no Docker engine: {err}")
