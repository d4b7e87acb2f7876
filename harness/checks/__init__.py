"""Conformance checks over captured SIP flows, with the number file when given.

Typical use::

    decoded = decode_capture("trace.pcap")
    flows, run = check_decoded(decoded, number)      # number may be None
    for finding in run.failed:
        print(finding.check.id, finding.check.title, finding.check.remediation)

Every check has a stable id, a title, the rule it rests on, a severity and a
remediation for the customer; see :mod:`harness.checks.registry` for the model and
:mod:`harness.checks.run` for how the catalogue runs.
"""

from harness.checks.catalogue import all_checks
from harness.checks.registry import (
    REGISTRY,
    Check,
    CheckContext,
    CheckResult,
    CheckSettings,
    Evidence,
    Finding,
    Item,
    Locality,
    Outcome,
    Severity,
)
from harness.checks.run import CheckRun, build_context, check_decoded, run_check, run_checks

__all__ = [
    "REGISTRY",
    "Check",
    "CheckContext",
    "CheckResult",
    "CheckRun",
    "CheckSettings",
    "Evidence",
    "Finding",
    "Item",
    "Locality",
    "Outcome",
    "Severity",
    "all_checks",
    "build_context",
    "check_decoded",
    "run_check",
    "run_checks",
]
