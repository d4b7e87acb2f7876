"""URIs, name-addr and Via: parsing, serialising, round trips, rejection."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sip import uri as uri_module
from harness.sip.errors import RemoteProtocolError
from harness.sip.uri import (
    NameAddr,
    SipUri,
    TelUri,
    Via,
    check_name_addr,
    check_request_uri,
    check_via,
    parse_name_addr,
    parse_params,
    parse_sip_uri,
    parse_uri,
    parse_via,
    quote,
    unescape,
)

# --- SIP URIs ----------------------------------------------------------------------


def test_sip_uri_every_component() -> None:
    uri = parse_sip_uri("sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=hi&x=")
    assert uri == SipUri(
        scheme="sips",
        user="alice",
        password="secret",
        host="atlanta.example.com",
        port=5061,
        params=(("transport", "tcp"), ("lr", None)),
        headers=(("subject", "hi"), ("x", "")),
    )
    assert uri.transport == "tcp"
    assert uri.has_param("LR")
    assert uri.param("Transport") == "tcp"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:127.0.0.1", "127.0.0.1", None),
        ("sip:bob@192.0.2.4:5060", "192.0.2.4", 5060),
        ("sip:[::1]", "::1", None),
        ("sip:bob@[2001:db8::10]:5070", "2001:db8::10", 5070),
        ("sip:[2001:db8::192.0.2.1]", "2001:db8::192.0.2.1", None),
        ("sip:trunk.example.com.", "trunk.example.com.", None),
        ("sip:a-b.c_d.example", "a-b.c_d.example", None),
        ("sip:localhost:65535", "localhost", 65535),
    ],
)
def test_sip_uri_hosts(text: str, host: str, port: int | None) -> None:
    uri = parse_sip_uri(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


def test_ipv6_host_is_bracketed_on_output() -> None:
    uri = SipUri(host="2001:db8::1", port=5060, user="+15551230001")
    assert str(uri) == "sip:+15551230001@[2001:db8::1]:5060"
    assert uri.hostport == "[2001:db8::1]:5060"


@pytest.mark.parametrize(
    "text",
    [
        "sip:+15551230001@trunk.example.com;user=phone",
        "sip:alice@atlanta.example.com;maddr=239.255.255.1;ttl=15",
        "sip:%61lice@example.com",
        "sip:user;par=u%40example.net@example.com",
        "sips:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        "sip:example.com?Route=%3Csip:sip.example.com%3E",
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31",
        "sip:alice:@example.com",
    ],
)
def test_sip_uri_text_round_trips_exactly(text: str) -> None:
    assert str(parse_sip_uri(text)) == text


def test_scheme_is_case_insensitive_and_lowered() -> None:
    assert parse_sip_uri("SIP:Bob@Example.COM").scheme == "sip"
    assert parse_sip_uri("SIPS:bob@example.com").scheme == "sips"


def test_escapes_kept_and_decodable() -> None:
    uri = parse_sip_uri("sip:I%20have%20spaces@example.net")
    assert uri.user == "I%20have%20spaces"
    assert uri.user_unescaped == "I have spaces"
    assert unescape("%E2%82%AC 100%25") == "€ 100%"


def test_plain_text_components_are_escaped_on_output() -> None:
    uri = SipUri(
        user="a b@c",
        password="p:w",
        host="example.com",
        params=(("x", "<v>"),),
        headers=(("Subject", "hi there&more"),),
    )
    text = str(uri)
    assert text == "sip:a%20b%40c:p%3Aw@example.com;x=%3Cv%3E?Subject=hi%20there%26more"
    again = parse_sip_uri(text)
    assert again.user_unescaped == "a b@c"
    assert unescape(again.headers[0][1]) == "hi there&more"


def test_existing_escapes_are_not_escaped_twice() -> None:
    assert str(SipUri(user="%41b%", host="x.example")) == "sip:%41b%25@x.example"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@example.com",
        "sip:bob@",
        "sip:bob@exa mple.com",
        "sip:bob@example.com:70000",
        "sip:bob@example.com:",
        "sip:bob@192.0.2.300",
        "sip:bob@1.2.3",
        "sip:bob@[::1",
        "sip:bob@[1:2:3:4:5:6:7:8:9]",
        "sip:bob@[127.0.0.1]",
        "sip:bob@-example.com",
        "sip:bob@example-.com",
        "sip:bob@example..com",
        "sip:b%zzob@example.com",
        "sip:bob@example.com;=x",
        "sip:bob@example.com;lr=",
        "sip:bob@example.com?",
        "sip:bob@example.com?noequals",
        "sip:bob@example.com>",
        "<sip:bob@example.com>",
        "http://example.com",
    ],
)
def test_malformed_sip_uris_are_rejected(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_sip_uri(text)


# --- tel and dispatch ----------------------------------------------------------------


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=1234;isub=abc")
    assert uri == TelUri(number="+1-201-555-0123", params=(("ext", "1234"), ("isub", "abc")))
    assert isinstance(uri, TelUri)
    assert uri.is_global
    assert str(uri) == "tel:+1-201-555-0123;ext=1234;isub=abc"
    local = parse_uri("tel:7042;phone-context=example.com")
    assert isinstance(local, TelUri)
    assert not local.is_global
    assert str(local) == "tel:7042;phone-context=example.com"


@pytest.mark.parametrize("text", ["tel:", "tel:+", "tel:+1-x", "tel:12;=a", "tel:12;a=", "tel:1 2"])
def test_malformed_tel_uris_are_rejected(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_uri(text)


def test_parse_uri_dispatches_and_refuses_other_schemes() -> None:
    assert isinstance(parse_uri("sip:a@b.example"), SipUri)
    assert isinstance(parse_uri("tel:+15551230001"), TelUri)
    with pytest.raises(RemoteProtocolError, match="scheme"):
        parse_uri("mailto:a@b.example")


def test_request_uri_check() -> None:
    check_request_uri("sip:bob@example.com;transport=tcp")
    check_request_uri("nobodyKnowsThisScheme:totallyopaquecontent")
    check_request_uri("sip:[::1]:5060")
    for bad in ("sip:bob@example.com?Route=%3Csip:x%3E", "<sip:bob@example.com>", "sip:"):
        with pytest.raises(RemoteProtocolError):
            check_request_uri(bad)


# --- name-addr -------------------------------------------------------------------------


def test_name_addr_with_quoted_display_name_and_escaped_quotes() -> None:
    value = parse_name_addr('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8')
    assert value.display_name == 'J Rosenberg \\"'
    assert value.tag == "98asjd8"
    assert str(value) == '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8'


def test_name_addr_forms() -> None:
    token = parse_name_addr("Alice Smith <sip:alice@atlanta.example.com>")
    assert token.display_name == "Alice Smith"
    tight = parse_name_addr("caller<sip:caller@example.com>;tag=323")
    assert (tight.display_name, tight.tag) == ("caller", "323")
    bare = parse_name_addr("<sip:alice@atlanta.example.com;transport=tcp>;expires=60")
    assert bare.display_name is None
    assert isinstance(bare.uri, SipUri)
    assert bare.uri.params == (("transport", "tcp"),)
    assert bare.params == (("expires", "60"),)


def test_addr_spec_parameters_belong_to_the_header() -> None:
    value = parse_name_addr("sip:+16505552222@ss1.example.net;user=phone;tag=1")
    assert isinstance(value.uri, SipUri)
    assert value.uri.params == ()
    assert value.params == (("user", "phone"), ("tag", "1"))
    # serialised in <> so the parameters stay header parameters
    assert str(value) == "<sip:+16505552222@ss1.example.net>;user=phone;tag=1"
    assert parse_name_addr(str(value)) == value


def test_lws_around_parameters() -> None:
    value = parse_name_addr("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")
    assert value.tag == "1918181833n"
    contact = parse_name_addr(
        '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ;'
        " secondparam ; q = 0.33"
    )
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))


def test_quoted_parameter_values_keep_quotes() -> None:
    value = parse_name_addr(
        '<sip:a@192.0.2.1:5060>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1'
    )
    assert value.param("+sip.instance") == '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'
    assert value.param("reg-id") == "1"
    assert parse_name_addr(str(value)) == value


def test_display_name_is_quoted_and_escaped_on_output() -> None:
    value = NameAddr(uri=SipUri(user="a", host="example.com"), display_name='Bell, "Alex"\\')
    assert str(value) == '"Bell, \\"Alex\\"\\\\" <sip:a@example.com>'
    assert parse_name_addr(str(value)) == value
    controls = NameAddr(uri=SipUri(host="example.com"), display_name="BEL:\x07 NUL:\x00 DEL:\x7f")
    assert str(controls) == '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:example.com>'
    assert parse_name_addr(str(controls)) == controls
    assert quote("") == '""'


def test_tel_in_name_addr() -> None:
    value = parse_name_addr("<tel:+15551230001>;tag=x")
    assert value.uri == TelUri(number="+15551230001")
    assert str(value) == "<tel:+15551230001>;tag=x"


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"Mr. J. User <sip:j.user@example.com>',
        '"Watson, Thomas" < sip:t.watson@example.org >',
        "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "<sip:user@example.com",
        '"quoted" sip:user@example.com',
        "<sip:user@example.com> junk",
        "<sip:user@example.com>;=1",
        "<sip:user@example.com>;tag=",
        "<sip:user@example.com>;;",
    ],
)
def test_malformed_name_addr_is_rejected(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        check_name_addr(text)
    with pytest.raises(RemoteProtocolError):
        parse_name_addr(text)


def test_name_addr_check_accepts_any_scheme() -> None:
    check_name_addr("isbn:2983792873")
    check_name_addr("<http://www.example.com>;tag=3234233")
    check_name_addr("<name:John_Smith>")
    with pytest.raises(RemoteProtocolError):
        parse_name_addr("isbn:2983792873")  # no type for it, so parse refuses


def test_parse_params_rejects_text_before_first_semicolon() -> None:
    assert parse_params("") == ()
    assert parse_params(" ;a;b=c") == (("a", None), ("b", "c"))
    with pytest.raises(RemoteProtocolError):
        parse_params("x;a")


# --- Via -----------------------------------------------------------------------------


def test_via_fields() -> None:
    via = parse_via("SIP/2.0/udp 192.0.2.1:5060;rport;branch=z9hG4bK776asdhds;received=10.0.0.1")
    assert via == Via(
        transport="UDP",
        host="192.0.2.1",
        port=5060,
        params=(("rport", None), ("branch", "z9hG4bK776asdhds"), ("received", "10.0.0.1")),
    )
    assert via.branch == "z9hG4bK776asdhds"
    assert via.received == "10.0.0.1"
    assert via.has_rport
    assert via.rport is None
    assert parse_via("SIP/2.0/TCP h.example.com;rport=5062").rport == 5062
    assert str(via) == "SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK776asdhds;received=10.0.0.1"


def test_via_ipv6() -> None:
    via = parse_via(
        "SIP/2.0/TLS [2001:db8::9:1]:5061;branch=z9hG4bKas3-111;received=2001:db8::9:255"
    )
    assert (via.transport, via.host, via.port) == ("TLS", "2001:db8::9:1", 5061)
    assert via.received == "2001:db8::9:255"
    assert via.sent_by == "[2001:db8::9:1]:5061"
    assert parse_via(str(via)) == via


def test_via_with_lws_everywhere() -> None:
    via = parse_via(
        "SIP  /   2.0 /UDP     spindle.example.com   :  5070  ; branch  =   z9hG4bK9ikj8"
    )
    assert (via.transport, via.host, via.port, via.branch) == (
        "UDP",
        "spindle.example.com",
        5070,
        "z9hG4bK9ikj8",
    )
    assert str(via) == "SIP/2.0/UDP spindle.example.com:5070;branch=z9hG4bK9ikj8"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "SIP/7.0/UDP host;branch=z9hG4bK1",
        "HTTP/2.0/UDP host",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP 192.0.2.15;;",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP [::1;branch=z9hG4bK1",
    ],
)
def test_malformed_via_is_rejected(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_via(text)
    with pytest.raises(RemoteProtocolError):
        check_via(text)


# --- properties -------------------------------------------------------------------------

_labels = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
_hosts = st.one_of(
    st.lists(_labels, min_size=1, max_size=4).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["::1", "2001:db8::1", "fe80::1:2:3"]),
)
_plain = st.text(
    alphabet=st.characters(exclude_characters="%", exclude_categories=["Cs"]),
    min_size=1,
    max_size=12,
)
_pnames = st.from_regex(r"[a-z][a-z0-9\-]{0,6}", fullmatch=True)
_params = st.lists(
    st.tuples(_pnames, st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9.\-]{1,8}", fullmatch=True))),
    max_size=3,
).map(tuple)


@settings(max_examples=150, deadline=None)
@given(
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.one_of(st.none(), _plain),
    host=_hosts,
    port=st.one_of(st.none(), st.integers(0, 65535)),
    params=_params,
)
def test_sip_uri_str_parses_back(
    scheme: str,
    user: str | None,
    host: str,
    port: int | None,
    params: tuple[tuple[str, str | None], ...],
) -> None:
    uri = SipUri(scheme=scheme, user=user, host=host, port=port, params=params)
    again = parse_sip_uri(str(uri))
    assert again.user_unescaped == user
    assert (again.scheme, again.host, again.port, again.params) == (scheme, host, port, params)
    # Once escaped, the text is stable.
    assert str(parse_sip_uri(str(again))) == str(again)


@settings(max_examples=150, deadline=None)
@given(
    display=st.one_of(
        st.none(),
        st.text(
            alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]),
            max_size=12,
        ),
    ),
    host=_hosts,
    params=_params,
)
def test_name_addr_str_parses_back(
    display: str | None, host: str, params: tuple[tuple[str, str | None], ...]
) -> None:
    value = NameAddr(uri=SipUri(user="u", host=host), display_name=display, params=params)
    assert parse_name_addr(str(value)) == value


@settings(max_examples=150, deadline=None)
@given(
    transport=st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]),
    host=_hosts,
    port=st.one_of(st.none(), st.integers(0, 65535)),
    params=_params,
)
def test_via_str_parses_back(
    transport: str, host: str, port: int | None, params: tuple[tuple[str, str | None], ...]
) -> None:
    via = Via(transport=transport, host=host, port=port, params=(("branch", "z9hG4bK1"), *params))
    assert parse_via(str(via)) == via


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_uri_functions_raise_only_remote_protocol_error(text: str) -> None:
    for function in (parse_uri, parse_name_addr, parse_via, check_name_addr, check_request_uri):
        with contextlib.suppress(RemoteProtocolError):
            function(text)


# The fast paths (one regex each) must never accept what the full parsers reject.
_FRAGMENTS = [
    "sip:",
    "sips:",
    "tel:",
    "<",
    ">",
    '"',
    '\\"',
    " ",
    "\t",
    ";",
    "=",
    ",",
    "?",
    "&",
    ":",
    "@",
    "%41",
    "%",
    "a",
    "Bob",
    "1",
    "255",
    "256",
    ".",
    "-",
    "_",
    "[",
    "]",
    "::1",
    "5060",
    "99999",
    "tag",
    "lr",
    "branch=z9hG4bK",
    "rport",
    "SIP/2.0/",
    "UDP ",
    "example.com",
    "192.0.2.1",
    "+1555",
]
_fragment_text = st.lists(st.sampled_from(_FRAGMENTS), max_size=14).map("".join)


def _slow_name_addr(text: str) -> None:
    _, uri, rest = uri_module.split_name_addr(text)
    uri_module.check_absolute_uri(uri)
    parse_params(rest)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_fragment_text, _fragment_text.map(lambda t: "sip:" + t)))
def test_fast_paths_accept_only_what_the_full_parsers_accept(text: str) -> None:
    if uri_module._FAST_NAME_ADDR_RE.fullmatch(text):
        _slow_name_addr(text)
    if uri_module._FAST_SIP_URI_RE.fullmatch(text):
        parse_sip_uri(text)
    if uri_module._FAST_VIA_RE.fullmatch("SIP/2.0/UDP " + text):
        parse_via("SIP/2.0/UDP " + text)
