"""Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760), sans-IO.

What a caller may rely on:

* :func:`parse_challenge` / :func:`parse_challenges` read a ``WWW-Authenticate`` or
  ``Proxy-Authenticate`` value into frozen :class:`Challenge` objects;
  :func:`parse_credentials` reads an ``Authorization`` / ``Proxy-Authorization``
  value into :class:`Credentials` (for checks over captured traffic and for mock
  servers).  Both raise :class:`~harness.sip.errors.RemoteProtocolError` on
  malformed input and nothing else.
* :func:`build_credentials` computes a response for one challenge; the
  ``uri`` it signs and sends is the Request-URI string exactly as given (never
  re-serialised), because servers that check the digest-uri compare it byte for
  byte with the Request-URI.
* :class:`DigestClient` answers a 401/407 :class:`~harness.sip.message.Response`,
  choosing the strongest supported challenge and keeping the nonce count.
* :func:`verify_credentials` is the server side: recompute and compare.

No randomness is hidden here: the caller passes every cnonce in (:func:`new_cnonce`
draws one from a random source the caller injects).  Errors raised are
:class:`~harness.sip.errors.SipError` subclasses only: ``RemoteProtocolError`` for
what a peer sent, ``LocalProtocolError`` for a call this side got wrong (no
supported challenge, a value that cannot be put on the wire...).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

from harness.sip.errors import LocalProtocolError, RemoteProtocolError
from harness.sip.message import Response

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestAlgorithm",
    "DigestClient",
    "RandomBits",
    "ReceivedChallenge",
    "build_credentials",
    "challenges_from_response",
    "choose_challenge",
    "choose_per_realm",
    "compute_response",
    "expected_response",
    "is_stale",
    "new_cnonce",
    "parse_challenge",
    "parse_challenges",
    "parse_credentials",
    "userhash",
    "verify_credentials",
]

# --------------------------------------------------------------------------- algorithms


@dataclass(frozen=True)
class DigestAlgorithm:
    """One digest algorithm: its RFC name, hash function, and rank when choosing."""

    name: str
    hexdigest: Callable[[bytes], str]
    strength: int
    session: bool


def _hasher(hash_name: str) -> Callable[[bytes], str]:
    def hexdigest(data: bytes) -> str:
        return hashlib.new(hash_name, data).hexdigest()

    return hexdigest


def _build_algorithms() -> dict[str, DigestAlgorithm]:
    # RFC 7616 §6.1 / RFC 8760 §2.1: "SHA-512-256" is SHA-512/256 of FIPS 180-4
    # (its own initial values), which hashlib calls "sha512_256".  It depends on
    # the OpenSSL build, so it is registered only when present.
    base: list[tuple[str, str, int]] = [("MD5", "md5", 1), ("SHA-256", "sha256", 2)]
    if "sha512_256" in hashlib.algorithms_available:
        base.append(("SHA-512-256", "sha512_256", 3))
    table: dict[str, DigestAlgorithm] = {}
    for name, hash_name, strength in base:
        fn = _hasher(hash_name)
        table[name.upper()] = DigestAlgorithm(name, fn, strength, session=False)
        sess = f"{name}-sess"
        table[sess.upper()] = DigestAlgorithm(sess, fn, strength, session=True)
    return table


#: Supported algorithms keyed by upper-cased RFC name (``"SHA-256-SESS"``).  Callers
#: treat it as read-only; a test may substitute an entry to reproduce a vector.
ALGORITHMS: dict[str, DigestAlgorithm] = _build_algorithms()

_QOPS = ("auth", "auth-int")


def _algorithm(name: str | None) -> DigestAlgorithm | None:
    """The algorithm of that name (None = absent = MD5, RFC 7616 §3.3), or None if unknown."""
    # An empty algorithm="" is not "absent": it names nothing we know.
    return ALGORITHMS.get("MD5" if name is None else name.upper())


# --------------------------------------------------------------------------- parsing

# RFC 7230 tchar; a superset of RFC 3261's token characters.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WS = " \t"
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*[ \t]*(?:,|$)")


class _AuthLexer:
    """Reads ``scheme param=value, ...`` lists; values come out unquoted."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TCHAR:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        # Called on the opening quote; RFC 3261 §25.1 quoted-pair: "\" any char.
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\":
                if self.pos + 1 >= len(self.text):
                    break
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == '"':
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise RemoteProtocolError(f"unterminated quoted string in {self.text!r}")

    def bare_value(self) -> str:
        # Lenient: some servers send unquoted nonces with "/" or "=" in them, so an
        # unquoted value runs to the next comma or whitespace, not only tchar.
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ", \t":
            self.pos += 1
        return self.text[start : self.pos]


def _parse_auth_list(value: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Split a header value into ``(scheme, [(lower-case name, value), ...])`` items.

    Several challenges on one line (``Digest ..., Basic ...``) are separated; a
    ``token68`` (``Basic abc==``) is recognised and skipped.
    """
    lex = _AuthLexer(value)
    items: list[tuple[str, list[tuple[str, str]]]] = []
    while True:
        lex.skip_ws()
        while lex.peek() in (",", " ", "\t") and lex.peek():
            lex.pos += 1
        if not lex.peek():
            break
        scheme = lex.token()
        if not scheme:
            raise RemoteProtocolError(f"expected an auth scheme at {value[lex.pos :]!r}")
        if lex.peek() and lex.peek() not in _WS + ",":
            raise RemoteProtocolError(f"bad auth scheme in {value!r}")
        params: list[tuple[str, str]] = []
        lex.skip_ws()
        token68 = _TOKEN68.match(value, lex.pos)
        if token68 is not None:
            # token68 credentials/challenge of another scheme (Basic): no params.
            lex.pos = token68.end()
            items.append((scheme, params))
            continue
        while True:
            lex.skip_ws()
            if lex.peek() == ",":
                lex.pos += 1
                continue
            if not lex.peek():
                break
            save = lex.pos
            name = lex.token()
            if not name:
                raise RemoteProtocolError(f"expected a parameter at {value[lex.pos :]!r}")
            lex.skip_ws()
            if lex.peek() != "=":
                # A token not followed by "=" starts the next challenge.
                lex.pos = save
                break
            lex.pos += 1
            lex.skip_ws()
            if lex.peek() == '"':
                param_value = lex.quoted()
            else:
                param_value = lex.bare_value()
                if not param_value:
                    raise RemoteProtocolError(f"parameter {name!r} has no value in {value!r}")
            params.append((name.lower(), param_value))
        items.append((scheme, params))
    return items


def _param_dict(params: list[tuple[str, str]], header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, val in params:
        if name in out:
            # RFC 7235 §2.2: each parameter name occurs once; two values are ambiguous.
            raise RemoteProtocolError(f"{header}: parameter {name!r} appears twice")
        out[name] = val
    return out


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


# --------------------------------------------------------------------------- serialising


def _quote(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise LocalProtocolError(f"line break in an auth parameter value: {value!r}")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _check_token(name: str, value: str) -> str:
    if not value or any(ch not in _TCHAR for ch in value):
        raise LocalProtocolError(f"{name} must be a token, got {value!r}")
    return value


@dataclass(frozen=True)
class _AuthParam:
    name: str
    value: str
    quoted: bool

    def render(self) -> str:
        if self.quoted:
            return f"{self.name}={_quote(self.value)}"
        return f"{self.name}={_check_token(self.name, self.value)}"


def _render(params: Iterable[_AuthParam]) -> str:
    return "Digest " + ", ".join(p.render() for p in params)


# --------------------------------------------------------------------------- challenge


@dataclass(frozen=True)
class Challenge:
    """One Digest challenge (RFC 7616 §3.3, RFC 3261 §22.4).

    ``algorithm`` is the token as received (None when absent, which means MD5);
    ``qop`` holds the lower-cased qop options (empty: RFC 2069 style, no qop);
    ``params`` holds every parameter received, unknown ones included, lower-cased
    names and unquoted values, in order.
    """

    realm: str
    nonce: str
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: tuple[str, ...] = ()
    userhash: bool = False
    charset: str | None = None
    params: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def algorithm_name(self) -> str:
        """The algorithm token to use, MD5 when the challenge named none."""
        return "MD5" if self.algorithm is None else self.algorithm

    @property
    def supported(self) -> bool:
        """True when this side can answer it: a known algorithm and a usable qop.

        A ``-sess`` algorithm without qop is not: RFC 7616 defines -sess only with
        a qop, and without one the cnonce it hashes would never be sent reliably.
        """
        alg = _algorithm(self.algorithm)
        if alg is None:
            return False
        if not self.qop:
            return not alg.session
        return any(q in _QOPS for q in self.qop)

    def to_header_value(self) -> str:
        """Serialise for a ``WWW-Authenticate`` / ``Proxy-Authenticate`` header (mock servers)."""
        params = [_AuthParam("realm", self.realm, True), _AuthParam("nonce", self.nonce, True)]
        if self.opaque is not None:
            params.append(_AuthParam("opaque", self.opaque, True))
        if self.algorithm is not None:
            params.append(_AuthParam("algorithm", self.algorithm, False))
        if self.qop:
            params.append(_AuthParam("qop", ",".join(self.qop), True))
        if self.stale:
            params.append(_AuthParam("stale", "true", False))
        if self.domain:
            params.append(_AuthParam("domain", " ".join(self.domain), True))
        if self.charset is not None:
            params.append(_AuthParam("charset", self.charset, False))
        if self.userhash:
            params.append(_AuthParam("userhash", "true", False))
        return _render(params)


def _challenge_from(params: list[tuple[str, str]]) -> Challenge:
    d = _param_dict(params, "Digest challenge")
    for required in ("realm", "nonce"):
        if required not in d:
            raise RemoteProtocolError(f"Digest challenge without {required}")
    return Challenge(
        realm=d["realm"],
        nonce=d["nonce"],
        algorithm=d["algorithm"].strip() if "algorithm" in d else None,
        qop=_split_list(d["qop"]) if "qop" in d else (),
        opaque=d.get("opaque"),
        stale=_is_true(d.get("stale")),
        domain=tuple(d["domain"].split()) if "domain" in d else (),
        userhash=_is_true(d.get("userhash")),
        charset=d.get("charset"),
        params=tuple(params),
    )


def parse_challenges(value: str) -> list[Challenge]:
    """Every Digest challenge in one header value; other schemes are skipped.

    Raises RemoteProtocolError when the value is malformed or a Digest challenge
    lacks realm or nonce.
    """
    return [
        _challenge_from(params)
        for scheme, params in _parse_auth_list(value)
        if scheme.lower() == "digest"
    ]


def parse_challenge(value: str) -> Challenge:
    """The single Digest challenge of a header value (RemoteProtocolError otherwise)."""
    found = parse_challenges(value)
    if len(found) != 1:
        raise RemoteProtocolError(f"expected one Digest challenge, found {len(found)}")
    return found[0]


@dataclass(frozen=True)
class ReceivedChallenge:
    """A challenge of a response and the header name that answers it."""

    answer_header: str
    challenge: Challenge


_ANSWER_HEADER = {
    "WWW-Authenticate": "Authorization",
    "Proxy-Authenticate": "Proxy-Authorization",
}


def challenges_from_response(response: Response) -> list[ReceivedChallenge]:
    """The Digest challenges of a response, in header order.

    ``WWW-Authenticate`` (sent with 401) is answered with ``Authorization`` and
    ``Proxy-Authenticate`` (407) with ``Proxy-Authorization``; a forking proxy may
    aggregate both kinds into one response (RFC 3261 §16.7), so each challenge
    carries its own answer header.  A response without challenges gives ``[]``.
    """
    found: list[ReceivedChallenge] = []
    for name, value in response.headers:
        answer = _ANSWER_HEADER.get(name)
        if answer is None:
            continue
        found.extend(ReceivedChallenge(answer, ch) for ch in parse_challenges(value))
    return found


def is_stale(response: Response) -> bool:
    """True when a Digest challenge of the response says ``stale=true``.

    A stale challenge after an answered one means the password was right but the
    nonce expired: retry once with the new nonce.  A second challenge without it
    means the credentials were rejected.
    """
    return any(rc.challenge.stale for rc in challenges_from_response(response))


def _allowed(algorithms: Sequence[str] | None) -> frozenset[str] | None:
    return None if algorithms is None else frozenset(a.upper() for a in algorithms)


def choose_challenge(
    challenges: Iterable[Challenge],
    *,
    realm: str | None = None,
    algorithms: Sequence[str] | None = None,
) -> Challenge | None:
    """The strongest supported challenge (SHA-512-256 > SHA-256 > MD5), or None.

    ``realm`` restricts the choice to that realm; ``algorithms`` restricts it to
    those names (e.g. ``["SHA-256"]`` to refuse MD5).  Unknown algorithms and
    challenges whose qop offers neither ``auth`` nor ``auth-int`` are skipped.
    Between equally strong challenges the first one wins.
    """
    allowed = _allowed(algorithms)
    best: Challenge | None = None
    best_strength = 0
    for ch in challenges:
        if realm is not None and ch.realm != realm:
            continue
        if not ch.supported:
            continue
        if allowed is not None and ch.algorithm_name.upper() not in allowed:
            continue
        alg = _algorithm(ch.algorithm)
        assert alg is not None  # ch.supported checked it
        if alg.strength > best_strength:
            best, best_strength = ch, alg.strength
    return best


def choose_per_realm(
    challenges: Sequence[Challenge], *, algorithms: Sequence[str] | None = None
) -> list[Challenge]:
    """One challenge per realm, the strongest of each, realms in order of first appearance.

    RFC 3261 §22.3 / RFC 8760 §2.4: a UAC answers each realm once, with the
    strongest algorithm it supports for that realm.  Realms with no supported
    challenge are left out.
    """
    realms: list[str] = []
    for ch in challenges:
        if ch.realm not in realms:
            realms.append(ch.realm)
    chosen = [choose_challenge(challenges, realm=r, algorithms=algorithms) for r in realms]
    return [ch for ch in chosen if ch is not None]


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    """The parameters of an ``Authorization`` / ``Proxy-Authorization`` value.

    Values are unquoted; ``nc`` is kept as the 8-hex-digit string received because
    the response hashes it as sent.  ``algorithm`` is None when absent (MD5).
    ``params`` holds every parameter received (lower-cased names) in order.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    cnonce: str | None = None
    nc: str | None = None
    qop: str | None = None
    opaque: str | None = None
    userhash: bool = False
    params: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def to_header_value(self) -> str:
        """Serialise in RFC 7616 §3.4 style: username, realm, nonce, uri, response,
        algorithm, cnonce, qop, nc, opaque, userhash; algorithm, qop and nc unquoted."""
        params = [
            _AuthParam("username", self.username, True),
            _AuthParam("realm", self.realm, True),
            _AuthParam("nonce", self.nonce, True),
            _AuthParam("uri", self.uri, True),
            _AuthParam("response", self.response, True),
        ]
        if self.algorithm is not None:
            params.append(_AuthParam("algorithm", self.algorithm, False))
        if self.cnonce is not None:
            params.append(_AuthParam("cnonce", self.cnonce, True))
        if self.qop is not None:
            params.append(_AuthParam("qop", self.qop, False))
        if self.nc is not None:
            params.append(_AuthParam("nc", self.nc, False))
        if self.opaque is not None:
            params.append(_AuthParam("opaque", self.opaque, True))
        if self.userhash:
            params.append(_AuthParam("userhash", "true", False))
        return _render(params)


def _decode_ext_value(value: str) -> str:
    # RFC 5987/8187 ext-value: charset'lang'pct-encoded (username*, RFC 7616 §3.4.4).
    parts = value.split("'", 2)
    if len(parts) != 3:
        raise RemoteProtocolError(f"malformed username* value {value!r}")
    charset = parts[0].lower() or "utf-8"
    try:
        return unquote(parts[2], encoding=charset, errors="strict")
    except (LookupError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"undecodable username* value {value!r}: {exc}") from exc


def parse_credentials(value: str) -> Credentials:
    """Parse an ``Authorization`` / ``Proxy-Authorization`` value (Digest only).

    Raises RemoteProtocolError when malformed, not Digest, or missing username,
    realm, nonce, uri or response (RFC 3261 §25.1 dig-resp).
    """
    items = _parse_auth_list(value)
    if len(items) != 1 or items[0][0].lower() != "digest":
        raise RemoteProtocolError(f"expected one Digest credentials value, got {value!r}")
    params = items[0][1]
    d = _param_dict(params, "Digest credentials")
    if "username" not in d and "username*" in d:
        d["username"] = _decode_ext_value(d["username*"])
    for required in ("username", "realm", "nonce", "uri", "response"):
        if required not in d:
            raise RemoteProtocolError(f"Digest credentials without {required}")
    return Credentials(
        username=d["username"],
        realm=d["realm"],
        nonce=d["nonce"],
        uri=d["uri"],
        response=d["response"],
        algorithm=d["algorithm"].strip() if "algorithm" in d else None,
        cnonce=d.get("cnonce"),
        nc=d.get("nc"),
        qop=d["qop"].strip().lower() if "qop" in d else None,
        opaque=d.get("opaque"),
        userhash=_is_true(d.get("userhash")),
        params=tuple(params),
    )


# --------------------------------------------------------------------------- computing


class RandomBits(Protocol):
    """What :func:`new_cnonce` needs of a random source (``random.Random`` fits)."""

    def getrandbits(self, k: int, /) -> int: ...


def new_cnonce(rng: RandomBits) -> str:
    """A 128-bit cnonce as 32 lower-case hex digits, drawn from the injected ``rng``."""
    return f"{rng.getrandbits(128):032x}"


def userhash(username: str, realm: str, algorithm: str = "MD5") -> str:
    """RFC 7616 §3.4.4: ``H(username ":" realm)``, the username sent when hashing."""
    alg = _algorithm(algorithm)
    if alg is None:
        raise LocalProtocolError(f"unsupported digest algorithm {algorithm!r}")
    return alg.hexdigest(f"{username}:{realm}".encode())


def compute_response(
    *,
    algorithm: str | None,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1–3.4.3; RFC 2069 form when qop is None).

    ``username`` is the real user name even when the username is sent hashed;
    strings are hashed as UTF-8.  ``auth-int`` hashes ``body`` (``b""`` when empty).
    Raises LocalProtocolError for an unknown algorithm or qop, or a qop / ``-sess``
    without the cnonce (and nc) it needs.
    """
    alg = _algorithm(algorithm)
    if alg is None:
        raise LocalProtocolError(f"unsupported digest algorithm {algorithm!r}")
    if qop is not None and qop not in _QOPS:
        raise LocalProtocolError(f"unsupported qop {qop!r}")
    if (qop is not None or alg.session) and cnonce is None:
        raise LocalProtocolError("a cnonce is required with qop or a -sess algorithm")
    if qop is not None and nc is None:
        raise LocalProtocolError("a nonce count is required with qop")

    def h(text: str) -> str:
        return alg.hexdigest(text.encode("utf-8"))

    ha1 = h(f"{username}:{realm}:{password}")
    if alg.session:
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = h(f"{method}:{uri}:{alg.hexdigest(body)}")
    else:
        ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _choose_qop(challenge: Challenge, prefer_auth_int: bool) -> str | None:
    if not challenge.qop:
        return None
    order = ("auth-int", "auth") if prefer_auth_int else ("auth", "auth-int")
    for qop in order:
        if qop in challenge.qop:
            return qop
    raise LocalProtocolError(f"challenge offers no supported qop: {challenge.qop!r}")


def build_credentials(
    challenge: Challenge,
    *,
    method: str,
    request_uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
    prefer_auth_int: bool = False,
) -> Credentials:
    """Answer one challenge; ``str`` the result with :meth:`Credentials.to_header_value`.

    ``request_uri`` is signed and sent exactly as given.  qop ``auth`` is chosen
    over ``auth-int`` unless ``prefer_auth_int`` (or only auth-int is offered); a
    challenge without qop gets an RFC 2069 answer (no cnonce, nc or qop, except the
    cnonce a ``-sess`` algorithm needs).  When the challenge says ``userhash=true``
    the username is sent hashed.  The algorithm is echoed as the challenge spelt it
    (``MD5`` when it named none).  Raises LocalProtocolError when the challenge is
    unsupported or a value cannot go on the wire.
    """
    if not method or any(ch not in _TCHAR for ch in method):
        raise LocalProtocolError(f"bad method {method!r}")
    if not request_uri or any(ch in request_uri for ch in ' \t\r\n"'):
        raise LocalProtocolError(f"bad Request-URI {request_uri!r}")
    if "\r" in username or "\n" in username:
        raise LocalProtocolError(f"line break in username {username!r}")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise LocalProtocolError(f"nonce count out of range: {nc}")
    alg = _algorithm(challenge.algorithm)
    if alg is None:
        raise LocalProtocolError(f"unsupported digest algorithm {challenge.algorithm!r}")
    qop = _choose_qop(challenge, prefer_auth_int)
    nc_text = f"{nc:08x}" if qop is not None else None
    sent_cnonce = cnonce if (qop is not None or alg.session) else None
    response = compute_response(
        algorithm=challenge.algorithm_name,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=request_uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=sent_cnonce,
        body=body,
    )
    sent_username = (
        userhash(username, challenge.realm, challenge.algorithm_name)
        if challenge.userhash
        else username
    )
    return Credentials(
        username=sent_username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=request_uri,
        response=response,
        algorithm=challenge.algorithm_name,
        cnonce=sent_cnonce,
        nc=nc_text,
        qop=qop,
        opaque=challenge.opaque,
        userhash=challenge.userhash,
    )


# --------------------------------------------------------------------------- server side


def expected_response(
    credentials: Credentials,
    *,
    password: str,
    method: str,
    body: bytes = b"",
    username: str | None = None,
) -> str:
    """The response a client knowing ``password`` would have sent for these credentials.

    Everything else (uri, nonce, nc, cnonce, qop, algorithm) is taken from the
    credentials as received.  ``username`` is the real user name, required when
    the credentials carry a hashed one (``userhash=true``).  Raises
    RemoteProtocolError when the credentials name an unknown algorithm or qop or
    lack the cnonce/nc their qop needs; LocalProtocolError when a hashed username
    is given without ``username``.
    """
    if credentials.userhash and username is None:
        raise LocalProtocolError("credentials use userhash: pass the real username")
    real_username = username if username is not None else credentials.username
    if _algorithm(credentials.algorithm) is None:
        raise RemoteProtocolError(f"unsupported digest algorithm {credentials.algorithm!r}")
    if credentials.qop is not None and credentials.qop not in _QOPS:
        raise RemoteProtocolError(f"unsupported qop {credentials.qop!r}")
    if credentials.qop is not None and (credentials.cnonce is None or credentials.nc is None):
        raise RemoteProtocolError("credentials with qop but without cnonce or nc")
    alg = _algorithm(credentials.algorithm)
    assert alg is not None
    if alg.session and credentials.cnonce is None:
        raise RemoteProtocolError("credentials with a -sess algorithm but without cnonce")
    return compute_response(
        algorithm=credentials.algorithm,
        username=real_username,
        realm=credentials.realm,
        password=password,
        method=method,
        uri=credentials.uri,
        nonce=credentials.nonce,
        qop=credentials.qop,
        nc=credentials.nc,
        cnonce=credentials.cnonce,
        body=body,
    )


def verify_credentials(
    credentials: Credentials,
    *,
    password: str,
    method: str,
    body: bytes = b"",
    username: str | None = None,
) -> bool:
    """True when the credentials' response matches ``password`` (constant-time compare).

    With ``userhash=true`` the hashed username is checked against ``username`` too.
    Checking the nonce's freshness, the nonce count and that ``uri`` equals the
    Request-URI is the caller's job.  Raises as :func:`expected_response`.
    """
    expected = expected_response(
        credentials, password=password, method=method, body=body, username=username
    )
    if credentials.userhash:
        assert username is not None  # expected_response raised otherwise
        hashed = userhash(username, credentials.realm, credentials.algorithm or "MD5")
        if not hmac.compare_digest(hashed, credentials.username.lower()):
            return False
    return hmac.compare_digest(expected, credentials.response.lower())


# --------------------------------------------------------------------------- client


class DigestClient:
    """Answers 401/407 challenges and keeps the nonce count (sans-IO, no clock).

    The count starts at 1 for a nonce not seen before and increases each time the
    same nonce is answered again (RFC 7616 §3.4: a reused nonce needs a larger nc);
    a new nonce for a realm replaces the old one and starts again at 1.

    Recommended agent loop: answer the first challenge; if the request is challenged
    again, answer once more only when :func:`is_stale` says so (the nonce expired),
    otherwise report the credentials as rejected.
    """

    def __init__(
        self, *, prefer_auth_int: bool = False, algorithms: Sequence[str] | None = None
    ) -> None:
        self.prefer_auth_int = prefer_auth_int
        self.algorithms = list(algorithms) if algorithms is not None else None
        # realm -> (nonce, last nc used); one nonce per realm keeps this bounded.
        self._counts: dict[str, tuple[str, int]] = {}
        self.last_challenge: Challenge | None = None

    def nonce_count(self, realm: str, nonce: str) -> int:
        """The nc the next answer to ``nonce`` in ``realm`` will carry."""
        current = self._counts.get(realm)
        if current is None or current[0] != nonce:
            return 1
        return current[1] + 1

    def _chosen(self, response: Response) -> list[ReceivedChallenge]:
        received = challenges_from_response(response)
        chosen = choose_per_realm([rc.challenge for rc in received], algorithms=self.algorithms)
        if not chosen:
            offered = [rc.challenge.algorithm_name for rc in received]
            raise LocalProtocolError(
                f"no supported Digest challenge in {response.status} (offered: {offered})"
            )
        # Identity, not equality: the same challenge could come in both header kinds.
        return [next(rc for rc in received if rc.challenge is ch) for ch in chosen]

    def _answer_one(
        self,
        received: ReceivedChallenge,
        *,
        method: str,
        request_uri: str,
        username: str,
        password: str,
        cnonce: str,
        body: bytes,
    ) -> tuple[str, str]:
        challenge = received.challenge
        nc = self.nonce_count(challenge.realm, challenge.nonce)
        creds = build_credentials(
            challenge,
            method=method,
            request_uri=request_uri,
            username=username,
            password=password,
            cnonce=cnonce,
            nc=nc,
            body=body,
            prefer_auth_int=self.prefer_auth_int,
        )
        if creds.nc is not None:
            self._counts[challenge.realm] = (challenge.nonce, nc)
        self.last_challenge = challenge
        return received.answer_header, creds.to_header_value()

    def answer_all(
        self,
        response: Response,
        *,
        method: str,
        request_uri: str,
        username: str,
        password: str,
        cnonce: str,
        body: bytes = b"",
    ) -> list[tuple[str, str]]:
        """``(header name, header value)`` for every realm challenged (RFC 3261 §22.3).

        Raises LocalProtocolError when no challenge is supported, RemoteProtocolError
        when a challenge header is malformed.
        """
        return [
            self._answer_one(
                rc,
                method=method,
                request_uri=request_uri,
                username=username,
                password=password,
                cnonce=cnonce,
                body=body,
            )
            for rc in self._chosen(response)
        ]

    def answer(
        self,
        response: Response,
        *,
        method: str,
        request_uri: str,
        username: str,
        password: str,
        cnonce: str,
        body: bytes = b"",
    ) -> tuple[str, str]:
        """``(header name, header value)`` answering the strongest challenge of the
        first realm challenged; ``last_challenge`` is then the challenge answered
        (its ``stale`` flag included).  Raises as :meth:`answer_all`.
        """
        return self._answer_one(
            self._chosen(response)[0],
            method=method,
            request_uri=request_uri,
            username=username,
            password=password,
            cnonce=cnonce,
            body=body,
        )
