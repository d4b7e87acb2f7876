"""RFC 3261 §17 / RFC 6026 transaction state machines, driven by a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.sip.errors import LocalProtocolError
from harness.sip.message import Request, Response
from harness.sip.timers import TimerConfig, TimerName
from harness.sip.transaction import (
    ICT_TABLE,
    IST_TABLE,
    NICT_TABLE,
    NIST_TABLE,
    AckReceived,
    ClientTransactionKey,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestRetransmitted,
    ResponseAbsorbed,
    ResponseReceived,
    ServerTransactionKey,
    Start,
    State,
    Stop,
    Terminated,
    TransactionTimeout,
    TransportError,
    build_trying,
    request_key,
    response_key,
)
from tests.sip.helpers import (
    FakeClock,
    FakeLink,
    Run,
    collect,
    drop_first,
    make_request,
    make_response,
    run_timers,
)

NICT_VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-nict-1"

# The exact series RFC 3261 §17.1.1.2 and §17.1.2.2 give with the default timers.
TIMER_A_SENDS = [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
TIMER_E_SENDS = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]


def invite(**kwargs: object) -> Request:
    return make_request("INVITE", **kwargs)  # type: ignore[arg-type]


def options() -> Request:
    return make_request("OPTIONS", via=NICT_VIA)


def started_ict(
    *, reliable: bool = False, config: TimerConfig | None = None, request: Request | None = None
) -> tuple[InviteClientTransaction, FakeClock, Run]:
    clock = FakeClock()
    tx = InviteClientTransaction(request or invite(), reliable=reliable, config=config)
    tx.start(clock.now)
    return tx, clock, collect(tx, clock, Run())


def started_nict(
    *, reliable: bool = False, config: TimerConfig | None = None
) -> tuple[NonInviteClientTransaction, FakeClock, Run]:
    clock = FakeClock()
    tx = NonInviteClientTransaction(options(), reliable=reliable, config=config)
    tx.start(clock.now)
    return tx, clock, collect(tx, clock, Run())


def timeouts(run: Run) -> list[tuple[float, TimerName]]:
    return [(h.at, h.event.timer) for h in run.events if isinstance(h.event, TransactionTimeout)]


def termination_time(run: Run) -> float:
    [at] = [h.at for h in run.events if isinstance(h.event, Terminated)]
    return at


# --- INVITE client transaction -------------------------------------------------------


def test_ict_udp_retransmits_on_timer_a_and_times_out_on_timer_b() -> None:
    tx, clock, run = started_ict()
    run_timers(tx, clock, until=100.0, run=run)
    assert run.send_times() == TIMER_A_SENDS
    assert all(s.message is tx.request for s in run.sent)
    assert timeouts(run) == [(32.0, TimerName.B)]
    assert run.event_types() == [TransactionTimeout, Terminated]
    assert tx.state is State.TERMINATED
    assert tx.get_timer() is None


def test_ict_series_scales_with_t1() -> None:
    tx, clock, run = started_ict(config=TimerConfig(t1=0.1))
    run_timers(tx, clock, until=100.0, run=run)
    assert run.send_times() == pytest.approx([t / 5 for t in TIMER_A_SENDS])
    [(at, timer)] = timeouts(run)
    assert timer is TimerName.B
    assert at == pytest.approx(6.4)


def test_ict_reliable_never_retransmits_but_still_times_out_at_64_t1() -> None:
    tx, clock, run = started_ict(reliable=True)
    run_timers(tx, clock, until=100.0, run=run)
    assert run.send_times() == [0.0]
    assert timeouts(run) == [(32.0, TimerName.B)]


def test_ict_provisional_moves_to_proceeding_and_stops_retransmission() -> None:
    tx, clock, run = started_ict()
    run_timers(tx, clock, until=1.0, run=run)
    tx.receive_response(make_response(tx.request, 180, to_tag="bob"), clock.now)
    collect(tx, clock, run)
    assert tx.state is State.PROCEEDING
    run_timers(tx, clock, until=300.0, run=run)
    assert run.send_times() == [0.0, 0.5]  # nothing after the 180, and no Timer B
    assert [type(h.event) for h in run.events] == [ResponseReceived]
    assert tx.state is State.PROCEEDING
    assert tx.get_timer() is None


def test_ict_acks_a_487_itself_per_17_1_1_3() -> None:
    request = invite(
        extra=[
            ("Route", "<sip:127.0.0.3;lr>"),
            ("Route", "<sip:127.0.0.4;lr>"),
            ("Contact", "<sip:alice@127.0.0.1:5060>"),
        ],
        cseq=7,
    )
    tx, clock, run = started_ict(request=request)
    clock.advance_to(0.2)
    final = make_response(request, 487, to_tag="bob-487")
    tx.receive_response(final, clock.now)
    collect(tx, clock, run)

    assert tx.state is State.COMPLETED
    [ack_sent] = run.sent[1:]
    ack = ack_sent.message
    assert isinstance(ack, Request)
    assert ack is tx.ack
    assert ack.method == "ACK"
    assert ack.uri == request.uri
    assert ack.headers.get_all("Via") == ["SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ict-1"]
    assert ack.headers.get("CSeq") == "7 ACK"
    assert ack.headers.get("Call-ID") == request.headers.get("Call-ID")
    assert ack.headers.get("From") == request.headers.get("From")
    assert ack.headers.get("To") == final.headers.get("To")
    assert "tag=bob-487" in (ack.headers.get("To") or "")
    assert ack.headers.get_all("Route") == ["<sip:127.0.0.3;lr>", "<sip:127.0.0.4;lr>"]
    assert "Contact" not in ack.headers
    assert ack.body == b""
    assert [type(h.event) for h in run.events] == [ResponseReceived]


def test_ict_resends_the_ack_for_each_final_retransmission_then_timer_d() -> None:
    tx, clock, run = started_ict()
    final = make_response(tx.request, 487, to_tag="bob")
    clock.advance_to(0.2)
    tx.receive_response(final, clock.now)
    collect(tx, clock, run)
    for at in (1.0, 3.0):
        clock.advance_to(at)
        tx.receive_response(make_response(tx.request, 487, to_tag="bob"), clock.now)
        collect(tx, clock, run)
    run_timers(tx, clock, until=100.0, run=run)

    acks = [s for s in run.sent if isinstance(s.message, Request) and s.message.method == "ACK"]
    assert [s.at for s in acks] == [0.2, 1.0, 3.0]
    assert all(s.message is tx.ack for s in acks)
    assert run.event_types() == [ResponseReceived, ResponseAbsorbed, ResponseAbsorbed, Terminated]
    assert termination_time(run) == pytest.approx(0.2 + 32.0)
    # Timer A stopped on the final response: only the original INVITE went out.
    assert [s.at for s in run.sent if s.message is tx.request] == [0.0]


def test_ict_timer_d_is_configurable_but_never_below_32_s() -> None:
    tx, clock, run = started_ict(config=TimerConfig(timer_d=40.0))
    tx.receive_response(make_response(tx.request, 486, to_tag="b"), 1.0)
    clock.advance_to(1.0)
    run_timers(tx, clock, until=100.0, run=run)
    assert termination_time(run) == 41.0
    with pytest.raises(LocalProtocolError, match="Timer D"):
        TimerConfig(timer_d=10.0)


def test_ict_on_reliable_transport_terminates_at_once_after_acking() -> None:
    tx, clock, run = started_ict(reliable=True)
    tx.receive_response(make_response(tx.request, 486, to_tag="b"), 0.1)
    collect(tx, clock, run)
    assert tx.state is State.TERMINATED
    assert [type(s.message) for s in run.sent] == [Request, Request]
    assert run.sent[1].message is tx.ack
    assert run.event_types() == [ResponseReceived, Terminated]


def test_ict_2xx_goes_to_accepted_and_passes_every_2xx_up_until_timer_m() -> None:
    tx, clock, run = started_ict()
    run_timers(tx, clock, until=2.0, run=run)
    ok = make_response(tx.request, 200, to_tag="bob")
    tx.receive_response(make_response(tx.request, 180, to_tag="bob"), clock.now)
    tx.receive_response(ok, clock.now)
    collect(tx, clock, run)
    assert tx.state is State.ACCEPTED
    clock.advance_to(2.5)
    retransmitted = make_response(tx.request, 200, to_tag="bob")
    forked = make_response(tx.request, 200, to_tag="carol")
    tx.receive_response(retransmitted, clock.now)
    tx.receive_response(forked, clock.now)
    tx.receive_response(make_response(tx.request, 180, to_tag="dave"), clock.now)
    run_timers(tx, clock, until=100.0, run=run)

    received = [h.event.response for h in run.events if isinstance(h.event, ResponseReceived)]
    assert [r.status for r in received] == [180, 200, 200, 200]
    assert received[2] is retransmitted
    assert received[3] is forked
    # The transaction never ACKs a 2xx (that is the TU's job, §13.2.2.4).
    assert [s.at for s in run.sent] == [0.0, 0.5, 1.5]
    assert tx.ack is None
    assert termination_time(run) == 2.0 + 32.0
    assert run.event_types()[-2:] == [ResponseAbsorbed, Terminated]


def test_ict_timer_m_runs_on_reliable_transports_too() -> None:
    tx, clock, run = started_ict(reliable=True)
    tx.receive_response(make_response(tx.request, 200, to_tag="b"), 0.0)
    run_timers(tx, clock, until=100.0, run=run)
    assert tx.state is State.TERMINATED
    assert termination_time(run) == 32.0


def test_ict_transport_error_terminates_and_tells_the_tu() -> None:
    tx, clock, run = started_ict()
    tx.transport_error(0.1, "ICMP port unreachable")
    collect(tx, clock, run)
    assert run.event_types() == [TransportError, Terminated]
    assert run.events[0].event == TransportError("ICMP port unreachable")
    assert tx.get_timer() is None


def test_ict_refuses_responses_of_other_transactions_and_misuse() -> None:
    tx, _, _ = started_ict()
    other = make_response(invite(via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-other"), 200)
    with pytest.raises(LocalProtocolError, match="does not match"):
        tx.receive_response(other, 0.1)
    with pytest.raises(LocalProtocolError, match="already started"):
        tx.start(0.2)
    with pytest.raises(LocalProtocolError):
        InviteClientTransaction(options(), reliable=False)
    with pytest.raises(LocalProtocolError, match="z9hG4bK"):
        InviteClientTransaction(invite(via="SIP/2.0/UDP 127.0.0.1;branch=old"), reliable=False)
    unstarted = InviteClientTransaction(invite(), reliable=False)
    with pytest.raises(LocalProtocolError, match="not started"):
        unstarted.handle_timer(1.0)


def test_terminated_transaction_ignores_late_responses() -> None:
    tx, clock, run = started_ict(reliable=True)
    run_timers(tx, clock, until=40.0, run=run)
    tx.receive_response(make_response(tx.request, 200, to_tag="late"), 41.0)
    collect(tx, clock, run)
    assert run.event_types() == [TransactionTimeout, Terminated]
    assert tx.messages_to_send() == []


# --- non-INVITE client transaction ---------------------------------------------------


def test_nict_udp_timer_e_doubles_up_to_t2_then_timer_f() -> None:
    tx, clock, run = started_nict()
    run_timers(tx, clock, until=100.0, run=run)
    assert run.send_times() == TIMER_E_SENDS
    assert timeouts(run) == [(32.0, TimerName.F)]
    assert run.event_types() == [TransactionTimeout, Terminated]


def test_nict_series_scales_with_t1_and_t2() -> None:
    tx, clock, run = started_nict(config=TimerConfig(t1=0.1, t2=0.8))
    run_timers(tx, clock, until=100.0, run=run)
    assert run.send_times() == pytest.approx([t / 5 for t in TIMER_E_SENDS])
    [(at, _)] = timeouts(run)
    assert at == pytest.approx(6.4)


def test_nict_in_proceeding_retransmits_every_t2() -> None:
    tx, clock, run = started_nict()
    run_timers(tx, clock, until=0.7, run=run)
    tx.receive_response(make_response(tx.request, 100), clock.now)
    assert tx.state is State.PROCEEDING
    run_timers(tx, clock, until=100.0, run=run)
    # Timer E was already armed for 1.5; from then on it fires every T2 = 4 s.
    assert run.send_times() == [0.0, 0.5, 1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert timeouts(run) == [(32.0, TimerName.F)]
    assert run.event_types() == [ResponseReceived, TransactionTimeout, Terminated]


def test_nict_reliable_never_retransmits_and_times_out_at_64_t1() -> None:
    tx, clock, run = started_nict(reliable=True, config=TimerConfig(t1=0.25))
    run_timers(tx, clock, until=100.0, run=run)
    assert run.send_times() == [0.0]
    assert timeouts(run) == [(16.0, TimerName.F)]


def test_nict_final_response_then_timer_k_absorbs_retransmissions() -> None:
    tx, clock, run = started_nict()
    run_timers(tx, clock, until=0.6, run=run)
    tx.receive_response(make_response(tx.request, 200, to_tag="b"), clock.now)
    clock.advance_to(2.0)
    tx.receive_response(make_response(tx.request, 200, to_tag="b"), clock.now)
    run_timers(tx, clock, until=100.0, run=run)
    assert run.send_times() == [0.0, 0.5]
    assert run.event_types() == [ResponseReceived, ResponseAbsorbed, Terminated]
    assert termination_time(run) == pytest.approx(0.6 + 5.0)  # Timer K = T4


def test_nict_reliable_final_response_terminates_at_once() -> None:
    tx, clock, run = started_nict(reliable=True)
    tx.receive_response(make_response(tx.request, 404), 0.3)
    collect(tx, clock, run)
    assert run.event_types() == [ResponseReceived, Terminated]


# --- INVITE server transaction -------------------------------------------------------


def started_ist(
    *, reliable: bool = False, config: TimerConfig | None = None
) -> tuple[InviteServerTransaction, FakeClock, Run]:
    clock = FakeClock()
    tx = InviteServerTransaction(invite(), reliable=reliable, config=config)
    tx.start(clock.now)
    return tx, clock, collect(tx, clock, Run())


def statuses(run: Run) -> list[tuple[float, int]]:
    return [(s.at, s.message.status) for s in run.sent if isinstance(s.message, Response)]


def test_ist_sends_100_trying_after_200_ms_when_the_tu_is_silent() -> None:
    tx, clock, run = started_ist()
    run_timers(tx, clock, until=1.0, run=run)
    assert statuses(run) == [(0.2, 100)]
    trying = run.sent[0].message
    assert isinstance(trying, Response)
    assert trying.headers.get("To") == tx.request.headers.get("To")  # no tag added
    assert trying.headers.get("CSeq") == "1 INVITE"
    assert trying.headers.get_all("Via") == tx.request.headers.get_all("Via")
    # A retransmitted INVITE gets the 100 again.
    tx.receive_request(invite(), clock.now)
    collect(tx, clock, run)
    assert statuses(run) == [(0.2, 100), (1.0, 100)]
    assert run.event_types() == [RequestRetransmitted]


def test_ist_sends_no_100_when_the_tu_answers_first_or_it_is_disabled() -> None:
    tx, clock, run = started_ist()
    clock.advance_to(0.1)
    tx.send_response(make_response(tx.request, 180, to_tag="bob"), clock.now)
    run_timers(tx, clock, until=5.0, run=run)
    assert statuses(run) == [(0.1, 180)]

    quiet, clock2, run2 = started_ist(config=TimerConfig(trying_delay=None))
    run_timers(quiet, clock2, until=5.0, run=run2)
    assert run2.sent == []


def test_build_trying_copies_timestamp() -> None:
    request = invite(extra=[("Timestamp", "54.2")])
    assert build_trying(request).headers.get("Timestamp") == "54.2"


def test_ist_retransmits_final_with_timer_g_until_timer_h() -> None:
    tx, clock, run = started_ist(config=TimerConfig(trying_delay=None))
    clock.advance_to(1.0)
    tx.send_response(make_response(tx.request, 486, to_tag="bob"), clock.now)
    run_timers(tx, clock, until=100.0, run=run)
    assert [at for at, _ in statuses(run)] == [1.0 + t for t in TIMER_E_SENDS]
    assert {status for _, status in statuses(run)} == {486}
    assert timeouts(run) == [(33.0, TimerName.H)]
    assert run.event_types() == [TransactionTimeout, Terminated]


def test_ist_ack_confirms_then_timer_i_terminates() -> None:
    tx, clock, run = started_ist(config=TimerConfig(trying_delay=None))
    tx.send_response(make_response(tx.request, 486, to_tag="bob"), 0.0)
    run_timers(tx, clock, until=2.0, run=run)
    ack = make_request("ACK", cseq_method="ACK")
    tx.receive_request(ack, clock.now)
    assert tx.state is State.CONFIRMED
    clock.advance_to(3.0)
    tx.receive_request(ack, clock.now)  # an ACK retransmission is absorbed
    run_timers(tx, clock, until=100.0, run=run)
    assert [at for at, _ in statuses(run)] == [0.0, 0.5, 1.5]  # G stopped by the ACK
    assert run.event_types() == [AckReceived, AckReceived, Terminated]
    assert termination_time(run) == 2.0 + 5.0  # Timer I = T4
    assert timeouts(run) == []


def test_ist_reliable_sends_final_once_and_ends_on_ack() -> None:
    tx, clock, run = started_ist(reliable=True, config=TimerConfig(trying_delay=None))
    tx.send_response(make_response(tx.request, 603, to_tag="bob"), 0.0)
    run_timers(tx, clock, until=10.0, run=run)
    assert statuses(run) == [(0.0, 603)]
    tx.receive_request(make_request("ACK", cseq_method="ACK"), clock.now)
    collect(tx, clock, run)
    assert run.event_types() == [AckReceived, Terminated]  # Timer I = 0 on TCP

    lost_ack, clock2, run2 = started_ist(reliable=True, config=TimerConfig(trying_delay=None))
    lost_ack.send_response(make_response(lost_ack.request, 603, to_tag="bob"), 0.0)
    run_timers(lost_ack, clock2, until=100.0, run=run2)
    assert timeouts(run2) == [(32.0, TimerName.H)]


def test_ist_accepted_absorbs_invite_retransmissions_and_sends_tu_2xx_until_timer_l() -> None:
    tx, clock, run = started_ist()
    ok = make_response(tx.request, 200, to_tag="bob")
    clock.advance_to(0.05)
    tx.send_response(ok, clock.now)
    collect(tx, clock, run)
    assert tx.state is State.ACCEPTED
    clock.advance_to(0.5)
    tx.receive_request(invite(), clock.now)  # absorbed: nothing re-sent
    tx.send_response(ok, clock.now)  # the TU's own 2xx retransmission (§13.3.1.4)
    ack_for_2xx = make_request("ACK", cseq_method="ACK")
    tx.receive_request(ack_for_2xx, clock.now)
    collect(tx, clock, run)
    with pytest.raises(LocalProtocolError):
        tx.send_response(make_response(tx.request, 486, to_tag="bob"), clock.now)
    run_timers(tx, clock, until=100.0, run=run)

    assert statuses(run) == [(0.05, 200), (0.5, 200)]
    assert run.event_types() == [RequestRetransmitted, AckReceived, Terminated]
    assert termination_time(run) == pytest.approx(0.05 + 32.0)


def test_ist_validates_the_responses_of_the_tu() -> None:
    tx, _, _ = started_ist()
    wrong = make_response(make_request("INVITE", cseq=2), 200, to_tag="b")
    with pytest.raises(LocalProtocolError, match="CSeq"):
        tx.send_response(wrong, 0.1)
    with pytest.raises(LocalProtocolError, match="100-699"):
        tx.send_response(make_response(tx.request, 700), 0.1)


# --- non-INVITE server transaction ---------------------------------------------------


def started_nist(*, reliable: bool = False) -> tuple[NonInviteServerTransaction, FakeClock, Run]:
    clock = FakeClock()
    tx = NonInviteServerTransaction(options(), reliable=reliable)
    tx.start(clock.now)
    return tx, clock, collect(tx, clock, Run())


def test_nist_repeats_its_last_response_on_request_retransmissions() -> None:
    tx, clock, run = started_nist()

    def at(when: float, action: Callable[[float], None]) -> None:
        clock.advance_to(when)
        action(when)
        collect(tx, clock, run)

    at(0.5, lambda now: tx.receive_request(options(), now))  # Trying: nothing to repeat yet
    at(0.6, lambda now: tx.send_response(make_response(tx.request, 183), now))
    assert tx.state is State.PROCEEDING
    at(1.5, lambda now: tx.receive_request(options(), now))
    at(2.0, lambda now: tx.send_response(make_response(tx.request, 200, to_tag="b"), now))
    assert tx.state is State.COMPLETED
    at(3.5, lambda now: tx.receive_request(options(), now))
    with pytest.raises(LocalProtocolError):
        tx.send_response(make_response(tx.request, 500, to_tag="b"), clock.now)
    run_timers(tx, clock, until=100.0, run=run)

    assert statuses(run) == [(0.6, 183), (1.5, 183), (2.0, 200), (3.5, 200)]
    assert run.event_types() == [RequestRetransmitted] * 3 + [Terminated]
    assert termination_time(run) == 2.0 + 32.0  # Timer J = 64*T1 on UDP


def test_nist_reliable_terminates_on_its_final_response() -> None:
    tx, clock, run = started_nist(reliable=True)
    tx.send_response(make_response(tx.request, 200, to_tag="b"), 0.1)
    collect(tx, clock, run)
    assert tx.state is State.TERMINATED
    assert run.event_types() == [Terminated]
    with pytest.raises(LocalProtocolError, match="terminated"):
        tx.send_response(make_response(tx.request, 200, to_tag="b"), 0.2)


# --- matching (§17.1.3, §17.2.3) ------------------------------------------------------


def test_response_key_is_branch_and_cseq_method() -> None:
    request = invite()
    key = response_key(make_response(request, 180))
    assert key == ClientTransactionKey("z9hG4bK-ict-1", "INVITE")
    cancel_response = make_response(make_request("CANCEL", cseq_method="CANCEL"), 200)
    assert response_key(cancel_response) == ClientTransactionKey("z9hG4bK-ict-1", "CANCEL")
    assert response_key(cancel_response) != key
    no_branch = make_response(invite(via="SIP/2.0/UDP 127.0.0.1:5060"), 180)
    assert response_key(no_branch) is None


def test_request_key_maps_ack_to_invite_and_keeps_cancel_apart() -> None:
    inv = request_key(invite())
    assert inv == ServerTransactionKey("z9hG4bK-ict-1", "127.0.0.1", 5060, "INVITE")
    assert request_key(make_request("ACK", cseq_method="ACK")) == inv
    assert request_key(make_request("CANCEL", cseq_method="CANCEL")) != inv
    other_sent_by = invite(via="SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK-ict-1")
    assert request_key(other_sent_by) != inv
    assert request_key(invite(via="SIP/2.0/UDP 127.0.0.1;branch=1234")) is None  # RFC 2543


def test_server_transaction_refuses_requests_of_other_transactions() -> None:
    tx, _, _ = started_ist()
    with pytest.raises(LocalProtocolError, match="does not match"):
        tx.receive_request(invite(via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-x"), 0.1)


# --- client and server over a lossy fake link ------------------------------------------


def is_ack(message: Request | Response) -> bool:
    return isinstance(message, Request) and message.method == "ACK"


def test_ict_and_ist_recover_a_lost_ack_over_udp() -> None:
    clock = FakeClock()
    client = InviteClientTransaction(invite(), reliable=False)
    link = FakeLink(
        clock,
        client,
        lambda req: InviteServerTransaction(req, reliable=False),
        drop=drop_first(1, is_ack),
    )
    client.start(clock.now)
    link.run_until(0.1)
    assert link.server is not None
    server = link.server
    server.send_response(make_response(server.request, 486, to_tag="bob"), clock.now)
    link.run_until(100.0)

    server_sends = [
        (s.at, s.message.status) for s in link.on_wire("s>c") if isinstance(s.message, Response)
    ]
    # 100 Trying was pre-empted by the TU's 486 at 0.1; Timer G re-sent it at 0.6.
    assert server_sends == [(0.1, 486), (0.6, 486)]
    acks = [(s.at, s.dropped) for s in link.on_wire("c>s") if is_ack(s.message)]
    assert acks == [(0.1, True), (0.6, False)]
    assert client.state is State.TERMINATED
    assert server.state is State.TERMINATED
    server_events = [(h.at, type(h.event)) for h in link.events if h.side == "server"]
    assert server_events == [
        (pytest.approx(0.6), AckReceived),
        (pytest.approx(5.6), Terminated),
    ]
    client_end = [
        h.at for h in link.events if h.side == "client" and isinstance(h.event, Terminated)
    ]
    assert client_end == [pytest.approx(32.1)]


def test_nict_and_nist_recover_a_lost_request() -> None:
    clock = FakeClock()
    client = NonInviteClientTransaction(options(), reliable=False)
    link = FakeLink(
        clock,
        client,
        lambda req: NonInviteServerTransaction(req, reliable=False),
        drop=drop_first(1, lambda m: isinstance(m, Request)),
    )
    client.start(clock.now)
    link.run_until(0.5)
    assert link.server is not None
    link.server.send_response(make_response(link.server.request, 200, to_tag="b"), clock.now)
    link.run_until(100.0)
    assert [(s.at, s.dropped) for s in link.on_wire("c>s")] == [(0.0, True), (0.5, False)]
    client_events = [type(h.event) for h in link.events if h.side == "client"]
    assert client_events == [ResponseReceived, Terminated]


# --- tables and hygiene --------------------------------------------------------------


def test_every_timer_a_state_starts_has_a_transition_in_that_state() -> None:
    """A timer started on entering a state must be handled by that state's row."""
    for table in (ICT_TABLE, NICT_TABLE, IST_TABLE, NIST_TABLE):
        for (_, inp), transition in table.items():
            started = {s.timer for s in transition.actions if isinstance(s, Start)}
            for timer in started:
                assert (transition.target, timer) in table, (inp, timer)
        # Every timer handled in a state is stopped or handled when that state is left.
        for (state, _), transition in table.items():
            if transition.target is state or transition.target is State.TERMINATED:
                continue
            stopped = {s.timer for s in transition.actions if isinstance(s, Stop)}
            for st, inp2 in table:
                if st is state and isinstance(inp2, TimerName) and inp2 not in stopped:
                    assert (transition.target, inp2) in table, (state, inp2)
