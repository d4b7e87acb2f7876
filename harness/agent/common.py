"""What the outbound operations (OPTIONS, REGISTER, INVITE) share.

* :func:`resolve_outbound`: where a number's outbound requests go, from the numbers
  package's effective view (the outbound-proxy rule is applied there, not here);
* :class:`Authenticator`: the digest loop every operation follows — answer a
  challenge, retry once on ``stale=true``, and report a second challenge (or a 403)
  after our answer as "credentials rejected", never loop on it;
* :func:`run_transaction`: send one request in a client transaction and wait for
  its final response (bounded by Timer B/F), recording a :class:`TransactionResult`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.agent.core import (
    USER_AGENT,
    ClientTransactionHandle,
    LossConfig,
    UserAgent,
    source_address_for,
)
from harness.agent.results import AuthInfo, Endpoints, ErrorKind, TransactionResult
from harness.numbers import Effective, NumberConfig
from harness.sip.dialog import MAX_FORWARDS
from harness.sip.digest import DigestClient, is_stale, new_cnonce
from harness.sip.errors import LocalProtocolError, RemoteProtocolError
from harness.sip.message import Headers, Request, Response
from harness.sip.timers import TimerConfig
from harness.sip.transaction import TransactionTimeout
from harness.sip.uri import NameAddr, parse_uri, parse_via
from harness.transport import Address, SipResolver, TransportKind, is_ip_literal

#: How many requests one operation may send before giving up (challenge, stale
#: nonce, 423...): a peer can never make the agent loop.
MAX_ATTEMPTS = 6


class OperationFailed(Exception):
    """Internal: an operation ends with a SIP failure (``kind`` and one-line ``message``)."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Outbound:
    """Where a number's outbound requests go: address, TLS server name, Route to pre-load."""

    dest: Address
    server_name: str
    route: str | None
    via: str


async def resolve_outbound(view: Effective, resolver: SipResolver | None = None) -> Outbound:
    """The destination of the number's outbound requests (the proxy when it is set).

    An IP target is used as is; a name goes through RFC 3263 resolution (NAPTR/SRV/A)
    as far as the number file leaves port and transport open.  Raises
    :class:`~harness.transport.ResolutionError` (a HarnessError) when DNS fails.
    """
    target = view.target
    kind: TransportKind = target.transport.value
    if is_ip_literal(target.host):
        dest = Address(target.host, target.port, kind)
    else:
        resolver = resolver or SipResolver()
        found = await resolver.resolve(
            target.host,
            target.port if target.port_explicit else None,
            kind if target.transport_explicit else None,
            secure=kind == "tls" and target.transport_explicit,
        )
        dest = found[0]
    return Outbound(dest=dest, server_name=target.host, route=view.route, via=view.via)


class Authenticator:
    """The digest side of one operation for one number (never stores the password
    anywhere but the number's own config)."""

    def __init__(self, config: NumberConfig, view: Effective, rng: random.Random) -> None:
        self.config = config
        self.view = view
        self.rng = rng
        self.client = DigestClient()
        self.info = AuthInfo()
        self._last_challenge: Response | None = None
        self._answered = False
        self._stale_used = False

    def begin(self) -> None:
        """A new request sequence starts (a refresh, a new call): forget past answers."""
        self._answered = False
        self._stale_used = False

    @property
    def answered(self) -> bool:
        """Whether this sequence's last request carried an answer to its own challenge."""
        return self._answered

    def answer(
        self, response: Response, *, method: str, request_uri: str, body: bytes = b""
    ) -> tuple[str, str]:
        """The credentials header answering a 401/407, or :class:`OperationFailed`."""
        username = self.view.digest_username
        password = self.config.password
        if username is None or password is None:
            raise OperationFailed(
                "auth-required",
                f"{response.status} {response.reason}: the peer asks for digest credentials "
                "but the number has no username/password",
                response.status,
            )
        if self._answered:
            if is_stale(response) and not self._stale_used:
                self._stale_used = True
                self.info.stale_nonce_retries += 1
            else:
                realm = self.info.realm
                raise OperationFailed(
                    "credentials-rejected",
                    f"credentials rejected: {response.status} {response.reason} again after "
                    f"answering the challenge with digest username {username!r}"
                    f"{f' (realm {realm!r})' if realm else ''}: check password and "
                    "auth_username",
                    response.status,
                )
        try:
            header = self.client.answer(
                response,
                method=method,
                request_uri=request_uri,
                username=username,
                password=password,
                cnonce=new_cnonce(self.rng),
                body=body,
            )
        except (LocalProtocolError, RemoteProtocolError) as exc:
            raise OperationFailed(
                "protocol", f"cannot answer the {response.status} challenge: {exc}", response.status
            ) from exc
        self._record(header[0])
        self._answered = True
        self._last_challenge = response
        return header

    def reuse(self, *, method: str, request_uri: str, body: bytes = b"") -> tuple[str, str] | None:
        """Credentials for the last challenge answered, with the next nonce count
        (refreshes, un-register, a 423 retry); None when none was answered yet."""
        if self._last_challenge is None or self.config.password is None:
            return None
        username = self.view.digest_username
        if username is None:
            return None
        header = self.client.answer(
            self._last_challenge,
            method=method,
            request_uri=request_uri,
            username=username,
            password=self.config.password,
            cnonce=new_cnonce(self.rng),
            body=body,
        )
        self._record(header[0])
        return header

    def _record(self, header_name: str) -> None:
        challenge = self.client.last_challenge
        self.info.used = True
        self.info.header = header_name
        self.info.digest_username = self.view.digest_username
        self.info.challenges_answered += 1
        if challenge is not None:
            self.info.algorithm = challenge.algorithm_name
            self.info.realm = challenge.realm
            self.info.qop = ",".join(challenge.qop) if challenge.qop else None


def failure_for(response: Response, authenticated: bool) -> OperationFailed:
    """The failure a final non-2xx response means (a 403 after credentials: rejected)."""
    if response.status == 403 and authenticated:
        return OperationFailed(
            "credentials-rejected",
            f"credentials rejected: {response.status} {response.reason} after digest "
            "authentication: check password and auth_username",
            response.status,
        )
    return OperationFailed("rejected", f"{response.status} {response.reason}", response.status)


def new_record(request: Request) -> TransactionResult:
    """A :class:`TransactionResult` for a request about to be sent."""
    cseq = request.cseq or (0, request.method)
    branch = parse_via(request.headers.get("Via") or "").branch or ""
    auth = request.headers.get("Authorization") or request.headers.get("Proxy-Authorization")
    return TransactionResult(
        method=request.method,
        cseq=cseq[0],
        request_uri=request.uri,
        call_id=request.call_id or "",
        branch=branch,
        authorization=(
            "Authorization"
            if "Authorization" in request.headers
            else "Proxy-Authorization"
            if auth
            else None
        ),
    )


async def run_transaction(
    agent: UserAgent,
    request: Request,
    dest: Address,
    *,
    server_name: str | None,
    records: list[TransactionResult],
    on_provisional: Callable[[Response], None] | None = None,
    handle_out: list[ClientTransactionHandle] | None = None,
) -> Response:
    """Send ``request`` and return its final response.

    Raises :class:`OperationFailed` (``timeout`` naming ``dest``, or ``transport``).
    ``handle_out`` receives the transaction handle (for an INVITE: to watch 2xx
    retransmissions afterwards).
    """
    record = new_record(request)
    records.append(record)
    handle = agent.start_client(request, dest, server_name=server_name)
    if handle_out is not None:
        handle_out.append(handle)

    def provisional(response: Response) -> None:
        record.provisional.append(response.status)
        if on_provisional is not None:
            on_provisional(response)

    outcome = await handle.final_response(provisional)
    elapsed = round(agent.loop.time() - handle.started_at, 6)
    if isinstance(outcome, Response):
        record.status = outcome.status
        record.reason = outcome.reason
        record.elapsed_s = elapsed
        return outcome
    if isinstance(outcome, TransactionTimeout):
        record.timeout = True
        record.error = (
            f"timeout: no final response to {request.method} from {dest} "
            f"({dest.transport.upper()}) within {agent.timers.timeout:g} s "
            f"(Timer {outcome.timer}, T1 = {agent.timers.t1:g} s)"
        )
        raise OperationFailed("timeout", record.error)
    reason = getattr(outcome, "reason", "") or "the transaction ended without a response"
    record.error = f"transport error sending {request.method} to {dest}: {reason}"
    raise OperationFailed("transport", record.error)


def build_request(
    agent: UserAgent,
    method: str,
    request_uri: str,
    *,
    local: Address,
    from_uri: str,
    from_tag: str,
    to_uri: str,
    call_id: str,
    cseq: int,
    route: str | None,
    contact: str | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """An out-of-dialog request from structured parts (a new branch every time)."""
    headers = Headers()
    headers.add("Via", str(agent.via_for(local)))
    if route is not None:
        headers.add("Route", route)
    headers.add("Max-Forwards", str(MAX_FORWARDS))
    headers.add("From", str(NameAddr(uri=parse_uri(from_uri), params=(("tag", from_tag),))))
    headers.add("To", str(NameAddr(uri=parse_uri(to_uri))))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        headers.add("Contact", contact)
    headers.add("User-Agent", USER_AGENT)
    for name, value in extra_headers:
        headers.add(name, value)
    if body:
        headers.add("Content-Type", content_type or "application/sdp")
    return Request(method=method, uri=request_uri, headers=headers, body=body)


async def open_outbound_agent(
    config: NumberConfig,
    view: Effective,
    *,
    local_host: str | None = None,
    local_port: int = 0,
    timers: TimerConfig | None = None,
    rng: random.Random | None = None,
    loss: LossConfig | None = None,
    verify: bool = True,
    ca_file: str | Path | None = None,
    resolver: SipResolver | None = None,
) -> tuple[UserAgent, Outbound]:
    """Resolve where the number's requests go and open an agent for that transport.

    ``local_host`` None: the source address the OS would use to reach the target.
    Raises HarnessError subclasses (DNS, bind, certificate files) with one-line messages.
    """
    outbound = await resolve_outbound(view, resolver)
    host = local_host if local_host is not None else source_address_for(outbound.dest.host)
    agent = await UserAgent.open(
        outbound.dest.transport,
        host,
        local_port,
        timers=timers,
        rng=rng,
        loss=loss,
        verify=verify,
        ca_file=ca_file,
    )
    return agent, outbound


async def endpoints_for(agent: UserAgent, outbound: Outbound) -> tuple[Address, Endpoints]:
    """Our local address for the target (connecting first on TCP/TLS) and the endpoints."""
    local = await agent.local_for(outbound.dest, outbound.server_name)
    return local, Endpoints(
        transport=agent.kind,
        local=str(local),
        remote=str(outbound.dest),
        via=outbound.via,
        server_name=outbound.server_name if agent.kind == "tls" else None,
    )
