"""Which side of a capture is the platform: given, or inferred from the capture.

Checks about what the platform sends (From, Request-URI, Route, credentials) need
to know which messages are outbound. The harness knows its own addresses; for a
customer's capture (``analyze``) they are inferred, in this order:

1. the origination URI's host, when it is an IP address (the platform listens there);
2. the sources of requests sent to the configured target (proxy or domain) when its
   host is an IP address;
3. the sources of REGISTER requests (only the platform registers);
4. when none of the above applies, the source of the first out-of-dialog INVITE or
   OPTIONS.

An IP address that both sends and receives those requests (everything on one
loopback address) is recorded as ``ip:port`` endpoints instead of a bare IP.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.capture.decode import CapturedMessage, Endpoint
from harness.capture.flows import Flows
from harness.checks.registry import Locality
from harness.checks.sipview import is_initial, is_ip, request_of, same_ip
from harness.numbers.effective import Effective


def locality_from(addresses: Iterable[str]) -> Locality:
    """A :class:`Locality` from ``ip`` or ``ip:port`` strings (``[v6]:port`` too)."""
    ips: set[str] = set()
    endpoints: set[str] = set()
    for raw in addresses:
        text = raw.strip()
        if is_ip(text):
            ips.add(text)
        elif text:
            endpoints.add(text)
    return Locality(frozenset(ips), frozenset(endpoints), inferred=False)


def _requests(flows: Flows) -> list[CapturedMessage]:
    every = [m for call in flows.calls for m in call.messages if m.is_request]
    return sorted(every, key=lambda m: m.index)


def _from_pairs(pairs: list[tuple[Endpoint, Endpoint]], extra_ips: set[str]) -> Locality:
    sources = {src for src, _ in pairs}
    dest_ips = {dst.ip for _, dst in pairs}
    ips = set(extra_ips)
    endpoints: set[str] = set()
    for src in sources:
        if src.ip in dest_ips:
            endpoints.add(str(src))
        else:
            ips.add(src.ip)
    return Locality(frozenset(ips), frozenset(endpoints), inferred=True)


def infer_locality(flows: Flows, effective: Effective | None) -> Locality:
    """Guess the platform's addresses (module docstring); empty when nothing fits."""
    requests = _requests(flows)
    extra: set[str] = set()
    if effective is not None:
        origination = effective.origination
        if origination is not None and origination.host_is_ip:
            extra.add(origination.host)
        target = effective.target
        if target.host_is_ip:
            pairs = [
                (m.src, m.dst)
                for m in requests
                if same_ip(m.dst.ip, target.host) and not same_ip(m.src.ip, target.host)
            ]
            if pairs:
                return _from_pairs(pairs, extra)
    registers = [(m.src, m.dst) for m in requests if _method(m) == "REGISTER"]
    if registers:
        return _from_pairs(registers, extra)
    if extra:
        return Locality(frozenset(extra), frozenset(), inferred=True)
    for m in requests:
        msg = request_of(m)
        if msg is not None and msg.method in ("INVITE", "OPTIONS") and is_initial(msg):
            return _from_pairs([(m.src, m.dst)], extra)
    return Locality(frozenset(extra), frozenset(), inferred=True)


def _method(captured: CapturedMessage) -> str:
    msg = request_of(captured)
    return msg.method if msg is not None else ""
