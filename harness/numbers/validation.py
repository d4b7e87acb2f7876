"""The rules a number file must follow, applied to an already-loaded mapping.

:func:`validate_mapping` collects every problem (it never stops at the first)
and returns either a :class:`~harness.numbers.model.NumberConfig` or the list of
:class:`~harness.numbers.model.Problem`.  Each problem names its field and says
what is wrong and what is expected.  No message ever contains a password: the
values of ``password`` are never echoed, not even when they have the wrong type.

This module does no I/O: reading ``password_env`` and ``password_file`` is the
job of the ``read_password`` callable the caller passes (see
:mod:`harness.numbers.loader`), which raises :class:`PasswordSourceError`.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from harness.numbers.model import (
    KNOWN_FIELDS,
    PASSWORD_MASK,
    PASSWORD_SOURCE_FIELDS,
    REQUIRED_FIELDS,
    HostPort,
    NumberConfig,
    PasswordField,
    PasswordSource,
    Problem,
    Transport,
    ValidationResult,
)
from harness.sip.errors import SipError
from harness.sip.uri import SipUri, parse_sip_uri


class PasswordSourceError(Exception):
    """A password source cannot give a password; ``str(err)`` is the problem's message.

    The message may name the variable or the file, never the password.
    """


#: Reads the password from a ``password_env`` or ``password_file`` source.
PasswordReader = Callable[[PasswordSource], str]


@dataclass(frozen=True)
class YamlContext:
    """What the loader saw in the YAML text beyond the constructed values.

    ``raw_scalars`` maps a top-level key to its value as written (before YAML
    turned ``+14155550123`` into an integer), for hints; ``duplicates`` lists
    keys given more than once with the line numbers (1-based) where they appear.
    """

    raw_scalars: Mapping[str, str] = field(default_factory=dict)
    duplicates: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


E164_EXAMPLE: Final = "+14155550123"
_E164: Final = re.compile(r"\+[1-9][0-9]{0,14}")
_E164_EXPECTED: Final = f"expected + then 1-15 digits, first digit 1-9 (e.g. {E164_EXAMPLE})"
_NUMBER_PUNCTUATION: Final = re.compile(r"[\s().\-/]")
_HOSTPORT_EXPECTED: Final = "expected host[:port] (e.g. sip.example.com or 203.0.113.10:5060)"
_URI_EXPECTED: Final = (
    "expected sip:host[:port][;transport=udp|tcp|tls], sips:host[:port] or host[:port]"
    " (e.g. sip:proxy.example.com:5065;transport=tcp)"
)
# Host labels: RFC 1035 letters, digits and "-"; "_" too, as the SIP core accepts it
# (internal names with "_" exist and resolve).
_DOMAIN_LABEL: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_IPV4_LIKE: Final = re.compile(r"[0-9.]+")
_URL_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_URI_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# RFC 3261 §25.1 user: unreserved / escaped / user-unreserved.  ";" and "?" are
# legal there too, but in a typed username they are always a mistake (they read
# as URI parameters or headers), so they are refused.
_USER_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,/"
)
_USER_CHARS_TEXT: Final = "letters, digits and - _ . ! ~ * ' ( ) & = + $ , /"
_KNOWN_TRANSPORTS: Final = frozenset(t.value for t in Transport)
# Names people type for the known fields; difflib alone misses most of them.
_SYNONYMS: Final[Mapping[str, str]] = {
    "number": "phone_number",
    "phone": "phone_number",
    "did": "phone_number",
    "e164": "phone_number",
    "cli": "phone_number",
    "caller_id": "phone_number",
    "domain": "sip_domain",
    "host": "sip_domain",
    "server": "sip_domain",
    "registrar": "sip_domain",
    "realm": "sip_domain",
    "user": "username",
    "login": "username",
    "pass": "password",
    "passwd": "password",
    "secret": "password",
    "auth_user": "auth_username",
    "auth_id": "auth_username",
    "authorization_id": "auth_username",
    "authorization_user": "auth_username",
    "authname": "auth_username",
    "proxy": "outbound_proxy",
    "outboundproxy": "outbound_proxy",
    "outbound": "outbound_proxy",
    "origination": "origination_uri",
    "inbound_uri": "origination_uri",
    "termination_uri": "sip_domain",
}
_MAX_SHOWN: Final = 60
# Fields where an unquoted scalar read as a number or boolean was probably meant
# as text, so "put it in quotes" is the fix.
_QUOTABLE_FIELDS: Final = frozenset(
    {"phone_number", "username", "auth_username", "password", "name", "description"}
)


def validate_mapping(
    data: Mapping[Any, object],
    *,
    read_password: PasswordReader,
    context: YamlContext | None = None,
) -> ValidationResult:
    """Check a number file's top-level mapping; collect every problem.

    ``read_password`` is called at most once, only when exactly one of
    ``password_env`` / ``password_file`` is given with a well-formed value.
    Problems come in a stable order: duplicate keys, missing required fields,
    each field's own problems (the design's order, password sources last),
    unknown fields in file order, then the rules between fields.
    """
    return _Validator(data, read_password, context or YamlContext()).run()


class _Validator:
    def __init__(
        self, data: Mapping[Any, object], read_password: PasswordReader, context: YamlContext
    ) -> None:
        self.data = data
        self.read_password = read_password
        self.context = context
        self.problems: list[Problem] = []

    def problem(self, field_name: str, message: str) -> None:
        self.problems.append(Problem(field_name, message))

    def run(self) -> ValidationResult:
        for key, lines in self.context.duplicates.items():
            line_list = ", ".join(str(line) for line in lines)
            self.problem(key, f"given {len(lines)} times (lines {line_list}): keep one")

        for required in REQUIRED_FIELDS:
            if required not in self.data:
                self.problem(required, f"missing: {_EXPECTED_BY_FIELD[required]}")

        phone_number = self.phone_number()
        sip_domain = self.sip_domain()
        username = self.user_token("username", allow_at=False)
        auth_username = self.user_token("auth_username", allow_at=True)
        outbound_proxy = self.sip_uri("outbound_proxy", allow_user=False)
        origination_uri = self.sip_uri("origination_uri", allow_user=True)
        name = self.text("name")
        description = self.text("description")
        password, source = self.password()
        self.unknown_fields()
        self.cross_field_rules()

        if self.problems or phone_number is None or sip_domain is None:
            return ValidationResult(config=None, problems=tuple(self.problems))
        config = NumberConfig(
            phone_number=phone_number,
            sip_domain=sip_domain,
            username=username,
            password=password,
            auth_username=auth_username,
            outbound_proxy=outbound_proxy,
            origination_uri=origination_uri,
            password_source=source,
            name=name,
            description=description,
        )
        return ValidationResult(config=config)

    # -- field extraction -------------------------------------------------

    def string(self, field_name: str, *, secret: bool = False) -> str | None:
        """The field's value as a stripped, non-empty string, or None (problem noted).

        Absent fields give None without a problem.  A secret's value is never
        echoed and never stripped.
        """
        if field_name not in self.data:
            return None
        value = self.data[field_name]
        expected = _EXPECTED_BY_FIELD[field_name]
        if value is None:
            self.problem(field_name, f"is empty: {expected}")
            return None
        if not isinstance(value, str):
            self.problem(field_name, self.wrong_type(field_name, value, secret=secret))
            return None
        text = value if secret else value.strip()
        if not text:
            self.problem(field_name, f"is empty: {expected}")
            return None
        return text

    def wrong_type(self, field_name: str, value: object, *, secret: bool) -> str:
        kind = _type_name(value)
        if secret:
            return f"expected a string, got {kind}: put the value in quotes"
        raw = self.context.raw_scalars.get(field_name)
        scalar = isinstance(value, bool | int | float | datetime.date)
        if scalar and field_name not in _QUOTABLE_FIELDS:
            # Quoting would not make a number a valid URI or host: say what is expected.
            return f"expected a string, got {kind}: {_EXPECTED_BY_FIELD[field_name]}"
        if scalar and raw is not None:
            hint = after = ""
            if field_name == "phone_number":
                if raw.startswith("+"):
                    hint = ' (YAML drops the "+" of an unquoted number)'
                else:
                    after = f"; {_E164_EXPECTED}"
            quoted = json.dumps(raw, ensure_ascii=False)
            return (
                f"expected a string, got {kind}{hint}: "
                f"put the value in quotes: {field_name}: {quoted}{after}"
            )
        if isinstance(value, dict):
            return f"expected a string, got {kind}: check the indentation of the lines below it"
        return f"expected a string, got {kind}"

    # -- the fields ---------------------------------------------------------

    def phone_number(self) -> str | None:
        text = self.string("phone_number")
        if text is None:
            return None
        if _E164.fullmatch(text):
            return text
        message = f"{_show(text)} is not E.164: {_E164_EXPECTED}"
        hint = _e164_hint(text)
        if hint:
            message = f"{message}; {hint}"
        self.problem("phone_number", message)
        return None

    def sip_domain(self) -> HostPort | None:
        text = self.string("sip_domain")
        if text is None:
            return None
        lowered = text.lower()
        password_error = _userinfo_password_problem(text)
        if password_error is not None:
            self.problem("sip_domain", f"{password_error}; {_HOSTPORT_EXPECTED}")
            return None
        if _URL_SCHEME.match(text):
            self.problem("sip_domain", f"{_show(text)} is a URL: {_HOSTPORT_EXPECTED}")
            return None
        for scheme in ("sip:", "sips:", "tel:"):
            if lowered.startswith(scheme):
                rest = text[len(scheme) :]
                self.problem(
                    "sip_domain",
                    f'{_show(text)} has a scheme: expected host[:port] without "{scheme}"'
                    f" (e.g. {rest or 'sip.example.com'})",
                )
                return None
        if "@" in text:
            user, _, host = text.rpartition("@")
            self.problem(
                "sip_domain",
                f'{_show(text)} has a user part ("{user}@"): expected host[:port] only'
                f" (e.g. {host or 'sip.example.com'}); the user goes in username",
            )
            return None
        if ";" in text:
            params = text[text.index(";") :]
            self.problem(
                "sip_domain",
                f"{_show(text)} has URI parameters ({_show(params)}): {_HOSTPORT_EXPECTED};"
                " a transport belongs in outbound_proxy (e.g. sip:proxy.example.com;transport=tcp)",
            )
            return None
        hostport, error = parse_hostport(text)
        if error is not None:
            self.problem("sip_domain", f"{_show(text)}: {error}")
            return None
        return hostport

    def user_token(self, field_name: str, *, allow_at: bool) -> str | None:
        text = self.string(field_name)
        if text is None:
            return None
        error = _user_token_problem(text, allow_at=allow_at)
        if error is not None:
            self.problem(field_name, f"{_show(text)} {error}")
            return None
        return text

    def text(self, field_name: str) -> str | None:
        return self.string(field_name)

    def sip_uri(self, field_name: str, *, allow_user: bool) -> SipUri | None:
        text = self.string(field_name)
        if text is None:
            return None
        uri, errors = check_sip_uri(text, allow_user=allow_user)
        for error in errors:
            self.problem(field_name, error)
        return uri

    def unknown_fields(self) -> None:
        for key in self.data:
            if isinstance(key, str) and key in KNOWN_FIELDS:
                continue
            name = _key_name(key)
            suggestion = _suggest(key) if isinstance(key, str) else None
            if suggestion is not None:
                self.problem(name, f"unknown field: did you mean {suggestion}?")
            else:
                known = ", ".join(KNOWN_FIELDS)
                self.problem(name, f"unknown field: expected one of {known}")

    def password(self) -> tuple[str | None, PasswordSource | None]:
        given = [name for name in PASSWORD_SOURCE_FIELDS if name in self.data]
        if not given:
            return None, None
        first = given[0]
        for extra in given[1:]:
            self.problem(
                extra,
                f"{first} and {extra} both give the password: keep exactly one of"
                " password, password_env, password_file",
            )
        if len(given) > 1:
            return None, None
        if first == "password":
            value = self.string("password", secret=True)
            if value is None:
                return None, None
            return value, PasswordSource("password")
        reference = self.string(first)
        if reference is None:
            return None, None
        source_field: PasswordField = "password_env" if first == "password_env" else "password_file"
        if source_field == "password_env" and not _ENV_NAME.fullmatch(reference):
            # The value is not echoed: a password typed here by mistake must not leak.
            self.problem(
                "password_env",
                "is not an environment variable name: expected the variable's name"
                ' (letters, digits and "_", not starting with a digit, no "$"),'
                " e.g. SIP_PASSWORD",
            )
            return None, None
        source = PasswordSource(source_field, reference)
        try:
            password = self.read_password(source)
        except PasswordSourceError as err:
            self.problem(source_field, str(err))
            return None, None
        return password, source

    def cross_field_rules(self) -> None:
        sources = [name for name in PASSWORD_SOURCE_FIELDS if name in self.data]
        has_username = "username" in self.data
        if sources and not has_username:
            self.problem(
                sources[0],
                "a password needs a username: add username (the From/To user when"
                " registering), or remove the password for an IP-authenticated trunk",
            )
        if "auth_username" in self.data and not has_username:
            self.problem(
                "auth_username",
                "an auth_username needs a username: add username (the From/To user);"
                " auth_username is only the digest username when it differs",
            )
        if has_username and not sources:
            self.problem(
                "username",
                "a username needs a password: add password, password_env or password_file,"
                " or remove username for an IP-authenticated trunk",
            )


_EXPECTED_BY_FIELD: Final[Mapping[str, str]] = {
    "phone_number": f'expected the number in E.164, in quotes (e.g. "{E164_EXAMPLE}")',
    "sip_domain": _HOSTPORT_EXPECTED,
    "username": "expected the SIP username (e.g. 15550100001), or remove the field",
    "password": "expected the password, or remove the field",
    "auth_username": "expected the digest username, or remove the field",
    "outbound_proxy": f"{_URI_EXPECTED}, or remove the field",
    "origination_uri": "expected sip:host[:port] (e.g. sip:203.0.113.5:5060), or remove the field",
    "password_env": "expected the name of an environment variable (e.g. SIP_PASSWORD)",
    "password_file": "expected a path to a file holding the password",
    "name": "expected free text, or remove the field",
    "description": "expected free text, or remove the field",
}


# -- host, port and URI rules (shared by sip_domain, outbound_proxy, origination_uri) --


def parse_hostport(text: str) -> tuple[HostPort | None, str | None]:
    """Parse ``host[:port]`` (FQDN, IPv4 or ``[IPv6]``); return the value or why not."""
    if not text:
        return None, f"has no host: {_HOSTPORT_EXPECTED}"
    port_text: str | None = None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            return None, 'has "[" without "]": expected an IPv6 address as [2001:db8::1]'
        host = text[1:close]
        rest = text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None, f"has {_show(rest)} after the IPv6 address: {_HOSTPORT_EXPECTED}"
            port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None, f"{_show(host)} in brackets is not an IPv6 address"
    else:
        if text.count(":") > 1:
            if _is_ipv6(text):
                return None, f"IPv6 addresses go in brackets: expected [{text}]"
            return None, f'has more than one ":": {_HOSTPORT_EXPECTED}'
        host, colon, port_after = text.partition(":")
        if colon:
            port_text = port_after
        host_error = host_problem(host)
        if host_error is not None:
            return None, host_error
    port: int | None = None
    if port_text is not None:
        port, port_error = parse_port(port_text)
        if port_error is not None:
            return None, port_error
    return HostPort(host, port), None


def host_problem(host: str) -> str | None:
    """Why ``host`` (no brackets, not IPv6) is not an FQDN or IPv4 address, or None."""
    if not host:
        return f"has no host: {_HOSTPORT_EXPECTED}"
    if _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"host {_show(host)} is not a valid IPv4 address"
        return None
    bad = next((ch for ch in host if not (ch.isascii() and (ch.isalnum() or ch in ".-_"))), None)
    if bad is not None:
        return (
            f"host {_show(host)} contains {_describe_char(bad)}:"
            ' expected a domain name (letters, digits, "-" and ".") or an IP address'
        )
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return (
            f"host {_show(host)} is not a valid domain name: expected labels of letters,"
            ' digits and "-" (not at either end), separated by "."'
        )
    if not labels[-1][0].isalpha():
        return (
            f"host {_show(host)} is not a valid domain name or IPv4 address:"
            " the last label must start with a letter"
        )
    return None


def parse_port(text: str) -> tuple[int | None, str | None]:
    """Parse a port; return it or why it is not one (1-65535)."""
    if not text:
        return None, 'port is empty (nothing after ":"): expected 1-65535'
    if not (text.isascii() and text.isdigit()):
        return None, f"port {_show(text)} is not a number: expected 1-65535"
    port = int(text)
    if not 1 <= port <= 65535:
        return None, f"port {port} is out of range: expected 1-65535"
    return port, None


def check_sip_uri(text: str, *, allow_user: bool) -> tuple[SipUri | None, list[str]]:
    """Parse a typed ``sip:``/``sips:`` URI or a bare ``host[:port]`` (``sip:`` is implied).

    Returns the URI (scheme always present) and no messages, or None and every
    message naming what is wrong.  Accepted: a host (FQDN, IPv4, ``[IPv6]``), a
    port 1-65535, a ``transport`` of udp, tcp or tls (any case; not udp with
    ``sips:``), other URI parameters except ``maddr``; no URI headers; a user
    part only when ``allow_user``; never a password in the URI.
    """
    password_error = _userinfo_password_problem(text)
    if password_error is not None:
        return None, [password_error]
    if any(ch.isspace() for ch in text):
        return None, [f"{_show(text)} contains a space: {_URI_EXPECTED}"]
    if _URL_SCHEME.match(text):
        return None, [f"{_show(text)} is a URL, not a SIP URI: {_URI_EXPECTED}"]
    scheme_match = _URI_SCHEME.match(text)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if scheme == "tel":
        return None, [f"{_show(text)} is a tel: URI, it has no host: {_URI_EXPECTED}"]
    if scheme in ("sip", "sips"):
        uri_text = text
        rest = text[len(scheme) + 1 :]
    else:
        # "fqdn:5065" and "[::1]:5070" are common shorthands for sip: URIs.
        scheme = "sip"
        uri_text = f"sip:{text}"
        rest = text

    # Checked piece by piece first, so that every problem gets its own message.
    parts = _split_uri_rest(rest)
    errors: list[str] = []
    if parts.user is not None and not allow_user:
        errors.append(
            f'{_show(text)} has a user part ("{parts.user}@"): a proxy address is'
            f" {_URI_EXPECTED.removeprefix('expected ')}"
        )
    _, hostport_error = parse_hostport(parts.hostport)
    if hostport_error is not None:
        errors.append(f"{_show(text)}: {hostport_error}")
    errors.extend(_param_problems(text, scheme, parts.params))
    if parts.headers is not None:
        errors.append(f'{_show(text)} has URI headers ("?..."): {_URI_EXPECTED}')
    if errors:
        return None, errors

    try:
        uri = parse_sip_uri(uri_text)
    except SipError as err:
        return None, [f"{_show(text)} is not a valid SIP URI ({err}): {_URI_EXPECTED}"]
    return uri, []


@dataclass(frozen=True)
class _UriParts:
    user: str | None
    hostport: str
    params: tuple[tuple[str, str | None], ...]
    headers: str | None


def _split_uri_rest(rest: str) -> _UriParts:
    """Split what follows the scheme: ``user@host:port;params?headers``."""
    before_headers, question, headers = rest.partition("?")
    address, _, params_text = before_headers.partition(";")
    user: str | None = None
    if "@" in address:
        user, _, address = address.rpartition("@")
    params: list[tuple[str, str | None]] = []
    if params_text:
        for item in params_text.split(";"):
            name, equals, value = item.partition("=")
            params.append((name, value if equals else None))
    return _UriParts(user, address, tuple(params), headers if question else None)


def _param_problems(
    text: str, scheme: str, params: tuple[tuple[str, str | None], ...]
) -> list[str]:
    """Problems with the ``transport`` and ``maddr`` parameters of a typed URI."""
    problems: list[str] = []
    for name, value in params:
        lowered = name.lower()
        if lowered == "maddr":
            problems.append(
                f"{_show(text)} has a maddr parameter, which is not supported:"
                " write that address as the host instead"
            )
        if lowered != "transport":
            continue
        if not value:
            problems.append("transport parameter is empty: expected udp, tcp or tls")
        elif value.lower() not in _KNOWN_TRANSPORTS:
            problems.append(f"unknown transport {_show(value)}: expected udp, tcp or tls")
        elif scheme == "sips" and value.lower() == Transport.UDP:
            problems.append(
                f"{_show(text)}: sips: needs TLS, but transport=udp was given:"
                " use sips: with transport=tcp or none, or sip: with transport=udp"
            )
    return problems


# -- small helpers ----------------------------------------------------------------


def _userinfo_password_problem(text: str) -> str | None:
    """A message when ``text`` holds ``user:password@`` (the password masked), else None.

    Checked before anything else so that no other message echoes the password.
    """
    at = text.find("@")
    if at < 0:
        return None
    userinfo = text[:at]
    if ";" in userinfo or "?" in userinfo:
        return None
    scheme_length = 0
    for scheme in ("sip:", "sips:"):
        if userinfo.lower().startswith(scheme):
            scheme_length = len(scheme)
            break
    user, colon, _ = userinfo[scheme_length:].partition(":")
    if not colon:
        return None
    masked = f"{text[: scheme_length + len(user)]}:{PASSWORD_MASK}{text[at:]}"
    return (
        f"{_show(masked)} holds a password in the URI: remove it;"
        " the password goes in password, password_env or password_file"
    )


def _user_token_problem(text: str, *, allow_at: bool) -> str | None:
    """Why ``text`` is not a usable SIP user (or, ``allow_at``, digest username), or None.

    A digest username is a quoted-string (RFC 3261 §25.1) and may hold "@"
    (some carriers use an e-mail-like "Authorization ID"); a SIP user part may
    not, and "bob@example.com" there is nearly always the whole AOR pasted in.
    """
    index = 0
    while index < len(text):
        ch = text[index]
        if ch.isspace():
            return f"contains {_describe_char(ch)}: expected no spaces"
        if allow_at:
            if not ch.isascii() or not ch.isprintable() or ch in '"\\':
                return (
                    f"contains {_describe_char(ch)}: expected printable ASCII"
                    ' without spaces, " or \\'
                )
        elif ch == "@":
            user = text[:index]
            return (
                f'contains "@": expected only the user part (e.g. {_show(user or "bob")});'
                " the domain goes in sip_domain"
            )
        elif ch == "%":
            escape = text[index + 1 : index + 3]
            if len(escape) != 2 or not all(c in "0123456789abcdefABCDEF" for c in escape):
                return 'contains "%" not followed by two hex digits: expected %XX escapes only'
            index += 3
            continue
        elif ch not in _USER_CHARS:
            return f"contains {_describe_char(ch)}: expected {_USER_CHARS_TEXT}"
        index += 1
    return None


def _e164_hint(text: str) -> str | None:
    """A specific fix for a common way of getting E.164 wrong, or None."""
    compact = _NUMBER_PUNCTUATION.sub("", text)
    if compact != text and _E164.fullmatch(compact):
        return f"remove the spaces and punctuation: {compact}"
    lowered = compact.lower()
    for prefix in ("tel:", "sip:", "sips:"):
        if lowered.startswith(prefix):
            return "write only the number, without a URI scheme or domain"
    if compact.startswith("00") and compact[2:].isdigit() and compact[2:3] != "0":
        return f'replace the international prefix 00 with "+": +{compact[2:]}'
    if compact.startswith("+0"):
        return "the country code cannot start with 0"
    digits = compact.removeprefix("+")
    if digits.isascii() and digits.isdigit():
        if len(digits) > 15:
            return f"it has {len(digits)} digits, at most 15"
        if not compact.startswith("+"):
            return 'add "+" and the country code'
    return None


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _suggest(key: str) -> str | None:
    """The known field a mistyped key most likely means, or None."""
    normalised = key.strip().lower().replace("-", "_").replace(" ", "_")
    if normalised in KNOWN_FIELDS:
        return normalised
    if normalised in _SYNONYMS:
        return _SYNONYMS[normalised]
    matches = difflib.get_close_matches(normalised, KNOWN_FIELDS, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _key_name(key: object) -> str:
    """A key as a field name on one line (odd keys are JSON-quoted)."""
    if isinstance(key, str) and key and key.isprintable() and not any(c.isspace() for c in key):
        return key
    if isinstance(key, str):
        return json.dumps(key, ensure_ascii=False)
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return json.dumps(str(key), ensure_ascii=False)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean (true/false)"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def _describe_char(ch: str) -> str:
    if ch == " ":
        return "a space"
    if ch == "\t":
        return "a tab"
    if ch.isprintable():
        return json.dumps(ch, ensure_ascii=False)
    return f"the character U+{ord(ch):04X}"


def _show(text: str) -> str:
    """A value quoted for a one-line message: JSON escapes, long values shortened."""
    if len(text) > _MAX_SHOWN:
        text = f"{text[:_MAX_SHOWN]}..."
    return json.dumps(text, ensure_ascii=False)
