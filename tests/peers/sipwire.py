"""A tiny synchronous SIP client for the peer tests (UDP, TCP and TLS, loopback only).

It builds requests with harness.sip's message model, parses replies with its parser and
answers digest challenges with harness.sip.digest. It is deliberately simple (one
request at a time, no retransmission beyond a resend for UDP) so that a test failure
points at the peer, not at the client. The real agent (harness.agent) should replace
it once it can register and call.
"""

from __future__ import annotations

import random
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.sip.digest import build_credentials, challenges_from_response, new_cnonce
from harness.sip.message import Headers, Request, Response, make_request
from harness.sip.parser import NEED_DATA, StreamParser, parse_message

RNG = random.Random()


def _token(bits: int = 64) -> str:
    return f"{RNG.getrandbits(bits):x}"


SDP_OFFER = (
    "v=0\r\n"
    "o=harness 1 1 IN IP4 {address}\r\n"
    "s=-\r\n"
    "c=IN IP4 {address}\r\n"
    "t=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=sendrecv\r\n"
)


@dataclass
class SipClient:
    """One socket to one peer. ``transport`` is udp, tcp or tls."""

    remote: tuple[str, int]
    transport: str = "udp"
    local_address: str = "127.0.0.1"
    ca_file: Path | None = None
    timeout: float = 3.0
    sock: socket.socket = field(init=False)
    parser: StreamParser = field(init=False, default_factory=StreamParser)
    received: list[Response | Request] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((self.local_address, 0))
        else:
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.bind((self.local_address, 0))
            raw.settimeout(self.timeout)
            raw.connect(self.remote)
            if self.transport == "tls":
                context = ssl.create_default_context(
                    cafile=str(self.ca_file) if self.ca_file else None
                )
                raw = context.wrap_socket(raw, server_hostname=self.remote[0])
            self.sock = raw
        self.sock.settimeout(self.timeout)

    @property
    def local(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SipClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- wire ---------------------------------------------------------------------

    def send(self, message: Request | Response) -> None:
        data = message.to_bytes()
        if self.transport == "udp":
            self.sock.sendto(data, self.remote)
        else:
            self.sock.sendall(data)

    def receive(self, timeout: float | None = None) -> Request | Response:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no SIP message before the deadline")
            self.sock.settimeout(remaining)
            if self.transport == "udp":
                data, _ = self.sock.recvfrom(65535)
                message = parse_message(data)
            else:
                message = self.parser.next_message()
                if message is NEED_DATA:
                    chunk = self.sock.recv(65535)
                    if not chunk:
                        raise ConnectionError("peer closed the connection")
                    self.parser.feed(chunk)
                    continue
            assert isinstance(message, (Request, Response))
            self.received.append(message)
            return message

    def final_response(self, request: Request, timeout: float | None = None) -> Response:
        """Send ``request`` and wait for its final response (answering peer requests 200)."""
        self.send(request)
        branch = _branch(request)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self.receive(deadline - time.monotonic())
            if isinstance(message, Request):
                self.send(self.reply(message, 200, "OK"))
                continue
            if _branch(message) != branch:
                continue
            if message.status >= 200:
                return message

    # --- building -----------------------------------------------------------------

    def via(self) -> str:
        host, port = self.local
        return f"SIP/2.0/{self.transport.upper()} {host}:{port};branch=z9hG4bK{_token()};rport"

    def contact(self, user: str) -> str:
        host, port = self.local
        suffix = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"<sip:{user}@{host}:{port}{suffix}>"

    def reply(self, request: Request, status: int, reason: str) -> Response:
        headers = [
            (name, value)
            for name, value in request.headers
            if name in {"Via", "From", "To", "Call-ID", "CSeq", "Record-Route"}
        ]
        fixed = []
        for name, value in headers:
            tagged = f"{value};tag={_token()}" if name == "To" and ";tag=" not in value else value
            fixed.append((name, tagged))
        return Response(status=status, reason=reason, headers=Headers(fixed))

    def request(
        self,
        method: str,
        uri: str,
        *,
        from_uri: str,
        to_uri: str,
        call_id: str | None = None,
        cseq: int = 1,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        from_tag: str | None = None,
    ) -> Request:
        headers = [
            ("Via", self.via()),
            ("Max-Forwards", "70"),
            ("From", f"<{from_uri}>;tag={from_tag or _token()}"),
            ("To", f"<{to_uri}>"),
            ("Call-ID", call_id or f"{_token(96)}@harness"),
            ("CSeq", f"{cseq} {method}"),
            *extra,
        ]
        return make_request(method, uri, headers, body)


def _branch(message: Request | Response) -> str | None:
    via = message.headers.get("Via")
    if via is None:
        return None
    for part in via.split(";")[1:]:
        if part.strip().lower().startswith("branch="):
            return part.split("=", 1)[1].strip()
    return None


def retry_with_credentials(
    previous: Request,
    challenge_response: Response,
    *,
    username: str,
    password: str,
    client: SipClient,
    digest_uri: str | None = None,
    reuse: tuple[str, object] | None = None,
) -> Request:
    """``previous`` again with credentials answering ``challenge_response`` (new branch, CSeq+1).

    ``digest_uri`` signs a different uri than the Request-URI (the strict-uri quirk test).
    """
    found = challenges_from_response(challenge_response)
    assert found, f"no challenge in {challenge_response!r}"
    received = found[0]
    cseq = previous.cseq
    assert cseq is not None
    credentials = build_credentials(
        received.challenge,
        method=previous.method,
        request_uri=digest_uri or previous.uri,
        username=username,
        password=password,
        cnonce=new_cnonce(RNG),
        body=previous.body,
    )
    headers = [
        (name, value)
        for name, value in previous.headers
        if name not in {"Via", "CSeq", "Authorization", "Proxy-Authorization"}
    ]
    request = make_request(
        previous.method,
        previous.uri,
        [
            ("Via", client.via()),
            ("CSeq", f"{cseq[0] + 1} {previous.method}"),
            *headers,
            (received.answer_header, credentials.to_header_value()),
        ],
        previous.body,
    )
    return request
