"""What the agent's operations return: plain dataclasses with ``to_dict()`` for JSON.

Every result says whether the SIP outcome is a success (``success``), the final
status code and reason of each transaction it ran (``transactions``), whether
digest authentication was used and with which username, algorithm and realm
(``auth``), and the addresses and transport on the wire (``endpoints``).  A failed
outcome has ``error`` (one line a user can act on) and ``error_kind``:

* ``"credentials-rejected"``: the peer challenged again (or answered 403) after
  our credentials: the password or digest username is wrong;
* ``"timeout"``: no final response within Timer B/F (the target is named);
* ``"rejected"``: a final failure response (its code and reason are given);
* ``"auth-required"``: challenged but the number has no credentials;
* ``"transport"``: a send failed (connection refused, reset...);
* ``"protocol"``: the peer's answer could not be used (bad SDP, no Contact...).

No result holds the password.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.agent.rtp import RtpStats

ErrorKind = Literal[
    "credentials-rejected", "timeout", "rejected", "auth-required", "transport", "protocol"
]


def _jsonify(value: Any) -> Any:
    if isinstance(value, RtpStats):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonify(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_jsonify(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonify(v) for k, v in value.items()}
    return value


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dicts (RTP figures through :meth:`RtpStats.to_dict`)."""
        result = _jsonify(self)
        assert isinstance(result, dict)
        return result


@dataclass
class AuthInfo(_ToDict):
    """Digest authentication as used by one operation (never the password)."""

    used: bool = False
    #: ``Authorization`` (answering 401) or ``Proxy-Authorization`` (answering 407).
    header: str | None = None
    digest_username: str | None = None
    algorithm: str | None = None
    realm: str | None = None
    qop: str | None = None
    #: Challenges answered (a stale nonce adds one).
    challenges_answered: int = 0
    stale_nonce_retries: int = 0


@dataclass
class Endpoints(_ToDict):
    """Where the traffic went: our address, the peer's, the transport, and why there."""

    transport: str
    local: str
    remote: str
    #: ``"outbound_proxy"`` or ``"sip_domain"`` for outbound traffic; ``"origination_uri"``
    #: for the inbound UAS.
    via: str
    server_name: str | None = None


@dataclass
class TransactionResult(_ToDict):
    """One request we sent and how it ended."""

    method: str
    cseq: int
    request_uri: str
    call_id: str
    branch: str
    status: int | None = None
    reason: str | None = None
    #: Seconds from the first send to the final response (None without one).
    elapsed_s: float | None = None
    timeout: bool = False
    error: str | None = None
    #: The credentials header this request carried, if any.
    authorization: str | None = None
    provisional: list[int] = field(default_factory=list)


@dataclass
class OptionsResult(_ToDict):
    success: bool
    endpoints: Endpoints
    request_uri: str
    status: int | None = None
    reason: str | None = None
    rtt_ms: float | None = None
    #: The peer's Server or User-Agent header, and its Allow header.
    peer_agent: str | None = None
    allow: str | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    auth: AuthInfo = field(default_factory=AuthInfo)
    transactions: list[TransactionResult] = field(default_factory=list)
    garbage_received: int = 0


@dataclass
class RegisterResult(_ToDict):
    success: bool
    endpoints: Endpoints
    request_uri: str
    aor: str
    contact: str
    call_id: str
    status: int | None = None
    reason: str | None = None
    expires_requested: int | None = None
    #: What the registrar granted: our Contact's ``expires`` in the 200, else its Expires.
    expires_granted: int | None = None
    #: Set when a 423 made us retry with the registrar's Min-Expires.
    min_expires: int | None = None
    refreshes: int = 0
    #: None when no un-register was asked; else whether ``Expires: 0`` got a 2xx.
    unregistered: bool | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    auth: AuthInfo = field(default_factory=AuthInfo)
    transactions: list[TransactionResult] = field(default_factory=list)
    garbage_received: int = 0


@dataclass
class CallResult(_ToDict):
    """An outbound call: setup, media, teardown."""

    success: bool
    endpoints: Endpoints
    request_uri: str
    from_uri: str
    to_uri: str
    call_id: str
    #: ``completed``, ``cancelled``, ``rejected``, ``timeout``, ``credentials-rejected``,
    #: ``failed``.
    outcome: str = "failed"
    status: int | None = None
    reason: str | None = None
    answered: bool = False
    setup_s: float | None = None
    #: ``"local"`` (we sent BYE), ``"remote"`` (the peer sent BYE) or None.
    ended_by: str | None = None
    bye_status: int | None = None
    cancel_status: int | None = None
    remote_media: str | None = None
    codec: str | None = None
    rtp: RtpStats | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    auth: AuthInfo = field(default_factory=AuthInfo)
    transactions: list[TransactionResult] = field(default_factory=list)
    garbage_received: int = 0


@dataclass
class InboundCallResult(_ToDict):
    """One call the UAS at the origination URI received."""

    call_id: str
    source: str
    request_uri: str
    from_uri: str
    to_uri: str
    #: Whether the Request-URI or To user is the number's phone_number.
    to_number: bool
    #: ``completed``, ``rejected``, ``cancelled``, ``failed``.
    outcome: str = "failed"
    #: The final status we sent to the INVITE.
    status: int | None = None
    ack_received: bool = False
    ended_by: str | None = None
    bye_status: int | None = None
    remote_media: str | None = None
    codec: str | None = None
    rtp: RtpStats | None = None
    error: str | None = None


@dataclass
class AnswerResult(_ToDict):
    """The inbound UAS's run: the calls it took."""

    success: bool
    endpoints: Endpoints
    expected_calls: int
    calls: list[InboundCallResult] = field(default_factory=list)
    error: str | None = None
    error_kind: ErrorKind | None = None
    garbage_received: int = 0
