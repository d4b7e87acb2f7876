"""The scenario model: what a scenario file (``scenarios/*.yaml``) means once loaded.

A :class:`Scenario` is a name, a title, the profiles it applies to (by name or by
capability) and a list of :class:`Step` values run in order.  Each step has one
action (:class:`StepKind`), that action's arguments, an :class:`Expectation` (what
counts as the step passing) and a deadline (``within``, seconds).

What a caller may rely on: instances are immutable and only built by
:mod:`harness.scenarios.loader`, which has checked every field, so a runner never
meets an unknown kind, a bad status pattern or a missing argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final


class StepKind(StrEnum):
    """The actions a scenario step may take."""

    OPTIONS = "options"
    """OPTIONS ping to the number's target (the outbound proxy when set)."""
    REGISTER = "register"
    """REGISTER the number (answers challenges, 423...)."""
    REFRESH = "refresh"
    """Re-REGISTER with the same Call-ID and the next CSeq."""
    UNREGISTER = "unregister"
    """Remove the binding (``Expires: 0``; ``Contact: *`` with ``wildcard: true``)."""
    CALL = "call"
    """An outbound call: INVITE (challenges), media with echo measurement, BYE."""
    CANCEL = "cancel"
    """An outbound call cancelled while it rings: CANCEL, 200, 487."""
    ANSWER = "answer"
    """Start the inbound UAS (in the background); ``wait: answer`` collects its result."""
    WAIT = "wait"
    """Pause for a number of seconds, or ``wait: answer`` for the inbound UAS's result."""
    PEER = "peer"
    """Make the peer do something: ``originate`` (the carrier calls the number) or
    ``network-call`` (a call enters the carrier from its own network side)."""


class PeerAction(StrEnum):
    ORIGINATE = "originate"
    NETWORK_CALL = "network-call"


class Outcome(StrEnum):
    """Outcome words a step may expect instead of a status code."""

    SUCCESS = "success"
    FAILURE = "failure"
    CREDENTIALS_REJECTED = "credentials rejected"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR_RESPONSE = "error response"
    """A final response of 300 or more (the peer said no, promptly)."""


STATUS_PATTERN: Final = re.compile(r"[1-6](?:\d\d|xx)")


@dataclass(frozen=True)
class Expectation:
    """What makes a step pass: a status (``487``, ``4xx``) or an :class:`Outcome`."""

    status: str | None = None
    outcome: Outcome | None = None

    def __post_init__(self) -> None:
        if (self.status is None) == (self.outcome is None):
            raise ValueError("an expectation is a status or an outcome")
        if self.status is not None and not STATUS_PATTERN.fullmatch(self.status):
            raise ValueError(f"bad status pattern {self.status!r}")

    def matches_status(self, status: int | None) -> bool:
        """Whether ``status`` fits the status pattern (``4xx`` fits 400-499)."""
        if status is None or self.status is None:
            return False
        text = str(status)
        return all(want in ("x", got) for want, got in zip(self.status, text, strict=True))

    def __str__(self) -> str:
        return self.status if self.status is not None else str(self.outcome)


SUCCESS: Final = Expectation(outcome=Outcome.SUCCESS)


@dataclass(frozen=True)
class Step:
    """One step: ``kind`` with its ``args`` (already checked), expectation and deadline."""

    kind: StepKind
    args: dict[str, object] = field(default_factory=dict, hash=False)
    expect: Expectation = SUCCESS
    within: float = 30.0
    label: str = ""

    @property
    def name(self) -> str:
        """The step as shown in results: its label, else ``kind`` and its main argument."""
        if self.label:
            return self.label
        main = self.args.get("value")
        return f"{self.kind.value} {main}" if main is not None else self.kind.value


@dataclass(frozen=True)
class Applicability:
    """Which profiles a scenario runs on: ``profiles`` by name (None: any) and the
    capabilities a profile must have (``registers: true``...)."""

    profiles: tuple[str, ...] | None = None
    capabilities: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario file."""

    name: str
    title: str
    steps: tuple[Step, ...]
    applies_to: Applicability = Applicability()
    description: str = ""
    number: tuple[tuple[str, str], ...] = ()
    """Number fields the scenario changes (``password`` for a wrong-password run)."""
    negative: bool = False
    """A scenario whose steps expect the peer to refuse (documentation, reports)."""
    source: Path | None = field(default=None, compare=False)

    def uses(self, kind: StepKind) -> bool:
        return any(step.kind is kind for step in self.steps)

    def uses_peer(self, action: PeerAction) -> bool:
        return any(
            step.kind is StepKind.PEER and step.args.get("value") == action.value
            for step in self.steps
        )
