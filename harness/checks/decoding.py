"""Decoding checks: packets that could not be read, and an incomplete capture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from harness.checks.registry import CheckContext, Item, Severity, check, failed, passed

TOPIC = "decode"

#: Issue kinds meaning "this packet (or file) could not be decoded".
UNDECODABLE: Final = frozenset(
    {
        "unparseable-sip",
        "invalid-sip",
        "malformed-packet",
        "internal-error",
        "unsupported-link",
        "corrupt-capture",
    }
)
#: Issue kinds meaning "part of the traffic is missing from the capture".
INCOMPLETE: Final = frozenset(
    {"truncated-capture", "tcp-gap", "tcp-midstream", "fragments-incomplete"}
)


@check(
    "DEC-001",
    title="Every SIP packet decodes",
    reference="RFC 3261 §7 and §25",
    severity=Severity.ERROR,
    remediation=(
        "Some packets look like SIP but cannot be parsed: the sender (or a SIP ALG on the "
        "path) produces malformed messages, which the carrier drops. Disable SIP ALG and "
        "report the snippet in the evidence to the sender's vendor."
    ),
    topic=TOPIC,
)
def undecodable(ctx: CheckContext) -> Iterator[Item]:
    bad = [issue for issue in ctx.issues if issue.kind in UNDECODABLE]
    for issue in bad:
        yield failed(issue.reason, issue)
    if not bad:
        yield passed("no undecodable packet")


@check(
    "DEC-002",
    title="Capture complete",
    reference="capture: pcap integrity",
    severity=Severity.WARNING,
    remediation=(
        "The capture misses traffic (truncated file, TCP gaps, lost fragments): checks may "
        "miss messages. Capture again with a larger buffer and snap length "
        "(tcpdump -s 0 -B 8192) on the host that talks to the carrier."
    ),
    topic=TOPIC,
)
def incomplete(ctx: CheckContext) -> Iterator[Item]:
    bad = [issue for issue in ctx.issues if issue.kind in INCOMPLETE]
    for issue in bad:
        yield failed(issue.reason, issue)
    if not bad:
        yield passed("the capture is complete")
