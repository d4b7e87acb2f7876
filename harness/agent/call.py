"""Outbound calls (UAC): INVITE with an SDP offer, challenges, ACK, RTP, BYE or CANCEL.

What a caller may rely on (:func:`place_call`):

* Request-URI and To are ``sip:<dialled>@<sip_domain>``; From is the number's
  ``from_uri`` (its phone_number) with a P-Asserted-Identity of the same URI; the
  INVITE goes to the number's target (the outbound proxy when set) with the
  pre-loaded Route.  The SDP offer lists PCMU, PCMA and telephone-event at the
  local media address.
* A 401/407 is acknowledged by the INVITE client transaction; a new INVITE follows
  with the same Call-ID and From tag, CSeq + 1, a new branch and credentials.  A
  second challenge after our answer ends the call as "credentials rejected".
* After a 2xx: the ACK goes through the dialog's route set (re-sent for every 2xx
  retransmission), RTP runs for ``duration`` seconds towards the answer's media
  address with echo measurement, then we send BYE.  A BYE from the peer is answered
  200 and ends the call early (``ended_by = "remote"``).
* ``cancel_after``: if no final response arrived by then, CANCEL is sent (once a
  provisional response has arrived, RFC 3261 §9.1); the call then expects 200 for
  the CANCEL and 487 for the INVITE (outcome ``cancelled``, a success).
  ``no_answer_timeout`` cancels a call that rings for too long (outcome
  ``timeout``).
* Every wait is bounded: Timer B/F for each transaction, ``no_answer_timeout`` for
  ringing, 64*T1 for the 487 after a CANCEL.
"""

from __future__ import annotations

import asyncio
import contextlib

from harness.agent.common import (
    MAX_ATTEMPTS,
    Authenticator,
    OperationFailed,
    Outbound,
    build_request,
    endpoints_for,
    failure_for,
    new_record,
    run_transaction,
)
from harness.agent.core import (
    ALLOW,
    ClientTransactionHandle,
    ServerTransactionHandle,
    UserAgent,
    address_of_uri,
)
from harness.agent.media import RemoteMedia, open_rtp, remote_media, run_media
from harness.agent.results import CallResult
from harness.agent.rtp import RtpEndpoint
from harness.numbers import Effective, NumberConfig
from harness.sip.dialog import Dialog, build_cancel
from harness.sip.errors import RemoteProtocolError, SipError
from harness.sip.message import Headers, Request, Response
from harness.sip.sdp import build_offer
from harness.sip.transaction import (
    ResponseReceived,
    Terminated,
    TransactionTimeout,
    TransportError,
)
from harness.sip.uri import SipUri, hop_key, parse_name_addr
from harness.transport import Address

DEFAULT_NO_ANSWER_TIMEOUT = 60.0


def _same_hop(first: str, second: str) -> bool:
    """True when two Route values name the same hop (:func:`~harness.sip.uri.hop_key`).

    A proxy that record-routes writes its own parameters (``lr=on``, ``ftag``, ``r2``)
    into the route set, so the outbound proxy's pre-loaded Route rarely matches it
    byte for byte.
    """
    try:
        one, two = parse_name_addr(first).uri, parse_name_addr(second).uri
    except (SipError, ValueError):
        return first == second
    if not isinstance(one, SipUri) or not isinstance(two, SipUri):
        return first == second
    return hop_key(one) == hop_key(two)


def with_route(request: Request, route: str | None) -> Request:
    """``request`` with ``route`` as its first Route (after the Via lines), unless present.

    Present means the first Route already names the same hop (see :func:`_same_hop`):
    an outbound proxy that record-routed itself is not visited twice.
    """
    if route is None:
        return request
    existing = request.headers.get_all("Route")
    if existing and _same_hop(existing[0], route):
        return request
    fields: list[tuple[str, str]] = []
    inserted = False
    for name, value in request.headers:
        if not inserted and name.lower() != "via":
            fields.append(("Route", route))
            inserted = True
        fields.append((name, value))
    if not inserted:
        fields.append(("Route", route))
    request.headers = Headers(fields)
    return request


def dialog_destination(dialog: Dialog, outbound: Outbound | None, default: Address) -> Address:
    """Where in-dialog requests go: the outbound proxy when set, else the first loose
    route, else the remote target (RFC 3261 §12.2.1.1, §8.1.2)."""
    if outbound is not None and outbound.route is not None:
        return outbound.dest
    uri, routes = dialog.request_target()
    target = routes[0].uri if routes else uri
    if isinstance(target, SipUri):
        return address_of_uri(target, default.transport)
    return default


class _CallState:
    def __init__(self) -> None:
        self.provisional = asyncio.Event()
        self.remote_bye = asyncio.Event()
        self.stop_media = asyncio.Event()


async def place_call(
    agent: UserAgent,
    config: NumberConfig,
    view: Effective,
    outbound: Outbound,
    *,
    to: str,
    duration: float = 5.0,
    cancel_after: float | None = None,
    no_answer_timeout: float = DEFAULT_NO_ANSWER_TIMEOUT,
    media_host: str | None = None,
) -> CallResult:
    """Call ``to`` from the number; the result covers setup, media and teardown."""
    local, endpoints = await endpoints_for(agent, outbound)
    request_uri = view.call_request_uri(to)
    call_id = agent.ids.call_id()
    result = CallResult(
        success=False,
        endpoints=endpoints,
        request_uri=request_uri,
        from_uri=view.from_uri,
        to_uri=request_uri,
        call_id=call_id,
    )
    rtp = await open_rtp(media_host or local.host, agent.rng)
    try:
        await _call(
            agent,
            config,
            view,
            outbound,
            result,
            rtp=rtp,
            local=local,
            duration=duration,
            cancel_after=cancel_after,
            no_answer_timeout=no_answer_timeout,
        )
    except OperationFailed as failure:
        result.success = False
        result.error = failure.message
        result.error_kind = failure.kind
        if failure.status is not None:
            result.status = failure.status
        if result.outcome == "failed":
            result.outcome = {
                "credentials-rejected": "credentials-rejected",
                "timeout": "timeout",
                "rejected": "rejected",
            }.get(failure.kind, "failed")
    finally:
        rtp.close()
    result.garbage_received = agent.garbage_received
    return result


async def _call(
    agent: UserAgent,
    config: NumberConfig,
    view: Effective,
    outbound: Outbound,
    result: CallResult,
    *,
    rtp: RtpEndpoint,
    local: Address,
    duration: float,
    cancel_after: float | None,
    no_answer_timeout: float,
) -> None:
    media_host, media_port = rtp.local_address
    offer = build_offer(
        address=media_host,
        port=media_port,
        session_id=str(agent.rng.getrandbits(31)),
        session_version="1",
    ).to_bytes()
    auth = Authenticator(config, view, agent.rng)
    from_tag = agent.ids.tag()
    contact_user = config.phone_number
    contact = f"<{agent.contact_uri(local, contact_user)}>"
    authorization: tuple[str, str] | None = None
    loop = agent.loop
    started = loop.time()
    state = _CallState()
    for cseq in range(1, MAX_ATTEMPTS + 1):
        extra: list[tuple[str, str]] = [
            ("P-Asserted-Identity", f"<{view.from_uri}>"),
            ("Allow", ALLOW),
        ]
        if authorization is not None:
            extra.append(authorization)
        invite = build_request(
            agent,
            "INVITE",
            result.request_uri,
            local=local,
            from_uri=view.from_uri,
            from_tag=from_tag,
            to_uri=result.to_uri,
            call_id=result.call_id,
            cseq=cseq,
            route=outbound.route,
            contact=contact,
            extra_headers=tuple(extra),
            body=offer,
            content_type="application/sdp",
        )
        response, handle = await _invite_transaction(
            agent,
            invite,
            outbound,
            result,
            state,
            cancel_at=None if cancel_after is None else started + cancel_after,
            give_up_at=started + no_answer_timeout,
        )
        result.status = response.status
        result.reason = response.reason
        if 200 <= response.status < 300:
            result.answered = True
            result.setup_s = round(loop.time() - started, 6)
            await _answered(
                agent,
                outbound,
                result,
                rtp=rtp,
                invite=invite,
                response=response,
                handle=handle,
                state=state,
                duration=duration,
            )
            result.auth = auth.info
            return
        if response.status in (401, 407):
            authorization = auth.answer(
                response, method="INVITE", request_uri=result.request_uri, body=offer
            )
            result.auth = auth.info
            continue
        result.auth = auth.info
        if response.status == 487 and result.cancel_status is not None:
            result.outcome = "cancelled" if cancel_after is not None else "timeout"
            result.success = cancel_after is not None
            if not result.success:
                raise OperationFailed(
                    "timeout",
                    f"no answer within {no_answer_timeout:g} s: cancelled (487 Request Terminated)",
                    487,
                )
            return
        raise failure_for(response, auth.answered)
    raise OperationFailed("protocol", f"gave up after {MAX_ATTEMPTS} INVITE requests")


async def _invite_transaction(
    agent: UserAgent,
    invite: Request,
    outbound: Outbound,
    result: CallResult,
    state: _CallState,
    *,
    cancel_at: float | None,
    give_up_at: float,
) -> tuple[Response, ClientTransactionHandle]:
    """Run one INVITE client transaction to its final response, cancelling when due."""
    loop = agent.loop
    record = new_record(invite)
    result.transactions.append(record)
    handle = agent.start_client(invite, outbound.dest, server_name=outbound.server_name)
    cancel_due = cancel_at
    cancel_task: asyncio.Task[None] | None = None
    cancelled_at: float | None = None
    try:
        while True:
            now = loop.time()
            limits = [now + handle.wait_limit]
            if cancel_due is not None and cancel_task is None:
                limits.append(cancel_due)
            if cancel_task is None:
                limits.append(give_up_at)
            else:
                assert cancelled_at is not None
                limits.append(cancelled_at + agent.timers.timeout)
            wait = max(0.0, min(limits) - now)
            try:
                event = await handle.next_event(timeout=wait)
            except TimeoutError:
                now = loop.time()
                if cancel_task is not None:
                    raise OperationFailed(
                        "timeout",
                        f"no final response to the cancelled INVITE from {outbound.dest} within "
                        f"{agent.timers.timeout:g} s of the CANCEL (RFC 3261 §9.1)",
                    ) from None
                if now >= give_up_at or (cancel_due is not None and now >= cancel_due):
                    if state.provisional.is_set():
                        cancelled_at = now
                        cancel_task = asyncio.create_task(_cancel(agent, invite, outbound, result))
                        continue
                    if now >= give_up_at:
                        raise OperationFailed(
                            "timeout",
                            f"no response to INVITE from {outbound.dest} within "
                            f"{give_up_at - handle.started_at:g} s",
                        ) from None
                    # RFC 3261 §9.1: no CANCEL before a provisional response; send it
                    # as soon as one arrives (Timer B bounds the wait).
                    cancel_due = None
                    continue
                continue
            if isinstance(event, ResponseReceived):
                response = event.response
                if response.status < 200:
                    record.provisional.append(response.status)
                    state.provisional.set()
                    if cancel_at is not None and cancel_task is None and loop.time() >= cancel_at:
                        cancelled_at = loop.time()
                        cancel_task = asyncio.create_task(_cancel(agent, invite, outbound, result))
                    continue
                record.status = response.status
                record.reason = response.reason
                record.elapsed_s = round(loop.time() - handle.started_at, 6)
                return response, handle
            if isinstance(event, TransactionTimeout):
                record.timeout = True
                record.error = (
                    f"timeout: no response to INVITE from {outbound.dest} "
                    f"({outbound.dest.transport.upper()}) within {agent.timers.timeout:g} s "
                    f"(Timer {event.timer}, T1 = {agent.timers.t1:g} s)"
                )
                raise OperationFailed("timeout", record.error)
            if isinstance(event, TransportError | Terminated):
                reason = getattr(event, "reason", "") or "transaction ended"
                record.error = f"transport error sending INVITE to {outbound.dest}: {reason}"
                raise OperationFailed("transport", record.error)
    finally:
        if cancel_task is not None:
            # The CANCEL's own transaction is bounded by Timer F.
            await asyncio.wait({cancel_task}, timeout=agent.timers.timeout + 2.0)


async def _cancel(
    agent: UserAgent, invite: Request, outbound: Outbound, result: CallResult
) -> None:
    cancel = build_cancel(invite)
    try:
        response = await run_transaction(
            agent,
            cancel,
            outbound.dest,
            server_name=outbound.server_name,
            records=result.transactions,
        )
    except OperationFailed as failure:
        result.cancel_status = 0
        agent.events.record("note", f"CANCEL failed: {failure.message}")
        return
    result.cancel_status = response.status


async def _answered(
    agent: UserAgent,
    outbound: Outbound,
    result: CallResult,
    *,
    rtp: RtpEndpoint,
    invite: Request,
    response: Response,
    handle: ClientTransactionHandle,
    state: _CallState,
    duration: float,
) -> None:
    """ACK the 2xx, run media, end the call with BYE (or accept the peer's BYE)."""
    try:
        dialog = Dialog.from_uac(invite, response, ids=agent.ids)
    except RemoteProtocolError as exc:
        raise OperationFailed("protocol", f"cannot use the 2xx to INVITE: {exc}", 200) from exc
    dest = dialog_destination(dialog, outbound, outbound.dest)
    ack = with_route(dialog.create_ack(invite), outbound.route)
    agent.send_stateless(ack, dest, server_name=outbound.server_name)
    reacker = asyncio.create_task(_ack_retransmissions(agent, handle, ack, dest, outbound))

    def on_request(request: Request, server: ServerTransactionHandle | None) -> None:
        if server is None:
            return  # an ACK for nothing we answered
        if dialog.receive_request(request) == 500:
            server.reply(500)
            return
        if request.method.upper() == "BYE":
            server.reply(200)
            state.remote_bye.set()
            state.stop_media.set()
        else:
            server.reply(501, "Not Implemented")

    agent.add_dialog(dialog.id.call_id, dialog.id.local_tag, on_request)
    try:
        media: RemoteMedia | None = None
        try:
            media = remote_media(response.body)
        except RemoteProtocolError as exc:
            result.error = f"answered without usable media: {exc}"
            result.error_kind = "protocol"
        if media is not None:
            result.remote_media = str(media)
            result.codec = media.codec
            result.rtp = await run_media(rtp, media, duration, state.stop_media, echo=False)
        elif not state.remote_bye.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.remote_bye.wait(), duration)
        if state.remote_bye.is_set():
            result.ended_by = "remote"
        else:
            result.ended_by = "local"
            bye = with_route(dialog.create_request("BYE"), outbound.route)
            bye_response = await run_transaction(
                agent, bye, dest, server_name=outbound.server_name, records=result.transactions
            )
            result.bye_status = bye_response.status
            dialog.receive_response(bye_response)
            if bye_response.status >= 300:
                raise OperationFailed(
                    "rejected",
                    f"BYE answered {bye_response.status} {bye_response.reason}",
                    bye_response.status,
                )
        result.outcome = "completed"
        result.success = result.error is None
    finally:
        agent.remove_dialog(dialog.id.call_id, dialog.id.local_tag)
        reacker.cancel()
        await asyncio.wait({reacker}, timeout=1.0)


async def _ack_retransmissions(
    agent: UserAgent,
    handle: ClientTransactionHandle,
    ack: Request,
    dest: Address,
    outbound: Outbound,
) -> None:
    """Re-send the ACK for every 2xx retransmission until the ICT ends (Timer M)."""
    while not handle.finished:
        try:
            event = await handle.next_event()
        except TimeoutError:
            return
        if isinstance(event, ResponseReceived) and 200 <= event.response.status < 300:
            agent.send_stateless(ack, dest, server_name=outbound.server_name)
        if isinstance(event, Terminated):
            return
