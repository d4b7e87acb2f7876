"""Declarative scenarios (``scenarios/*.yaml``): model, loader, runner and the matrix."""

from harness.scenarios.loader import ScenarioError, load_scenario_file, load_scenarios
from harness.scenarios.model import (
    Applicability,
    Expectation,
    Outcome,
    PeerAction,
    Scenario,
    Step,
    StepKind,
)

__all__ = [
    "Applicability",
    "Expectation",
    "Outcome",
    "PeerAction",
    "Scenario",
    "ScenarioError",
    "Step",
    "StepKind",
    "load_scenario_file",
    "load_scenarios",
]
