"""RFC 3263 client-side resolution: from a SIP URI to an ordered list of targets.

Given the host, port, transport parameter and scheme of a URI,
:meth:`SipResolver.resolve` returns :class:`~harness.transport.base.Address`
values (IP, port, transport) in the order a client should try them:

1. a numeric IP (or ``localhost``) is used as is, no DNS query (§4.1, §4.2);
2. an explicit port: A/AAAA of the host, with the URI's transport or the default;
3. an explicit transport without a port: SRV for that transport, else A/AAAA;
4. otherwise NAPTR (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T``, by order then
   preference, restricted to supported transports) → SRV of each replacement;
   with no usable NAPTR, SRV for ``_sip._udp``, ``_sip._tcp`` and ``_sips._tcp``
   (only ``_sips._tcp`` for a sips URI); with no SRV, A/AAAA on the default port
   (UDP for sip, TLS for sips).

SRV records are ordered by priority, then by RFC 2782's weighted choice drawn
from a seeded :class:`random.Random`, so a given seed gives the same order.
Failures raise :class:`ResolutionError`, one line naming every query tried.

For TLS the name a certificate must match is the URI's host (RFC 5922), which
the caller already holds; targets carry only addresses.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.resolver
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

from harness.sip.uri import SipUri
from harness.transport.base import Address, TransportError, TransportKind, is_ip_literal

DEFAULT_PORTS: Final[dict[TransportKind, int]] = {"udp": 5060, "tcp": 5060, "tls": 5061}

#: NAPTR service field (RFC 3263 §4.1) → transport.
NAPTR_SERVICES: Final[dict[str, TransportKind]] = {
    "SIP+D2U": "udp",
    "SIP+D2T": "tcp",
    "SIPS+D2T": "tls",
}

#: SRV service prefix per transport (RFC 3263 §4.1).
SRV_PREFIXES: Final[dict[TransportKind, str]] = {
    "udp": "_sip._udp",
    "tcp": "_sip._tcp",
    "tls": "_sips._tcp",
}


class ResolutionError(TransportError):
    """No target could be found for a SIP URI; the message names every query tried."""


@dataclass(frozen=True)
class Query:
    """One DNS query made and how it ended (``"2 records"``, ``"NXDOMAIN"``...)."""

    name: str
    rdtype: str
    outcome: str

    def __str__(self) -> str:
        return f"{self.rdtype} {self.name}: {self.outcome}"


class SipResolver:
    """Resolves SIP URIs (RFC 3263) with :mod:`dns.asyncresolver`.

    ``nameservers`` (IP addresses) and ``port`` choose the DNS server; without
    them the system configuration (``/etc/resolv.conf``) is used.  ``transports``
    limits the transports a target may use.  ``timeout`` bounds each query.
    :attr:`queries` records every query made, in order.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[str] | None = None,
        port: int = 53,
        timeout: float = 3.0,
        transports: Sequence[TransportKind] = ("udp", "tcp", "tls"),
        families: Sequence[str] = ("A", "AAAA"),
        seed: int | None = 0,
    ) -> None:
        if nameservers is None:
            self._dns = dns.asyncresolver.Resolver()
        else:
            self._dns = dns.asyncresolver.Resolver(configure=False)
            self._dns.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip in nameservers]
        self._dns.lifetime = timeout
        self._dns.timeout = timeout
        self.transports = tuple(transports)
        self.families = tuple(families)
        self._rng = random.Random(seed)
        self.queries: list[Query] = []

    async def resolve_uri(self, uri: SipUri) -> list[Address]:
        """Targets for a parsed ``sip:``/``sips:`` URI (host, port, ``transport`` param)."""
        return await self.resolve(
            uri.host, uri.port, uri.transport, secure=uri.scheme.lower() == "sips"
        )

    async def resolve(
        self,
        host: str,
        port: int | None = None,
        transport: str | None = None,
        *,
        secure: bool = False,
    ) -> list[Address]:
        """Ordered targets for ``host`` (see the module docstring for the rules).

        ``transport`` is the URI's ``transport`` parameter (``udp``, ``tcp``,
        ``tls``; for a sips URI ``tcp`` means TLS).  Raises :class:`ResolutionError`.
        """
        host = host.strip().strip("[]").rstrip(".")
        what = f"{'sips' if secure else 'sip'}:{host}"
        explicit = self._explicit_transport(transport, secure, what)
        default_kind: TransportKind = "tls" if secure else "udp"
        start = len(self.queries)

        # §4.1/§4.2: a numeric address needs no DNS at all.
        if is_ip_literal(host) or host.lower() == "localhost":
            ip = "127.0.0.1" if host.lower() == "localhost" else host
            kind = explicit or default_kind
            return [Address(ip, port if port is not None else DEFAULT_PORTS[kind], kind)]

        if port is not None:
            kind = explicit or default_kind
            targets = [Address(ip, port, kind) for ip in await self._addresses(host)]
        elif explicit is not None:
            targets = await self._srv(f"{SRV_PREFIXES[explicit]}.{host}", explicit)
            if not targets:
                targets = await self._host_targets(host, explicit)
        else:
            targets = await self._from_naptr(host, secure)
            if not targets:
                for kind in self._srv_order(secure):
                    targets += await self._srv(f"{SRV_PREFIXES[kind]}.{host}", kind)
            if not targets:
                targets = await self._host_targets(host, default_kind)
        if not targets:
            tried = "; ".join(str(q) for q in self.queries[start:])
            raise ResolutionError(f"cannot resolve {what}: {tried or 'nothing to try'}")
        return targets

    # --- steps -------------------------------------------------------------------
    def _explicit_transport(
        self, transport: str | None, secure: bool, what: str
    ) -> TransportKind | None:
        if transport is None:
            return None
        value = transport.lower()
        kind: TransportKind
        if value == "udp":
            if secure:
                raise ResolutionError(f"cannot resolve {what}: a sips URI cannot use UDP")
            kind = "udp"
        elif value == "tcp":
            kind = "tls" if secure else "tcp"
        elif value == "tls":
            kind = "tls"
        else:
            raise ResolutionError(f"cannot resolve {what}: transport {transport!r} not supported")
        if kind not in self.transports:
            raise ResolutionError(f"cannot resolve {what}: transport {kind.upper()} is disabled")
        return kind

    def _srv_order(self, secure: bool) -> list[TransportKind]:
        wanted: tuple[TransportKind, ...] = ("tls",) if secure else ("udp", "tcp", "tls")
        return [kind for kind in wanted if kind in self.transports]

    async def _from_naptr(self, host: str, secure: bool) -> list[Address]:
        records = await self._query(host, "NAPTR")
        usable: list[tuple[int, int, TransportKind, str]] = []
        for rdata in records:
            assert isinstance(rdata, NAPTR)
            service = rdata.service.decode("ascii", "replace").upper()
            kind = NAPTR_SERVICES.get(service)
            if rdata.flags.decode("ascii", "replace").lower() != "s" or kind is None:
                continue
            if kind not in self.transports or (secure and kind != "tls"):
                continue
            usable.append((rdata.order, rdata.preference, kind, rdata.replacement.to_text()))
        targets: list[Address] = []
        for _order, _pref, kind, replacement in sorted(usable):
            targets += await self._srv(replacement, kind)
        return targets

    async def _srv(self, name: str, kind: TransportKind) -> list[Address]:
        records = [r for r in await self._query(name, "SRV") if isinstance(r, SRV)]
        targets: list[Address] = []
        for record in self._order_srv(records):
            target = record.target.to_text()
            if target == ".":
                continue  # RFC 2782: the service is decidedly not available there
            targets += [Address(ip, record.port, kind) for ip in await self._addresses(target)]
        return targets

    def _order_srv(self, records: list[SRV]) -> list[SRV]:
        """Priority ascending; within a priority, RFC 2782's weighted random order."""
        ordered: list[SRV] = []
        for priority in sorted({r.priority for r in records}):
            # Sorted first so the draw depends only on the seed, not on answer order.
            group = sorted(
                (r for r in records if r.priority == priority),
                key=lambda r: (r.weight, r.target.to_text(), r.port),
            )
            while group:
                total = sum(r.weight for r in group)
                if total == 0:
                    ordered += group
                    break
                pick = self._rng.uniform(0, total)
                running = 0
                for index, record in enumerate(group):
                    running += record.weight
                    if record.weight and running >= pick:
                        ordered.append(group.pop(index))
                        break
        return ordered

    async def _host_targets(self, host: str, kind: TransportKind) -> list[Address]:
        return [Address(ip, DEFAULT_PORTS[kind], kind) for ip in await self._addresses(host)]

    async def _addresses(self, host: str) -> list[str]:
        host = host.rstrip(".")
        if is_ip_literal(host):
            return [host]
        if host.lower() == "localhost":
            return ["127.0.0.1"]
        ips: list[str] = []
        for rdtype in self.families:
            records = await self._query(host, rdtype)
            ips += [r.to_text() for r in records]
            if self.queries[-1].outcome == "NXDOMAIN":
                break  # the name does not exist: no other family will exist either
        return ips

    async def _query(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        """Answer records; an absent name or type gives [] and is logged in :attr:`queries`."""
        qname = name.rstrip(".") + "."
        try:
            answer = await self._dns.resolve(qname, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            outcome = "NXDOMAIN"
        except dns.resolver.NoAnswer:
            outcome = "no records"
        except dns.resolver.NoNameservers as exc:
            outcome = f"no server answered ({_first_line(exc)})"
        except dns.exception.Timeout:
            outcome = f"timed out after {self._dns.lifetime:g} s"
        else:
            records = list(answer)
            self.queries.append(Query(name.rstrip("."), rdtype, f"{len(records)} records"))
            return records
        self.queries.append(Query(name.rstrip("."), rdtype, outcome))
        return []


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
