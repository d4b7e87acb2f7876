"""The sip-harness pytest plugin (entry point ``pytest11``).

Scenario collection and fixtures arrive with the scenario work; until then the
plugin only registers its option group so that ``--help`` shows where they go.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("sipharness", "sip-harness conformance runs")
