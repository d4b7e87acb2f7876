"""Carrier profiles: which mock peers stand for a carrier or PBX, and how they behave.

A profile (YAML in ``fixtures/profiles/``) names its peers (Kamailio or Asterisk, each
with a role, a loopback address, a port and a transport), the quirks its
authenticating Kamailio shows, and a ``number:`` overlay: the fields this carrier
dictates to the customer (``sip_domain``, ``outbound_proxy``, ``auth_username``, or
``registers: false`` for an IP-authenticated trunk). Credentials, the phone number and
the origination URI come from the number file; :func:`apply_profile` combines both
into the number the harness uses against the peers, and the peers are rendered to
accept exactly its credentials.

Loading reports the first problem found as one line naming the file and the field
(``fixtures/profiles/x.yaml: peers[1].port: ...``) in an :class:`InputError`.

Addresses: each bundled profile has its own block of 127.0.0.x addresses so profiles
can run side by side; :meth:`Profile.placed` moves a profile to another block
(``base``, for parallel test workers) and shifts its ports.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import yaml

from harness.errors import InputError
from harness.numbers import HostPort, NumberConfig, Transport, check_number_data
from harness.resources import data_dir
from harness.sip.uri import SipUri

PROFILE_SUFFIX: Final = ".yaml"
MAX_PROFILE_BYTES: Final = 256 * 1024
MAX_BASE: Final = 255
"""``base`` moves addresses by ``base * 256``: 127.0.0.x becomes 127.0.<base>.x."""


class Software(StrEnum):
    """What a peer runs."""

    KAMAILIO = "kamailio"
    ASTERISK = "asterisk"


class Role(StrEnum):
    """What a peer does in its profile; the role picks its config template."""

    REGISTRAR = "registrar"
    """Kamailio: registrar (401 on REGISTER) and proxy (407 on INVITE) to a media peer."""
    EDGE_PROXY = "edge-proxy"
    """Kamailio: outbound proxy (record-route, Path) in front of a registrar."""
    TRUNK = "trunk"
    """Kamailio: IP-authenticated trunk; inbound calls go to the origination URI."""
    MEDIA = "media"
    """Asterisk: answers every call with Echo(); originates calls through Kamailio."""
    PBX = "pbx"
    """Asterisk: a PBX extension that registers; originates calls to it on demand."""


ROLES_OF: Final[Mapping[Software, frozenset[Role]]] = {
    Software.KAMAILIO: frozenset({Role.REGISTRAR, Role.EDGE_PROXY, Role.TRUNK}),
    Software.ASTERISK: frozenset({Role.MEDIA, Role.PBX}),
}


class Quirk(StrEnum):
    """Behaviour of an authenticating Kamailio that real carriers show."""

    REALM = "realm"
    """The digest realm differs from the SIP domain (``settings.realm``)."""
    SHA256 = "sha256"
    """Challenges offer SHA-256 only (RFC 8760), no MD5."""
    MIN_EXPIRES = "min-expires"
    """REGISTER with Expires below ``settings.min_expires`` gets 423 and Min-Expires."""
    STALE_NONCE = "stale-nonce"
    """Nonces expire after ``settings.nonce_expire`` s; reusing one gets stale=true."""
    STRICT_DIGEST_URI = "strict-digest-uri"
    """Credentials whose digest uri differs from the Request-URI get 400."""


@dataclass(frozen=True)
class Settings:
    """Values the quirks use (defaults apply when a profile says nothing)."""

    realm: str = "realm.carrier.test"
    min_expires: int = 600
    nonce_expire: int = 2


@dataclass(frozen=True)
class PeerSpec:
    """One peer of a profile. ``next_hop`` names the peer requests are relayed to."""

    name: str
    software: Software
    role: Role
    address: str
    port: int
    transport: Transport
    next_hop: str | None = None
    allowed_sources: tuple[str, ...] = ()
    """Trunk only: source addresses whose INVITEs are accepted (others get 403)."""

    @property
    def uri(self) -> SipUri:
        """The peer's own SIP URI (``sips:`` for TLS, ``transport=tcp`` for TCP)."""
        if self.transport is Transport.TLS:
            return SipUri(scheme="sips", host=self.address, port=self.port)
        params: tuple[tuple[str, str | None], ...] = ()
        if self.transport is Transport.TCP:
            params = (("transport", "tcp"),)
        return SipUri(host=self.address, port=self.port, params=params)


@dataclass(frozen=True)
class NumberOverlay:
    """Fields a profile sets on the number; None leaves the number's value."""

    sip_domain: HostPort | None = None
    outbound_proxy: SipUri | None = None
    auth_username: str | None = None
    registers: bool = True
    """False: the carrier trusts source addresses; the number's credentials are dropped."""


@dataclass(frozen=True)
class Profile:
    """A carrier or PBX persona. Peers are in start order; names are unique."""

    name: str
    stands_for: str
    peers: tuple[PeerSpec, ...]
    number: NumberOverlay = NumberOverlay()
    quirks: tuple[Quirk, ...] = ()
    settings: Settings = Settings()
    source: Path | None = field(default=None, compare=False)

    def peer(self, name: str) -> PeerSpec:
        """The peer called ``name`` (KeyError when there is none)."""
        for peer in self.peers:
            if peer.name == name:
                return peer
        raise KeyError(name)

    @property
    def authenticator(self) -> PeerSpec | None:
        """The Kamailio registrar that challenges, or None (quirks need one)."""
        for peer in self.peers:
            if peer.role is Role.REGISTRAR:
                return peer
        return None

    @property
    def entry(self) -> PeerSpec:
        """The peer the customer's requests reach first (proxy, registrar, PBX or trunk)."""
        for role in (Role.EDGE_PROXY, Role.REGISTRAR, Role.TRUNK, Role.PBX):
            for peer in self.peers:
                if peer.role is role:
                    return peer
        return self.peers[0]

    def with_quirks(self, quirks: Sequence[Quirk | str]) -> Profile:
        """A copy with exactly ``quirks``; InputError when they cannot apply."""
        chosen = tuple(_parse_quirk(str(q), where=f"profile {self.name}: quirks") for q in quirks)
        if chosen and self.authenticator is None:
            raise InputError(
                f"profile {self.name}: quirks need a Kamailio registrar peer; this profile has none"
            )
        return dataclasses.replace(self, quirks=tuple(dict.fromkeys(chosen)))

    def with_allowed_sources(self, sources: Sequence[str]) -> Profile:
        """A copy whose trunk peers accept INVITEs only from ``sources`` (InputError if bad)."""
        try:
            checked = tuple(
                _loopback(text, where=f"profile {self.name}: allowed_sources") for text in sources
            )
        except _Fail as err:
            raise InputError(str(err)) from None
        peers = tuple(
            dataclasses.replace(p, allowed_sources=checked) if p.role is Role.TRUNK else p
            for p in self.peers
        )
        return dataclasses.replace(self, peers=peers)

    def placed(self, *, base: int = 0, port_offset: int = 0) -> Profile:
        """The profile moved to address block ``base`` and its ports shifted.

        127.0.0.x becomes 127.0.<base>.x; every peer port and every overlay address that
        names a peer moves with it, so :func:`apply_profile` points at the moved peers.
        Allowed trunk sources are kept (the harness's own address does not move).
        """
        if not 0 <= base <= MAX_BASE:
            raise InputError(f"address base {base} is outside 0-{MAX_BASE}")
        if base == 0 and port_offset == 0:
            return self
        moved: dict[tuple[str, int], tuple[str, int]] = {}
        peers = []
        for peer in self.peers:
            address = str(ipaddress.IPv4Address(peer.address) + base * 256)
            port = peer.port + port_offset
            if not 1 <= port <= 65535:
                raise InputError(f"port offset {port_offset} moves {peer.name} off 1-65535")
            moved[(peer.address, peer.port)] = (address, port)
            peers.append(dataclasses.replace(peer, address=address, port=port))
        overlay = self.number
        domain = overlay.sip_domain
        if domain is not None:
            key = (domain.host, domain.port or Transport.UDP.default_port)
            if key in moved:
                host, port = moved[key]
                domain = HostPort(host, port if (domain.port or port_offset) else None)
        proxy = overlay.outbound_proxy
        if proxy is not None:
            default = Transport.TLS.default_port if _is_tls(proxy) else 5060
            key = (proxy.host, proxy.port or default)
            if key in moved:
                host, port = moved[key]
                keep_port = proxy.port is not None or port_offset != 0
                proxy = SipUri(
                    proxy.scheme, None, None, host, port if keep_port else None, proxy.params
                )
        return dataclasses.replace(
            self,
            peers=tuple(peers),
            number=dataclasses.replace(overlay, sip_domain=domain, outbound_proxy=proxy),
        )


def _is_tls(uri: SipUri) -> bool:
    return uri.scheme.lower() == "sips" or uri.transport == "tls"


# --- the effective number ------------------------------------------------------------


def apply_profile(number: NumberConfig, profile: Profile) -> NumberConfig:
    """The number as the customer would configure it for this carrier.

    The overlay's fields replace the number's; ``registers: false`` drops username,
    password and auth_username. Raises :class:`InputError` when the profile needs
    credentials the number lacks, or an origination URI it lacks (trunks).
    """
    overlay = number_overlay = profile.number
    registers = number_overlay.registers
    if registers and not number.has_credentials:
        raise InputError(
            f"profile {profile.name} registers: the number needs username and password"
        )
    if any(p.role is Role.TRUNK for p in profile.peers) and number.origination_uri is None:
        raise InputError(
            f"profile {profile.name} sends inbound calls: the number needs origination_uri"
        )
    if not registers:
        return dataclasses.replace(
            number,
            sip_domain=overlay.sip_domain or number.sip_domain,
            outbound_proxy=overlay.outbound_proxy,
            username=None,
            password=None,
            auth_username=None,
            password_source=None,
        )
    return dataclasses.replace(
        number,
        sip_domain=overlay.sip_domain or number.sip_domain,
        outbound_proxy=overlay.outbound_proxy,
        auth_username=overlay.auth_username or number.auth_username,
    )


# --- loading ---------------------------------------------------------------------------


PROFILE_FIELDS: Final = ("name", "stands_for", "peers", "number", "quirks", "settings")
PEER_FIELDS: Final = (
    "name", "software", "role", "address", "port", "transport", "next_hop", "allowed_sources",
)  # fmt: skip
OVERLAY_FIELDS: Final = ("sip_domain", "outbound_proxy", "auth_username", "registers")
SETTINGS_FIELDS: Final = ("realm", "min_expires", "nonce_expire")

# A stand-in number for validating an overlay without a real number file.
_PROBE_NUMBER: Final = {
    "phone_number": "+15550000000",
    "sip_domain": "127.0.0.2",
    "username": "probe",
    "password": "probe",
}


class _Fail(Exception):
    """Internal: a problem at ``where``; turned into an InputError naming the file."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def bundled_profiles_dir() -> Path:
    """The folder of the bundled profiles (``fixtures/profiles`` of the checkout)."""
    return data_dir("fixtures") / "profiles"


def list_profiles(folder: Path | None = None) -> list[str]:
    """Names of the profiles in ``folder`` (default: the bundled ones), sorted."""
    where = folder or bundled_profiles_dir()
    return sorted(p.name.removesuffix(PROFILE_SUFFIX) for p in where.glob(f"*{PROFILE_SUFFIX}"))


def load_profile(name_or_path: str | Path, *, folder: Path | None = None) -> Profile:
    """Load a profile by bundled name (``registrar-udp``) or by path to a YAML file.

    Raises :class:`InputError`: one line naming the file and the field at fault.
    """
    text = str(name_or_path)
    path = Path(text)
    if not text.endswith(PROFILE_SUFFIX) and "/" not in text:
        path = (folder or bundled_profiles_dir()) / f"{text}{PROFILE_SUFFIX}"
        if not path.is_file():
            known = ", ".join(list_profiles(folder)) or "none"
            raise InputError(f"unknown profile {text!r}; known: {known}")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read profile: {err.strerror or err}") from err
    if len(raw) > MAX_PROFILE_BYTES:
        raise InputError(f"{path}: too large for a profile ({len(raw)} bytes)")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        first = " ".join(str(err).split())[:200]
        raise InputError(f"{path}: not a UTF-8 YAML file: {first}") from err
    try:
        return parse_profile(data, source=path)
    except _Fail as err:
        raise InputError(f"{path}: {err}") from None


def parse_profile(data: object, *, source: Path | None = None) -> Profile:
    """Validate a loaded YAML document; raises InputError (one line, naming the field)."""
    try:
        return _parse_profile(data, source)
    except _Fail as err:
        where = f"{source}: " if source is not None else ""
        raise InputError(f"{where}{err}") from None


def _parse_profile(data: object, source: Path | None) -> Profile:
    top = _mapping(data, "profile", PROFILE_FIELDS)
    name = _text(top, "name", "name")
    stands_for = " ".join(_text(top, "stands_for", "stands_for").split())
    raw_peers = top.get("peers")
    if not isinstance(raw_peers, list) or not raw_peers:
        raise _Fail("peers", "must be a non-empty list of peers")
    peers = tuple(_parse_peer(item, f"peers[{i}]") for i, item in enumerate(raw_peers))
    _check_peers(peers)
    overlay = _parse_overlay(top.get("number"))
    settings = _parse_settings(top.get("settings"))
    raw_quirks = top.get("quirks", [])
    if not isinstance(raw_quirks, list):
        raise _Fail("quirks", f"must be a list of: {', '.join(q.value for q in Quirk)}")
    quirks = tuple(_quirk_or_fail(item, f"quirks[{i}]") for i, item in enumerate(raw_quirks))
    profile = Profile(
        name=name, stands_for=stands_for, peers=peers, number=overlay,
        settings=settings, source=source,
    )  # fmt: skip
    if quirks and profile.authenticator is None:
        raise _Fail("quirks", "need a Kamailio peer with role registrar")
    return dataclasses.replace(profile, quirks=tuple(dict.fromkeys(quirks)))


def _mapping(data: object, where: str, allowed: Sequence[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Fail(where, "must be a mapping")
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise _Fail(
            f"{where}.{unknown[0]}" if where != "profile" else unknown[0],
            f"unknown field; expected one of {', '.join(allowed)}",
        )
    return {str(key): value for key, value in data.items()}


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _Fail(where, "must be a non-empty string")
    return value.strip()


def _integer(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Fail(where, f"must be an integer from {low} to {high}")
    return value


def _choice(value: object, where: str, enum: type[StrEnum]) -> Any:
    try:
        return enum(str(value).lower())
    except ValueError:
        raise _Fail(where, f"must be one of {', '.join(m.value for m in enum)}") from None


def _loopback(value: object, *, where: str) -> str:
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError:
        raise _Fail(where, f"{value!r} is not an IPv4 address") from None
    if not address.is_loopback:
        raise _Fail(where, f"{address} is not a loopback address (peers stay on 127.0.0.0/8)")
    return str(address)


def _parse_quirk(text: str, *, where: str) -> Quirk:
    try:
        return _quirk_or_fail(text, where)
    except _Fail as err:
        raise InputError(str(err)) from None


def _quirk_or_fail(value: object, where: str) -> Quirk:
    result: Quirk = _choice(value, where, Quirk)
    return result


def _parse_peer(item: object, where: str) -> PeerSpec:
    data = _mapping(item, where, PEER_FIELDS)
    name = _text(data, "name", f"{where}.name")
    if not name.replace("-", "").isalnum() or not name[0].isalpha() or len(name) > 20:
        raise _Fail(
            f"{where}.name", "must be up to 20 letters, digits or '-', starting with a letter"
        )
    software: Software = _choice(data.get("software"), f"{where}.software", Software)
    role: Role = _choice(data.get("role"), f"{where}.role", Role)
    if role not in ROLES_OF[software]:
        allowed = ", ".join(sorted(r.value for r in ROLES_OF[software]))
        raise _Fail(f"{where}.role", f"a {software.value} peer's role is one of {allowed}")
    address = _loopback(data.get("address"), where=f"{where}.address")
    if address == "127.0.0.1":
        raise _Fail(f"{where}.address", "127.0.0.1 belongs to the harness; use 127.0.0.2 or above")
    transport: Transport = _choice(data.get("transport", "udp"), f"{where}.transport", Transport)
    if software is Software.ASTERISK and transport is Transport.TLS:
        raise _Fail(f"{where}.transport", "Asterisk peers use udp or tcp")
    port = _integer(data.get("port", transport.default_port), f"{where}.port", 1024, 65000)
    next_hop = data.get("next_hop")
    if next_hop is not None and not isinstance(next_hop, str):
        raise _Fail(f"{where}.next_hop", "must name another peer")
    sources = data.get("allowed_sources", [])
    if not isinstance(sources, list):
        raise _Fail(f"{where}.allowed_sources", "must be a list of loopback addresses")
    if sources and role is not Role.TRUNK:
        raise _Fail(f"{where}.allowed_sources", "only a trunk peer has allowed sources")
    sources_ok: tuple[str, ...] = tuple(
        _loopback(s, where=f"{where}.allowed_sources[{i}]") for i, s in enumerate(sources)
    )
    if role is Role.TRUNK and not sources_ok:
        # The harness itself: the platform's address is what a trunk trusts by default.
        sources_ok = ("127.0.0.1",)
    return PeerSpec(name, software, role, address, port, transport, next_hop, sources_ok)


# Which next hop each role needs.
_NEXT_HOP_ROLES: Final[Mapping[Role, frozenset[Role]]] = {
    Role.EDGE_PROXY: frozenset({Role.REGISTRAR}),
    Role.REGISTRAR: frozenset({Role.MEDIA}),
    Role.TRUNK: frozenset({Role.MEDIA}),
    Role.MEDIA: frozenset({Role.REGISTRAR, Role.TRUNK}),
}


def _check_peers(peers: tuple[PeerSpec, ...]) -> None:
    by_name: dict[str, PeerSpec] = {}
    sockets: set[tuple[str, int]] = set()
    for i, peer in enumerate(peers):
        if peer.name in by_name:
            raise _Fail(f"peers[{i}].name", f"{peer.name!r} is used twice")
        by_name[peer.name] = peer
        if (peer.address, peer.port) in sockets:
            raise _Fail(f"peers[{i}].port", f"{peer.address}:{peer.port} is used twice")
        sockets.add((peer.address, peer.port))
    for i, peer in enumerate(peers):
        wanted = _NEXT_HOP_ROLES.get(peer.role)
        where = f"peers[{i}].next_hop"
        if wanted is None:
            if peer.next_hop is not None:
                raise _Fail(where, f"a {peer.role.value} peer has no next hop")
            continue
        roles = " or ".join(sorted(r.value for r in wanted))
        if peer.next_hop is None:
            raise _Fail(where, f"a {peer.role.value} peer needs a next hop ({roles})")
        target = by_name.get(peer.next_hop)
        if target is None:
            raise _Fail(where, f"names no peer of this profile: {peer.next_hop!r}")
        if target.role not in wanted:
            raise _Fail(where, f"{peer.next_hop!r} must be a {roles} peer")


def _parse_overlay(raw: object) -> NumberOverlay:
    if raw is None:
        return NumberOverlay()
    data = _mapping(raw, "number", OVERLAY_FIELDS)
    registers = data.pop("registers", True)
    if not isinstance(registers, bool):
        raise _Fail("number.registers", "must be true or false")
    probe: dict[str, object] = dict(_PROBE_NUMBER)
    for key, value in data.items():
        if not isinstance(value, str):
            raise _Fail(f"number.{key}", "must be a string")
        probe[key] = value
    # The number file's own validation judges the overlay's fields, so a profile
    # cannot dictate a value a number file could not hold.
    result = check_number_data(probe, base_dir=Path("."), environ={})
    if result.config is None:
        problem = result.problems[0]
        raise _Fail(f"number.{problem.field}", problem.message)
    config = result.config
    return NumberOverlay(
        sip_domain=config.sip_domain if "sip_domain" in data else None,
        outbound_proxy=config.outbound_proxy,
        auth_username=config.auth_username,
        registers=registers,
    )


def _parse_settings(raw: object) -> Settings:
    if raw is None:
        return Settings()
    data = _mapping(raw, "settings", SETTINGS_FIELDS)
    defaults = Settings()
    realm = defaults.realm
    if "realm" in data:
        realm = _text(data, "realm", "settings.realm")
        if any(ch in realm for ch in '"\\\r\n'):
            raise _Fail("settings.realm", "must not contain quotes, backslashes or line breaks")
    min_expires = _integer(
        data.get("min_expires", defaults.min_expires), "settings.min_expires", 1, 86400
    )
    nonce_expire = _integer(
        data.get("nonce_expire", defaults.nonce_expire), "settings.nonce_expire", 1, 3600
    )
    return Settings(realm=realm, min_expires=min_expires, nonce_expire=nonce_expire)
