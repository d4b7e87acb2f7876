"""The effective view of a number: where packets really go and what they say.

The rules (DESIGN.md, "The custom-number fields"):

* Without ``outbound_proxy`` every outbound request goes to ``sip_domain``.
* With ``outbound_proxy`` the proxy is the destination of every outbound
  request, registrations included; the Request-URI still names the domain and
  a loose route to the proxy (``Route: <sip:proxy;lr>``) is pre-loaded.  The
  proxy's port and transport are the ones used on the wire.
* Port: as written, else 5061 for TLS (``sips:`` or ``transport=tls``), else 5060.
* Transport: the ``transport=`` parameter, else TLS for ``sips:``, else UDP
  "until DNS says otherwise": RFC 3263 §4.1 lets NAPTR choose the transport when
  the host is a name and neither a port nor a transport is written.
* RFC 3263 resolution is short-circuited when the host is an IP address (used
  as is) and reduced to A/AAAA when a port is written; :class:`Target` records
  which case applies (:attr:`Target.resolution`), so the transport layer knows
  what DNS may still change.

Request-URIs (RFC 3261 §10.2 and §8.1.1.1): ``register_uri`` is
``sip:<sip_domain>`` (host and port as written), the Request-URI of REGISTER
and of requests addressed to the domain itself; it is what ``validate --json``
prints as ``request_uri``.  A call to a number N uses
:meth:`Effective.call_request_uri` = ``sip:N@<sip_domain>``.  From/To URIs
carry the domain's host only (a port there means nothing for identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from harness.numbers.model import HostPort, NumberConfig, Transport, is_ip_address
from harness.sip.uri import SipUri


class Resolution(StrEnum):
    """What RFC 3263 resolution still has to do for a target."""

    #: The host is an IP address: no DNS at all.
    NONE = "none"
    #: A name with a port: A/AAAA only (RFC 3263 §4.2); port and transport are fixed.
    ADDRESS = "address"
    #: A name with a transport but no port: SRV for that transport, then A/AAAA.
    SRV = "srv"
    #: A name with neither: NAPTR may choose the transport, then SRV, then A/AAAA.
    NAPTR = "naptr"


@dataclass(frozen=True)
class Target:
    """A place to send SIP to (or listen at): host, port, transport.

    ``host`` is a name or an IP address (IPv6 without brackets).  ``port`` and
    ``transport`` are always filled in (defaults applied); ``port_explicit`` and
    ``transport_explicit`` say whether the number file fixed them (a ``sips:``
    scheme fixes the transport to TLS).  When they are not fixed and the host is
    a name, RFC 3263 resolution may replace them (see :attr:`resolution`).
    """

    host: str
    port: int
    transport: Transport
    port_explicit: bool
    transport_explicit: bool

    @property
    def host_is_ip(self) -> bool:
        return is_ip_address(self.host)

    @property
    def resolution(self) -> Resolution:
        if self.host_is_ip:
            return Resolution.NONE
        if self.port_explicit:
            return Resolution.ADDRESS
        if self.transport_explicit:
            return Resolution.SRV
        return Resolution.NAPTR

    @property
    def hostport(self) -> HostPort:
        return HostPort(self.host, self.port)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "transport": self.transport.value,
            "port_explicit": self.port_explicit,
            "transport_explicit": self.transport_explicit,
            "resolution": self.resolution.value,
        }

    @classmethod
    def from_uri(cls, uri: SipUri) -> Target:
        """The target a validated ``sip:``/``sips:`` URI names (RFC 3263 defaults)."""
        param = uri.transport
        if param is not None:
            transport = Transport(param)
            # RFC 3261 §26.2.2: sips: over "tcp" is TLS over TCP.
            if uri.scheme.lower() == "sips" and transport is Transport.TCP:
                transport = Transport.TLS
            transport_explicit = True
        elif uri.scheme.lower() == "sips":
            transport, transport_explicit = Transport.TLS, True
        else:
            transport, transport_explicit = Transport.UDP, False
        port = uri.port if uri.port is not None else transport.default_port
        return cls(
            host=uri.host,
            port=port,
            transport=transport,
            port_explicit=uri.port is not None,
            transport_explicit=transport_explicit,
        )

    @classmethod
    def from_hostport(cls, hostport: HostPort) -> Target:
        """The target ``host[:port]`` names: UDP until DNS says otherwise."""
        return cls(
            host=hostport.host,
            port=hostport.port if hostport.port is not None else Transport.UDP.default_port,
            transport=Transport.UDP,
            port_explicit=hostport.port is not None,
            transport_explicit=False,
        )


@dataclass(frozen=True)
class Effective:
    """What a number means on the wire; never holds the password.

    * ``target``: where every outbound request goes (the proxy when set).
    * ``via``: which field gave the target (``"outbound_proxy"`` or ``"sip_domain"``).
    * ``register_uri``: ``sip:<sip_domain>``, the REGISTER Request-URI (JSON ``request_uri``).
    * ``route``: the pre-loaded ``<sip:proxy...;lr>`` Route value, or None.
    * ``registers``: True when the number has credentials (it sends REGISTER).
    * ``digest_username``: ``auth_username`` or ``username``; None without credentials.
    * ``from_uri``: ``sip:<phone_number>@<domain host>``, the From of outbound calls.
    * ``aor``: ``sip:<username or phone_number>@<domain host>``, To/From of REGISTER.
    * ``origination``: where the inbound UAS listens, or None.
    """

    target: Target
    via: Literal["outbound_proxy", "sip_domain"]
    register_uri: str
    route: str | None
    registers: bool
    digest_username: str | None
    from_uri: str
    aor: str
    origination: Target | None
    domain: HostPort

    @property
    def request_uri(self) -> str:
        """Same as :attr:`register_uri` (the name ``validate --json`` uses)."""
        return self.register_uri

    def call_request_uri(self, number: str) -> str:
        """The Request-URI (and To URI) of a call to ``number``: ``sip:N@<sip_domain>``."""
        return str(SipUri(user=number, host=self.domain.host, port=self.domain.port))

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.to_dict(),
            "via": self.via,
            "request_uri": self.register_uri,
            "route": self.route,
            "registers": self.registers,
            "digest_username": self.digest_username,
            "from_uri": self.from_uri,
            "aor": self.aor,
            "origination": None if self.origination is None else self.origination.to_dict(),
        }


def effective_view(config: NumberConfig) -> Effective:
    """Apply the effective-target rules (module docstring) to a validated number."""
    domain = config.sip_domain
    proxy = config.outbound_proxy
    route: str | None = None
    if proxy is None:
        target = Target.from_hostport(domain)
        via: Literal["outbound_proxy", "sip_domain"] = "sip_domain"
    else:
        target = Target.from_uri(proxy)
        via = "outbound_proxy"
        # The Route keeps the proxy URI as written (no default port added), so the
        # next-hop resolution (RFC 3263) is the same as for the proxy itself.
        params = proxy.params if proxy.has_param("lr") else (*proxy.params, ("lr", None))
        route = f"<{proxy.with_params(params)}>"
    digest_username: str | None = None
    if config.has_credentials:
        digest_username = config.auth_username or config.username
    aor_user = config.username if config.username is not None else config.phone_number
    return Effective(
        target=target,
        via=via,
        register_uri=str(SipUri(host=domain.host, port=domain.port)),
        route=route,
        registers=config.has_credentials,
        digest_username=digest_username,
        from_uri=str(SipUri(user=config.phone_number, host=domain.host)),
        aor=str(SipUri(user=aor_user, host=domain.host)),
        origination=(
            None if config.origination_uri is None else Target.from_uri(config.origination_uri)
        ),
        domain=domain,
    )
