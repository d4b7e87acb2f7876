from __future__ import annotations

import pytest

from tests.transport.helpers import TestPki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A test CA and a server certificate for localhost and 127.0.0.1."""
    return make_pki(tmp_path_factory.mktemp("pki"))
