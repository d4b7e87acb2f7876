"""Rendering a profile and a number into per-peer config folders for one run.

:func:`render_run` writes, under a run folder, one folder per peer holding the peer's
configuration (Kamailio's ``kamailio.cfg``, or Asterisk's ``*.conf``), the
``hosts`` and ``resolv.conf`` files that keep the peer's look-ups on loopback, and
TLS material when the peer speaks TLS. Folders are mode 0700 and files 0600: they
hold the number's password in plain text (the peers check digest credentials
without a user database). Nothing here talks to Docker; :mod:`harness.peers.containers`
mounts what this module wrote.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jinja2

from harness.errors import InputError
from harness.numbers import NumberConfig, Target, Transport, effective_view
from harness.peers.certs import make_ca
from harness.peers.profiles import PeerSpec, Profile, Quirk, Role, Software, apply_profile

TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
KAMAILIO_ROOT: Final = "/etc/sipharness"
"""Where a Kamailio peer's folder is mounted in its container."""
ASTERISK_ROOT: Final = "/etc/asterisk"
"""Where an Asterisk peer's ``asterisk`` folder is mounted in its container."""

ASTERISK_MODULES: Final = (
    "res_sorcery_config.so",
    "res_sorcery_memory.so",
    "res_sorcery_astdb.so",
    "res_timing_timerfd.so",
    "res_pjproject.so",
    "res_pjsip.so",
    "res_pjsip_pubsub.so",
    "res_pjsip_session.so",
    "res_pjsip_authenticator_digest.so",
    "res_pjsip_outbound_authenticator_digest.so",
    "res_pjsip_endpoint_identifier_ip.so",
    "res_pjsip_endpoint_identifier_user.so",
    "res_pjsip_registrar.so",
    "res_pjsip_nat.so",
    "res_pjsip_sdp_rtp.so",
    "res_rtp_asterisk.so",
    "chan_pjsip.so",
    "pbx_config.so",
    "app_echo.so",
    "res_clioriginate.so",
    "codec_ulaw.so",
    "codec_alaw.so",
    "codec_gsm.so",
    "format_gsm.so",
    "bridge_simple.so",
)
"""Loaded with ``autoload=no``: the pjsip set, echo, G.711 and GSM (the sound files)."""

ASTERISK_FILES: Final = (
    "asterisk.conf",
    "logger.conf",
    "modules.conf",
    "pjsip.conf",
    "extensions.conf",
    "rtp.conf",
)

ASTERISK_QUIET_FILES: Final[Mapping[str, str]] = {
    # Files Asterisk's core reads even with autoload=no; present, so it logs no errors.
    "cdr.conf": "[general]\nenable = no\n",
    "cel.conf": "[general]\nenable = no\n",
    "manager.conf": "[general]\nenabled = no\n",
    "features.conf": "[general]\n",
    "acl.conf": "",
    "udptl.conf": "[general]\n",
    "pjproject.conf": "",
    "stasis.conf": "",
    "ccss.conf": "[general]\n",
    "indications.conf": "[general]\ncountry = us\n\n[us]\ndescription = United States\n"
    "ringcadence = 2000,4000\nring = 440+480/2000,0/4000\nbusy = 480+620/500,0/500\n"
    "congestion = 480+620/250,0/250\ndial = 350+440\n",
}
"""Minimal settings for the core's own config files, written as given."""

_KAMAILIO_TEMPLATE: Final[Mapping[Role, str]] = {
    Role.REGISTRAR: "kamailio-registrar.cfg.j2",
    Role.EDGE_PROXY: "kamailio-edge-proxy.cfg.j2",
    Role.TRUNK: "kamailio-trunk.cfg.j2",
}


@dataclass(frozen=True)
class Mount:
    """A bind mount: host ``source`` at container ``target``."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class RenderedPeer:
    """One peer ready to start: its image name, command and mounts."""

    spec: PeerSpec
    folder: Path
    image: str
    """The harness's image name (``kamailio``, ``asterisk``), see images.IMAGES."""
    command: tuple[str, ...]
    mounts: tuple[Mount, ...]
    tls_ca_file: Path | None = None


@dataclass(frozen=True)
class Credentials:
    """What the peers accept from the customer (``password`` is the real one)."""

    aor_user: str
    digest_username: str
    password: str = dataclasses.field(repr=False)
    realm: str
    checked_by: str


@dataclass(frozen=True)
class RenderedRun:
    """Everything rendered for one run of one profile."""

    profile: Profile
    number: NumberConfig
    """The effective number (profile overlay applied): what the harness should use."""
    folder: Path
    peers: tuple[RenderedPeer, ...]
    credentials: Credentials | None
    ca_file: Path | None
    """The run CA's certificate to trust for TLS peers (None without TLS)."""

    def peer(self, name: str) -> RenderedPeer:
        """The rendered peer called ``name`` (KeyError when there is none)."""
        for peer in self.peers:
            if peer.spec.name == name:
                return peer
        raise KeyError(name)


# --- escaping ----------------------------------------------------------------------------


def kamailio_string(value: object) -> str:
    """``value`` for a double-quoted Kamailio string literal.

    Kamailio unescapes ``\\"`` and ``\\\\`` in such literals; control characters are
    refused. Use the result in an assignment (``$var(x) = "..."``), never directly as a
    function parameter: parameters expand ``$`` as a pseudo-variable.
    """
    text = str(value)
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in text):
        raise InputError("a value for the Kamailio config contains a control character")
    return text.replace("\\", "\\\\").replace('"', '\\"')


def asterisk_value(value: object) -> str:
    """``value`` for an Asterisk ``key = value`` line: ``;`` starts a comment there."""
    text = str(value)
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in text):
        raise InputError("a value for the Asterisk config contains a control character")
    if text != text.strip():
        raise InputError("Asterisk trims values: a credential cannot start or end with a space")
    return text.replace("\\", "\\\\").replace(";", "\\;")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        # Config files, not HTML: escaping is the per-language filters' job.
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["kamailio_string"] = kamailio_string
    env.filters["asterisk_value"] = asterisk_value
    return env


# --- files ----------------------------------------------------------------------------------


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _write_private(path: Path, text: str) -> None:
    # O_EXCL-free but 0600 from creation: the password is never readable by others.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _hosts_file(address: str, hostname: str) -> str:
    # The container shares the host's network and so its host name; Asterisk looks
    # it up at start. Answering from this file keeps the look-up off the network.
    return "\n".join(
        (
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            f"{address}\t{hostname}",
            "",
        )
    )


RESOLV_CONF: Final = "# sip-harness: every look-up stays on loopback\nnameserver 127.0.0.1\n"


# --- contexts ---------------------------------------------------------------------------------


def _uri_for(peer: PeerSpec) -> str:
    suffix = ";transport=tcp" if peer.transport is Transport.TCP else ""
    return f"sip:{peer.address}:{peer.port}{suffix}"


def _listens(peer: PeerSpec) -> list[str]:
    if peer.transport is Transport.TLS:
        # UDP on the same port carries the hops to the other peers.
        return [f"tls:{peer.address}:{peer.port}", f"udp:{peer.address}:{peer.port}"]
    return [f"udp:{peer.address}:{peer.port}", f"tcp:{peer.address}:{peer.port}"]


def _origination(number: NumberConfig) -> dict[str, str]:
    uri = number.origination_uri
    if uri is None:
        raise InputError("the trunk sends inbound calls: the number needs origination_uri")
    target = Target.from_uri(uri)
    if target.transport is Transport.TLS:
        raise InputError("the ip-trunk profile delivers inbound calls over udp or tcp, not tls")
    host = f"[{target.host}]" if ":" in target.host else target.host
    transport = f";transport={target.transport.value}" if target.transport_explicit else ""
    return {
        "request_uri_prefix": "sip:",
        "request_uri_suffix": f"@{host}:{target.port}{transport}",
        "destination": f"sip:{host}:{target.port};transport={target.transport.value}",
    }


def _credentials(profile: Profile, number: NumberConfig) -> Credentials | None:
    if not number.has_credentials:
        return None
    # has_credentials guarantees both.
    assert number.username is not None
    assert number.password is not None
    view = effective_view(number)
    realm = number.sip_domain.host
    checker = profile.authenticator
    if checker is not None and Quirk.REALM in profile.quirks:
        realm = profile.settings.realm
    checked_by = checker.name if checker is not None else profile.entry.name
    return Credentials(
        aor_user=number.username,
        digest_username=view.digest_username or number.username,
        password=number.password,
        realm=realm,
        checked_by=checked_by,
    )


def _kamailio(
    env: jinja2.Environment,
    *,
    profile: Profile,
    peer: PeerSpec,
    number: NumberConfig,
    credentials: Credentials | None,
    folder: Path,
    log_requests: bool,
) -> tuple[tuple[str, ...], Path | None]:
    next_hop = profile.peer(peer.next_hop) if peer.next_hop else None
    context: dict[str, Any] = {
        "profile": profile,
        "peer": peer,
        "listens": _listens(peer),
        "debug": 1,
        "log_requests": log_requests,
        "tls": None,
        "next_hop": next_hop,
        "next_hop_uri": _uri_for(next_hop) if next_hop else None,
        "via_proxy": next(
            (p for p in profile.peers if p.role is Role.EDGE_PROXY and p.next_hop == peer.name),
            None,
        ),
        "auth": None,
        "origination": None,
    }
    ca_file: Path | None = None
    if peer.transport is Transport.TLS:
        tls_dir = _private_dir(folder / "tls")
        ca = make_ca(tls_dir, name=f"sip-harness {profile.name} run CA")
        server = ca.issue("server", peer.address)
        # The CA's key is not needed once the certificate is issued.
        ca.key_file.unlink()
        ca_file = ca.cert_file
        tls_cfg = "\n".join(
            (
                "[server:default]",
                "method = TLSv1.2+",
                "verify_certificate = no",
                "require_certificate = no",
                f"private_key = {KAMAILIO_ROOT}/tls/{server.key_file.name}",
                f"certificate = {KAMAILIO_ROOT}/tls/{server.cert_file.name}",
                "",
                "[client:default]",
                "method = TLSv1.2+",
                "verify_certificate = no",
                "require_certificate = no",
                "",
            )
        )
        _write_private(folder / "tls.cfg", tls_cfg)
        context["tls"] = {"config": f"{KAMAILIO_ROOT}/tls.cfg"}
    if peer.role is Role.REGISTRAR:
        if credentials is None:
            raise InputError(
                f"profile {profile.name}: the registrar needs a number with credentials"
            )
        context["auth"] = {
            "realm": credentials.realm,
            "username": credentials.digest_username,
            "aor_user": credentials.aor_user,
            "password": credentials.password,
            "algorithm": "SHA-256" if Quirk.SHA256 in profile.quirks else None,
            "nonce_expire": (
                profile.settings.nonce_expire if Quirk.STALE_NONCE in profile.quirks else 300
            ),
            "min_expires": (
                profile.settings.min_expires if Quirk.MIN_EXPIRES in profile.quirks else None
            ),
            "strict_uri": Quirk.STRICT_DIGEST_URI in profile.quirks,
        }
    if peer.role is Role.TRUNK:
        context["origination"] = _origination(number)
    text = env.get_template(_KAMAILIO_TEMPLATE[peer.role]).render(context)
    _write_private(folder / "kamailio.cfg", text)
    command = ("kamailio", "-DD", "-E", "-f", f"{KAMAILIO_ROOT}/kamailio.cfg")
    return command, ca_file


def _asterisk(
    env: jinja2.Environment,
    *,
    profile: Profile,
    peer: PeerSpec,
    number: NumberConfig,
    credentials: Credentials | None,
    folder: Path,
    log_requests: bool,
    index: int,
) -> tuple[str, ...]:
    conf = _private_dir(folder / "asterisk")
    extension = None
    if peer.role is Role.PBX:
        if credentials is None:
            raise InputError(f"profile {profile.name}: the PBX needs a number with credentials")
        if not credentials.aor_user.replace("-", "").replace("_", "").isalnum():
            raise InputError(
                f"profile {profile.name}: username {credentials.aor_user!r} cannot name an "
                "Asterisk extension (letters, digits, '-' and '_' only)"
            )
        alias = credentials.digest_username
        extension = {
            "name": credentials.aor_user,
            # Asterisk identifies a request by its Authorization username only through an
            # endpoint of that name: without it, a call whose From is the phone number
            # (not the extension) can never authenticate.
            "auth_alias": (
                alias
                if alias != credentials.aor_user
                and alias.replace("-", "").replace("_", "").isalnum()
                else None
            ),
            "auth_username": credentials.digest_username,
            "password": credentials.password,
            "realm": credentials.realm,
        }
    context: dict[str, Any] = {
        "profile": profile,
        "peer": peer,
        "log_requests": log_requests,
        "modules": ASTERISK_MODULES,
        "next_hop": profile.peer(peer.next_hop) if peer.next_hop else None,
        "extension": extension,
        # Distinct ranges per peer keep two peers' RTP apart even on one address.
        "rtp_start": 20000 + index * 1000,
        "rtp_end": 20000 + index * 1000 + 998,
    }
    for name in ASTERISK_FILES:
        text = env.get_template(f"{name}.j2").render(context)
        _write_private(conf / name, text)
    for name, text in ASTERISK_QUIET_FILES.items():
        _write_private(conf / name, text)
    # -f: stay in the foreground (the container's process); -n: no colour codes in logs.
    return ("asterisk", "-f", "-n", "-C", f"{ASTERISK_ROOT}/asterisk.conf")


def render_run(
    profile: Profile,
    number: NumberConfig,
    folder: Path,
    *,
    quirks: Sequence[Quirk | str] | None = None,
    allowed_sources: Sequence[str] | None = None,
    base: int = 0,
    port_offset: int = 0,
    log_requests: bool = False,
    hostname: str | None = None,
) -> RenderedRun:
    """Render every peer of ``profile`` for ``number`` into ``folder`` (made 0700).

    ``quirks`` replaces the profile's quirks; ``allowed_sources`` the trunk's allowed
    source addresses; ``base``/``port_offset`` move the profile (see
    :meth:`Profile.placed`); ``log_requests`` turns on one log line per request
    (halves Kamailio's capacity; never logs the password). ``hostname`` is the name
    the peers' ``hosts`` file maps to their address (default: this machine's name,
    which a host-network container shares).

    Raises :class:`InputError` when the number does not fit the profile, and
    :class:`SetupError` when TLS material cannot be made.
    """
    if quirks is not None:
        profile = profile.with_quirks(quirks)
    if allowed_sources is not None:
        profile = profile.with_allowed_sources(allowed_sources)
    profile = profile.placed(base=base, port_offset=port_offset)
    effective = apply_profile(number, profile)
    credentials = _credentials(profile, effective)
    env = _environment()
    root = _private_dir(folder)
    host = hostname or socket.gethostname()
    rendered: list[RenderedPeer] = []
    ca_file: Path | None = None
    for index, peer in enumerate(profile.peers):
        peer_dir = _private_dir(root / peer.name)
        _write_private(peer_dir / "hosts", _hosts_file(peer.address, host))
        _write_private(peer_dir / "resolv.conf", RESOLV_CONF)
        mounts = [
            Mount(peer_dir / "hosts", "/etc/hosts"),
            Mount(peer_dir / "resolv.conf", "/etc/resolv.conf"),
        ]
        peer_ca: Path | None = None
        if peer.software is Software.KAMAILIO:
            command, peer_ca = _kamailio(
                env, profile=profile, peer=peer, number=effective, credentials=credentials,
                folder=peer_dir, log_requests=log_requests,
            )  # fmt: skip
            mounts.append(Mount(peer_dir, KAMAILIO_ROOT))
            image = "kamailio"
        else:
            command = _asterisk(
                env, profile=profile, peer=peer, number=effective, credentials=credentials,
                folder=peer_dir, log_requests=log_requests, index=index,
            )  # fmt: skip
            mounts.append(Mount(peer_dir / "asterisk", ASTERISK_ROOT))
            image = "asterisk"
        ca_file = ca_file or peer_ca
        rendered.append(
            RenderedPeer(
                spec=peer,
                folder=peer_dir,
                image=image,
                command=command,
                mounts=tuple(mounts),
                tls_ca_file=peer_ca,
            )
        )
    return RenderedRun(
        profile=profile,
        number=effective,
        folder=root,
        peers=tuple(rendered),
        credentials=credentials,
        ca_file=ca_file,
    )
