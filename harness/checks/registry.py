"""The check model: what a check is, what it returns, and the registry of all checks.

A check is a pure function over a :class:`CheckContext` (the capture's flows, the
number when one is given, the decode issues, optional RTP statistics) that yields
one :class:`Item` per thing it applies to: a pass, a fail or a not-applicable, each
with the messages that prove it. The runner (:mod:`harness.checks.run`) turns items
into :class:`CheckResult` records and groups them per check into a
:class:`Finding`.

Rules every check follows (tests enforce them on the test corpus):

* no I/O, no clock, no randomness: the same input gives the same results;
* a misbehaving peer is a ``fail`` item, never an exception;
* a check that needs the number declares ``needs_number=True`` and is reported
  ``not_applicable`` without one; the others run on any capture.

Ids are stable (``AUTH-001``...): reports, JUnit names and users' scripts refer
to them. A retired check keeps its id unused; a new check takes a new number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, cast

from harness.capture.decode import CapturedMessage, DecodeIssue, TlsStream, Unreachable
from harness.capture.flows import Flows, label
from harness.capture.rtp import RtpStream
from harness.numbers.effective import Effective
from harness.numbers.model import PASSWORD_MASK, NumberConfig


class Severity(StrEnum):
    """How bad a failing check is for the customer's go-live."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Outcome(StrEnum):
    """The outcome of one check on one item (or of a whole check, see :class:`Finding`).

    ``error`` means the check itself failed (a harness bug), not the peer.
    """

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"


# Worst first: a finding's outcome is the worst outcome among its results.
_OUTCOME_RANK: Final = {
    Outcome.ERROR: 3,
    Outcome.FAIL: 2,
    Outcome.PASS: 1,
    Outcome.NOT_APPLICABLE: 0,
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of the capture that supports a result.

    ``index`` is the :attr:`CapturedMessage.index` (None for a decode issue, which
    is no SIP message); ``frame`` the 1-based frame number in the capture (None
    for a problem of the whole file); ``summary`` one line naming the message,
    e.g. ``INVITE sip:+15550100001@carrier 10.0.0.1:5060 -> 203.0.113.10:5060 udp``.
    """

    index: int | None
    frame: int | None
    timestamp: float | None
    summary: str

    @classmethod
    def of_message(cls, captured: CapturedMessage) -> Evidence:
        msg = captured.message
        text = label(msg)
        uri = getattr(msg, "uri", None)
        if isinstance(uri, str) and uri:
            text = f"{text} {mask_uri_passwords(uri)}"
        summary = f"{text} {captured.src} -> {captured.dst} {captured.transport}"
        return cls(captured.index, captured.frame, captured.timestamp, summary)

    @classmethod
    def of_issue(cls, issue: DecodeIssue) -> Evidence:
        where = ""
        if issue.src is not None and issue.dst is not None:
            where = f" {issue.src} -> {issue.dst}"
        return cls(None, issue.frame, issue.timestamp, f"{issue.kind}{where}: {issue.reason}")

    @classmethod
    def of_tls(cls, stream: TlsStream) -> Evidence:
        return cls(
            None,
            stream.first_frame,
            stream.first_time,
            f"TLS {stream.client} -> {stream.server} ({stream.segments} segments)",
        )

    @classmethod
    def of_rtp(cls, stream: RtpStream) -> Evidence:
        return cls(
            None,
            None,
            stream.start,
            f"RTP {stream.src} -> {stream.dst} ssrc 0x{stream.ssrc:08x}: "
            f"{stream.packets} packets, {stream.lost_percent:g}% lost",
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "frame": self.frame,
            "timestamp": self.timestamp,
            "summary": self.summary,
        }


_URI_PASSWORD: Final = re.compile(r"(sips?:[^:@;,<>\s\"]+:)([^@;,<>\s\"]+)(@)", re.IGNORECASE)


def mask_uri_passwords(text: str) -> str:
    """``text`` with the password of every ``sip:user:password@host`` masked.

    Evidence and reasons quote URIs from the capture; RFC 3261 §19.1.1 allows a
    password there, and the harness never repeats one.
    """
    if "@" not in text or ":" not in text:
        # Nothing the pattern could match (most reasons): skip the regex.
        return text
    return _URI_PASSWORD.sub(lambda m: f"{m.group(1)}{PASSWORD_MASK}{m.group(3)}", text)


EvidenceSource = CapturedMessage | DecodeIssue | TlsStream | RtpStream | Evidence


def to_evidence(source: EvidenceSource) -> Evidence:
    """Any piece of a capture as :class:`Evidence`."""
    if isinstance(source, Evidence):
        return source
    if isinstance(source, CapturedMessage):
        return Evidence.of_message(source)
    if isinstance(source, DecodeIssue):
        return Evidence.of_issue(source)
    if isinstance(source, TlsStream):
        return Evidence.of_tls(source)
    return Evidence.of_rtp(source)


@dataclass(frozen=True, slots=True)
class Item:
    """What a check function yields: one verdict on one thing it applies to.

    ``subject`` names the thing (a Call-ID, ``REGISTER cseq 2``...), ``reason`` is
    one sentence saying why, ``evidence`` the capture records that prove it.
    """

    outcome: Outcome
    reason: str
    evidence: tuple[EvidenceSource, ...] = ()
    subject: str | None = None


def passed(reason: str, *evidence: EvidenceSource, subject: str | None = None) -> Item:
    return Item(Outcome.PASS, reason, evidence, subject)


def failed(reason: str, *evidence: EvidenceSource, subject: str | None = None) -> Item:
    return Item(Outcome.FAIL, reason, evidence, subject)


def not_applicable(reason: str, *evidence: EvidenceSource, subject: str | None = None) -> Item:
    return Item(Outcome.NOT_APPLICABLE, reason, evidence, subject)


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds the checks use; the defaults are the documented ones.

    * ``max_challenges``: challenges for one request (same Call-ID and method)
      without success before AUTH-003 calls it a loop;
    * ``udp_size_limit``: RFC 3261 §18.1.1's 1300 bytes (path MTU minus margin);
    * ``rtp_loss_percent``: RTP loss above which RTP-002 fails;
    * ``refresh_margin``: seconds a registration may be late for REG-003 before
      it is called expired (clock and capture skew).
    """

    max_challenges: int = 2
    udp_size_limit: int = 1300
    rtp_loss_percent: float = 5.0
    refresh_margin: float = 2.0


@dataclass(frozen=True)
class Locality:
    """Which capture addresses are the platform's own (the harness, the agent).

    ``ips`` match any port; ``endpoints`` (``ip:port`` strings) are used when an IP
    is shared with a peer (everything on one loopback address). ``inferred`` says
    whether the addresses were guessed from the capture (see
    :func:`harness.checks.locality.infer_locality`).
    """

    ips: frozenset[str] = frozenset()
    endpoints: frozenset[str] = frozenset()
    inferred: bool = False

    @property
    def known(self) -> bool:
        return bool(self.ips or self.endpoints)

    def is_local(self, endpoint: object) -> bool:
        """True when ``endpoint`` (an :class:`~harness.capture.decode.Endpoint`) is ours."""
        ip = getattr(endpoint, "ip", None)
        return ip in self.ips or str(endpoint) in self.endpoints


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may look at; built by :func:`harness.checks.run.run_checks`.

    ``number`` never holds the password (it is :meth:`NumberConfig.redacted`).
    ``rtp`` maps Call-ID to its RTP streams, or is None when no RTP statistics were
    attached (the RTP checks are then not applicable). ``unreachable`` are the
    capture's ICMP errors for UDP datagrams (a request that went nowhere).
    """

    flows: Flows
    number: NumberConfig | None = None
    effective: Effective | None = None
    locality: Locality = field(default_factory=Locality)
    issues: tuple[DecodeIssue, ...] = ()
    tls_streams: tuple[TlsStream, ...] = ()
    rtp: Mapping[str, tuple[RtpStream, ...]] | None = None
    settings: CheckSettings = field(default_factory=CheckSettings)
    unreachable: tuple[Unreachable, ...] = ()
    #: What several checks derive alike from this context, computed once by the first
    #: to ask (``messages``, :func:`harness.checks.sipview.first_requests`' rows...),
    #: keyed by a name the filling code picks; not part of the context's identity.
    memo: dict[str, object] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def messages(self) -> Iterator[CapturedMessage]:
        """Every SIP message, in capture order (orphans without Call-ID included)."""
        found = self.memo.get("messages")
        if found is None:
            # Many checks walk every message: sorted once per context.
            every = [m for call in self.flows.calls for m in call.messages]
            every.extend(self.flows.orphans)
            found = self.memo["messages"] = tuple(sorted(every, key=lambda m: m.index))
        return iter(cast(tuple[CapturedMessage, ...], found))

    def outbound(self, captured: CapturedMessage) -> bool:
        """True when the platform sent ``captured`` (its source is a local address)."""
        return self.locality.is_local(captured.src)

    def inbound(self, captured: CapturedMessage) -> bool:
        return self.locality.is_local(captured.dst) and not self.locality.is_local(captured.src)


CheckFunction = Callable[[CheckContext], Iterable[Item]]


@dataclass(frozen=True)
class Check:
    """One conformance check: its stable id, what it says, and the function.

    ``reference`` is the rule it rests on (``RFC 3261 §8.1.1.7`` or
    ``number-file: outbound_proxy``); ``remediation`` is written for the customer
    and names the number-file field or the carrier setting to change.
    """

    id: str
    title: str
    reference: str
    severity: Severity
    remediation: str
    topic: str
    needs_number: bool
    function: CheckFunction = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "reference": self.reference,
            "severity": self.severity.value,
            "remediation": self.remediation,
            "topic": self.topic,
            "needs_number": self.needs_number,
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One outcome of one check on one item, with its evidence."""

    check_id: str
    outcome: Outcome
    reason: str
    evidence: tuple[Evidence, ...] = ()
    subject: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check_id,
            "outcome": self.outcome.value,
            "subject": self.subject,
            "reason": self.reason,
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True)
class Finding:
    """A check and every result it gave; ``outcome`` is the worst of them.

    A check with no result at all is ``not_applicable``.
    """

    check: Check
    results: tuple[CheckResult, ...]

    @property
    def outcome(self) -> Outcome:
        if not self.results:
            return Outcome.NOT_APPLICABLE
        return max((r.outcome for r in self.results), key=_OUTCOME_RANK.__getitem__)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The results that failed (or errored), in order."""
        return tuple(r for r in self.results if r.outcome in (Outcome.FAIL, Outcome.ERROR))

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """Evidence of the failing results, or of every result when none failed."""
        chosen = self.failures or self.results
        seen: dict[tuple[int | None, int | None, str], Evidence] = {}
        for result in chosen:
            for item in result.evidence:
                seen.setdefault((item.index, item.frame, item.summary), item)
        return tuple(seen.values())

    def to_dict(self) -> dict[str, object]:
        counts = {o.value: 0 for o in Outcome}
        for result in self.results:
            counts[result.outcome.value] += 1
        return {
            **self.check.to_dict(),
            "outcome": self.outcome.value,
            "counts": counts,
            "evidence": [e.to_dict() for e in self.evidence],
            "results": [r.to_dict() for r in self.results],
        }


class CheckRegistry:
    """Checks by id, in registration order; ids are unique."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(self, item: Check) -> None:
        if item.id in self._checks:
            raise ValueError(f"check id {item.id} registered twice")
        self._checks[item.id] = item

    def get(self, check_id: str) -> Check:
        return self._checks[check_id]

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def __iter__(self) -> Iterator[Check]:
        return iter(sorted(self._checks.values(), key=lambda c: c.id))

    def __len__(self) -> int:
        return len(self._checks)


#: The catalogue every check module registers into (see :func:`check`).
REGISTRY: Final = CheckRegistry()


def check(
    check_id: str,
    *,
    title: str,
    reference: str,
    severity: Severity,
    remediation: str,
    topic: str,
    needs_number: bool = False,
    registry: CheckRegistry = REGISTRY,
) -> Callable[[CheckFunction], CheckFunction]:
    """Decorator registering a check function under ``check_id``; returns it unchanged."""

    def register(function: CheckFunction) -> CheckFunction:
        registry.add(
            Check(
                id=check_id,
                title=title,
                reference=reference,
                severity=severity,
                remediation=remediation,
                topic=topic,
                needs_number=needs_number,
                function=function,
            )
        )
        return function

    return register
