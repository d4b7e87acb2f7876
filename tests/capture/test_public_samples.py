"""Agreement with tshark on public sample captures (``data/public/``, see its README.md).

For each capture: the decoder raises nothing, finds the same SIP messages as tshark
(count and (Call-ID, CSeq, method or status)), and every check runs over its flows
without erroring.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.capture import build_flows, decode_capture
from harness.checks import Outcome, run_checks
from tests.capture.test_tshark_agreement import TSHARK, decoded_keys, tshark_keys

PUBLIC = Path(__file__).parent / "data" / "public"

# SIP messages in each capture, as both tshark and the decoder count them (README.md).
EXPECTED = {
    "ipfixprobe-sip.pcap": 40,
    "pcapplusplus-sip_non_default_port.pcap": 2,
    "pkts-fragmented_tcp_sip.pcap": 6,
    "pkts-fragmented_udp_sip.pcap": 5,
    "pkts-sip_rtp.pcap": 6,
}

# tshark's ``sip`` also matches the copy of a datagram quoted in an ICMP error (RFC 792,
# RFC 4443): that copy was not sent as a message, so it is left out of the comparison.
# The decoder reports such errors as ``Decoded.unreachable``; the test checks they are
# the very frames tshark finds SIP quoted in.
ON_THE_WIRE = "sip && !icmp && !icmpv6"
QUOTED_IN_ICMP = "sip && (icmp || icmpv6)"

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


def tshark_frames(path: Path, display_filter: str) -> list[int]:
    """Numbers of the frames tshark shows for ``display_filter``."""
    assert TSHARK is not None
    done = subprocess.run(
        [TSHARK, "-n", "-r", str(path), "-Y", display_filter, "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [int(line) for line in done.stdout.split()]


def test_every_public_sample_has_an_expectation() -> None:
    present = {p.name for p in PUBLIC.iterdir() if p.suffix in (".pcap", ".pcapng")}
    assert present == set(EXPECTED)


@needs_tshark
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_sample_agrees_with_tshark(name: str) -> None:
    path = PUBLIC / name
    decoded = decode_capture(path)
    assert not any(i.kind == "internal-error" for i in decoded.issues)
    ours = decoded_keys(decoded)
    theirs = tshark_keys(path, ON_THE_WIRE)
    assert sum(ours.values()) == sum(theirs.values()) == EXPECTED[name]
    assert ours == theirs
    quoted = tshark_frames(path, QUOTED_IN_ICMP)
    assert sorted(u.frame for u in decoded.unreachable) == quoted


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_sample_checks_run_without_error(name: str) -> None:
    decoded = decode_capture(PUBLIC / name)
    run = run_checks(
        build_flows(decoded),
        issues=decoded.issues,
        tls_streams=decoded.tls_streams,
        unreachable=decoded.unreachable,
    )
    errored = {
        f.check.id: [r.reason for r in f.results if r.outcome is Outcome.ERROR]
        for f in run.findings
        if f.outcome is Outcome.ERROR
    }
    assert errored == {}
