"""Helpers for the transport tests: running coroutines with a deadline, messages,
free ports, a tiny DNS server and a throw-away TLS CA."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from harness.sip.message import Request, Response, make_request, make_response

T = TypeVar("T")

#: Every test coroutine runs under this deadline so that nothing can hang.
DEADLINE = 20.0


def run(coro: Coroutine[Any, Any, T], timeout: float = DEADLINE) -> T:
    """Run ``coro`` in a fresh event loop, failing with TimeoutError after ``timeout`` s."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def options(cseq: int = 1, call_id: str = "call-1@test", body: bytes = b"") -> Request:
    """A small, valid OPTIONS request."""
    return make_request(
        "OPTIONS",
        "sip:100@127.0.0.1",
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-{cseq};rport"),
            ("Max-Forwards", "70"),
            ("From", "<sip:harness@127.0.0.1>;tag=a1"),
            ("To", "<sip:100@127.0.0.1>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} OPTIONS"),
        ],
        body,
    )


def ok_for(request: Request) -> Response:
    """A 200 OK answering ``request`` (its Via, From, To, Call-ID, CSeq copied)."""
    copied = [
        (name, value)
        for name, value in request.headers
        if name in ("Via", "From", "To", "Call-ID", "CSeq")
    ]
    return make_response(200, "OK", copied)


def closed_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` with nothing listening (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- DNS ---------------------------------------------------------------------------
class DnsServer(asyncio.DatagramProtocol):
    """An authoritative-only DNS server over UDP answering from ``records``.

    ``records`` maps ``(name, rdtype)`` to rdata texts; a name with no record of
    any type gets NXDOMAIN, a known name without the asked type an empty answer.
    Every question is logged in :attr:`queries` as ``(name, rdtype)``.
    """

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = {(_fqdn(n), t.upper()): v for (n, t), v in records.items()}
        self.names = {name for name, _ in self.records}
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # 3.11's selector datagram transport does not inherit DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name.rstrip("."), rdtype))
        if name not in self.names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (name, rdtype) in self.records:
            response.answer.append(
                dns.rrset.from_text_list(name, 60, "IN", rdtype, self.records[(name, rdtype)])
            )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


def _fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


async def start_dns(
    records: dict[tuple[str, str], list[str]], host: str = "127.0.0.77"
) -> tuple[DnsServer, int]:
    """Start a :class:`DnsServer` on ``host`` and a free port; returns it and the port."""
    loop = asyncio.get_running_loop()
    server = DnsServer(records)
    transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=(host, 0))
    return server, int(transport.get_extra_info("sockname")[1])


# --- TLS ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TestPki:
    __test__ = False  # not a test class, despite the name

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _openssl(args: Iterable[str], cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(directory: Path, san: str = "DNS:localhost,IP:127.0.0.1") -> TestPki:
    """A CA and one server certificate signed by it, for ``san``, in ``directory``."""
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        [
            "req",
            "-x509",
            *curve,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=sip-harness test CA",
        ],
        directory,
    )
    _openssl(
        ["req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        directory,
    )
    (directory / "server.ext").write_text(
        f"subjectAltName={san}\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        [
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        directory,
    )
    return TestPki(directory / "ca.crt", directory / "server.crt", directory / "server.key")
