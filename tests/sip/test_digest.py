"""Digest authentication: RFC vectors, choosing, 401/407, stale, nonce counts, parsing."""

from __future__ import annotations

import hashlib
import random
import re

import pytest

from harness.sip import digest
from harness.sip.digest import (
    Challenge,
    DigestAlgorithm,
    DigestClient,
    build_credentials,
    challenges_from_response,
    choose_challenge,
    choose_per_realm,
    compute_response,
    expected_response,
    is_stale,
    new_cnonce,
    parse_challenge,
    parse_challenges,
    parse_credentials,
    userhash,
    verify_credentials,
)
from harness.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from harness.sip.message import Response, make_response

# --- RFC 7616 §3.9.1 -----------------------------------------------------------------

RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def rfc7616_challenge(algorithm: str) -> str:
    # The server's two WWW-Authenticate values of RFC 7616 §3.9.1, unfolded.
    return (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", '
        f'algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )


def challenge_response(status: int, *headers: tuple[str, str]) -> Response:
    reason = {401: "Unauthorized", 407: "Proxy Authentication Required"}[status]
    return make_response(status, reason, [("Call-ID", "abc"), ("CSeq", "1 REGISTER"), *headers])


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_3_9_1_example(algorithm: str, expected: str) -> None:
    challenge = parse_challenge(rfc7616_challenge(algorithm))
    creds = build_credentials(
        challenge,
        method="GET",
        request_uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
    )
    assert creds.response == expected
    assert creds.to_header_value() == (
        'Digest username="Mufasa", realm="http-auth@example.org", '
        f'nonce="{RFC7616_NONCE}", uri="/dir/index.html", response="{expected}", '
        f'algorithm={algorithm}, cnonce="{RFC7616_CNONCE}", qop=auth, nc=00000001, '
        f'opaque="{RFC7616_OPAQUE}"'
    )
    # The server side accepts it, and only with the right password.
    parsed = parse_credentials(creds.to_header_value())
    assert parsed == creds
    assert verify_credentials(parsed, password="Circle of Life", method="GET")
    assert not verify_credentials(parsed, password="Circle of life", method="GET")
    assert not verify_credentials(parsed, password="Circle of Life", method="POST")


def test_rfc7616_client_picks_sha256_of_the_two_challenges() -> None:
    # RFC 7616 §3.9.1 sends SHA-256 first and MD5 second; we send MD5 first here so
    # that picking by order would give the wrong answer.
    response = challenge_response(
        401,
        ("WWW-Authenticate", rfc7616_challenge("MD5")),
        ("WWW-Authenticate", rfc7616_challenge("SHA-256")),
    )
    name, value = DigestClient().answer(
        response,
        method="GET",
        request_uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
    )
    assert name == "Authorization"
    assert 'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"' in value
    assert "algorithm=SHA-256," in value


# --- RFC 7616 §3.9.2 (SHA-512-256, userhash, Unicode user name) -----------------------

RFC7616_2_NONCE = "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK"
RFC7616_2_CNONCE = "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v"
RFC7616_2_OPAQUE = "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS"
JASON = "J\u00e4s\u00f8n Doe"


def rfc7616_2_credentials() -> digest.Credentials:
    challenge = parse_challenge(
        'Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, '
        f'nonce="{RFC7616_2_NONCE}", opaque="{RFC7616_2_OPAQUE}", charset=UTF-8, userhash=true'
    )
    assert challenge.userhash
    assert challenge.charset == "UTF-8"
    return build_credentials(
        challenge,
        method="GET",
        request_uri="/doe.json",
        username=JASON,
        password="Secret, or not?",
        cnonce=RFC7616_2_CNONCE,
    )


def test_sha512_256_is_fips_sha512_256() -> None:
    assert "sha512_256" in hashlib.algorithms_available
    assert "SHA-512-256" in digest.ALGORITHMS
    # FIPS 180-4 SHA-512/256 of the empty string (own initial values, not SHA-512 cut).
    assert (
        digest.ALGORITHMS["SHA-512-256"].hexdigest(b"")
        == "c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a"
    )


def test_rfc7616_3_9_2_printed_values_come_from_truncated_sha512(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The RFC's printed username hash and response were computed with SHA-512 cut to
    256 bits, not SHA-512/256 (RFC errata ID 4897).  Substituting that function
    reproduces both values, which proves the rest of the computation (UTF-8 user
    name, userhash, field order) matches the RFC."""

    def truncated_sha512(data: bytes) -> str:
        return hashlib.sha512(data).hexdigest()[:64]

    monkeypatch.setitem(
        digest.ALGORITHMS,
        "SHA-512-256",
        DigestAlgorithm("SHA-512-256", truncated_sha512, strength=3, session=False),
    )
    creds = rfc7616_2_credentials()
    assert creds.username == "488869477bf257147b804c45308cd62ac4e25eb717b12b298c79e62dcea254ec"
    assert creds.response == "ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd"
    assert creds.userhash
    assert creds.to_header_value().endswith(f'opaque="{RFC7616_2_OPAQUE}", userhash=true')


def test_rfc7616_3_9_2_with_real_sha512_256() -> None:
    creds = rfc7616_2_credentials()
    assert creds.username == "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    assert creds.response == "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
    parsed = parse_credentials(creds.to_header_value())
    assert verify_credentials(parsed, password="Secret, or not?", method="GET", username=JASON)
    assert not verify_credentials(
        parsed, password="Secret, or not?", method="GET", username="Jason Doe"
    )
    with pytest.raises(LocalProtocolError):
        verify_credentials(parsed, password="Secret, or not?", method="GET")


# --- RFC 2617 / 3261 MD5 forms ----------------------------------------------------------

RFC2617 = {
    "realm": "testrealm@host.com",
    "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
    "username": "Mufasa",
    "password": "Circle Of Life",
}


def rfc2617(extra: str = "") -> Challenge:
    return parse_challenge(
        f'Digest realm="{RFC2617["realm"]}", nonce="{RFC2617["nonce"]}"'
        + (f", {extra}" if extra else "")
    )


def answer_rfc2617(
    challenge: Challenge,
    method: str = "GET",
    uri: str = "/dir/index.html",
    body: bytes = b"",
    **kw: bool,
) -> digest.Credentials:
    return build_credentials(
        challenge,
        method=method,
        request_uri=uri,
        username=RFC2617["username"],
        password=RFC2617["password"],
        cnonce="0a4f113b",
        body=body,
        **kw,
    )


def test_md5_without_qop_rfc2069_form() -> None:
    creds = answer_rfc2617(rfc2617())
    assert creds.response == "670fd8c2df070c60b045671b8b24ff02"
    value = creds.to_header_value()
    for absent in ("qop=", "nc=", "cnonce="):
        assert absent not in value
    assert value.endswith('response="670fd8c2df070c60b045671b8b24ff02", algorithm=MD5')
    assert verify_credentials(parse_credentials(value), password="Circle Of Life", method="GET")


def test_md5_qop_auth_rfc2617_example() -> None:
    challenge = rfc2617('qop="auth,auth-int", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    creds = answer_rfc2617(challenge)
    assert creds.qop == "auth"
    assert creds.response == "6629fae49393a05397450978507c4ef1"


def reference(alg: str, a1: str, a2: str, tail: str) -> str:
    """An independent spelling of RFC 7616 §3.4.1 for the vectors below."""
    ha1 = hashlib.new(alg, a1.encode()).hexdigest()
    ha2 = hashlib.new(alg, a2.encode()).hexdigest()
    return hashlib.new(alg, f"{ha1}:{tail}:{ha2}".encode()).hexdigest()


def test_md5_sess() -> None:
    creds = answer_rfc2617(rfc2617("algorithm=MD5-sess, qop=auth"))
    # Cross-checked with another project's vector.
    assert creds.response == "8e3825c57e897f5a0dec6c2d4e5059d0"
    assert creds.algorithm == "MD5-sess"
    assert verify_credentials(
        parse_credentials(creds.to_header_value()), password="Circle Of Life", method="GET"
    )


def test_sha256_sess_matches_independent_computation() -> None:
    creds = answer_rfc2617(rfc2617("algorithm=SHA-256-sess, qop=auth"))
    ha1 = hashlib.sha256(b"Mufasa:testrealm@host.com:Circle Of Life").hexdigest()
    sess_a1 = f"{ha1}:{RFC2617['nonce']}:0a4f113b"
    expected = reference(
        "sha256", sess_a1, "GET:/dir/index.html", f"{RFC2617['nonce']}:00000001:0a4f113b:auth"
    )
    assert creds.response == expected
    # -sess changes the result: the plain algorithm gives something else.
    assert answer_rfc2617(rfc2617("algorithm=SHA-256, qop=auth")).response != expected


def test_auth_int_hashes_the_body() -> None:
    challenge = rfc2617('qop="auth-int"')
    creds = answer_rfc2617(challenge, method="POST", uri="/upload", body=b"hello")
    assert creds.qop == "auth-int"
    assert creds.response == "8935168e979f86fcb58c43e31a59c91b"
    other = answer_rfc2617(challenge, method="POST", uri="/upload", body=b"hellO")
    assert other.response != creds.response
    parsed = parse_credentials(creds.to_header_value())
    assert verify_credentials(parsed, password="Circle Of Life", method="POST", body=b"hello")
    assert not verify_credentials(parsed, password="Circle Of Life", method="POST", body=b"")


def test_auth_int_with_empty_body_hashes_empty_bytes() -> None:
    creds = answer_rfc2617(rfc2617("qop=auth-int"), method="REGISTER", uri="sip:example.com")
    body_hash = hashlib.md5(b"").hexdigest()
    expected = reference(
        "md5",
        "Mufasa:testrealm@host.com:Circle Of Life",
        f"REGISTER:sip:example.com:{body_hash}",
        f"{RFC2617['nonce']}:00000001:0a4f113b:auth-int",
    )
    assert creds.response == expected


def test_sha512_256_qop_auth() -> None:
    creds = answer_rfc2617(rfc2617("algorithm=SHA-512-256, qop=auth"))
    assert creds.response == "f23c08ec7334a881f8286e68450ddbd9f0cd91c41481f0e1433604da8113c6dc"


def test_qop_auth_preferred_unless_asked() -> None:
    both = rfc2617('qop="auth-int,auth"')
    assert answer_rfc2617(both).qop == "auth"
    assert answer_rfc2617(both, prefer_auth_int=True).qop == "auth-int"
    assert answer_rfc2617(rfc2617('qop="auth"'), prefer_auth_int=True).qop == "auth"
    assert answer_rfc2617(rfc2617("qop=auth-int")).qop == "auth-int"


# --- choosing ------------------------------------------------------------------------------


def ch(algorithm: str | None, realm: str = "r", nonce: str = "n", qop: str = "auth") -> Challenge:
    alg = f", algorithm={algorithm}" if algorithm is not None else ""
    return parse_challenge(f'Digest realm="{realm}", nonce="{nonce}", qop="{qop}"{alg}')


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["MD5", "SHA-256", "SHA-512-256"], "SHA-512-256"),
        (["SHA-512-256", "MD5", "SHA-256"], "SHA-512-256"),
        ([None, "SHA-256"], "SHA-256"),
        (["SHA-256", "MD5"], "SHA-256"),
        (["AKAv1-MD5", "SHA-1", "MD5"], "MD5"),
        (["MD5-sess", "SHA-256-sess"], "SHA-256-sess"),
        (["sha-256", "md5"], "sha-256"),
    ],
)
def test_choose_strongest(offered: list[str | None], chosen: str) -> None:
    best = choose_challenge([ch(a) for a in offered])
    assert best is not None
    assert best.algorithm_name == chosen


def test_choose_nothing_supported() -> None:
    assert choose_challenge([ch("SHA-1"), ch("AKAv1-MD5")]) is None
    # No qop we know, an empty algorithm, and -sess without qop are not answerable.
    assert choose_challenge([ch("MD5", qop="auth-conf")]) is None
    assert choose_challenge([parse_challenge('Digest realm="r", nonce="n", algorithm=""')]) is None
    assert (
        choose_challenge([parse_challenge('Digest realm="r", nonce="n", algorithm=MD5-sess')])
        is None
    )
    assert choose_challenge([]) is None


def test_choose_restricted_algorithms_and_realm() -> None:
    offered = [ch("MD5", realm="a"), ch("SHA-256", realm="b"), ch("SHA-512-256", realm="a")]
    only_md5 = choose_challenge(offered, algorithms=["md5"])
    assert only_md5 is not None
    assert only_md5.algorithm_name == "MD5"
    in_b = choose_challenge(offered, realm="b")
    assert in_b is not None
    assert in_b.realm == "b"
    per_realm = choose_per_realm(offered)
    assert [(c.realm, c.algorithm_name) for c in per_realm] == [
        ("a", "SHA-512-256"),
        ("b", "SHA-256"),
    ]


def test_client_refusing_md5_raises_local_error() -> None:
    response = challenge_response(401, ("WWW-Authenticate", rfc7616_challenge("MD5")))
    client = DigestClient(algorithms=["SHA-256", "SHA-512-256"])
    with pytest.raises(LocalProtocolError, match="no supported Digest challenge"):
        client.answer(
            response,
            method="REGISTER",
            request_uri="sip:x",
            username="u",
            password="p",
            cnonce="c",
        )


# --- 401 / 407 ------------------------------------------------------------------------------


def answer(
    client: DigestClient, response: Response, uri: str = "sip:example.com", cnonce: str = "c0ffee"
) -> tuple[str, str]:
    return client.answer(
        response,
        method="REGISTER",
        request_uri=uri,
        username="alice",
        password="s3cret",
        cnonce=cnonce,
    )


def test_401_answers_with_authorization_407_with_proxy_authorization() -> None:
    r401 = challenge_response(401, ("WWW-Authenticate", 'Digest realm="reg", nonce="a"'))
    r407 = challenge_response(407, ("Proxy-Authenticate", 'Digest realm="prx", nonce="b"'))
    name401, value401 = answer(DigestClient(), r401)
    name407, value407 = answer(DigestClient(), r407)
    assert name401 == "Authorization"
    assert name407 == "Proxy-Authorization"
    assert parse_credentials(value401).realm == "reg"
    assert parse_credentials(value407).realm == "prx"


def test_aggregated_challenges_are_answered_per_realm() -> None:
    response = challenge_response(
        407,
        ("Proxy-Authenticate", 'Digest realm="proxy", nonce="p1", algorithm=MD5, qop="auth"'),
        ("Proxy-Authenticate", 'Digest realm="proxy", nonce="p2", algorithm=SHA-256, qop="auth"'),
        ("WWW-Authenticate", 'Digest realm="registrar", nonce="r1", qop="auth"'),
        ("WWW-Authenticate", 'Basic realm="registrar"'),
    )
    found = challenges_from_response(response)
    assert [(f.answer_header, f.challenge.nonce) for f in found] == [
        ("Proxy-Authorization", "p1"),
        ("Proxy-Authorization", "p2"),
        ("Authorization", "r1"),
    ]
    answers = DigestClient().answer_all(
        response,
        method="INVITE",
        request_uri="sip:+15551234567@example.com",
        username="alice",
        password="pw",
        cnonce="c",
    )
    assert [(n, parse_credentials(v).nonce) for n, v in answers] == [
        ("Proxy-Authorization", "p2"),
        ("Authorization", "r1"),
    ]


def test_response_without_challenge_gives_empty_list_and_client_raises() -> None:
    response = challenge_response(401)
    assert challenges_from_response(response) == []
    assert not is_stale(response)
    with pytest.raises(LocalProtocolError):
        answer(DigestClient(), response)


# --- stale and nonce counts -----------------------------------------------------------------


def test_stale_flag_is_reported() -> None:
    first = challenge_response(401, ("WWW-Authenticate", 'Digest realm="r", nonce="n1", qop=auth'))
    stale = challenge_response(
        401, ("WWW-Authenticate", 'Digest realm="r", nonce="n2", qop=auth, stale=TRUE')
    )
    rejected = challenge_response(
        401, ("WWW-Authenticate", 'Digest realm="r", nonce="n3", qop=auth, stale="false"')
    )
    assert not is_stale(first)
    assert is_stale(stale)
    assert not is_stale(rejected)
    client = DigestClient()
    answer(client, first)
    assert client.last_challenge is not None
    assert not client.last_challenge.stale
    answer(client, stale)
    assert client.last_challenge.stale
    assert client.last_challenge.nonce == "n2"


def test_nonce_count_increments_for_same_nonce_and_resets_for_new() -> None:
    client = DigestClient()
    same = challenge_response(401, ("WWW-Authenticate", 'Digest realm="r", nonce="n1", qop=auth'))
    ncs = [parse_credentials(answer(client, same)[1]).nc for _ in range(3)]
    assert ncs == ["00000001", "00000002", "00000003"]
    assert client.nonce_count("r", "n1") == 4
    new = challenge_response(401, ("WWW-Authenticate", 'Digest realm="r", nonce="n2", qop=auth'))
    assert parse_credentials(answer(client, new)[1]).nc == "00000001"
    # Another realm keeps its own count.
    other = challenge_response(
        407, ("Proxy-Authenticate", 'Digest realm="p", nonce="n1", qop=auth')
    )
    assert parse_credentials(answer(client, other)[1]).nc == "00000001"
    assert parse_credentials(answer(client, new)[1]).nc == "00000002"


def test_nonce_count_is_hex() -> None:
    creds = build_credentials(
        ch("MD5"),
        method="OPTIONS",
        request_uri="sip:a",
        username="u",
        password="p",
        cnonce="c",
        nc=255,
    )
    assert creds.nc == "000000ff"
    with pytest.raises(LocalProtocolError):
        build_credentials(
            ch("MD5"),
            method="OPTIONS",
            request_uri="sip:a",
            username="u",
            password="p",
            cnonce="c",
            nc=0,
        )


# --- the digest uri is the Request-URI, byte for byte ----------------------------------------


@pytest.mark.parametrize(
    "request_uri",
    [
        "sip:+15551234567@example.com;user=phone",
        "sip:%2B15551234567@Example.COM:5060;transport=TCP",
        "sips:[2001:db8::1]:5061",
    ],
)
def test_digest_uri_is_request_uri_verbatim(request_uri: str) -> None:
    client = DigestClient()
    response = challenge_response(
        401, ("WWW-Authenticate", 'Digest realm="r", nonce="n", qop=auth')
    )
    _, value = client.answer(
        response,
        method="INVITE",
        request_uri=request_uri,
        username="u",
        password="p",
        cnonce="c",
    )
    assert f'uri="{request_uri}"' in value
    creds = parse_credentials(value)
    assert creds.uri == request_uri
    assert creds.response == compute_response(
        algorithm="MD5",
        username="u",
        realm="r",
        password="p",
        method="INVITE",
        uri=request_uri,
        nonce="n",
        qop="auth",
        nc="00000001",
        cnonce="c",
    )


# --- parsing --------------------------------------------------------------------------------


def test_parse_odd_whitespace_escapes_and_unknown_params() -> None:
    value = (
        'DIGEST   Realm = "sip \\"carrier\\" \\\\ net" ,NONCE="x/y+z=",\t,  '
        'qop = "auth , Auth-Int" ,algorithm = md5 , X-Vendor=abc,stale=TRUE,'
        'domain="sip:a.example sip:b.example", opaque=""'
    )
    c = parse_challenge(value)
    assert c.realm == 'sip "carrier" \\ net'
    assert c.nonce == "x/y+z="
    assert c.qop == ("auth", "auth-int")
    assert c.algorithm == "md5"
    assert c.stale
    assert c.domain == ("sip:a.example", "sip:b.example")
    assert c.opaque == ""
    assert ("x-vendor", "abc") in c.params
    # Serialising and parsing again gives the same challenge (escapes survive).
    assert parse_challenge(c.to_header_value()) == c


def test_parse_unquoted_values_and_multiple_schemes_on_one_line() -> None:
    found = parse_challenges(
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, Digest realm=a, nonce=abc/def==, qop=auth, "
        'Bearer realm="x", Digest realm="b", nonce="n2", algorithm=SHA-256'
    )
    assert [(c.realm, c.nonce, c.algorithm) for c in found] == [
        ("a", "abc/def==", None),
        ("b", "n2", "SHA-256"),
    ]


@pytest.mark.parametrize(
    "value",
    [
        'Digest realm="r, nonce="n"',  # unterminated quote
        'Digest realm="r"',  # no nonce
        'Digest nonce="n"',  # no realm
        'Digest realm="r", realm="s", nonce="n"',  # duplicate
        'Digest realm=, nonce="n"',  # empty bare value
        'Digest realm="r", nonce="n", ="x"',  # no name
        '"Digest" realm="r"',
    ],
)
def test_malformed_challenges_raise_remote_error(value: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_challenges(value)


def test_parse_captured_sip_authorization() -> None:
    # As a SIP UA sends it (RFC 3261 §22.4 example form), with odd spacing.
    value = (
        'Digest username="bob",realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",'
        ' uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b",  '
        'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    creds = parse_credentials(value)
    assert (creds.username, creds.realm, creds.uri) == ("bob", "biloxi.com", "sip:bob@biloxi.com")
    assert (creds.qop, creds.nc, creds.cnonce) == ("auth", "00000001", "0a4f113b")
    assert creds.algorithm is None
    assert creds.opaque == "5ccc069c403ebaf9f0171e9517f40e41"


def test_parse_credentials_username_star() -> None:
    creds = parse_credentials(
        'Digest username*=UTF-8\'\'J%C3%A4s%C3%B8n%20Doe, realm="r", nonce="n", '
        'uri="/", response="x"'
    )
    assert creds.username == JASON


@pytest.mark.parametrize(
    "value",
    [
        'Digest realm="r", nonce="n", uri="/", response="x"',  # no username
        'Digest username="u", realm="r", nonce="n", uri="/"',  # no response
        "Basic dXNlcjpwYXNz",
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", Digest foo=bar',
    ],
)
def test_malformed_credentials_raise_remote_error(value: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_credentials(value)


def test_server_side_rejects_unknown_algorithm_and_incomplete_qop() -> None:
    bad_alg = parse_credentials(
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", algorithm=SHA-1'
    )
    with pytest.raises(RemoteProtocolError):
        verify_credentials(bad_alg, password="p", method="GET")
    no_cnonce = parse_credentials(
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth, nc=00000001'
    )
    with pytest.raises(RemoteProtocolError):
        expected_response(no_cnonce, password="p", method="GET")


# --- local misuse, randomness, error classes --------------------------------------------------


def test_values_that_cannot_go_on_the_wire_raise_local_error() -> None:
    def build(challenge: Challenge, uri: str, username: str) -> digest.Credentials:
        return build_credentials(
            challenge,
            method="REGISTER",
            request_uri=uri,
            username=username,
            password="p",
            cnonce="c",
        )

    with pytest.raises(LocalProtocolError):
        build(ch("MD5"), "sip:a", "u\r\nX: y")
    with pytest.raises(LocalProtocolError):
        build(ch("MD5"), "sip:a b", "u")
    with pytest.raises(LocalProtocolError):
        build(ch("SHA-1"), "sip:a", "u")
    # Quotes and backslashes in a user name are escaped, and read back intact.
    creds = build(ch("MD5"), "sip:a", 'a"b\\c')
    assert parse_credentials(creds.to_header_value()).username == 'a"b\\c'


def test_new_cnonce_is_reproducible_with_an_injected_rng() -> None:
    first = new_cnonce(random.Random(7))
    assert first == new_cnonce(random.Random(7))
    assert first != new_cnonce(random.Random(8))
    assert re.fullmatch(r"[0-9a-f]{32}", first)


def test_userhash_helper() -> None:
    assert userhash("u", "r") == hashlib.md5(b"u:r").hexdigest()
    with pytest.raises(LocalProtocolError):
        userhash("u", "r", "SHA-1")


def test_every_error_is_a_sip_error() -> None:
    for exc_type in (LocalProtocolError, RemoteProtocolError):
        assert issubclass(exc_type, SipError)
    with pytest.raises(SipError):
        parse_challenge("Digest")
