"""REGISTER for a number: register, refresh before expiry, un-register (RFC 3261 §10).

What a caller may rely on:

* Request-URI ``sip:<sip_domain>`` and the pre-loaded Route come from the numbers
  effective view; From/To carry the AoR (``username`` @ domain host) while the digest
  username is ``auth_username`` when set (:class:`~harness.agent.common.Authenticator`).
* One Call-ID and From tag for the registration's life; the CSeq grows by one for
  every REGISTER, refreshes and un-register included (§10.2.4).
* Contact is our transport address (``;transport=tcp``/``tls`` on streams), with an
  ``Expires`` header; the granted expiry is our Contact's ``expires`` in the 2xx,
  else its Expires header, else what we asked.
* 401/407 are answered; ``stale=true`` is retried once with the new nonce; a second
  challenge (or a 403) after our answer ends with "credentials rejected"; 423 is
  retried once with the registrar's Min-Expires.
* :meth:`Registration.hold` refreshes at half the granted expiry until its time is up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from harness.agent.common import (
    MAX_ATTEMPTS,
    Authenticator,
    OperationFailed,
    Outbound,
    build_request,
    endpoints_for,
    failure_for,
    run_transaction,
)
from harness.agent.core import UserAgent
from harness.agent.results import Endpoints, RegisterResult
from harness.numbers import Effective, NumberConfig
from harness.sip.errors import RemoteProtocolError
from harness.sip.message import Response
from harness.sip.uri import NameAddr, SipUri, parse_name_addr

DEFAULT_EXPIRES = 3600
#: Never refresh more often than this, whatever the registrar grants.
MIN_REFRESH_INTERVAL = 1.0


@dataclass
class _State:
    expires: int
    authorization: tuple[str, str] | None = None


class Registration:
    """One number's registration over one agent; start with :meth:`register`."""

    def __init__(
        self,
        agent: UserAgent,
        config: NumberConfig,
        view: Effective,
        outbound: Outbound,
        *,
        expires: int = DEFAULT_EXPIRES,
    ) -> None:
        self.agent = agent
        self.config = config
        self.view = view
        self.outbound = outbound
        self.expires = expires
        self.call_id = agent.ids.call_id()
        self.from_tag = agent.ids.tag()
        self.cseq = 0
        self.auth = Authenticator(config, view, agent.rng)
        self.contact_uri: SipUri | None = None
        self.result = RegisterResult(
            success=False,
            endpoints=Endpoints(
                agent.kind, "", str(outbound.dest), outbound.via, outbound.server_name
            ),
            request_uri=view.register_uri,
            aor=view.aor,
            contact="",
            call_id=self.call_id,
            expires_requested=expires,
        )
        self._granted_at: float | None = None

    async def register(self) -> RegisterResult:
        """The initial registration (with challenges, 423...); the result says how it went."""
        local, endpoints = await endpoints_for(self.agent, self.outbound)
        self.result.endpoints = endpoints
        user = self.view.aor.split(":", 1)[1].split("@", 1)[0]
        self.contact_uri = self.agent.contact_uri(local, user)
        self.result.contact = str(NameAddr(uri=self.contact_uri))
        await self._run(self.expires, refresh=False)
        return self.result

    async def refresh(self) -> RegisterResult:
        """Re-register with the same Call-ID and the next CSeq (credentials reused)."""
        self.result.refreshes += 1
        await self._run(self.expires, refresh=True)
        return self.result

    async def unregister(self, *, wildcard: bool = False) -> bool:
        """Remove our binding (``Expires: 0``; ``Contact: *`` when ``wildcard``)."""
        try:
            await self._sequence(0, refresh=True, wildcard=wildcard)
        except OperationFailed as failure:
            self.result.unregistered = False
            self.result.error = f"un-register failed: {failure.message}"
            self.result.error_kind = failure.kind
            self.result.success = False
            return False
        self.result.unregistered = True
        return True

    async def hold(self, seconds: float) -> RegisterResult:
        """Keep the registration for ``seconds``, refreshing at half the granted expiry.

        Stops early when a refresh fails (the result says why).
        """
        loop = self.agent.loop
        end = loop.time() + seconds
        while self.result.success:
            granted = self.result.expires_granted or self.expires
            start = self._granted_at if self._granted_at is not None else loop.time()
            due = start + max(MIN_REFRESH_INTERVAL, granted / 2)
            if due >= end:
                await asyncio.sleep(max(0.0, end - loop.time()))
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self.refresh()
        return self.result

    # --- the request sequence --------------------------------------------------------
    async def _run(self, expires: int, *, refresh: bool) -> None:
        try:
            response = await self._sequence(expires, refresh=refresh)
        except OperationFailed as failure:
            self.result.success = False
            self.result.error = failure.message
            self.result.error_kind = failure.kind
            self.result.status = failure.status
            self.result.reason = None
            last = self.result.transactions[-1] if self.result.transactions else None
            if last is not None and last.status == failure.status:
                self.result.reason = last.reason
            self.result.auth = self.auth.info
            return
        self.result.success = True
        self.result.error = None
        self.result.error_kind = None
        self.result.status = response.status
        self.result.reason = response.reason
        self.result.expires_granted = self._granted(response)
        self._granted_at = self.agent.loop.time()
        self.result.auth = self.auth.info
        self.result.garbage_received = self.agent.garbage_received

    async def _sequence(self, expires: int, *, refresh: bool, wildcard: bool = False) -> Response:
        assert self.contact_uri is not None, "register() first"
        self.auth.begin()
        request_uri = self.view.register_uri
        state = _State(expires=expires)
        if refresh:
            state.authorization = self.auth.reuse(method="REGISTER", request_uri=request_uri)
        retried_423 = False
        for _ in range(MAX_ATTEMPTS):
            self.cseq += 1
            extra: list[tuple[str, str]] = [("Expires", str(state.expires))]
            if state.authorization is not None:
                extra.append(state.authorization)
            contact = "*" if wildcard else str(NameAddr(uri=self.contact_uri))
            local = await self.agent.local_for(self.outbound.dest, self.outbound.server_name)
            request = build_request(
                self.agent,
                "REGISTER",
                request_uri,
                local=local,
                from_uri=self.view.aor,
                from_tag=self.from_tag,
                to_uri=self.view.aor,
                call_id=self.call_id,
                cseq=self.cseq,
                route=self.outbound.route,
                contact=contact,
                extra_headers=tuple(extra),
            )
            response = await run_transaction(
                self.agent,
                request,
                self.outbound.dest,
                server_name=self.outbound.server_name,
                records=self.result.transactions,
            )
            status = response.status
            if 200 <= status < 300:
                return response
            if status in (401, 407):
                state.authorization = self.auth.answer(
                    response, method="REGISTER", request_uri=request_uri
                )
                continue
            if status == 423 and not retried_423 and state.expires != 0:
                retried_423 = True
                state.expires = self._min_expires(response, state.expires)
                self.expires = state.expires
                self.result.min_expires = state.expires
                if state.authorization is not None:
                    state.authorization = self.auth.reuse(
                        method="REGISTER", request_uri=request_uri
                    )
                continue
            raise failure_for(response, self.auth.answered or state.authorization is not None)
        raise OperationFailed(
            "protocol", f"gave up after {MAX_ATTEMPTS} REGISTER requests without a final answer"
        )

    @staticmethod
    def _min_expires(response: Response, asked: int) -> int:
        raw = (response.headers.get("Min-Expires") or "").strip()
        if not raw.isdigit():
            raise OperationFailed(
                "protocol", f"423 {response.reason} without a usable Min-Expires ({raw!r})", 423
            )
        value = int(raw)
        if value <= asked:
            raise OperationFailed(
                "protocol",
                f"423 {response.reason} with Min-Expires {value}, not above the {asked} s asked",
                423,
            )
        return value

    def _granted(self, response: Response) -> int | None:
        """Our Contact's expires in the 2xx, else its Expires header, else what we asked."""
        ours = self.contact_uri
        for value in response.headers.get_all("Contact"):
            try:
                contact = parse_name_addr(value)
            except RemoteProtocolError:
                continue
            uri = contact.uri
            if (
                ours is not None
                and isinstance(uri, SipUri)
                and uri.host.lower() == ours.host.lower()
                and (uri.port or 5060) == (ours.port or 5060)
                and uri.user == ours.user
            ):
                expires = contact.param("expires")
                if expires is not None and expires.isdigit():
                    return int(expires)
        header = (response.headers.get("Expires") or "").strip()
        if header.isdigit():
            return int(header)
        return self.expires


async def register_number(
    agent: UserAgent,
    config: NumberConfig,
    view: Effective,
    outbound: Outbound,
    *,
    expires: int = DEFAULT_EXPIRES,
    hold: float = 0.0,
    unregister: bool = False,
) -> RegisterResult:
    """Register, optionally hold (refreshing) for ``hold`` s, optionally un-register."""
    registration = Registration(agent, config, view, outbound, expires=expires)
    result = await registration.register()
    if result.success and hold > 0:
        result = await registration.hold(hold)
    if result.success and unregister:
        await registration.unregister()
    result.garbage_received = agent.garbage_received
    return result
