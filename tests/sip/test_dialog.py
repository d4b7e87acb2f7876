"""RFC 3261 §12 dialogs, the 2xx ACK (§13.2.2.4), BYE (§15) and CANCEL (§9.1)."""

from __future__ import annotations

import random

import pytest

from harness.sip.dialog import (
    Dialog,
    DialogId,
    DialogState,
    build_cancel,
    dialog_id_of_request,
)
from harness.sip.errors import LocalProtocolError, RemoteProtocolError
from harness.sip.ids import (
    MAGIC_COOKIE,
    IdGenerator,
    new_branch,
    new_call_id,
    new_cseq,
    new_tag,
)
from harness.sip.message import Request, Response
from harness.sip.uri import NameAddr, SipUri, parse_name_addr, parse_uri, parse_via
from tests.sip.helpers import make_request, make_response

CALL = "dlg-call@127.0.0.1"
ALICE_CONTACT = "<sip:alice@127.0.0.1:5060>"
BOB_CONTACT = "<sip:bob@127.0.0.5:5070;transport=udp>"
AUTH = 'Digest username="alice", realm="trunk", nonce="n1", uri="sip:x", response="abc"'
PROXY_AUTH = 'Digest username="alice", realm="proxy", nonce="n2", uri="sip:x", response="def"'
SEED = 7


def our_invite(**extra: str) -> Request:
    """The INVITE we (the platform, UAC) send."""
    return make_request(
        "INVITE",
        via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-inv-1;rport",
        call_id=CALL,
        extra=[
            ("Contact", ALICE_CONTACT),
            ("Authorization", AUTH),
            ("Proxy-Authorization", PROXY_AUTH),
            *extra.items(),
        ],
    )


def answer(
    request: Request,
    status: int = 200,
    *,
    record_route: list[str] | None = None,
    contact: str | None = BOB_CONTACT,
    tag: str | None = "bob-tag",
) -> Response:
    extra: list[tuple[str, str]] = []
    for value in record_route or []:
        extra.append(("Record-Route", value))
    if contact is not None:
        extra.append(("Contact", contact))
    return make_response(request, status, to_tag=tag, extra=extra)


def uac_dialog(record_route: list[str] | None = None) -> tuple[Dialog, Request]:
    invite = our_invite()
    # One Record-Route line holding two values, plus a second line: get_all splits both.
    rr = (
        record_route
        if record_route is not None
        else [
            "<sip:p1@127.0.0.3;lr>, <sip:p2@127.0.0.4;lr>",
            "<sip:p3@127.0.0.6;lr>",
        ]
    )
    dialog = Dialog.from_uac(
        invite, answer(invite, record_route=rr), ids=IdGenerator(random.Random(SEED))
    )
    return dialog, invite


def their_invite(record_route: list[str] | None = None, cseq: int = 314) -> Request:
    """An INVITE the carrier sends us (we are the UAS)."""
    return make_request(
        "INVITE",
        uri="sip:+15551230001@127.0.0.1:5080",
        via="SIP/2.0/UDP 127.0.0.5:5070;branch=z9hG4bK-their-1",
        from_='"Bob" <sip:+15551230002@127.0.0.5>;tag=bob-tag',
        to="<sip:+15551230001@127.0.0.1>",
        call_id=CALL,
        cseq=cseq,
        extra=[("Record-Route", rr) for rr in (record_route or [])]
        + [("Contact", "<sip:bob@127.0.0.5:5070>")],
    )


def uas_dialog(
    record_route: list[str] | None = None, ids: IdGenerator | None = None
) -> tuple[Dialog, Request]:
    request = their_invite(record_route)
    ok = answer(request, contact="<sip:platform@127.0.0.1:5080;transport=tcp>", tag="our-tag")
    return Dialog.from_uas(request, ok, ids=ids), request


def routes(request: Request) -> list[str]:
    return request.headers.get_all("Route")


def tag_of(request: Request, header: str) -> str | None:
    return parse_name_addr(request.headers.get(header) or "").tag


# --- creation -----------------------------------------------------------------------------


def test_uac_dialog_state_from_invite_and_2xx() -> None:
    dialog, _ = uac_dialog()
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.id == DialogId(CALL, "alice-tag", "bob-tag")
    assert dialog.remote_target == parse_uri("sip:bob@127.0.0.5:5070;transport=udp")
    assert str(dialog.local_uri) == "sip:+15551230001@127.0.0.1"
    assert str(dialog.remote_uri) == "sip:+15551230002@127.0.0.2"
    # §12.1.2: the response's Record-Route, reversed.
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p3@127.0.0.6;lr",
        "sip:p2@127.0.0.4;lr",
        "sip:p1@127.0.0.3;lr",
    ]
    assert dialog.local_seq == 1
    assert dialog.remote_seq is None


def test_uas_dialog_state_from_request_and_our_2xx() -> None:
    dialog, _ = uas_dialog(["<sip:p1@127.0.0.3;lr>", "<sip:p2@127.0.0.4;lr>"])
    assert dialog.id == DialogId(CALL, "our-tag", "bob-tag")
    # §12.1.1: the request's Record-Route, in order.
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p1@127.0.0.3;lr",
        "sip:p2@127.0.0.4;lr",
    ]
    assert dialog.remote_target == parse_uri("sip:bob@127.0.0.5:5070")
    assert str(dialog.local_uri) == "sip:+15551230001@127.0.0.1"
    assert str(dialog.remote_uri) == "sip:+15551230002@127.0.0.5"
    assert dialog.remote_seq == 314
    assert dialog.local_seq is None


def test_dialog_creation_rejects_responses_that_make_no_dialog() -> None:
    invite = our_invite()
    with pytest.raises(LocalProtocolError):
        Dialog.from_uac(invite, answer(invite, 100))
    with pytest.raises(RemoteProtocolError, match="tag"):
        Dialog.from_uac(invite, answer(invite, 200, tag=None))
    with pytest.raises(RemoteProtocolError, match="Contact"):
        Dialog.from_uac(invite, answer(invite, 200, contact=None))
    request = their_invite()
    with pytest.raises(LocalProtocolError, match="To tag"):
        Dialog.from_uas(request, answer(request, 200, tag=None))


# --- in-dialog requests ---------------------------------------------------------------------


def test_bye_from_uac_uses_loose_routes_tags_and_next_cseq() -> None:
    dialog, invite = uac_dialog()
    bye = dialog.create_request("BYE")

    assert bye.method == "BYE"
    assert bye.uri == "sip:bob@127.0.0.5:5070;transport=udp"  # the remote target
    assert routes(bye) == [
        "<sip:p3@127.0.0.6;lr>",
        "<sip:p2@127.0.0.4;lr>",
        "<sip:p1@127.0.0.3;lr>",
    ]
    assert bye.headers.get("CSeq") == "2 BYE"
    assert bye.headers.get("Call-ID") == CALL
    assert bye.headers.get("Max-Forwards") == "70"
    assert tag_of(bye, "From") == "alice-tag"
    assert tag_of(bye, "To") == "bob-tag"
    assert parse_name_addr(bye.headers.get("To") or "").uri == dialog.remote_uri
    assert "Contact" not in bye.headers
    [via] = bye.headers.get_all("Via")
    parsed = parse_via(via)
    assert (parsed.transport, parsed.host, parsed.port, parsed.has_rport) == (
        "UDP",
        "127.0.0.1",
        5060,
        True,
    )
    # The branch comes from the injected generator: the same seed gives the same branch.
    assert parsed.branch == new_branch(random.Random(SEED))
    assert parsed.branch != parse_via(invite.headers.get("Via") or "").branch
    assert dialog.local_seq == 2
    assert dialog.create_request("INFO", branch="z9hG4bK-info").headers.get("CSeq") == "3 INFO"


def test_target_refresh_requests_carry_our_contact() -> None:
    dialog, _ = uac_dialog()
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.headers.get("Contact") == ALICE_CONTACT
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    assert reinvite.body == b"v=0\r\n"
    with pytest.raises(LocalProtocolError, match="content_type"):
        dialog.create_request("INFO", body=b"x")


def test_uas_requests_start_a_local_cseq_and_use_a_via_from_our_contact() -> None:
    dialog, _ = uas_dialog(["<sip:p1@127.0.0.3;lr>"], ids=IdGenerator(random.Random(SEED)))
    bye = dialog.create_request("BYE")
    # Replaying the seed gives the same values (drawn branch first, then CSeq).
    rng = random.Random(SEED)
    expected_branch = new_branch(rng)
    expected_cseq = new_cseq(rng)
    assert bye.headers.get("CSeq") == f"{expected_cseq} BYE"
    assert bye.uri == "sip:bob@127.0.0.5:5070"
    assert routes(bye) == ["<sip:p1@127.0.0.3;lr>"]
    assert tag_of(bye, "From") == "our-tag"
    assert tag_of(bye, "To") == "bob-tag"
    via = parse_via(bye.headers.get("Via") or "")
    assert (via.transport, via.host, via.port) == ("TCP", "127.0.0.1", 5080)
    assert via.branch == expected_branch

    plain, _ = uas_dialog()
    assert plain.create_request("BYE", branch="z9hG4bK-b").headers.get("CSeq") == "1 BYE"
    with pytest.raises(LocalProtocolError, match="branch"):
        plain.create_request("BYE")


def test_strict_router_first_route_becomes_the_request_uri() -> None:
    dialog, _ = uas_dialog(
        ["<sip:strict@127.0.0.3;transport=udp;method=BYE?Subject=x>", "<sip:p2@127.0.0.4;lr>"]
    )
    bye = dialog.create_request("BYE", branch="z9hG4bK-strict")
    # §12.2.1.1: first route (without parameters a Request-URI may not carry) as the
    # Request-URI; remaining routes, then the remote target as the last Route.
    assert bye.uri == "sip:strict@127.0.0.3;transport=udp"
    assert routes(bye) == ["<sip:p2@127.0.0.4;lr>", "<sip:bob@127.0.0.5:5070>"]


def test_no_route_set_sends_straight_to_the_remote_target() -> None:
    dialog, _ = uac_dialog(record_route=[])
    bye = dialog.create_request("BYE")
    assert bye.uri == "sip:bob@127.0.0.5:5070;transport=udp"
    assert "Route" not in bye.headers


def test_ack_for_2xx_reuses_the_invite_cseq_and_credentials_with_a_new_branch() -> None:
    dialog, invite = uac_dialog()
    ack = dialog.create_ack(invite, body=b"v=0\r\n", content_type="application/sdp")
    assert ack.method == "ACK"
    assert ack.headers.get("CSeq") == "1 ACK"
    assert dialog.local_seq == 1  # an ACK consumes no CSeq number
    assert ack.uri == "sip:bob@127.0.0.5:5070;transport=udp"
    assert routes(ack) == routes(dialog.create_request("BYE", branch="z9hG4bK-bye"))
    assert ack.headers.get("Authorization") == AUTH
    assert ack.headers.get("Proxy-Authorization") == PROXY_AUTH
    [via] = ack.headers.get_all("Via")
    assert parse_via(via).branch != "z9hG4bK-inv-1"
    assert parse_via(via).branch.startswith(MAGIC_COOKIE)  # type: ignore[union-attr]
    assert tag_of(ack, "To") == "bob-tag"
    with pytest.raises(LocalProtocolError):
        dialog.create_ack(make_request("OPTIONS", call_id=CALL))
    with pytest.raises(LocalProtocolError):
        dialog.create_request("ACK")


# --- updates --------------------------------------------------------------------------------


def test_early_dialog_is_confirmed_by_2xx_and_recomputes_its_route_set() -> None:
    invite = our_invite()
    ringing = answer(
        invite, 180, record_route=["<sip:p1@127.0.0.3;lr>"], contact="<sip:bob-early@127.0.0.5>"
    )
    dialog = Dialog.from_uac(invite, ringing)
    assert dialog.state is DialogState.EARLY
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1@127.0.0.3;lr"]

    ok = answer(invite, 200, record_route=["<sip:p1@127.0.0.3;lr>", "<sip:p9@127.0.0.9;lr>"])
    dialog.receive_response(ok)
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p9@127.0.0.9;lr",
        "sip:p1@127.0.0.3;lr",
    ]
    assert dialog.remote_target == parse_uri("sip:bob@127.0.0.5:5070;transport=udp")


def test_early_dialog_ends_on_a_non_2xx_final_response() -> None:
    invite = our_invite()
    dialog = Dialog.from_uac(invite, answer(invite, 183))
    dialog.receive_response(answer(invite, 486))
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(LocalProtocolError, match="terminated"):
        dialog.create_request("BYE", branch="z9hG4bK-x")


def test_481_or_a_bye_response_ends_the_dialog_and_2xx_refreshes_the_target() -> None:
    dialog, _ = uac_dialog()
    reinvite = dialog.create_request("INVITE", branch="z9hG4bK-re")
    dialog.receive_response(answer(reinvite, 200, contact="<sip:bob-moved@127.0.0.8>"))
    assert dialog.remote_target == parse_uri("sip:bob-moved@127.0.0.8")
    assert dialog.state is DialogState.CONFIRMED

    info = dialog.create_request("INFO", branch="z9hG4bK-info")
    dialog.receive_response(answer(info, 481))
    assert dialog.state is DialogState.TERMINATED

    other, _ = uac_dialog()
    bye = other.create_request("BYE", branch="z9hG4bK-bye")
    other.receive_response(answer(bye, 200))
    assert other.state is DialogState.TERMINATED


def test_remote_cseq_lower_than_the_last_is_answered_500() -> None:
    dialog, _ = uas_dialog()

    def incoming(method: str, cseq: int, contact: str | None = None) -> Request:
        extra = [("Contact", contact)] if contact else []
        return make_request(
            method,
            via="SIP/2.0/UDP 127.0.0.5:5070;branch=z9hG4bK-in",
            from_='"Bob" <sip:+15551230002@127.0.0.5>;tag=bob-tag',
            to="<sip:+15551230001@127.0.0.1>;tag=our-tag",
            call_id=CALL,
            cseq=cseq,
            extra=extra,
        )

    stale = incoming("INFO", 313)
    assert dialog.is_out_of_order(stale)
    assert dialog.receive_request(stale) == 500
    assert dialog.remote_seq == 314  # unchanged
    assert dialog_id_of_request(stale) == dialog.id

    assert dialog.receive_request(incoming("ACK", 314)) is None  # ACK reuses the INVITE's
    refresh = incoming("INVITE", 315, contact="<sip:bob@127.0.0.7:5090>")
    assert not dialog.is_out_of_order(refresh)
    assert dialog.receive_request(refresh) is None
    assert dialog.remote_seq == 315
    assert dialog.remote_target == parse_uri("sip:bob@127.0.0.7:5090")

    assert dialog.receive_request(incoming("BYE", 316)) is None
    assert dialog.state is DialogState.TERMINATED

    foreign = make_request(
        "BYE",
        from_="<sip:x@127.0.0.5>;tag=other",
        to="<sip:y@127.0.0.1>;tag=our-tag",
        call_id=CALL,
    )
    with pytest.raises(LocalProtocolError, match="does not belong"):
        dialog.receive_request(foreign)


# --- CANCEL -----------------------------------------------------------------------------


def test_cancel_follows_9_1() -> None:
    invite = our_invite(Route="<sip:outbound@127.0.0.3;lr>")
    invite.headers.add("Via", "SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK-below")
    cancel = build_cancel(invite)
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert cancel.headers.get_all("Via") == [
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-inv-1;rport"
    ]
    assert cancel.headers.get("CSeq") == "1 CANCEL"
    assert cancel.headers.get("To") == invite.headers.get("To")
    assert tag_of(cancel, "To") is None
    assert cancel.headers.get("From") == invite.headers.get("From")
    assert cancel.headers.get("Call-ID") == CALL
    assert routes(cancel) == ["<sip:outbound@127.0.0.3;lr>"]
    assert "Authorization" not in cancel.headers
    with pytest.raises(LocalProtocolError, match="only an INVITE"):
        build_cancel(make_request("OPTIONS"))


# --- identifiers ----------------------------------------------------------------------------


class _Constant:
    """A random source returning all-zero or all-one bits."""

    def __init__(self, ones: bool) -> None:
        self.ones = ones

    def getrandbits(self, k: int, /) -> int:
        return (1 << k) - 1 if self.ones else 0


def test_ids_are_tokens_from_the_injected_source() -> None:
    assert new_branch(_Constant(False)) == "z9hG4bK" + "0" * 16
    assert new_tag(_Constant(True)) == "f" * 16
    assert new_call_id(_Constant(False), "127.0.0.1") == "0" * 32 + "@127.0.0.1"
    assert new_cseq(_Constant(False)) == 1
    assert 0 < new_cseq(_Constant(True)) < 2**31
    a, b = IdGenerator(random.Random(1)), IdGenerator(random.Random(1))
    assert [a.branch(), a.tag(), a.call_id()] == [b.branch(), b.tag(), b.call_id()]
    assert a.branch() != a.branch()


def test_name_addr_rendering_used_by_dialogs() -> None:
    # The dialog writes From/To/Route through NameAddr: check that round trip.
    rendered = str(NameAddr(uri=SipUri(host="127.0.0.3", params=(("lr", None),))))
    assert rendered == "<sip:127.0.0.3;lr>"
