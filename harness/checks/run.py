"""Running the catalogue: every check over a capture's flows (and a number, if given).

:func:`run_checks` never raises because of what the capture holds: each check runs
guarded, and a check that raises becomes one ``error`` result for that check (a
harness bug, reported with the exception's type and message), while the other
checks still run.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from harness.capture.decode import (
    CapturedMessage,
    Decoded,
    DecodeIssue,
    TlsStream,
    Unreachable,
    _fewer_full_collections,
)
from harness.capture.flows import Flows, build_flows
from harness.capture.rtp import RtpStream
from harness.checks.catalogue import all_checks
from harness.checks.locality import infer_locality, locality_from
from harness.checks.registry import (
    Check,
    CheckContext,
    CheckResult,
    CheckSettings,
    Evidence,
    EvidenceSource,
    Finding,
    Locality,
    Outcome,
    Severity,
    mask_uri_passwords,
    to_evidence,
)
from harness.checks.sipview import whole_run_memo
from harness.numbers.effective import effective_view
from harness.numbers.model import NumberConfig


@dataclass(frozen=True)
class CheckRun:
    """Every check's :class:`Finding`, in catalogue (id) order."""

    findings: tuple[Finding, ...]
    locality: Locality
    number_given: bool

    @property
    def failed(self) -> tuple[Finding, ...]:
        """Findings whose outcome is ``fail`` or ``error``."""
        return tuple(f for f in self.findings if f.outcome in (Outcome.FAIL, Outcome.ERROR))

    @property
    def ok(self) -> bool:
        """True when no check failed (nor errored)."""
        return not self.failed

    def finding(self, check_id: str) -> Finding:
        for item in self.findings:
            if item.check.id == check_id:
                return item
        raise KeyError(check_id)

    def counts(self) -> dict[str, int]:
        """Failed findings per severity, plus totals per outcome."""
        counts = {s.value: 0 for s in Severity}
        for item in self.failed:
            counts[item.check.severity.value] += 1
        for outcome in Outcome:
            counts[outcome.value] = sum(1 for f in self.findings if f.outcome is outcome)
        return counts


def build_context(
    flows: Flows,
    number: NumberConfig | None = None,
    *,
    issues: Iterable[DecodeIssue] = (),
    tls_streams: Iterable[TlsStream] = (),
    rtp: Mapping[str, tuple[RtpStream, ...]] | None = None,
    local_addresses: Iterable[str] | None = None,
    settings: CheckSettings | None = None,
    unreachable: Iterable[Unreachable] = (),
) -> CheckContext:
    """The :class:`CheckContext` for ``flows``; the number is kept without its password.

    ``local_addresses`` (``ip`` or ``ip:port``) name the platform's side; when None
    they are inferred from the capture (:func:`harness.checks.locality.infer_locality`).
    """
    safe = number.redacted() if number is not None else None
    effective = effective_view(number) if number is not None else None
    if local_addresses is not None:
        locality = locality_from(local_addresses)
    else:
        locality = infer_locality(flows, effective)
    return CheckContext(
        flows=flows,
        number=safe,
        effective=effective,
        locality=locality,
        issues=tuple(issues),
        tls_streams=tuple(tls_streams),
        rtp=rtp,
        settings=settings or CheckSettings(),
        unreachable=tuple(unreachable),
    )


def run_check(
    check: Check, ctx: CheckContext, *, evidence_of: dict[int, Evidence] | None = None
) -> Finding:
    """Run one check guarded; see the module docstring.

    ``evidence_of`` memoises the :class:`Evidence` of each captured message by its
    index: pass the same dict to every check of one run and a message cited by
    many results is described once (the same frozen object in each of them).
    """
    if check.needs_number and ctx.number is None:
        result = CheckResult(check.id, Outcome.NOT_APPLICABLE, "needs the number file (--number)")
        return Finding(check, (result,))
    memo: dict[int, Evidence] = {} if evidence_of is None else evidence_of
    results: list[CheckResult] = []
    try:
        for item in check.function(ctx):
            evidence = tuple([_evidence(source, memo) for source in item.evidence])
            reason = mask_uri_passwords(item.reason)
            subject = None if item.subject is None else mask_uri_passwords(item.subject)
            results.append(CheckResult(check.id, item.outcome, reason, evidence, subject))
    except Exception as err:  # reported as this check's error result, see module docstring
        results.append(
            CheckResult(
                check.id,
                Outcome.ERROR,
                f"the check itself failed: {type(err).__name__}: {err}",
            )
        )
    if not results:
        results.append(
            CheckResult(check.id, Outcome.NOT_APPLICABLE, "nothing in the capture it applies to")
        )
    return Finding(check, tuple(results))


def run_checks(
    flows: Flows,
    number: NumberConfig | None = None,
    *,
    issues: Iterable[DecodeIssue] = (),
    tls_streams: Iterable[TlsStream] = (),
    rtp: Mapping[str, tuple[RtpStream, ...]] | None = None,
    local_addresses: Iterable[str] | None = None,
    settings: CheckSettings | None = None,
    checks: Iterable[Check] | None = None,
    unreachable: Iterable[Unreachable] = (),
) -> CheckRun:
    """Run ``checks`` (default: the whole catalogue) and return their findings."""
    with _capture_frozen(), whole_run_memo():
        ctx = build_context(
            flows,
            number,
            issues=issues,
            tls_streams=tls_streams,
            rtp=rtp,
            local_addresses=local_addresses,
            settings=settings,
            unreachable=unreachable,
        )
        chosen = tuple(checks) if checks is not None else all_checks()
        evidence_of: dict[int, Evidence] = {}
        findings = tuple(run_check(item, ctx, evidence_of=evidence_of) for item in chosen)
    return CheckRun(findings, ctx.locality, number is not None)


def _evidence(source: EvidenceSource, memo: dict[int, Evidence]) -> Evidence:
    if isinstance(source, CapturedMessage):
        found = memo.get(source.index)
        if found is None:
            found = memo[source.index] = Evidence.of_message(source)
        return found
    return to_evidence(source)


@contextmanager
def _capture_frozen() -> Iterator[None]:
    """Keep the garbage collector off the (already built) capture while checks run.

    The decoded messages and flows are millions of acyclic objects; every full
    collection triggered by the checks' allocations rescanned all of them (measured:
    a quarter of the checks' time at 100,000 messages). ``gc.freeze`` moves what
    exists now out of the collector's sight; it is undone on exit, unless a caller
    had frozen objects already (then theirs and ours stay frozen, as they chose).
    """
    owner = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        # What the checks build (results, memoised parses) is acyclic too, and grows
        # over the run: with the default thresholds each full collection rescanned
        # all of it (measured: a fifth of the checks' time at 100,000 messages).
        with _fewer_full_collections():
            yield
    finally:
        if owner:
            gc.unfreeze()


def check_decoded(
    decoded: Decoded,
    number: NumberConfig | None = None,
    *,
    rtp: Mapping[str, tuple[RtpStream, ...]] | None = None,
    local_addresses: Iterable[str] | None = None,
    settings: CheckSettings | None = None,
) -> tuple[Flows, CheckRun]:
    """Build the flows of a decoded capture and run every check over them."""
    flows = build_flows(decoded)
    run = run_checks(
        flows,
        number,
        issues=decoded.issues,
        tls_streams=decoded.tls_streams,
        rtp=rtp,
        local_addresses=local_addresses,
        settings=settings,
        unreachable=decoded.unreachable,
    )
    return flows, run
