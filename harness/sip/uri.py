"""SIP, SIPS and tel URIs; name-addr / addr-spec; Via.

Types are frozen dataclasses; ``str(x)`` serialises them back, and parsing that
string again gives an equal object.  Parsing functions raise
:class:`~harness.sip.errors.RemoteProtocolError` on bad input (a URI typed by a user
is validated by catching it and naming the field).

Parameters keep their order and their original case; a parameter without a
value (``;lr``) has the value ``None``.  Look-ups by name are case-insensitive.

Escapes: the user, password, parameters and headers of a URI are kept exactly as
on the wire, ``%XX`` escapes included (``sip:%75ser@x`` has ``user == "%75ser"``;
:func:`unescape` decodes them).  ``str()`` escapes any character the RFC 3261
grammar does not allow in that component and leaves existing ``%XX`` escapes
alone, so a user part built from plain text (``"a b"``) serialises as ``a%20b``.
A header parameter's quoted value keeps its quotes (``('+sip.instance',
'"<urn:uuid:1>"')``).

Grammar tolerances, on purpose: host names may contain ``_`` (container and
SRV-style names are common on real networks; RFC 3261 does not allow it).

``==`` compares the dataclasses field by field; it is not the URI equivalence of
RFC 3261 §19.1.4 (``%75ser`` and ``user`` differ here).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from harness.sip.errors import RemoteProtocolError

Params = tuple[tuple[str, str | None], ...]


def param_get(params: Params, name: str) -> str | None:
    """Value of a parameter (None when it has no value or is absent)."""
    key = name.lower()
    for pname, value in params:
        if pname.lower() == key:
            return value
    return None


def param_has(params: Params, name: str) -> bool:
    key = name.lower()
    return any(pname.lower() == key for pname, _ in params)


# --- RFC 3261 §25.1 character classes ----------------------------------------------

_ALNUM = "A-Za-z0-9"
_MARK = r"\-_.!~*'()"
_UNRESERVED = _ALNUM + _MARK
#: user = 1*( unreserved / escaped / user-unreserved ); '%' is checked separately.
_USER_CLASS = _UNRESERVED + r"&=+$,;?/%"
_PASSWORD_CLASS = _UNRESERVED + r"&=+$,%"
_PARAM_CLASS = _UNRESERVED + r"\[\]/:&+$%"
_HNV_CLASS = _UNRESERVED + r"\[\]/?:+$%"
_TOKEN_CLASS = _ALNUM + r"\-.!%*_+`'~"

_SIP_URI_RE = re.compile(
    r"(?P<scheme>[sS][iI][pP][sS]?):"
    rf"(?:(?P<user>[{_USER_CLASS}]+)(?::(?P<password>[{_PASSWORD_CLASS}]*))?@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    rf"(?P<params>(?:;[{_PARAM_CLASS}]+(?:=[{_PARAM_CLASS}]+)?)*)"
    rf"(?:\?(?P<headers>[{_HNV_CLASS}]+=[{_HNV_CLASS}]*(?:&[{_HNV_CLASS}]+=[{_HNV_CLASS}]*)*))?"
)
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_LABEL_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?")
_TOKEN_RE = re.compile(rf"[{_TOKEN_CLASS}]+")
#: generic-param values: token / host (IPv6 references included) / quoted-string.
_GEN_VALUE_RE = re.compile(rf"[{_TOKEN_CLASS}:\[\]]+")
#: Characters an absoluteURI (opaque part) may hold: RFC 3261 uric / reserved.
_ABS_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[A-Za-z0-9\-_.!~*'();/?:@&=+$,%\[\]]+")
# Checked for "at least one digit" separately: a regex saying so would backtrack
# quadratically on long input.
_TEL_NUMBER_RE = re.compile(r"\+[0-9\-.()]+|[0-9A-Fa-f*#\-.()]+")
_TEL_DIGIT_RE = re.compile(r"[0-9A-Fa-f*#]")
_TEL_PNAME_RE = re.compile(r"[A-Za-z0-9\-]+")
_TEL_PVALUE_RE = re.compile(rf"[{_PARAM_CLASS}]+")

# Tokens separated by LWS, written so that no two quantifiers compete for the same
# characters (a failing match must stay linear, not exponential).
_DISPLAY_TOKENS_RE = re.compile(rf"[ \t]*(?:[{_TOKEN_CLASS}]+(?:[ \t]+[{_TOKEN_CLASS}]+)*[ \t]*)?")
_LWS = " \t"

# --- fast paths ------------------------------------------------------------------------
# One regex each for the shapes real peers send (no %-escapes, no IPv6, no URI
# headers, no quoted-pairs).  Each accepts a strict subset of what the full parsers
# below accept, so a match proves validity; anything else takes the full path,
# which decides.  They matter: validation is most of the parser's cost.  Possessive
# quantifiers (``++``, ``*+``) are used where the next item cannot match what the
# class matches, so the engine never backtracks into them.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_FAST_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_FAST_LABEL = r"[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+"
_FAST_HOSTNAME = rf"(?:{_FAST_LABEL}\.)*+[A-Za-z][A-Za-z0-9]*+(?:-++[A-Za-z0-9]++)*+"
_FAST_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_FAST_USERINFO = (
    rf"(?:[{_USER_CLASS.replace('%', '')}]++(?::[{_PASSWORD_CLASS.replace('%', '')}]*+)?@)?"
)
# In an addr-spec (no <>), ',', '?' and ';' would end the URI (RFC 3261 §20).
_FAST_BARE_USERINFO = (
    rf"(?:[{_USER_CLASS.replace('%', '').replace(',', '').replace(';', '').replace('?', '')}]++"
    rf"(?::[{_PASSWORD_CLASS.replace('%', '').replace(',', '')}]*+)?@)?"
)
_FAST_HOSTPORT = rf"(?:{_FAST_IPV4}|{_FAST_HOSTNAME})(?::{_FAST_PORT})?"
_FAST_URI_PARAM = rf"[{_PARAM_CLASS.replace('%', '')}]++"
_FAST_SIP_URI = (
    rf"[sS][iI][pP][sS]?:{_FAST_USERINFO}{_FAST_HOSTPORT}"
    rf"(?:;{_FAST_URI_PARAM}(?:={_FAST_URI_PARAM})?)*+"
)
_FAST_ADDR_SPEC = rf"[sS][iI][pP][sS]?:{_FAST_BARE_USERINFO}{_FAST_HOSTPORT}"
_FAST_QUOTED = r'"[^"\\\x00-\x1f\x7f]*+"'
_FAST_GEN_PARAMS = (
    rf"(?:[ \t]*+;[ \t]*+[{_TOKEN_CLASS}]++"
    rf"(?:[ \t]*+=[ \t]*+(?:[{_TOKEN_CLASS}:\[\]]++|{_FAST_QUOTED}))?)*+[ \t]*+"
)
_FAST_DISPLAY = (
    rf"(?:{_FAST_QUOTED}[ \t]*+|[{_TOKEN_CLASS}]++(?:[ \t]++[{_TOKEN_CLASS}]++)*+[ \t]*+)?"
)
_FAST_NAME_ADDR_RE = re.compile(
    rf"[ \t]*+(?:{_FAST_DISPLAY}<{_FAST_SIP_URI}>|{_FAST_ADDR_SPEC}){_FAST_GEN_PARAMS}"
)
_FAST_SIP_URI_RE = re.compile(_FAST_SIP_URI)
_FAST_VIA_RE = re.compile(
    rf"SIP/2\.0/[{_TOKEN_CLASS}]++ {_FAST_HOSTPORT}"
    rf"(?:;(?:[{_TOKEN_CLASS}]++=[{_TOKEN_CLASS}:\[\]]++|rport))*+"
)


def unescape(text: str) -> str:
    """Decode ``%XX`` escapes (UTF-8); ``sip:%75ser`` users read back as ``user``."""
    if "%" not in text:
        return text
    raw = bytearray()
    pos = 0
    for match in _ESCAPE_RE.finditer(text):
        raw += text[pos : match.start()].encode("utf-8")
        raw.append(int(match.group(1), 16))
        pos = match.end()
    raw += text[pos:].encode("utf-8")
    return raw.decode("utf-8", errors="replace")


def _escaper(allowed: str) -> re.Pattern[str]:
    # Matches one character that must be escaped: not allowed, and not the '%' of a
    # well-formed escape (escaping is idempotent on already-escaped text).
    return re.compile(rf"%(?![0-9A-Fa-f]{{2}})|[^{allowed.replace('%', '')}%]")


def _escape_char(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group(0).encode("utf-8"))


_USER_ESCAPER = _escaper(_USER_CLASS)
_PASSWORD_ESCAPER = _escaper(_PASSWORD_CLASS)
_PARAM_ESCAPER = _escaper(_PARAM_CLASS)
_HNV_ESCAPER = _escaper(_HNV_CLASS)


def _escape(text: str, escaper: re.Pattern[str]) -> str:
    return escaper.sub(_escape_char, text)


def _check_host(host: str, text: str) -> str:
    """Validate a host (IPv6 without brackets, IPv4 or host name); return it."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise RemoteProtocolError(f"bad IPv6 address in {text!r}") from None
        return host
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if labels[-1][:1].isdigit():
        # A top label starting with a digit can only be an IPv4 address.
        if len(labels) != 4 or not all(
            label.isdigit() and len(label) <= 3 and int(label) <= 255 for label in labels
        ):
            raise RemoteProtocolError(f"bad IPv4 address in {text!r}")
        return host
    for label in labels:
        if not _LABEL_RE.fullmatch(label):
            raise RemoteProtocolError(f"bad host name in {text!r}")
    return host


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _check_port(port: str, text: str) -> int:
    value = int(port)
    if value > 65535:
        raise RemoteProtocolError(f"port out of range in {text!r}")
    return value


# --- SIP and tel URIs ----------------------------------------------------------------


@dataclass(frozen=True)
class SipUri:
    """``sip:`` or ``sips:`` URI (RFC 3261 §19.1).

    ``host`` is stored without brackets for IPv6 (``::1``); ``str()`` adds them.
    ``port`` is None when the URI names none.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, or None."""
        value = param_get(self.params, "transport")
        return value.lower() if value else None

    def param(self, name: str) -> str | None:
        return param_get(self.params, name)

    def has_param(self, name: str) -> bool:
        return param_has(self.params, name)

    def with_params(self, params: Params) -> SipUri:
        return SipUri(
            self.scheme, self.user, self.password, self.host, self.port, params, self.headers
        )

    @property
    def user_unescaped(self) -> str | None:
        """The user part with ``%XX`` escapes decoded."""
        return None if self.user is None else unescape(self.user)

    @property
    def hostport(self) -> str:
        """``host[:port]`` with IPv6 brackets, as in a Via or a Host header."""
        host = _format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _USER_ESCAPER))
            if self.password is not None:
                parts.append(":")
                parts.append(_escape(self.password, _PASSWORD_ESCAPER))
            parts.append("@")
        parts.append(_format_host(self.host))
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params:
            parts.append(";")
            parts.append(_escape(name, _PARAM_ESCAPER))
            if value is not None:
                parts.append("=")
                parts.append(_escape(value, _PARAM_ESCAPER))
        if self.headers:
            parts.append("?")
            parts.append(
                "&".join(
                    f"{_escape(name, _HNV_ESCAPER)}={_escape(value, _HNV_ESCAPER)}"
                    for name, value in self.headers
                )
            )
        return "".join(parts)


@dataclass(frozen=True)
class TelUri:
    """``tel:`` URI (RFC 3966): the number and its parameters."""

    number: str = ""
    params: Params = ()

    @property
    def is_global(self) -> bool:
        """True for a global number (``+`` and digits)."""
        return self.number.startswith("+")

    def __str__(self) -> str:
        parts = ["tel:", self.number]
        for name, value in self.params:
            parts.append(f";{name}" if value is None else f";{name}={value}")
        return "".join(parts)


Uri = SipUri | TelUri


def parse_sip_uri(text: str) -> SipUri:
    """Parse a sip/sips URI; a tel URI is an error here."""
    match = _SIP_URI_RE.fullmatch(text)
    if match is None:
        raise RemoteProtocolError(f"malformed SIP URI {text!r}")
    if "%" in text and _BAD_ESCAPE_RE.search(text):
        raise RemoteProtocolError(f"bad %-escape in SIP URI {text!r}")
    scheme, user, password, host, port, params_text, headers_text = match.groups()
    if host[0] == "[":
        host = _check_host(host[1:-1], text)
        if ":" not in host:
            raise RemoteProtocolError(f"brackets around a non-IPv6 host in {text!r}")
    else:
        host = _check_host(host, text)
    params: Params = ()
    if params_text:
        params = tuple(
            (name, value if sep else None)
            for name, sep, value in (p.partition("=") for p in params_text[1:].split(";"))
        )
    headers: tuple[tuple[str, str], ...] = ()
    if headers_text:
        headers = tuple(
            (name, value) for name, _, value in (h.partition("=") for h in headers_text.split("&"))
        )
    return SipUri(
        scheme=scheme.lower(),
        user=user,
        password=password,
        host=host,
        port=None if port is None else _check_port(port, text),
        params=params,
        headers=headers,
    )


def parse_tel_uri(text: str) -> TelUri:
    """Parse a ``tel:`` URI (RFC 3966): number then ``;name[=value]`` parameters."""
    if text[:4].lower() != "tel:":
        raise RemoteProtocolError(f"not a tel URI: {text!r}")
    number, _, params_text = text[4:].partition(";")
    digits = number[1:] if number[:1] == "+" else number
    if not _TEL_NUMBER_RE.fullmatch(number) or not _TEL_DIGIT_RE.search(digits):
        raise RemoteProtocolError(f"malformed tel URI number {text!r}")
    params: list[tuple[str, str | None]] = []
    if params_text:
        for item in params_text.split(";"):
            name, sep, value = item.partition("=")
            if not _TEL_PNAME_RE.fullmatch(name) or (sep and not _TEL_PVALUE_RE.fullmatch(value)):
                raise RemoteProtocolError(f"malformed tel URI parameter in {text!r}")
            params.append((name, value if sep else None))
    if "%" in text and _BAD_ESCAPE_RE.search(text):
        raise RemoteProtocolError(f"bad %-escape in tel URI {text!r}")
    return TelUri(number=number, params=tuple(params))


def hop_key(uri: SipUri) -> tuple[str, str, int, str]:
    """What makes two URIs lead to the same next hop: scheme, host (case-insensitive),
    port (the default filled in: 5061 for sips or TLS, else 5060) and transport (the
    default filled in: TLS for sips, else UDP).

    Proxies rewrite their own Record-Route (``lr=on`` for ``lr``, an explicit 5060,
    ``ftag``...); those URIs still reach the same hop, which is what routing cares
    about. Not RFC 3261 §19.1.4 equivalence (which this is deliberately looser than).
    """
    scheme = uri.scheme.lower()
    transport = uri.transport or ("tls" if scheme == "sips" else "udp")
    port = uri.port or (5061 if scheme == "sips" or transport == "tls" else 5060)
    return (scheme, uri.host.lower(), port, transport)


def parse_uri(text: str) -> Uri:
    """Parse a sip/sips/tel URI."""
    scheme = text[:5].lower()
    if scheme.startswith("tel:"):
        return parse_tel_uri(text)
    if scheme.startswith(("sip:", "sips:")):
        return parse_sip_uri(text)
    raise RemoteProtocolError(f"unsupported URI scheme in {text!r} (sip, sips or tel)")


def check_absolute_uri(text: str) -> None:
    """Check any URI of a header or Request-URI: sip/sips/tel fully, others as absoluteURI.

    Raises :class:`RemoteProtocolError` when it is malformed.
    """
    scheme = text[:5].lower()
    if scheme.startswith(("sip:", "sips:")):
        if not _FAST_SIP_URI_RE.fullmatch(text):
            parse_sip_uri(text)
    elif scheme.startswith("tel:"):
        parse_tel_uri(text)
    elif not _ABS_URI_RE.fullmatch(text):
        raise RemoteProtocolError(f"malformed URI {text!r}")


# --- header parameters, quoted strings -------------------------------------------------


def _unquote(quoted: str) -> str:
    """Body of a quoted-string (without its quotes) with quoted-pairs resolved."""
    if "\\" not in quoted:
        return quoted
    out: list[str] = []
    chars = iter(quoted)
    for ch in chars:
        out.append(next(chars, "") if ch == "\\" else ch)
    return "".join(out)


def _end_of_quoted(text: str, start: int) -> int:
    """Index just past the closing quote of the quoted-string opening at ``start``."""
    pos = start + 1
    length = len(text)
    while pos < length:
        ch = text[pos]
        if ch == "\\":
            if pos + 1 >= length or text[pos + 1] in "\r\n":
                break
            pos += 2
            continue
        if ch == '"':
            return pos + 1
        pos += 1
    raise RemoteProtocolError(f"unterminated quoted string in {text!r}")


_QUOTE_ESCAPE_RE = re.compile(r'[\\"\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def quote(text: str) -> str:
    """Serialise a quoted-string: quotes and backslashes (and controls) escaped."""
    return '"' + _QUOTE_ESCAPE_RE.sub(lambda m: "\\" + m.group(0), text) + '"'


def parse_params(text: str) -> Params:
    """Parse ``*( SEMI generic-param )`` (RFC 3261 ``;name[=value]`` after a value).

    LWS around ``;`` and ``=`` is allowed; quoted values keep their quotes.
    """
    if '"' not in text:
        items = text.split(";")
        if items[0].strip(_LWS):
            raise RemoteProtocolError(f"text before the parameters in {text!r}")
        params: list[tuple[str, str | None]] = []
        for item in items[1:]:
            name, sep, value = item.partition("=")
            name = name.strip(_LWS)
            if not _TOKEN_RE.fullmatch(name):
                raise RemoteProtocolError(f"malformed parameter name in {text!r}")
            if sep:
                value = value.strip(_LWS)
                if not _GEN_VALUE_RE.fullmatch(value):
                    raise RemoteProtocolError(f"malformed parameter value in {text!r}")
                params.append((name, value))
            else:
                params.append((name, None))
        return tuple(params)
    return _parse_params_quoted(text)


def _parse_params_quoted(text: str) -> Params:
    # The slow path: a value may be a quoted-string holding ';' or '='.
    params: list[tuple[str, str | None]] = []
    pos = 0
    length = len(text)
    while True:
        while pos < length and text[pos] in _LWS:
            pos += 1
        if pos == length:
            return tuple(params)
        if text[pos] != ";":
            raise RemoteProtocolError(f"expected ';' in parameters {text!r}")
        pos += 1
        match = _TOKEN_RE.match(text, _skip_lws(text, pos))
        if match is None:
            raise RemoteProtocolError(f"malformed parameter name in {text!r}")
        name = match.group(0)
        pos = _skip_lws(text, match.end())
        if pos < length and text[pos] == "=":
            pos = _skip_lws(text, pos + 1)
            if pos < length and text[pos] == '"':
                end = _end_of_quoted(text, pos)
                params.append((name, text[pos:end]))
                pos = end
            else:
                vmatch = _GEN_VALUE_RE.match(text, pos)
                if vmatch is None:
                    raise RemoteProtocolError(f"malformed parameter value in {text!r}")
                params.append((name, vmatch.group(0)))
                pos = vmatch.end()
        else:
            params.append((name, None))


def _skip_lws(text: str, pos: int) -> int:
    length = len(text)
    while pos < length and text[pos] in _LWS:
        pos += 1
    return pos


def format_params(params: Params) -> str:
    """Serialise header parameters: ``;name`` or ``;name=value`` each."""
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


# --- name-addr / addr-spec ---------------------------------------------------------------


def split_name_addr(text: str) -> tuple[str | None, str, str]:
    """Split name-addr / addr-spec into (display name, URI text, parameter text).

    The URI is returned unparsed (any scheme); the display name is unquoted.
    Raises :class:`RemoteProtocolError` when the shape is wrong: unterminated quotes,
    a display name that is neither quoted nor tokens, LWS inside ``<...>``, or an
    addr-spec holding ``,``, ``?`` or LWS (RFC 3261 §20: such URIs need ``<>``).
    """
    value = text.strip(_LWS)
    if not value:
        raise RemoteProtocolError("empty name-addr")
    display: str | None
    if value[0] == '"':
        end = _end_of_quoted(value, 0)
        display = _unquote(value[1 : end - 1])
        langle = _skip_lws(value, end)
        if langle >= len(value) or value[langle] != "<":
            raise RemoteProtocolError(f"quoted display name without <URI> in {text!r}")
    else:
        langle = value.find("<")
        if langle < 0 or not _DISPLAY_TOKENS_RE.fullmatch(value, 0, langle):
            return _split_addr_spec(value, text)
        display = " ".join(value[:langle].split()) or None
    rangle = value.find(">", langle)
    if rangle < 0:
        raise RemoteProtocolError(f"'<' without '>' in {text!r}")
    uri = value[langle + 1 : rangle]
    if not uri or any(ch in uri for ch in ' \t<"'):
        raise RemoteProtocolError(f"malformed URI inside <> in {text!r}")
    return display, uri, value[rangle + 1 :]


def _split_addr_spec(value: str, text: str) -> tuple[None, str, str]:
    semi = value.find(";")
    if semi < 0:
        uri, rest = value, ""
    else:
        uri, rest = value[:semi].rstrip(_LWS), value[semi:]
    if not uri or any(ch in uri for ch in ' \t,?<>"'):
        raise RemoteProtocolError(f"malformed addr-spec {text!r} (a URI with ',' or '?' needs <>)")
    return None, uri, rest


@dataclass(frozen=True)
class NameAddr:
    """name-addr or addr-spec with header parameters (From, To, Contact, Route...).

    ``display_name`` is unquoted (None when absent); ``params`` are the header
    parameters after the URI (``tag``, ``expires``, ``q``...), not the URI's own.
    """

    uri: Uri = field(default_factory=SipUri)
    display_name: str | None = None
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return param_get(self.params, "tag")

    def param(self, name: str) -> str | None:
        return param_get(self.params, name)

    def __str__(self) -> str:
        # Always the name-addr form: a URI with ';', ',' or '?' is only safe in <>.
        uri = f"<{self.uri}>"
        if self.display_name is not None:
            uri = f"{quote(self.display_name)} {uri}"
        return uri + format_params(self.params)


def parse_name_addr(text: str) -> NameAddr:
    """Parse name-addr (``"Bob" <sip:bob@x>;tag=1``) or addr-spec (``sip:bob@x;tag=1``).

    In the addr-spec form, parameters after the URI are header parameters
    (RFC 3261 §20.10).
    """
    display, uri, rest = split_name_addr(text)
    return NameAddr(uri=parse_uri(uri), display_name=display, params=parse_params(rest))


def check_name_addr(text: str) -> None:
    """Check name-addr / addr-spec with any URI scheme (To, From, Contact of any peer).

    Raises :class:`RemoteProtocolError` when it is malformed.
    """
    if _FAST_NAME_ADDR_RE.fullmatch(text):
        return
    _, uri, rest = split_name_addr(text)
    check_absolute_uri(uri)
    if rest:
        parse_params(rest)


# --- Via ---------------------------------------------------------------------------------

_VIA_RE = re.compile(
    rf"(?P<name>[{_TOKEN_CLASS}]+)[ \t]*/[ \t]*(?P<version>[{_TOKEN_CLASS}]+)[ \t]*/[ \t]*"
    rf"(?P<transport>[{_TOKEN_CLASS}]+)[ \t]+"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)"
    r"(?:[ \t]*:[ \t]*(?P<port>[0-9]{1,5}))?"
    r"(?P<params>[ \t]*;.*)?",
    re.DOTALL,
)


@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;rport``.

    ``transport`` is upper-cased by the parser; ``host`` is stored without brackets
    for IPv6.
    """

    transport: str = "UDP"
    host: str = ""
    port: int | None = None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        return param_get(self.params, "branch")

    @property
    def received(self) -> str | None:
        return param_get(self.params, "received")

    @property
    def rport(self) -> int | None:
        """The rport value, or None when absent or present without a value."""
        value = param_get(self.params, "rport")
        return int(value) if value and value.isdigit() else None

    @property
    def has_rport(self) -> bool:
        return param_has(self.params, "rport")

    @property
    def sent_by(self) -> str:
        """``host[:port]`` with IPv6 brackets."""
        host = _format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"


def check_via(text: str) -> None:
    """Check a single Via value; raises :class:`RemoteProtocolError` when malformed."""
    if not _FAST_VIA_RE.fullmatch(text):
        parse_via(text)


def check_request_uri(text: str) -> None:
    """Check a Request-URI: any absolute URI; a SIP one must carry no headers.

    Raises :class:`RemoteProtocolError` when it is malformed.
    """
    if _FAST_SIP_URI_RE.fullmatch(text):
        return
    check_absolute_uri(text)
    if text[:4].lower() in ("sip:", "sips") and parse_sip_uri(text).headers:
        raise RemoteProtocolError(f"Request-URI {text!r} carries headers")


def parse_via(text: str) -> Via:
    """Parse a single Via value (not a comma-separated list)."""
    match = _VIA_RE.fullmatch(text.strip(_LWS))
    if match is None:
        raise RemoteProtocolError(f"malformed Via {text!r}")
    name, version, transport, host, port, params_text = match.groups()
    if name.upper() != "SIP" or version != "2.0":
        raise RemoteProtocolError(f"Via is not SIP/2.0: {text!r}")
    if host[0] == "[":
        host = _check_host(host[1:-1], text)
    else:
        host = _check_host(host, text)
    params = parse_params(params_text) if params_text else ()
    for pname, value in params:
        # Values of the parameters the core relies on must be usable.
        if value is None and pname.lower() in ("branch", "received", "maddr", "ttl"):
            raise RemoteProtocolError(f"Via parameter {pname!r} without a value in {text!r}")
    return Via(
        transport=transport.upper(),
        host=host,
        port=None if port is None else _check_port(port, text),
        params=params,
    )
