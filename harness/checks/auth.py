"""Digest authentication checks: who answers, with what, and how it ends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import cast

from harness.capture.decode import CapturedMessage
from harness.capture.flows import Transaction
from harness.checks.registry import (
    CheckContext,
    Item,
    Severity,
    check,
    failed,
    not_applicable,
    passed,
)
from harness.checks.sipview import (
    CHALLENGE_HEADERS,
    challenges,
    credentials,
    first_requests,
    is_initial,
    is_stale,
    request_of,
    response_of,
    status_of,
    transactions,
)

TOPIC = "auth"


@check(
    "AUTH-001",
    title="Digest username is auth_username (or username)",
    reference="RFC 3261 §22.4; number-file: auth_username, username",
    severity=Severity.ERROR,
    remediation=(
        "Set auth_username to the Authorization ID your PBX or carrier shows for this "
        "extension; it is sent as the digest username while username stays in From/To "
        "(leave auth_username out when both are the same)."
    ),
    topic=TOPIC,
    needs_number=True,
)
def digest_username(ctx: CheckContext) -> Iterator[Item]:
    assert ctx.effective is not None
    expected = ctx.effective.digest_username
    if expected is None:
        yield not_applicable("the number has no credentials (IP-authenticated trunk)")
        return
    for _, captured, msg in first_requests(ctx, outbound=True):
        for header, _, parsed in credentials(msg):
            if parsed is None:
                yield failed(f"{header} is not valid Digest credentials", captured)
            elif parsed.username == expected:
                yield passed(f"{header} username is {expected}", captured)
            else:
                yield failed(
                    f"{header} username is {parsed.username!r}, expected {expected!r}",
                    captured,
                    subject=msg.call_id,
                )


@check(
    "AUTH-002",
    title="Digest uri equals the Request-URI",
    reference="RFC 3261 §22.4; RFC 7616 §3.4.6",
    severity=Severity.ERROR,
    remediation=(
        "The digest uri must be the Request-URI byte for byte; registrars with strict "
        "digest-uri checking (Kamailio, Asterisk) reject anything else with 401/403. Check "
        "that sip_domain is written the same way the carrier writes it (host and port)."
    ),
    topic=TOPIC,
)
def digest_uri(ctx: CheckContext) -> Iterator[Item]:
    for _, captured, msg in first_requests(ctx):
        if msg.method == "ACK":
            # An ACK carries the INVITE's credentials unchanged (RFC 3261 §13.2.2.4),
            # digest uri included, while a 2xx ACK's Request-URI is the remote target.
            continue
        for header, _, parsed in credentials(msg):
            if parsed is None:
                continue  # AUTH-001 reports unparseable credentials
            if parsed.uri == msg.uri:
                yield passed(f"{header} uri is the Request-URI", captured)
            else:
                yield failed(
                    f"{header} uri {parsed.uri!r} differs from Request-URI {msg.uri!r}",
                    captured,
                    subject=msg.call_id,
                )


def _attempts(ctx: CheckContext) -> tuple[tuple[Transaction, ...], ...]:
    """Runs of out-of-dialog transactions of one method in one call (a request's attempts).

    Computed once per context: several checks walk the same runs.
    """
    found = ctx.memo.get("auth_attempts")
    if found is None:
        runs: list[tuple[Transaction, ...]] = []
        for call in ctx.flows.calls:
            by_method: dict[tuple[str, str | None], list[Transaction]] = {}
            for txn in transactions(call):
                msg = request_of(txn.request)
                if msg is None or not is_initial(msg) or msg.method in ("ACK", "CANCEL"):
                    continue
                by_method.setdefault((msg.method, str(txn.client)), []).append(txn)
            runs.extend(tuple(run) for run in by_method.values())
        found = ctx.memo["auth_attempts"] = tuple(runs)
    return cast(tuple[tuple[Transaction, ...], ...], found)


@check(
    "AUTH-003",
    title="No authentication challenge loop",
    reference="RFC 3261 §22.2",
    severity=Severity.ERROR,
    remediation=(
        "The carrier keeps challenging the same request: check password, auth_username and "
        "the realm the carrier expects; a registrar that challenges every answer usually "
        "rejects the digest username or the digest uri."
    ),
    topic=TOPIC,
)
def challenge_loop(ctx: CheckContext) -> Iterator[Item]:
    limit = ctx.settings.max_challenges
    for attempts in _attempts(ctx):
        run: list[CapturedMessage] = []
        looped = False
        for txn in attempts:
            final = txn.final
            if final is not None and status_of(final) in CHALLENGE_HEADERS:
                run.append(final)
                if len(run) > limit and not looped:
                    looped = True
                    yield failed(
                        f"{len(run)} challenges in a row for {txn.method} (limit {limit})",
                        *run,
                        subject=txn.call_id,
                    )
                continue
            if run and not looped and final is not None:
                yield passed(
                    f"{txn.method} succeeded after {len(run)} challenge(s)",
                    *run,
                    final,
                    subject=txn.call_id,
                )
            run, looped = [], False


@check(
    "AUTH-004",
    title="Credentials accepted",
    reference="RFC 3261 §22.2 and §21.4.4",
    severity=Severity.ERROR,
    remediation=(
        "The carrier rejected the credentials: set password (or password_env/password_file) "
        "and auth_username to what the carrier issued for this number, and check that the "
        "account is enabled on the carrier side."
    ),
    topic=TOPIC,
)
def credentials_accepted(ctx: CheckContext) -> Iterator[Item]:
    for txn, captured, msg in first_requests(ctx):
        if not any(True for _ in credentials(msg)):
            continue
        final = txn.final
        response = response_of(final)
        if final is None or response is None:
            continue
        if response.status in CHALLENGE_HEADERS and is_stale(response):
            yield passed("nonce expired (stale=true): not a credentials failure", captured, final)
        elif response.status in (401, 403, 407):
            yield failed(
                f"{msg.method} with credentials answered {response.status} {response.reason}",
                captured,
                final,
                subject=msg.call_id,
            )
        else:
            yield passed(f"{msg.method} with credentials answered {response.status}", final)


@check(
    "AUTH-005",
    title="Challenges answered with the matching header, realm and nonce",
    reference="RFC 3261 §22.2 and §22.3",
    severity=Severity.ERROR,
    remediation=(
        "Answer 401 with Authorization and 407 with Proxy-Authorization, using the realm and "
        "nonce of the challenge; when the carrier's realm differs from sip_domain, do not "
        "override the realm in the client."
    ),
    topic=TOPIC,
)
def challenge_answered(ctx: CheckContext) -> Iterator[Item]:
    for attempts in _attempts(ctx):
        for earlier, later in itertools.pairwise(attempts):
            final = earlier.final
            response = response_of(final)
            retry = later.request
            retry_msg = request_of(retry)
            if response is None or final is None or retry is None or retry_msg is None:
                continue
            header = {401: "Authorization", 407: "Proxy-Authorization"}.get(response.status)
            if header is None:
                continue
            offered = {(c.realm, c.nonce) for c in challenges(response)}
            answers = [p for name, _, p in credentials(retry_msg) if name == header]
            if not answers:
                yield failed(
                    f"{response.status} answered without {header}",
                    final,
                    retry,
                    subject=earlier.call_id,
                )
            elif any(p is not None and (p.realm, p.nonce) in offered for p in answers):
                yield passed(f"{response.status} answered with {header}", final, retry)
            else:
                yield failed(
                    f"{header} does not use the realm and nonce of the challenge",
                    final,
                    retry,
                    subject=earlier.call_id,
                )
