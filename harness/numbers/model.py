"""The number-file model: a validated custom number and the problems found in one.

A :class:`NumberConfig` only exists for a number file that passed validation
(:func:`harness.numbers.loader.check_number_file`); its fields are the fields of
the number file, parsed (``sip_domain`` is a :class:`HostPort`, the URIs are
:class:`~harness.sip.uri.SipUri`).  The password is a plain string that never
appears in ``repr()`` nor in :meth:`NumberConfig.to_public_dict`; code that needs
it (digest authentication) reads ``config.password``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

from harness.sip.uri import SipUri

#: The fields of a number file, in the order of the design's table.
NUMBER_FIELDS: Final = (
    "phone_number",
    "sip_domain",
    "username",
    "password",
    "auth_username",
    "outbound_proxy",
    "origination_uri",
)
#: Where the password may come from instead of ``password``: exactly one source at most.
PASSWORD_SOURCE_FIELDS: Final = ("password", "password_env", "password_file")
#: Free-text fields, shown in reports.
TEXT_FIELDS: Final = ("name", "description")
#: Every key a number file may hold; anything else is an "unknown field" problem.
KNOWN_FIELDS: Final = (*NUMBER_FIELDS, "password_env", "password_file", *TEXT_FIELDS)
#: Fields without which a number file is invalid.
REQUIRED_FIELDS: Final = ("phone_number", "sip_domain")

PasswordField = Literal["password", "password_env", "password_file"]

#: What a masked password looks like in any output (its length is not revealed).
PASSWORD_MASK: Final = "********"


class Transport(StrEnum):
    """A SIP transport; the value is the ``transport=`` parameter spelling."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"

    @property
    def via_name(self) -> str:
        """The spelling used in a Via header (``SIP/2.0/UDP``)."""
        return self.value.upper()

    @property
    def default_port(self) -> int:
        """RFC 3261 §19.1.2: 5061 for TLS, 5060 otherwise."""
        return 5061 if self is Transport.TLS else 5060


@dataclass(frozen=True)
class HostPort:
    """``host[:port]``: an FQDN, an IPv4 address or an IPv6 address.

    ``host`` holds an IPv6 address without brackets; ``str()`` adds them back.
    ``port`` is None when none was written.
    """

    host: str
    port: int | None = None

    @property
    def is_ip(self) -> bool:
        """True when ``host`` is a numeric address (no DNS involved)."""
        return is_ip_address(self.host)

    @property
    def host_text(self) -> str:
        """The host as written in a URI: IPv6 in brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        if self.port is None:
            return self.host_text
        return f"{self.host_text}:{self.port}"


def is_ip_address(host: str) -> bool:
    """True when ``host`` (IPv6 without brackets) is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PasswordSource:
    """Where a number's password comes from.

    ``field`` is the number-file key that gave it; ``reference`` is the
    environment variable's name (``password_env``), the file path as written
    (``password_file``) or None (``password``, inline).  A source is public
    information: it may be printed, the password itself never.
    """

    field: PasswordField
    reference: str | None = None

    def describe(self) -> str:
        """A short human description, e.g. ``from password_env SIP_PASSWORD``."""
        if self.reference is None:
            return f"from {self.field}"
        return f"from {self.field} {self.reference}"


@dataclass(frozen=True)
class NumberConfig:
    """One validated custom number.

    Invariants (guaranteed by validation): ``phone_number`` is E.164;
    ``username`` and ``password`` are both set or both None; ``auth_username``
    is None when ``username`` is; ``password_source`` is set exactly when
    ``password`` is.  ``outbound_proxy`` has no user part and a transport of
    udp, tcp or tls (or none).
    """

    phone_number: str
    sip_domain: HostPort
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_username: str | None = None
    outbound_proxy: SipUri | None = None
    origination_uri: SipUri | None = None
    password_source: PasswordSource | None = None
    name: str | None = None
    description: str | None = None

    @property
    def has_credentials(self) -> bool:
        """True when the number has a username and a password (it registers)."""
        return self.username is not None and self.password is not None

    def redacted(self) -> NumberConfig:
        """A copy without the password (``password_source`` still says where it was)."""
        return NumberConfig(
            phone_number=self.phone_number,
            sip_domain=self.sip_domain,
            username=self.username,
            password=None,
            auth_username=self.auth_username,
            outbound_proxy=self.outbound_proxy,
            origination_uri=self.origination_uri,
            password_source=self.password_source,
            name=self.name,
            description=self.description,
        )

    def to_public_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values; the password is masked, never included.

        ``password`` is :data:`PASSWORD_MASK` when set (None otherwise) and
        ``password_source`` says where it came from (``{"field", "reference"}``).
        URIs are given in their normalised form (``fqdn:5065`` reads
        ``sip:fqdn:5065``).
        """
        source = self.password_source
        return {
            "name": self.name,
            "description": self.description,
            "phone_number": self.phone_number,
            "sip_domain": str(self.sip_domain),
            "username": self.username,
            "password": PASSWORD_MASK if self.password is not None else None,
            "password_source": (
                None if source is None else {"field": source.field, "reference": source.reference}
            ),
            "auth_username": self.auth_username,
            "outbound_proxy": None if self.outbound_proxy is None else str(self.outbound_proxy),
            "origination_uri": None if self.origination_uri is None else str(self.origination_uri),
        }


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a number file: the field it is about and what to do.

    ``str(problem)`` is the line the CLI prints: ``field: message``.  Messages
    never contain the password.
    """

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one number file.

    Exactly one of these holds: ``config`` is set and ``problems`` is empty, or
    ``config`` is None and ``problems`` lists every problem found.
    """

    config: NumberConfig | None
    problems: tuple[Problem, ...] = ()

    @property
    def valid(self) -> bool:
        return self.config is not None and not self.problems
