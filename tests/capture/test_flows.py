"""Transactions, calls and the ladder built from decoded messages."""

from __future__ import annotations

import io

from harness.capture import Flows, build_flows, decode_capture
from tests.capture.builders import (
    CaptureBuilder,
    invite_dialog,
    options_ping,
    register_dialog,
    request,
    response,
    sdp_body,
)

A = ("10.0.0.1", 5060)
B = ("10.0.0.2", 5080)
P = ("10.0.0.3", 5065)


def flows_of(messages: list[tuple[tuple[str, int], tuple[str, int], bytes]]) -> Flows:
    cap = CaptureBuilder()
    for src, dst, payload in messages:
        cap.udp(src, dst, payload)
    return build_flows(decode_capture(io.BytesIO(cap.pcap())))


def test_invite_call_transactions_status_and_sdp_roles() -> None:
    flows = flows_of(invite_dialog("c1", A, B))
    (call,) = flows.calls
    assert call.call_id == "c1"
    assert call.method == "INVITE"
    assert call.final_status == 200
    assert call.participants == ("10.0.0.1:5060", "10.0.0.2:5080")
    assert [(t.method, t.final_status) for t in call.transactions] == [
        ("INVITE", 200),
        ("ACK", None),
        ("BYE", 200),
    ]
    invite = call.transactions[0]
    assert [m.message.status for m in invite.provisional] == [100, 180]  # type: ignore[union-attr]
    assert invite.client == "10.0.0.1:5060"
    assert invite.server == "10.0.0.2:5080"
    assert invite.ack is None  # a 2xx ACK is its own transaction
    assert [(e.role, e.message.index) for e in call.sdp] == [("offer", 0), ("answer", 3)]
    assert [m.port for m in call.media] == [40000, 50000]
    assert call.duration == call.end - call.start > 0


def test_non_2xx_ack_joins_the_invite_transaction_and_cancel_is_its_own() -> None:
    br = "z9hG4bK-x1"
    common = {"call_id": "c2"}
    messages = [
        (A, B, request("INVITE", cseq=1, src=A, branch=br, **common)),
        (A, B, request("INVITE", cseq=1, src=A, branch=br, **common)),  # retransmission
        (B, A, response(180, "Ringing", cseq=1, method="INVITE", via=A, branch=br, **common)),
        (A, B, request("CANCEL", cseq=1, src=A, branch=br, **common)),
        (B, A, response(200, "OK", cseq=1, method="CANCEL", via=A, branch=br, **common)),
        (
            B,
            A,
            response(
                487, "Request Terminated", cseq=1, method="INVITE", via=A, branch=br, **common
            ),
        ),
        (A, B, request("ACK", cseq=1, src=A, branch=br, to_tag="tt1", **common)),
    ]
    flows = flows_of(messages)
    (call,) = flows.calls
    invite, cancel = call.transactions
    assert invite.method == "INVITE"
    assert invite.retransmissions == 1
    assert invite.final_status == 487
    assert invite.ack is not None
    assert invite.ack.index == 6
    assert cancel.method == "CANCEL"
    assert cancel.final_status == 200
    assert call.final_status == 487
    assert len(flows.transactions) == 2


def test_register_final_status_is_the_last_attempt() -> None:
    flows = flows_of(register_dialog("r1", A, P))
    (call,) = flows.calls
    assert call.method == "REGISTER"
    assert [t.final_status for t in call.transactions] == [401, 200]
    assert call.final_status == 200


def test_reinvite_does_not_change_the_call_final_status() -> None:
    dialog = invite_dialog("c3", A, B)
    re_invite = request(
        "INVITE",
        call_id="c3",
        cseq=3,
        src=A,
        branch="z9hG4bK-re",
        to_tag="tt1",
        body=sdp_body(A[0], 40002),
    )
    rejected = response(
        491, "Request Pending", call_id="c3", cseq=3, method="INVITE", via=A, branch="z9hG4bK-re"
    )
    flows = flows_of([*dialog[:5], (A, B, re_invite), (B, A, rejected)])
    (call,) = flows.calls
    assert call.final_status == 200
    assert [e.role for e in call.sdp] == ["offer", "answer", "offer"]


def test_offer_in_200_is_answered_in_ack() -> None:
    br = "z9hG4bK-late"
    messages = [
        (A, B, request("INVITE", call_id="late", cseq=1, src=A, branch=br)),
        (
            B,
            A,
            response(
                200,
                "OK",
                call_id="late",
                cseq=1,
                method="INVITE",
                via=A,
                branch=br,
                body=sdp_body(B[0], 50000),
            ),
        ),
        (
            A,
            B,
            request(
                "ACK",
                call_id="late",
                cseq=1,
                src=A,
                branch="z9hG4bK-ack",
                to_tag="tt1",
                body=sdp_body(A[0], 40000),
            ),
        ),
    ]
    (call,) = flows_of(messages).calls
    assert [(e.role, e.message.index) for e in call.sdp] == [("offer", 1), ("answer", 2)]


def test_calls_and_ladder_across_several_calls() -> None:
    messages = [
        *options_ping("o1", A, P),
        *invite_dialog("c4", A, B)[:2],
        *register_dialog("r2", B, P)[:2],
    ]
    flows = flows_of(messages)
    assert [c.call_id for c in flows.calls] == ["o1", "c4", "r2"]
    assert [c.method for c in flows.calls] == ["OPTIONS", "INVITE", "REGISTER"]
    assert flows.call("c4") is flows.calls[1]
    assert flows.call("nope") is None
    ladder = flows.ladder
    assert ladder.participants == ("10.0.0.1:5060", "10.0.0.3:5065", "10.0.0.2:5080")
    assert [(a.src, a.dst, a.label) for a in ladder.arrows] == [
        (0, 1, "OPTIONS"),
        (1, 0, "200 OK"),
        (0, 2, "INVITE"),
        (2, 0, "100 Trying"),
        (2, 1, "REGISTER"),
        (1, 2, "401 Unauthorized"),
    ]
    assert ladder.arrows[0].offset == 0.0
    assert ladder.arrows[-1].offset > ladder.arrows[1].offset
    assert [a.index for a in ladder.arrows] == list(range(6))
    assert ladder.arrows[2].has_sdp
    assert ladder.arrows[2].is_request
    call_ladder = flows.calls[1].ladder()
    assert call_ladder.participants == ("10.0.0.1:5060", "10.0.0.2:5080")
    assert [a.label for a in call_ladder.arrows] == ["INVITE", "100 Trying"]


def test_proxy_hops_are_separate_transactions() -> None:
    up = request("INVITE", call_id="hop", cseq=1, src=A, branch="z9hG4bK-uac")
    down = request("INVITE", call_id="hop", cseq=1, src=P, branch="z9hG4bK-proxy")
    flows = flows_of(
        [
            (A, P, up),
            (P, B, down),
            (
                B,
                P,
                response(
                    100,
                    "Trying",
                    call_id="hop",
                    cseq=1,
                    method="INVITE",
                    via=P,
                    branch="z9hG4bK-proxy",
                ),
            ),
        ]
    )
    (call,) = flows.calls
    assert [t.branch for t in call.transactions] == ["z9hG4bK-uac", "z9hG4bK-proxy"]
    assert call.transactions[1].final_status is None
    assert len(call.transactions[1].responses) == 1
    assert call.participants == ("10.0.0.1:5060", "10.0.0.3:5065", "10.0.0.2:5080")


def test_rfc2543_messages_without_branch_still_group() -> None:
    messages = [
        (A, B, request("INVITE", call_id="old", cseq=1, src=A, branch="1")),
        (
            B,
            A,
            response(404, "Not Found", call_id="old", cseq=1, method="INVITE", via=A, branch="1"),
        ),
        (A, B, request("ACK", call_id="old", cseq=1, src=A, branch="1", to_tag="tt1")),
    ]
    (call,) = flows_of(messages).calls
    (txn,) = call.transactions
    assert txn.final_status == 404
    assert txn.ack is not None
