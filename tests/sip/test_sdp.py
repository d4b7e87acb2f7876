"""SDP parsing/serialising, offer/answer for G.711 + telephone-event, audio endpoints."""

from __future__ import annotations

import pytest

from harness.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from harness.sip.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Attribute,
    Codec,
    NoCommonCodecError,
    RtpCodec,
    SessionDescription,
    audio_endpoint,
    build_answer,
    build_offer,
    format_events,
    parse_events,
    parse_sdp,
)


def crlf(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


# An Asterisk (chan_pjsip) offer, as sent on an outbound call.
ASTERISK_OFFER = crlf(
    "v=0",
    "o=- 1722334455 1722334455 IN IP4 127.0.0.3",
    "s=Asterisk",
    "c=IN IP4 127.0.0.3",
    "t=0 0",
    "m=audio 16384 RTP/AVP 0 8 3 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:3 GSM/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=maxptime:150",
    "a=sendrecv",
)

# A carrier offer after Kamailio + rtpengine rewrote it: PCMA first, telephone-event
# on 96, comfort noise, rtcp, rtpengine's own attributes, a rejected video stream.
RTPENGINE_OFFER = crlf(
    "v=0",
    "o=sbc-carrier 1700000000 1700000001 IN IP4 192.0.2.10",
    "s=SBC call",
    "c=IN IP4 192.0.2.20",
    "b=AS:84",
    "t=0 0",
    "a=msid-semantic: WMS",
    "m=audio 30000 RTP/AVP 8 0 96 13",
    "c=IN IP4 192.0.2.21",
    "b=TIAS:64000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:96 telephone-event/8000",
    "a=fmtp:96 0-15",
    "a=rtpmap:13 CN/8000",
    "a=silenceSupp:off - - - -",
    "a=oldmediaip:10.10.0.5",
    "a=ptime:20",
    "a=sendrecv",
    "a=rtcp:30001",
    "m=video 0 RTP/AVP 97",
    "a=rtpmap:97 H264/90000",
)

IPV6_OFFER = crlf(
    "v=0",
    "o=- 42 1 IN IP6 2001:db8::1",
    "s=-",
    "c=IN IP6 2001:db8::10",
    "t=0 0",
    "m=audio 40000 RTP/AVP 0 101",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=sendrecv",
)


def answer_at_20000(
    offer: SessionDescription,
    *,
    supported: tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT),
    direction: str = "sendrecv",
) -> SessionDescription:
    return build_answer(
        offer,
        address="127.0.0.1",
        port=20000,
        session_id="7",
        session_version="8",
        supported=supported,
        direction=direction,
    )


# --- parsing and serialising ---------------------------------------------------------------


@pytest.mark.parametrize("body", [ASTERISK_OFFER, RTPENGINE_OFFER, IPV6_OFFER])
def test_round_trip_is_byte_exact(body: bytes) -> None:
    sdp = parse_sdp(body)
    assert sdp.to_bytes() == body
    assert parse_sdp(sdp.to_bytes()) == sdp


def test_parse_asterisk_offer() -> None:
    sdp = parse_sdp(ASTERISK_OFFER)
    assert sdp.origin.session_id == "1722334455"
    assert sdp.origin.address == "127.0.0.3"
    assert sdp.session_name == "Asterisk"
    assert sdp.connection is not None
    assert (sdp.connection.addrtype, sdp.connection.address) == ("IP4", "127.0.0.3")
    (audio,) = sdp.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 16384, "RTP/AVP")
    assert audio.payload_types == [0, 8, 3, 101]
    assert audio.rtpmaps()[101] == RtpCodec("telephone-event", 101, 8000)
    assert audio.fmtp(101) == "0-16"
    assert audio.fmtp(0) is None
    assert audio.ptime == 20
    assert audio.direction == "sendrecv"
    assert audio.attribute("maxptime") == "150"


def test_parse_rtpengine_offer_keeps_everything_in_order() -> None:
    sdp = parse_sdp(RTPENGINE_OFFER)
    assert sdp.other_lines == [("b", "AS:84")]
    assert sdp.attributes == [Attribute("msid-semantic", " WMS")]
    audio, video = sdp.media
    assert audio.connection is not None
    assert audio.connection.address == "192.0.2.21"
    assert audio.other_lines == [("b", "TIAS:64000")]
    assert [str(a) for a in audio.attributes][4:8] == [
        "rtpmap:13 CN/8000",
        "silenceSupp:off - - - -",
        "oldmediaip:10.10.0.5",
        "ptime:20",
    ]
    assert (video.media, video.port, video.formats) == ("video", 0, ["97"])


def test_lf_only_input_is_accepted_and_written_back_with_crlf() -> None:
    lf = ASTERISK_OFFER.replace(b"\r\n", b"\n") + b"\n\n"
    sdp = parse_sdp(lf)
    assert sdp == parse_sdp(ASTERISK_OFFER)
    assert sdp.to_bytes() == ASTERISK_OFFER


def test_unmodelled_lines_are_kept_and_put_in_rfc_order() -> None:
    body = crlf(
        "v=0",
        "o=alice 1 1 IN IP4 127.0.0.1",
        "s=Call",
        "i=A call",
        "u=http://example.com/x",
        "e=alice@example.com",
        "p=+1 555 0100",
        "c=IN IP4 224.2.17.12/127",
        "b=CT:128",
        "t=2873397496 2873404696",
        "r=7d 1h 0 25h",
        "t=0 0",
        "z=2882844526 -1h",
        "k=prompt",
        "a=recvonly",
        "m=audio 49170/2 RTP/AVP 0",
        "i=voice",
        "b=AS:64",
        "k=prompt",
        "a=ptime:30",
    )
    sdp = parse_sdp(body)
    assert sdp.to_bytes() == body
    assert sdp.timing[0].repeats == ["7d 1h 0 25h"]
    assert sdp.media[0].port_count == 2
    assert sdp.connection is not None
    assert sdp.connection.host == "224.2.17.12"
    # Out-of-order input comes back in RFC 8866 order.
    shuffled = crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "t=0 0", "c=IN IP4 127.0.0.1", "s=-")
    assert parse_sdp(shuffled).to_bytes() == crlf(
        "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        crlf("v=1", "o=- 1 1 IN IP4 127.0.0.1", "s=-"),
        crlf("o=- 1 1 IN IP4 127.0.0.1", "v=0"),
        crlf("v=0", "s=-", "t=0 0"),  # no o=
        crlf("v=0", "o=- 1 1 IN IP4", "s=-"),  # 5 fields
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "c=IN IP5 127.0.0.1"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "c=IN IP4"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "t=now 0"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "r=7d 1h 0"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "this is not sdp"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio 70000 RTP/AVP 0"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio x RTP/AVP 0"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP PCMU"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus"),
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP 96", "a=rtpmap:x PCMU/8000"),
        crlf(
            "v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP 0", "c=IN IP4 a", "c=IN IP4 b"
        ),
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=\xff\xfe\r\n",
    ],
)
def test_malformed_sdp_raises_remote_error(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_sdp(body)


def test_missing_s_and_t_are_tolerated() -> None:
    sdp = parse_sdp(crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP 0"))
    assert sdp.session_name is None
    assert sdp.timing == []
    assert sdp.to_bytes() == crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP 0")


# --- offers -----------------------------------------------------------------------------------


def test_build_offer_default_codecs() -> None:
    offer = build_offer(address="127.0.0.1", port=20000, session_id="123", session_version="1")
    assert offer.to_bytes() == crlf(
        "v=0",
        "o=- 123 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_build_offer_ipv6_pcma_only_sendonly() -> None:
    offer = build_offer(
        address="::1",
        port=30000,
        session_id="9",
        session_version="2",
        codecs=[PCMA],
        ptime=None,
        direction="sendonly",
    )
    text = offer.to_text()
    assert "o=- 9 2 IN IP6 ::1\r\n" in text
    assert "c=IN IP6 ::1\r\n" in text
    assert "m=audio 30000 RTP/AVP 8\r\n" in text
    assert "a=ptime" not in text
    assert text.endswith("a=sendonly\r\n")


@pytest.mark.parametrize(
    ("codecs", "port", "direction"),
    [
        ((PCMU, Codec("PCMU", 8000, 0)), 20000, "sendrecv"),
        ((Codec("opus", 48000),), 20000, "sendrecv"),
        ((PCMU,), 0, "sendrecv"),
        ((PCMU,), 70000, "sendrecv"),
        ((PCMU,), 20000, "both"),
    ],
)
def test_build_offer_rejects_bad_arguments(
    codecs: tuple[Codec, ...], port: int, direction: str
) -> None:
    with pytest.raises(LocalProtocolError):
        build_offer(
            address="127.0.0.1",
            port=port,
            session_id="1",
            session_version="1",
            codecs=codecs,
            direction=direction,
        )


# --- answers ----------------------------------------------------------------------------------


def test_answer_to_asterisk_offer_picks_its_first_codec() -> None:
    answer = answer_at_20000(parse_sdp(ASTERISK_OFFER))
    assert answer.to_bytes() == crlf(
        "v=0",
        "o=- 7 8 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_answer_follows_offerer_preference_not_ours() -> None:
    offer = build_offer(
        address="127.0.0.2", port=4000, session_id="1", session_version="1", codecs=[PCMA, PCMU]
    )
    answer = answer_at_20000(
        offer,
        supported=(PCMU, PCMA),
    )
    assert answer.media[0].formats == ["8"]


def test_answer_to_pcma_only_offer() -> None:
    offer = parse_sdp(
        crlf(
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.2",
            "s=-",
            "c=IN IP4 127.0.0.2",
            "t=0 0",
            "m=audio 4000 RTP/AVP 8",
            "a=sendrecv",
        )
    )
    answer = answer_at_20000(
        offer,
    )
    (media,) = answer.media
    assert media.formats == ["8"]
    assert media.rtpmaps() == {8: RtpCodec("PCMA", 8, 8000)}
    endpoint = audio_endpoint(answer)
    assert endpoint is not None
    assert endpoint.codec == RtpCodec("PCMA", 8, 8000)
    assert endpoint.telephone_event is None


def test_answer_uses_offer_telephone_event_payload_type_and_common_events() -> None:
    answer = answer_at_20000(parse_sdp(RTPENGINE_OFFER))
    audio, video = answer.media
    assert audio.formats == ["8", "96"]
    assert audio.fmtp(96) == "0-15"  # offer 0-15, ours 0-16
    assert audio.rtpmaps()[96] == RtpCodec("telephone-event", 96, 8000)
    # The already-rejected video stays rejected, with its proto and formats.
    assert (video.media, video.port, video.proto, video.formats) == ("video", 0, "RTP/AVP", ["97"])
    assert answer.timing[0].start == 0
    endpoint = audio_endpoint(answer)
    assert endpoint is not None
    assert endpoint.telephone_event == RtpCodec("telephone-event", 96, 8000)


def test_telephone_event_without_fmtp_means_0_to_15() -> None:
    offer = parse_sdp(
        crlf(
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.2",
            "s=-",
            "c=IN IP4 127.0.0.2",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000",
        )
    )
    answer = answer_at_20000(
        offer,
    )
    assert answer.media[0].fmtp(101) == "0-15"
    # Without telephone-event on our side, it is left out.
    answer = answer_at_20000(
        offer,
        supported=(PCMU,),
    )
    assert answer.media[0].formats == ["0"]
    assert answer.media[0].fmtp(101) is None


def test_no_telephone_event_when_event_lists_do_not_intersect() -> None:
    offer = parse_sdp(
        crlf(
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.2",
            "s=-",
            "c=IN IP4 127.0.0.2",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 32-35",
        )
    )
    answer = answer_at_20000(
        offer,
    )
    assert answer.media[0].formats == ["0"]


@pytest.mark.parametrize(
    ("m_line", "extra"),
    [
        ("m=audio 4000 RTP/AVP 18", ["a=rtpmap:18 G729/8000"]),
        (
            "m=audio 4000 RTP/AVP 96 101",
            ["a=rtpmap:96 opus/48000/2", "a=rtpmap:101 telephone-event/8000"],
        ),
        ("m=audio 4000 RTP/SAVP 0 8", ["a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd"]),
        ("m=audio 0 RTP/AVP 0 8", []),
        ("m=video 4000 RTP/AVP 0", []),
        # PCMU's name on a 16 kHz clock is not G.711.
        ("m=audio 4000 RTP/AVP 97", ["a=rtpmap:97 PCMU/16000"]),
    ],
)
def test_no_common_codec_raises_dedicated_error(m_line: str, extra: list[str]) -> None:
    offer = parse_sdp(
        crlf(
            "v=0", "o=- 1 1 IN IP4 127.0.0.2", "s=-", "c=IN IP4 127.0.0.2", "t=0 0", m_line, *extra
        )
    )
    with pytest.raises(NoCommonCodecError, match="no common codec") as info:
        answer_at_20000(
            offer,
        )
    assert isinstance(info.value, SipError)
    if m_line == "m=audio 4000 RTP/AVP 18":
        assert info.value.offered == ["18 G729/8000"]


@pytest.mark.parametrize(
    ("offered", "local", "expected"),
    [
        ("sendrecv", "sendrecv", "sendrecv"),
        ("sendonly", "sendrecv", "recvonly"),
        ("recvonly", "sendrecv", "sendonly"),
        ("inactive", "sendrecv", "inactive"),
        ("sendrecv", "sendonly", "sendonly"),
        ("sendonly", "sendonly", "inactive"),
        (None, "sendrecv", "sendrecv"),
    ],
)
def test_answer_direction_mirrors_offer(offered: str | None, local: str, expected: str) -> None:
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.2",
        "s=-",
        "c=IN IP4 127.0.0.2",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
    ]
    if offered is not None:
        lines.append(f"a={offered}")
    answer = answer_at_20000(parse_sdp(crlf(*lines)), direction=local)
    assert answer.media[0].direction == expected
    endpoint = audio_endpoint(answer)
    assert endpoint is not None
    assert endpoint.direction == expected


def test_hold_offer_with_session_level_sendonly() -> None:
    # A re-INVITE putting us on hold: session-level a=sendonly, media-level none.
    offer = parse_sdp(
        crlf(
            "v=0",
            "o=- 1 2 IN IP4 127.0.0.2",
            "s=-",
            "c=IN IP4 127.0.0.2",
            "t=0 0",
            "a=sendonly",
            "m=audio 4000 RTP/AVP 8 0",
        )
    )
    assert offer.media_direction(offer.media[0]) == "sendonly"
    answer = answer_at_20000(
        offer,
    )
    assert answer.media[0].direction == "recvonly"


def test_multiple_streams_one_audio_accepted() -> None:
    offer = parse_sdp(
        crlf(
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.2",
            "s=-",
            "c=IN IP4 127.0.0.2",
            "t=0 0",
            "m=audio 5000 RTP/SAVP 0",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x",
            "m=video 5002 RTP/AVP 97",
            "a=rtpmap:97 H264/90000",
            "m=audio 5004 RTP/AVP 18 8",
            "a=rtpmap:18 G729/8000",
            "m=audio 5006 RTP/AVP 0",
            "m=application 5008 UDP/BFCP *",
        )
    )
    answer = answer_at_20000(
        offer,
    )
    assert [(m.media, m.port, m.proto, m.formats) for m in answer.media] == [
        ("audio", 0, "RTP/SAVP", ["0"]),
        ("video", 0, "RTP/AVP", ["97"]),
        ("audio", 20000, "RTP/AVP", ["8"]),
        ("audio", 0, "RTP/AVP", ["0"]),
        ("application", 0, "UDP/BFCP", ["*"]),
    ]
    assert all(not m.attributes for m in answer.media if m.port == 0)
    # The answer itself is valid SDP that parses back to the same thing.
    assert parse_sdp(answer.to_bytes()) == answer


def test_answer_copies_offer_timing_and_ipv6_address() -> None:
    offer = parse_sdp(IPV6_OFFER.replace(b"t=0 0", b"t=3034423619 3042462419"))
    answer = build_answer(offer, address="::1", port=20000, session_id="1", session_version="1")
    assert (answer.timing[0].start, answer.timing[0].stop) == (3034423619, 3042462419)
    assert answer.connection is not None
    assert (answer.connection.addrtype, answer.connection.address) == ("IP6", "::1")
    assert answer.origin.addrtype == "IP6"
    assert answer.media[0].formats == ["0", "101"]


def test_offer_answer_between_two_harness_sides() -> None:
    offer = build_offer(address="127.0.0.1", port=20000, session_id="1", session_version="1")
    answer = build_answer(
        parse_sdp(offer.to_bytes()),
        address="127.0.0.2",
        port=30000,
        session_id="5",
        session_version="5",
    )
    ours = audio_endpoint(parse_sdp(answer.to_bytes()))
    assert ours is not None
    assert (ours.address, ours.port) == ("127.0.0.2", 30000)
    assert ours.codec == RtpCodec("PCMU", 0, 8000)
    assert ours.telephone_event == RtpCodec("telephone-event", 101, 8000)
    assert ours.ptime == 20


# --- endpoints --------------------------------------------------------------------------------


def test_media_level_connection_wins() -> None:
    endpoint = audio_endpoint(parse_sdp(RTPENGINE_OFFER))
    assert endpoint is not None
    assert (endpoint.address, endpoint.port) == ("192.0.2.21", 30000)
    assert endpoint.codec == RtpCodec("PCMA", 8, 8000)  # CN and telephone-event skipped


def test_session_level_connection_used_when_media_has_none() -> None:
    endpoint = audio_endpoint(parse_sdp(ASTERISK_OFFER))
    assert endpoint is not None
    assert (endpoint.address, endpoint.port) == ("127.0.0.3", 16384)
    assert endpoint.codec == RtpCodec("PCMU", 0, 8000)


def test_ipv6_endpoint_and_static_payload_without_rtpmap() -> None:
    endpoint = audio_endpoint(parse_sdp(IPV6_OFFER))
    assert endpoint is not None
    assert endpoint.address == "2001:db8::10"
    assert endpoint.codec == RtpCodec("PCMU", 0, 8000)


def test_endpoint_none_or_error() -> None:
    no_audio = parse_sdp(
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "m=audio 0 RTP/AVP 0")
    )
    assert audio_endpoint(no_audio) is None
    no_c = parse_sdp(
        crlf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0")
    )
    with pytest.raises(RemoteProtocolError):
        audio_endpoint(no_c)


# --- helpers ----------------------------------------------------------------------------------


def test_event_lists() -> None:
    assert parse_events("0-15,66, 70") == {*range(16), 66, 70}
    assert format_events({*range(17)}) == "0-16"
    assert format_events({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    for bad in ("", "a-b", "5-3", "0-300"):
        with pytest.raises(RemoteProtocolError):
            parse_events(bad)


def test_default_codecs() -> None:
    assert (PCMU.payload_type, PCMA.payload_type, TELEPHONE_EVENT.payload_type) == (0, 8, 101)
    assert TELEPHONE_EVENT.fmtp == "0-16"
    assert isinstance(parse_sdp(ASTERISK_OFFER), SessionDescription)
