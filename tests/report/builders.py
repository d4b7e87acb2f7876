"""Results to render in tests and the benchmark: synthetic runs of realistic size, and
results built from a real SIPp capture decoded through harness.capture.

Messages are built with harness.sip.message (structured objects, not strings).
"""

from __future__ import annotations

import random
from pathlib import Path

from harness.capture import build_flows, decode_capture
from harness.results import (
    Arrow,
    Event,
    EvidenceRef,
    FindingRecord,
    LadderRecord,
    MessageRecord,
    PeerInfo,
    RunResults,
    ScenarioRecord,
    Step,
    Verdict,
)
from harness.sip.message import Request, Response, make_request, make_response

HERE = Path(__file__).resolve().parent
CAPTURE_DATA = HERE.parent / "capture" / "data"
SIPP_UDP_PCAPNG = CAPTURE_DATA / "sipp_udp_lo.pcapng"

SCENARIOS = [
    "options-ping",
    "register",
    "register-refresh",
    "unregister",
    "outbound-call",
    "outbound-call-auth",
    "outbound-cancel",
    "inbound-call",
    "inbound-bye-from-peer",
    "dtmf-rfc4733",
    "register-423-min-expires",
    "stale-nonce",
]
PROFILES = ["registrar-udp", "proxy-tcp-5065", "asterisk-authid", "ip-trunk", "tls-5061"]

HARNESS = "127.0.0.1:5060"
NONCE = "5f1c0a6e8d2b4c1a9e7f3d2c1b0a9f8e"
RESPONSE = "6629fae49393a05397450978507c4ef1"
CNONCE = "0a4f113b"


def _tag(rng: random.Random) -> str:
    return f"{rng.getrandbits(32):08x}"


def _common(call_id: str, cseq: str, from_tag: str, to_tag: str = "") -> list[tuple[str, str]]:
    to = "<sip:+14155550100@sip.example.net>" + (f";tag={to_tag}" if to_tag else "")
    return [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK" + call_id[:10] + cseq[:1]),
        ("From", f"<sip:+14155550100@sip.example.net>;tag={from_tag}"),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", cseq),
    ]


def call_messages(
    rng: random.Random, *, count: int, peer: str, transport: str
) -> list[Request | Response]:
    """A plausible dialog of ``count`` messages: challenge, INVITE with SDP, BYE..."""
    call_id = f"{rng.getrandbits(64):016x}@127.0.0.1"
    ftag, ttag = _tag(rng), _tag(rng)
    sdp = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    auth = (
        'Digest username="alice", realm="sip.example.net", nonce="'
        + NONCE
        + '", uri="sip:+14155550199@sip.example.net", response="'
        + RESPONSE
        + '", algorithm=MD5, cnonce="'
        + CNONCE
        + '", qop=auth, nc=00000001'
    )
    template: list[Request | Response] = [
        make_request(
            "INVITE", "sip:+14155550199@sip.example.net", _common(call_id, "1 INVITE", ftag), sdp
        ),
        make_response(100, "Trying", _common(call_id, "1 INVITE", ftag)),
        make_response(
            407,
            "Proxy Authentication Required",
            [
                *_common(call_id, "1 INVITE", ftag, ttag),
                (
                    "Proxy-Authenticate",
                    f'Digest realm="sip.example.net", nonce="{NONCE}", qop="auth"',
                ),
            ],
        ),
        make_request(
            "ACK", "sip:+14155550199@sip.example.net", _common(call_id, "1 ACK", ftag, ttag)
        ),
        make_request(
            "INVITE",
            "sip:+14155550199@sip.example.net",
            [*_common(call_id, "2 INVITE", ftag), ("Proxy-Authorization", auth)],
            sdp,
        ),
        make_response(100, "Trying", _common(call_id, "2 INVITE", ftag)),
        make_response(180, "Ringing", _common(call_id, "2 INVITE", ftag, ttag)),
        make_response(200, "OK", _common(call_id, "2 INVITE", ftag, ttag), sdp),
        make_request("ACK", "sip:+14155550199@127.0.0.2", _common(call_id, "2 ACK", ftag, ttag)),
        make_request("BYE", "sip:+14155550199@127.0.0.2", _common(call_id, "3 BYE", ftag, ttag)),
        make_response(200, "OK", _common(call_id, "3 BYE", ftag, ttag)),
    ]
    out = [template[i % len(template)] for i in range(count)]
    return out


def _label(message: Request | Response) -> str:
    if isinstance(message, Request):
        return message.method
    return f"{message.status} {message.reason}"


def make_record(
    rng: random.Random,
    scenario: str,
    profile: str,
    verdict: Verdict,
    *,
    messages: int = 20,
    findings: int = 10,
    peer: str = "127.0.0.2:5060",
    transport: str = "udp",
    pcap: str | None = None,
) -> ScenarioRecord:
    """One record with ``messages`` messages (a ladder) and ``findings`` findings."""
    sip = call_messages(rng, count=messages, peer=peer, transport=transport)
    msgs: list[MessageRecord] = []
    arrows: list[Arrow] = []
    events: list[Event] = []
    t = 0.0
    for i, message in enumerate(sip):
        outbound = isinstance(message, Request)
        src, dst = (HARNESS, peer) if outbound else (peer, HARNESS)
        text = message.to_bytes().decode()
        label = _label(message)
        msgs.append(
            MessageRecord(
                index=i,
                time=round(t, 6),
                src=src,
                dst=dst,
                transport=transport,
                label=label,
                summary=f"{label} ({message.headers.get('CSeq')})",
                text=text,
                frame=i + 1,
            )
        )
        arrows.append(
            Arrow(0 if outbound else 1, 1 if outbound else 0, label, round(t, 6), transport, i)
        )
        events.append(
            Event(
                t=round(t, 6),
                kind="sip",
                direction="out" if outbound else "in",
                transport=transport,
                local=HARNESS,
                remote=peer,
                summary=label,
                text=text,
            )
        )
        t += rng.uniform(0.001, 0.05)
    found: list[FindingRecord] = []
    for j in range(findings):
        failed = verdict == Verdict.FAIL and j < 2
        found.append(
            FindingRecord(
                id=f"SIP-{scenario[:3].upper()}-{j:03d}",
                title=f"Check {j} of {scenario}",
                severity=("error", "warning", "info")[j % 3],
                outcome="fail" if failed else ("pass" if j % 4 else "not_applicable"),
                rfc=f"RFC 3261 §{8 + j % 10}.{j % 4 + 1}",
                remediation=(
                    "Set outbound_proxy to the carrier's SBC "
                    "(sip:sbc.example.net:5065;transport=tcp) "
                    "in the number file."
                ),
                detail=f"expected 200 OK to INVITE, got 403 Forbidden after {j + 1} attempts",
                evidence=[
                    EvidenceRef(
                        index=min(j, len(msgs) - 1),
                        frame=j + 1,
                        time=0.01 * j,
                        summary=f"403 Forbidden (frame {j + 1})",
                    )
                ]
                if msgs
                else [],
            )
        )
    steps = [
        Step("start peers", "pass", "kamailio 5.6 ready", 0.0, 0.25),
        Step("register", "pass", "200 OK after 401", 0.25, 0.04),
        Step(
            "call",
            "fail"
            if verdict == Verdict.FAIL
            else ("error" if verdict == Verdict.ERROR else "pass"),
            "403 Forbidden" if verdict == Verdict.FAIL else "",
            0.29,
            0.9,
        ),
    ]
    reason = {
        Verdict.FAIL: "INVITE was rejected with 403 Forbidden",
        Verdict.ERROR: "peer kamailio exited before the scenario started",
        Verdict.SKIP: "profile has no registrar: scenario does not apply",
        Verdict.PASS: "",
    }[verdict]
    return ScenarioRecord(
        scenario=scenario,
        profile=profile,
        verdict=verdict,
        title=scenario.replace("-", " ").capitalize(),
        reason=reason,
        duration_s=round(t + 0.3, 3),
        started_at="2025-01-15T02:00:00+00:00",
        steps=steps,
        events=events,
        findings=found,
        messages=msgs,
        ladder=LadderRecord(participants=[HARNESS, peer], arrows=arrows),
        rtp=[
            {
                "codec": "PCMU",
                "payload_type": 0,
                "local": "127.0.0.1:40000",
                "remote": "127.0.0.2:30000",
                "packets_sent": 250,
                "packets_received": 249,
                "packets_lost": 1,
                "jitter_ms": 0.412,
                "rtt_ms_avg": 1.2,
                "two_way": True,
            }
        ]
        if scenario.endswith("call")
        else [],
        pcap=pcap,
        peer_logs={"kamailio": "0(17) ERROR: <core> [core/tcp_main.c:1234]: connect failed\n"}
        if verdict in (Verdict.FAIL, Verdict.ERROR)
        else {},
    )


def sample_results(
    *,
    scenarios: list[str] | None = None,
    profiles: list[str] | None = None,
    messages: int = 20,
    findings: int = 10,
    seed: int = 7,
    count: int | None = None,
) -> RunResults:
    """A run of ``scenarios`` × ``profiles`` (or ``count`` records) with mixed verdicts.

    Verdicts cycle so every kind appears and failures are not first in run order.
    """
    rng = random.Random(seed)
    scenarios = scenarios or SCENARIOS
    profiles = profiles or PROFILES
    pairs = [(s, p) for s in scenarios for p in profiles]
    if count is not None:
        pairs = [
            (f"{scenarios[i % len(scenarios)]}-{i // len(scenarios)}", profiles[i % len(profiles)])
            for i in range(count)
        ]
    cycle = [
        Verdict.PASS,
        Verdict.PASS,
        Verdict.SKIP,
        Verdict.PASS,
        Verdict.FAIL,
        Verdict.PASS,
        Verdict.ERROR,
    ]
    records = [
        make_record(
            rng,
            s,
            p,
            cycle[i % len(cycle)],
            messages=messages,
            findings=findings,
            pcap=f"pcaps/{s}-{p}.pcap",
        )
        for i, (s, p) in enumerate(pairs)
    ]
    return RunResults(
        command="run",
        started_at="2025-01-15T02:00:00+00:00",
        duration_s=round(sum(r.duration_s for r in records), 3),
        number={
            "phone_number": "+14155550100",
            "sip_domain": "sip.example.net",
            "username": "alice",
            "auth_username": "alice-auth",
            "outbound_proxy": "sip:sbc.example.net:5065;transport=tcp",
            "origination_uri": "sip:127.0.0.1:5080",
            "registers": True,
        },
        profiles=list(profiles),
        peers=[
            PeerInfo(p, "registrar", "kamailio", "5.6.3", "127.0.0.2", 5060, "udp")
            for p in profiles
        ]
        + [PeerInfo(profiles[-1], "pbx", "asterisk", "22.1.0", "127.0.0.3", 5061, "tls")],
        records=records,
    )


def results_from_capture(path: Path = SIPP_UDP_PCAPNG, *, pcap: str | None = None) -> RunResults:
    """Results of an ``analyze`` of a real SIPp capture: one record per call, messages and
    ladder from harness.capture (decode + flows); the second call is marked failed."""
    decoded = decode_capture(path)
    flows = build_flows(decoded)
    records = []
    for n, call in enumerate(flows.calls):
        start = call.messages[0].timestamp
        index_map = {m.index: i for i, m in enumerate(call.messages)}
        ladder = call.ladder()
        messages = [
            MessageRecord(
                index=i,
                time=round(m.timestamp - start, 6),
                src=str(m.src),
                dst=str(m.dst),
                transport=m.transport,
                label=_label(m.message),
                summary=_label(m.message),
                text=m.message.to_bytes().decode("utf-8", "replace"),
                frame=m.frame,
            )
            for i, m in enumerate(call.messages)
        ]
        verdict = Verdict.FAIL if n == 1 else Verdict.PASS
        findings = [
            FindingRecord(
                id="CALL-ANSWERED",
                title="The call is answered with 200 OK",
                severity="error",
                outcome="fail" if verdict == Verdict.FAIL else "pass",
                rfc="RFC 3261 §13.2.2.4",
                remediation="Ask the carrier why the call was not answered.",
                evidence=[EvidenceRef(0, messages[0].frame, 0.0, messages[0].summary)],
            )
        ]
        records.append(
            ScenarioRecord(
                scenario=f"call-{n + 1}",
                profile="sipp-uas",
                verdict=verdict,
                title=f"{call.method} {call.call_id}",
                reason="no 200 OK seen" if verdict == Verdict.FAIL else "",
                duration_s=round(call.duration, 3),
                findings=findings,
                messages=messages,
                ladder=LadderRecord(
                    participants=list(ladder.participants),
                    arrows=[
                        Arrow(
                            a.src,
                            a.dst,
                            a.label,
                            round(a.offset, 6),
                            a.transport,
                            index_map.get(a.index),
                        )
                        for a in ladder.arrows
                    ],
                ),
                pcap=pcap,
            )
        )
    return RunResults(
        command="analyze",
        started_at="2025-01-15T02:00:00+00:00",
        duration_s=0.2,
        profiles=["sipp-uas"],
        peers=[PeerInfo("sipp-uas", "uas", "sipp", "3.6.1", "127.0.0.61", 5071, "udp")],
        records=records,
    )
