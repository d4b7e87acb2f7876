"""RFC 4475 torture messages through :func:`parse_message` and :class:`StreamParser`.

Every file in ``tests/sip/torture/`` is classified below with its RFC section.

* ``VALID`` (§3.1.1, and the §3.2-§3.4 messages that are syntactically valid): parse
  with ``validate=True``; re-serialising and parsing again gives the same start line,
  the same headers (modulo Content-Length, which ``to_bytes`` rewrites) and body.
* ``INVALID`` (§3.1.2): ``RemoteProtocolError``, for the reason the RFC gives (the
  expected words of the error are in the table, so a message rejected for some other
  reason fails the test).
* ``SEMANTIC`` (§3.3.1 insuf, §3.3.8 multi01): grammatical, but missing or doubled
  mandatory headers; rejected by ``validate=True``, parsed by ``validate=False``.
* ``mcl01`` (§3.3.9, two different Content-Lengths) cannot be framed: always rejected.

Tolerance decisions:

* inv2543 (§3.4.1, RFC 2543 syntax) has no Max-Forwards: ``validate`` checks
  Max-Forwards only when present, as the RFC asks elements to accept this request.
* unkscm, novelsc, unksm2 (§3.3.2-§3.3.4) carry URIs of unknown schemes in the
  Request-URI, To, From and Contact: ``validate`` checks them as absolute URIs only.
* dblreq (§3.1.1.8) holds two requests in one datagram: the first is the message, the
  rest is dropped (RFC 3261 §18.3); on a stream the same bytes are two messages.
* baddn (§3.1.2.15) ends without the empty line in the RFC's own file, so it is
  rejected for that first; with the empty line added it is rejected for its real
  fault, the unquoted display name with a comma (tested separately).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.sip.errors import RemoteProtocolError
from harness.sip.message import Request, Response
from harness.sip.parser import NEED_DATA, StreamParser, parse_message
from harness.sip.uri import SipUri, parse_name_addr, parse_sip_uri, parse_via

TORTURE = Path(__file__).parent / "torture"

VALID: dict[str, str] = {
    "wsinv": "3.1.1.1 short tortuous INVITE",
    "intmeth": "3.1.1.2 wide range of valid characters",
    "esc01": "3.1.1.3 valid use of the % escaping mechanism",
    "escnull": "3.1.1.4 escaped nulls in URIs",
    "esc02": "3.1.1.5 use of % when it is not an escape",
    "lwsdisp": "3.1.1.6 message with no LWS between display name and <",
    "longreq": "3.1.1.7 long values in header fields",
    "dblreq": "3.1.1.8 extra trailing octets in a UDP datagram",
    "semiuri": "3.1.1.9 semicolon-separated parameters in URI user part",
    "transports": "3.1.1.10 varied and unknown transport types",
    "mpart01": "3.1.1.11 multipart MIME message",
    "unreason": "3.1.1.12 unusual reason phrase",
    "noreason": "3.1.1.13 empty reason phrase",
    "badbranch": "3.2.1 missing transaction identifier",
    "unkscm": "3.3.2 Request-URI with unknown scheme",
    "novelsc": "3.3.3 Request-URI with known but atypical scheme",
    "unksm2": "3.3.4 unknown URI schemes in header fields",
    "bext01": "3.3.5 Proxy-Require and Require",
    "invut": "3.3.6 unknown Content-Type",
    "regaut01": "3.3.7 unknown authorization scheme",
    "bcast": "3.3.10 200 OK response with broadcast Via header field value",
    "zeromf": "3.3.11 Max-Forwards of zero",
    "cparam01": "3.3.12 REGISTER with a Contact header parameter",
    "cparam02": "3.3.13 REGISTER with a url-parameter",
    "regescrt": "3.3.14 REGISTER with a URL escaped header",
    "sdp01": "3.3.15 unacceptable Accept offering",
    "inv2543": "3.4.1 INVITE with RFC 2543 syntax",
}

#: name -> (section, words the error must contain)
INVALID: dict[str, tuple[str, str]] = {
    "badinv01": ("3.1.2.1 extraneous header field separators", "parameter"),
    "clerr": ("3.1.2.2 Content-Length larger than message", "exceeds"),
    "ncl": ("3.1.2.3 negative Content-Length", "Content-Length"),
    "scalar02": ("3.1.2.4 request scalar fields with overlarge values", "CSeq"),
    "scalarlg": ("3.1.2.5 response scalar fields with overlarge values", "CSeq"),
    "quotbal": ("3.1.2.6 unterminated quoted string in display name", "unterminated"),
    "ltgtruri": ("3.1.2.7 <> enclosing Request-URI", "Request-URI"),
    "lwsruri": ("3.1.2.8 malformed SIP Request-URI (embedded LWS)", "request line"),
    "lwsstart": ("3.1.2.9 multiple SP separating Request-Line elements", "request line"),
    "trws": ("3.1.2.10 SP characters at end of Request-Line", "request line"),
    "escruri": ("3.1.2.11 escaped headers in SIP Request-URI", "carries headers"),
    "baddate": ("3.1.2.12 invalid time zone in Date header field", "Date"),
    "regbadct": ("3.1.2.13 failure to enclose name-addr URI in <>", "addr-spec"),
    "badaspec": ("3.1.2.14 spaces within addr-spec", "inside <>"),
    "baddn": ("3.1.2.15 non-token characters in display name", "empty line"),
    "badvers": ("3.1.2.16 unknown protocol version", "version"),
    "mismatch01": ("3.1.2.17 start line and CSeq method mismatch", "CSeq method"),
    "mismatch02": ("3.1.2.18 unknown method with CSeq method mismatch", "CSeq method"),
    "bigcode": ("3.1.2.19 overlarge response code", "status code"),
}

#: name -> (section, words of the validate=True error)
SEMANTIC: dict[str, tuple[str, str]] = {
    "insuf": ("3.3.1 missing required header fields", "missing"),
    "multi01": ("3.3.8 multiple values in single value required fields", "several"),
}

UNFRAMEABLE: dict[str, tuple[str, str]] = {
    "mcl01": ("3.3.9 multiple Content-Length values", "several Content-Length"),
}


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


def without_length(message: Request | Response) -> list[tuple[str, str]]:
    return [(n.lower(), v) for n, v in message.headers if n.lower() != "content-length"]


def test_every_file_is_classified_once() -> None:
    names = {path.stem for path in TORTURE.glob("*.dat")}
    classified = [*VALID, *INVALID, *SEMANTIC, *UNFRAMEABLE]
    assert len(classified) == len(set(classified))
    assert names == set(classified)
    assert len(names) == 49


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_message_parses_and_round_trips(name: str) -> None:
    message = parse_message(load(name))
    for compact in (False, True):
        again = parse_message(message.to_bytes(compact=compact))
        assert type(again) is type(message)
        if isinstance(message, Request):
            assert isinstance(again, Request)
            assert (again.method, again.uri) == (message.method, message.uri)
        else:
            assert isinstance(again, Response)
            assert (again.status, again.reason) == (message.status, message.reason)
        assert without_length(again) == without_length(message)
        assert again.body == message.body


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_message_is_rejected_for_its_fault(name: str) -> None:
    _, words = INVALID[name]
    with pytest.raises(RemoteProtocolError, match=words):
        parse_message(load(name))


def test_baddn_with_its_empty_line_is_rejected_for_the_display_name() -> None:
    with pytest.raises(RemoteProtocolError, match="addr-spec"):
        parse_message(load("baddn") + b"\r\n")


def test_scalar02_max_forwards_is_rejected_too() -> None:
    fixed = load("scalar02").replace(b"CSeq: 36893488147419103232", b"CSeq: 36893")
    with pytest.raises(RemoteProtocolError, match="Max-Forwards"):
        parse_message(fixed)


@pytest.mark.parametrize("name", sorted(SEMANTIC))
def test_semantic_fault_is_rejected_only_when_validating(name: str) -> None:
    _, words = SEMANTIC[name]
    with pytest.raises(RemoteProtocolError, match=words):
        parse_message(load(name))
    message = parse_message(load(name), validate=False)
    assert isinstance(message, Request)
    assert message.method == "INVITE"


def test_multiple_content_lengths_are_never_accepted() -> None:
    for validate in (True, False):
        with pytest.raises(RemoteProtocolError, match="several Content-Length"):
            parse_message(load("mcl01"), validate=validate)


# --- what the valid messages must parse into ---------------------------------------


def test_wsinv_unfolds_and_reads_every_field() -> None:
    message = parse_message(load("wsinv"))
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert message.cseq == (9, "INVITE")
    assert message.headers.get("Max-Forwards") == "0068"
    assert message.headers.get("Subject") == ""
    assert message.headers.get("NewFangledHeader") == (
        "newfangled value continued newfangled value"
    )
    assert message.headers.get_raw("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    vias = [parse_via(v) for v in message.headers.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    to = parse_name_addr(message.headers.get("To") or "")
    assert (to.display_name, to.tag) == (None, "1918181833n")
    sender = parse_name_addr(message.headers.get("From") or "")
    assert sender.display_name == 'J Rosenberg \\"'
    assert sender.tag == "98asjd8"
    contact = parse_name_addr(message.headers.get("Contact") or "")
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert len(message.body) == 150


def test_intmeth_keeps_unusual_characters() -> None:
    message = parse_message(load("intmeth"))
    assert isinstance(message, Request)
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = parse_sip_uri(message.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    to = parse_name_addr(message.headers.get("To") or "")
    assert to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    sender = parse_name_addr(message.headers.get("From") or "")
    assert sender.display_name == "token1~` token2'+_ token3*%!.-"
    assert sender.param("fromParam''~+*_!.-%") == '"работающий"'
    assert sender.tag == "_token~1'+`*%!-."
    assert message.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert message.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_escapes_are_kept_as_on_the_wire_and_decodable() -> None:
    message = parse_message(load("esc01"))
    assert isinstance(message, Request)
    uri = parse_sip_uri(message.uri)
    assert uri.user == "sips%3Auser%40example.com"
    assert uri.user_unescaped == "sips:user@example.com"
    to = parse_name_addr(message.headers.get("To") or "").uri
    assert isinstance(to, SipUri)
    assert to.user_unescaped == "user"
    contact = parse_name_addr(message.headers.get("Contact") or "").uri
    assert isinstance(contact, SipUri)
    assert contact.params == (("%6C%72", None), ("n%61me", "v%61lue%25%34%31"))
    null = parse_message(load("escnull"))
    contacts = [parse_name_addr(c).uri for c in null.headers.get_all("Contact")]
    assert [c.user for c in contacts if isinstance(c, SipUri)] == ["%00", "%00%00"]


def test_esc02_percent_is_no_escape_outside_uris() -> None:
    message = parse_message(load("esc02"))
    assert isinstance(message, Request)
    assert message.method == "RE%47IST%45R"
    # C%6Fntact is an unknown header, not a third Contact.
    assert len(message.headers.get_all("Contact")) == 2
    assert message.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_dblreq_datagram_keeps_only_the_first_request() -> None:
    message = parse_message(load("dblreq"))
    assert isinstance(message, Request)
    assert message.method == "REGISTER"
    assert message.body == b""


def test_dblreq_on_a_stream_is_two_requests_then_garbage() -> None:
    # The INVITE's body ("m =video" included) is one byte longer than its
    # Content-Length says, so after the two requests the stream holds "C" CRLF CRLF.
    stream = StreamParser()
    stream.feed(load("dblreq"))
    first, second = stream.next_message(), stream.next_message()
    assert isinstance(first, Request)
    assert isinstance(second, Request)
    assert (first.method, second.method) == ("REGISTER", "INVITE")
    assert second.body.endswith(b"a=rtpmap:31 LP")
    with pytest.raises(RemoteProtocolError, match="request line 'C'"):
        stream.next_message()


def test_semiuri_user_part_holds_the_semicolon() -> None:
    message = parse_message(load("semiuri"))
    assert isinstance(message, Request)
    uri = parse_sip_uri(message.uri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", ())
    assert len(message.headers.get_all("Accept")) == 6


def test_transports_reads_every_via() -> None:
    message = parse_message(load("transports"))
    transports = [parse_via(v).transport for v in message.headers.get_all("Via")]
    assert transports == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_longreq_and_mpart01_sizes() -> None:
    long = parse_message(load("longreq"))
    assert len(long.headers.get_all("Via")) == 34
    assert len(long.body) == 150
    multipart = parse_message(load("mpart01"))
    assert len(multipart.body) == 553
    assert multipart.body.startswith(b"--7a9cbec02ceef655\r\n")


def test_reason_phrases() -> None:
    unusual = parse_message(load("unreason"))
    assert isinstance(unusual, Response)
    assert unusual.status == 200
    assert unusual.reason.startswith("= 2**3 * 5**2 но сто девяносто девять")
    empty = parse_message(load("noreason"))
    assert isinstance(empty, Response)
    assert (empty.status, empty.reason) == (100, "")


def test_inv2543_parses_without_max_forwards_or_branch() -> None:
    message = parse_message(load("inv2543"))
    assert "Max-Forwards" not in message.headers
    assert parse_via(message.headers.get("Via") or "").branch is None
    assert message.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")


def test_valid_messages_framed_on_a_stream_in_random_chunks() -> None:
    # Every valid message that carries a Content-Length, back to back with keep-alive
    # CRLFs, cut at random places: the stream yields the datagram parser's results.
    names = [n for n in sorted(VALID) if n not in ("inv2543", "dblreq")]
    wire = b"".join(b"\r\n\r\n" + load(n) for n in names)
    expected = [parse_message(load(n)) for n in names]
    rng = random.Random(4475)
    stream = StreamParser()
    got: list[Request | Response] = []
    pos = 0
    while pos < len(wire):
        step = rng.randint(1, 300)
        stream.feed(wire[pos : pos + step])
        pos += step
        while (message := stream.next_message()) is not NEED_DATA:
            assert isinstance(message, Request | Response)
            got.append(message)
    assert [m.to_bytes() for m in got] == [m.to_bytes() for m in expected]


def test_a_stream_needs_content_length() -> None:
    stream = StreamParser()
    stream.feed(load("inv2543"))
    with pytest.raises(RemoteProtocolError, match="Content-Length"):
        stream.next_message()
