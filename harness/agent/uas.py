"""The inbound UAS at the origination URI: answer (or reject) calls, echo their media.

What a caller may rely on (:class:`InboundServer`):

* It serves every new INVITE the agent receives: 180 Ringing (with a To tag and
  Contact), then after ``ring`` seconds 200 OK with an SDP answer (PCMU/PCMA and
  telephone-event, media at the agent's address), or the ``reject`` status when
  one is configured (the INVITE server transaction takes care of its ACK).
* A CANCEL before the answer gets 200 (the engine answers it) and the INVITE 487.
* After the 2xx: the 2xx is re-sent (T1 doubling to T2) until the ACK arrives, for
  at most 64*T1 (RFC 3261 §13.3.1.4); media received is echoed to its sender
  (so the caller can measure round trips) and counted; a BYE from the caller is
  answered 200; with ``hangup_after`` we send BYE ourselves.
* An offer without a common codec gets 488; an INVITE without usable SDP gets 488.
* :meth:`InboundServer.serve` returns once ``calls`` calls have ended or at its
  deadline (hanging up calls still up), with one :class:`InboundCallResult` each.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

from harness.agent.call import dialog_destination
from harness.agent.common import OperationFailed, run_transaction
from harness.agent.core import (
    ALLOW,
    DialogHandler,
    ServerTransactionHandle,
    UserAgent,
    build_response,
)
from harness.agent.media import RemoteMedia, open_rtp, remote_media, run_media
from harness.agent.results import AnswerResult, Endpoints, InboundCallResult, TransactionResult
from harness.agent.rtp import RtpEndpoint
from harness.errors import InputError
from harness.numbers import Effective, NumberConfig
from harness.sip.dialog import Dialog
from harness.sip.errors import RemoteProtocolError, SipError
from harness.sip.message import Request, Response
from harness.sip.sdp import NoCommonCodecError, build_answer, parse_sdp
from harness.sip.timers import TimerConfig
from harness.sip.transaction import AckReceived, Terminated, TransactionTimeout
from harness.sip.uri import SipUri, Via, parse_name_addr
from harness.transport import Address, TransportKind

#: Longest call when neither side hangs up and no deadline is given.
DEFAULT_MAX_CALL = 3600.0


def _user_of(text: str | None) -> str | None:
    if not text:
        return None
    try:
        uri = parse_name_addr(text).uri if "<" in text else parse_name_addr(f"<{text}>").uri
    except RemoteProtocolError:
        return None
    return uri.user if isinstance(uri, SipUri) else None


class _Call:
    def __init__(self, result: InboundCallResult) -> None:
        self.result = result
        self.acked = asyncio.Event()
        self.remote_bye = asyncio.Event()
        self.stop = asyncio.Event()
        self.done = asyncio.Event()


class InboundServer:
    """Answers calls on ``agent`` (bound at the origination URI) for the number."""

    def __init__(
        self,
        agent: UserAgent,
        config: NumberConfig,
        view: Effective,
        *,
        reject: int | None = None,
        ring: float = 0.0,
        hangup_after: float | None = None,
        contact_host: str | None = None,
    ) -> None:
        if reject is not None and not 300 <= reject <= 699:
            raise ValueError(f"reject status must be 300-699, got {reject}")
        self.agent = agent
        self.config = config
        self.view = view
        self.reject = reject
        self.ring = ring
        self.hangup_after = hangup_after
        self.contact_host = contact_host
        self.calls: list[_Call] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        agent.request_handler = self._on_request

    # --- serving -----------------------------------------------------------------------
    async def serve(self, calls: int, timeout: float) -> AnswerResult:
        """Take calls until ``calls`` have ended or ``timeout`` s have passed."""
        loop = self.agent.loop
        deadline = loop.time() + timeout
        local = self.agent.local_address
        endpoints = Endpoints(self.agent.kind, str(local), "", "origination_uri")
        while sum(1 for c in self.calls if c.done.is_set()) < calls:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        await self.hang_up_all()
        results = [c.result for c in self.calls]
        result = AnswerResult(
            success=False,
            endpoints=endpoints,
            expected_calls=calls,
            calls=results,
            garbage_received=self.agent.garbage_received,
        )
        if results:
            endpoints.remote = results[0].source
        wanted = "rejected" if self.reject is not None else "completed"
        done = [r for r in results if r.outcome != "active"]
        if len(done) < calls:
            result.error = (
                f"timeout: {len(done)} of {calls} call(s) received at {local} "
                f"({self.agent.kind.upper()}) within {timeout:g} s"
            )
            result.error_kind = "timeout"
        elif any(r.outcome != wanted for r in results):
            bad = next(r for r in results if r.outcome != wanted)
            result.error = f"call {bad.call_id} {bad.outcome}: {bad.error or 'see the call'}"
            result.error_kind = "rejected" if bad.outcome == "rejected" else "protocol"
        else:
            result.success = True
        return result

    async def hang_up_all(self) -> None:
        """End every call still up (BYE for answered ones) and wait for their tasks."""
        for call in self.calls:
            call.stop.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.agent.timers.timeout + 5.0)

    # --- requests ------------------------------------------------------------------------
    def _on_request(self, handle: ServerTransactionHandle) -> None:
        method = handle.request.method.upper()
        if method == "INVITE":
            task = asyncio.create_task(self._invite(handle))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif method == "OPTIONS":
            handle.reply(200, extra_headers=(("Allow", ALLOW), ("Accept", "application/sdp")))
        else:
            handle.reply(405, extra_headers=(("Allow", ALLOW),))

    async def _invite(self, handle: ServerTransactionHandle) -> None:
        request = handle.request
        to_user = _user_of(request.headers.get("To"))
        ruri_user = _user_of(request.uri)
        number = self.config.phone_number
        result = InboundCallResult(
            call_id=request.call_id or "",
            source=str(handle.source),
            request_uri=request.uri,
            from_uri=request.headers.get("From") or "",
            to_uri=request.headers.get("To") or "",
            to_number=number in (to_user, ruri_user),
            outcome="active",
        )
        call = _Call(result)
        self.calls.append(call)
        self._changed.set()
        try:
            await self._run_call(handle, call)
        except OperationFailed as failure:
            result.outcome = "failed"
            result.error = failure.message
        finally:
            call.done.set()
            self._changed.set()

    async def _run_call(self, handle: ServerTransactionHandle, call: _Call) -> None:
        agent = self.agent
        request = handle.request
        result = call.result
        to_tag = agent.ids.tag()
        if self.reject is not None:
            handle.reply(self.reject, to_tag=to_tag)
            result.status = self.reject
            result.outcome = "rejected"
            result.ack_received = await self._wait_non_2xx_ack(handle)
            return
        try:
            media = remote_media(request.body)
            offer = parse_sdp(request.body)
        except (RemoteProtocolError, SipError) as exc:
            handle.reply(488, to_tag=to_tag)
            result.status = 488
            result.outcome = "failed"
            result.error = f"unusable offer: {exc}"
            result.ack_received = await self._wait_non_2xx_ack(handle)
            return
        result.remote_media = str(media)
        local = handle.local
        contact_host = self.contact_host or local.host
        if contact_host in ("0.0.0.0", "::"):
            contact_host = self.view.origination.host if self.view.origination else local.host
        rtp = await open_rtp(contact_host, agent.rng)
        try:
            rtp_host, rtp_port = rtp.local_address
            try:
                answer = build_answer(
                    offer,
                    address=rtp_host,
                    port=rtp_port,
                    session_id=str(agent.rng.getrandbits(31)),
                    session_version="1",
                ).to_bytes()
            except NoCommonCodecError as exc:
                handle.reply(488, to_tag=to_tag)
                result.status = 488
                result.outcome = "failed"
                result.error = str(exc)
                result.ack_received = await self._wait_non_2xx_ack(handle)
                return
            contact_uri = agent.contact_uri(
                Address(contact_host, local.port, agent.kind), self.config.phone_number
            )
            contact = f"<{contact_uri}>"
            # RFC 3261 §12.1.1: the dialog-creating responses carry the request's
            # Record-Route, or the caller's ACK and BYE bypass the proxies on the path.
            record_route = tuple(
                ("Record-Route", value) for value in request.headers.get_raw("Record-Route")
            )
            handle.reply(180, to_tag=to_tag, contact=contact, extra_headers=record_route)
            if await self._cancelled_while_ringing(handle):
                handle.reply(487, to_tag=to_tag)
                result.status = 487
                result.outcome = "cancelled"
                result.ack_received = await self._wait_non_2xx_ack(handle)
                return
            ok = build_response(
                request,
                200,
                to_tag=to_tag,
                contact=contact,
                body=answer,
                content_type="application/sdp",
                extra_headers=(*record_route, ("Allow", ALLOW)),
            )
            handle.respond(ok)
            result.status = 200
            result.codec = media.codec
            via = Via(transport=agent.kind.upper(), host=contact_host, port=local.port)
            dialog = Dialog.from_uas(request, ok, ids=agent.ids, local_via=via)
            handler = self._dialog_handler(dialog, call)
            agent.add_dialog(dialog.id.call_id, dialog.id.local_tag, handler)
            try:
                await self._in_call(handle, call, dialog=dialog, media=media, rtp=rtp, ok=ok)
            finally:
                agent.remove_dialog(dialog.id.call_id, dialog.id.local_tag)
        finally:
            rtp.close()

    def _dialog_handler(self, dialog: Dialog, call: _Call) -> DialogHandler:
        def on_request(request: Request, server: ServerTransactionHandle | None) -> None:
            method = request.method.upper()
            if server is None:
                if method == "ACK":
                    call.acked.set()
                return
            if dialog.receive_request(request) == 500:
                server.reply(500)
                return
            if method == "BYE":
                server.reply(200)
                call.remote_bye.set()
                call.stop.set()
            else:
                server.reply(501, "Not Implemented")

        return on_request

    async def _cancelled_while_ringing(self, handle: ServerTransactionHandle) -> bool:
        if handle.cancelled.is_set():
            return True
        if self.ring <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(handle.cancelled.wait(), self.ring)
        return handle.cancelled.is_set()

    async def _wait_non_2xx_ack(self, handle: ServerTransactionHandle) -> bool:
        """Wait for the IST to see the ACK of our 300-699 (bounded by Timer H)."""
        while True:
            try:
                event = await asyncio.wait_for(handle.queue.get(), self.agent.timers.timeout + 2.0)
            except TimeoutError:
                return False
            if isinstance(event, AckReceived):
                return True
            if isinstance(event, TransactionTimeout | Terminated):
                return False

    async def _await_ack(self, handle: ServerTransactionHandle, call: _Call, ok: Response) -> bool:
        """Re-send the 2xx (unreliable transports) until the ACK, for at most 64*T1."""
        timers = self.agent.timers
        loop = self.agent.loop
        reliable = self.agent.kind != "udp"
        deadline = loop.time() + timers.timeout
        interval = timers.t1
        while not call.acked.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            wait = remaining if reliable else min(interval, remaining)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.acked.wait(), wait)
            if not call.acked.is_set() and not reliable and not handle.finished:
                handle.respond(ok)
                interval = min(2 * interval, timers.t2)
        return True

    async def _in_call(
        self,
        handle: ServerTransactionHandle,
        call: _Call,
        *,
        dialog: Dialog,
        media: RemoteMedia,
        rtp: RtpEndpoint,
        ok: Response,
    ) -> None:
        result = call.result
        result.ack_received = await self._await_ack(handle, call, ok)
        if result.ack_received:
            duration = self.hangup_after if self.hangup_after is not None else DEFAULT_MAX_CALL
            # Send a tone (so a caller that only echoes, like Asterisk's Echo(), has audio
            # to return and both directions are measured) and echo the caller's audio.
            result.rtp = await run_media(rtp, media, duration, call.stop, send=True, echo=True)
        else:
            result.error = (
                f"no ACK for 200 OK within {self.agent.timers.timeout:g} s (RFC 3261 §13.3.1.4)"
            )
        if call.remote_bye.is_set():
            result.ended_by = "remote"
        else:
            result.ended_by = "local"
            dest = (
                handle.source
                if self.agent.kind != "udp"
                else dialog_destination(dialog, None, handle.source)
            )
            bye = dialog.create_request("BYE")
            records: list[TransactionResult] = []
            try:
                response = await run_transaction(
                    self.agent, bye, dest, server_name=None, records=records
                )
            except OperationFailed as failure:
                result.error = result.error or f"BYE failed: {failure.message}"
            else:
                result.bye_status = response.status
        result.outcome = "completed" if result.ack_received and result.error is None else "failed"


async def open_inbound_agent(
    view: Effective,
    *,
    local_host: str | None = None,
    local_port: int | None = None,
    timers: TimerConfig | None = None,
    rng: random.Random | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
) -> UserAgent:
    """An agent listening at the number's origination URI (host, port and transport).

    ``local_host`` / ``local_port`` override the URI's (e.g. to bind 0.0.0.0 behind
    NAT).  Raises :class:`InputError` when the number has no origination_uri, and
    TransportError (bind, certificate) when the address cannot be used.
    """
    origination = view.origination
    if origination is None:
        raise InputError("origination_uri: the number has none; the inbound UAS listens there")
    kind: TransportKind = origination.transport.value
    host = local_host if local_host is not None else origination.host
    port = local_port if local_port is not None else origination.port
    if kind == "tls" and cert_file is None:
        raise InputError("a TLS origination_uri needs a certificate: pass --cert and --key")
    return await UserAgent.open(
        kind,
        host,
        port,
        listen=True,
        timers=timers,
        rng=rng,
        cert_file=cert_file,
        key_file=key_file,
    )


async def answer_calls(
    agent: UserAgent,
    config: NumberConfig,
    view: Effective,
    *,
    calls: int = 1,
    timeout: float = 60.0,
    reject: int | None = None,
    ring: float = 0.0,
    hangup_after: float | None = None,
) -> AnswerResult:
    """Serve ``calls`` inbound calls on ``agent`` (see :class:`InboundServer`)."""
    server = InboundServer(agent, config, view, reject=reject, ring=ring, hangup_after=hangup_after)
    try:
        return await server.serve(calls, timeout)
    finally:
        agent.request_handler = None
