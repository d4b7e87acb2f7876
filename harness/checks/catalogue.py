"""The catalogue: importing this module registers every check module's checks."""

from __future__ import annotations

from harness.checks import (  # noqa: F401 - imported for their @check registrations
    auth,
    decoding,
    headers,
    identity,
    invite,
    registration,
    routing,
    sdp_media,
    security,
    transaction,
    transport_checks,
)
from harness.checks.registry import REGISTRY, Check


def all_checks() -> tuple[Check, ...]:
    """Every registered check, ordered by id."""
    return tuple(REGISTRY)
