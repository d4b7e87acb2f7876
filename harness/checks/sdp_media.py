"""SDP and media checks: reachable addresses, offer/answer agreement, two-way RTP."""

from __future__ import annotations

from collections.abc import Iterator

from harness.capture.decode import SdpMedia
from harness.capture.flows import Call, SdpExchange
from harness.checks.registry import (
    CheckContext,
    Item,
    Severity,
    check,
    failed,
    not_applicable,
    passed,
)
from harness.checks.sipview import is_private_ip, is_public_ip, method_of
from harness.sip.errors import SipError
from harness.sip.sdp import (
    STATIC_PAYLOAD_TYPES,
    Media,
    RtpCodec,
    SessionDescription,
    parse_sdp,
)

TOPIC = "sdp"


def _pairs(call: Call) -> Iterator[tuple[SdpExchange, SdpExchange]]:
    """(offer, answer) pairs of a call, each answer with the latest offer before it."""
    offer: SdpExchange | None = None
    for exchange in call.sdp:
        if exchange.role == "offer":
            offer = exchange
        elif offer is not None:
            yield offer, exchange
            offer = None


def _parse(exchange: SdpExchange) -> SessionDescription | None:
    try:
        return parse_sdp(exchange.message.message.body)
    except (SipError, ValueError):
        return None


def _codecs(media: Media) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    # ``media.codec(pt)`` for each format, with the rtpmap lines read once for all
    # of them (first needed at the first numeric format, as codec() would): a
    # malformed rtpmap makes every codec() raise, so every format is then unknown.
    maps: dict[int, RtpCodec] | None = None
    maps_read = False
    for fmt in media.formats:
        if not fmt.isdigit():
            continue
        codec: RtpCodec | None = None
        try:
            payload_type = int(fmt)
        except ValueError:
            payload_type = None
        if payload_type is not None:
            if not maps_read:
                maps_read = True
                try:
                    maps = media.rtpmaps()
                except (SipError, ValueError):
                    maps = None
            if maps is not None:
                codec = maps.get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)
        found.add((codec.name.upper(), codec.clock_rate) if codec else (f"PT{fmt}", 0))
    return found


@check(
    "SDP-001",
    title="SDP media address reachable by a public peer",
    reference="RFC 4566 §5.7; RFC 3264 §5",
    severity=Severity.ERROR,
    remediation=(
        "The SDP announces a private address (RFC 1918 or loopback) to a peer on the public "
        "internet, which gives one-way or no audio: set the PBX's external media address "
        "(external_media_address / NAT settings) or disable a SIP ALG that rewrites SDP."
    ),
    topic=TOPIC,
)
def media_address_public(ctx: CheckContext) -> Iterator[Item]:
    for call in ctx.flows.calls:
        for exchange in call.sdp:
            captured = exchange.message
            if not is_public_ip(captured.dst.ip):
                continue
            private = sorted({m.ip for m in exchange.media if m.port and is_private_ip(m.ip)})
            if private:
                yield failed(
                    f"SDP sent to public {captured.dst.ip} announces {', '.join(private)}",
                    captured,
                    subject=call.call_id,
                )
            else:
                yield passed("SDP announces a routable media address", captured)


@check(
    "SDP-002",
    title="Answer's codecs are among the offer's",
    reference="RFC 3264 §6.1",
    severity=Severity.ERROR,
    remediation=(
        "The answer picked a codec the offer did not list: the two sides will not decode "
        "each other's audio. Allow a common codec (G.711 PCMU/PCMA) on the carrier's trunk "
        "and on the PBX."
    ),
    topic=TOPIC,
)
def codec_agreement(ctx: CheckContext) -> Iterator[Item]:
    for call in ctx.flows.calls:
        for offer, answer in _pairs(call):
            offered, answered = _parse(offer), _parse(answer)
            if offered is None or answered is None:
                yield failed("SDP could not be parsed", offer.message, answer.message)
                continue
            bad: list[str] = []
            for o_media, a_media in zip(offered.media, answered.media, strict=False):
                if a_media.port == 0 or o_media.port == 0:
                    continue
                extra = _codecs(a_media) - _codecs(o_media)
                bad.extend(f"{name}/{rate}" for name, rate in sorted(extra))
            if bad:
                yield failed(
                    f"answer uses {', '.join(bad)}, not offered",
                    offer.message,
                    answer.message,
                    subject=call.call_id,
                )
            else:
                yield passed("answer's codecs were offered", offer.message, answer.message)


@check(
    "SDP-003",
    title="Answer has one media line per offered media line",
    reference="RFC 3264 §6",
    severity=Severity.ERROR,
    remediation=(
        "The answer must have exactly as many m= lines as the offer, in the same order "
        "(port 0 to reject one); a peer that drops lines breaks the call's media. Report it "
        "to the answering side's vendor."
    ),
    topic=TOPIC,
)
def mline_count(ctx: CheckContext) -> Iterator[Item]:
    for call in ctx.flows.calls:
        for offer, answer in _pairs(call):
            if len(offer.media) == len(answer.media):
                yield passed(f"{len(offer.media)} m= line(s) answered", answer.message)
            else:
                yield failed(
                    f"offer has {len(offer.media)} m= lines, answer {len(answer.media)}",
                    offer.message,
                    answer.message,
                    subject=call.call_id,
                )


@check(
    "SDP-004",
    title="Audio accepted in the answer",
    reference="RFC 3264 §6",
    severity=Severity.WARNING,
    remediation=(
        "The answer rejected the audio stream (port 0): the call connects without sound. "
        "Enable a common audio codec (PCMU/PCMA) on the carrier's trunk."
    ),
    topic=TOPIC,
)
def audio_accepted(ctx: CheckContext) -> Iterator[Item]:
    for call in ctx.flows.calls:
        for offer, answer in _pairs(call):
            if not any(m.media == "audio" and m.port for m in offer.media):
                continue
            if any(m.media == "audio" and m.port for m in answer.media):
                yield passed("audio accepted", answer.message)
            else:
                yield failed(
                    "the answer rejects every audio stream",
                    answer.message,
                    subject=call.call_id,
                )


def _endpoints(media: tuple[SdpMedia, ...]) -> set[tuple[str, int]]:
    return {(m.ip, m.port) for m in media if m.port and m.media == "audio"}


@check(
    "RTP-001",
    title="Audio flows both ways",
    reference="RFC 3550 §6; RFC 3264 §5",
    severity=Severity.ERROR,
    remediation=(
        "Only one direction carried RTP (one-way audio): open the firewall for the media "
        "port range of both sides, announce the public media address in SDP (NAT settings), "
        "and disable SIP ALG."
    ),
    topic="rtp",
)
def two_way_rtp(ctx: CheckContext) -> Iterator[Item]:
    if ctx.rtp is None:
        yield not_applicable("no RTP statistics attached to this analysis")
        return
    for call in ctx.flows.calls:
        for offer, answer in _pairs(call):
            if method_of(offer.message) != "INVITE":
                continue
            streams = ctx.rtp.get(call.call_id, ())
            toward_offerer = [
                s for s in streams if (s.dst.ip, s.dst.port) in _endpoints(offer.media)
            ]
            toward_answerer = [
                s for s in streams if (s.dst.ip, s.dst.port) in _endpoints(answer.media)
            ]
            got_o = [s for s in toward_offerer if s.packets]
            got_a = [s for s in toward_answerer if s.packets]
            if got_o and got_a:
                yield passed("RTP seen in both directions", got_o[0], got_a[0])
            elif not got_o and not got_a:
                yield failed("no RTP at all", offer.message, answer.message, subject=call.call_id)
            else:
                missing = offer if not got_o else answer
                side = "caller" if missing is offer else "callee"
                where = ", ".join(f"{ip}:{port}" for ip, port in sorted(_endpoints(missing.media)))
                present = (got_o or got_a)[0]
                yield failed(
                    f"one-way audio: no RTP toward the {side}'s media address {where}",
                    missing.message,
                    present,
                    subject=call.call_id,
                )


@check(
    "RTP-002",
    title="RTP packet loss within limits",
    reference="RFC 3550 §6.4.1",
    severity=Severity.WARNING,
    remediation=(
        "RTP packets are being lost on the path: check the bandwidth and QoS between the "
        "platform and the carrier, and the jitter buffer; ask the carrier for a media path "
        "report."
    ),
    topic="rtp",
)
def rtp_loss(ctx: CheckContext) -> Iterator[Item]:
    if ctx.rtp is None:
        yield not_applicable("no RTP statistics attached to this analysis")
        return
    limit = ctx.settings.rtp_loss_percent
    for call_id, streams in ctx.rtp.items():
        for stream in streams:
            if stream.lost_percent > limit:
                yield failed(
                    f"{stream.lost_percent:g}% lost (limit {limit:g}%)", stream, subject=call_id
                )
            else:
                yield passed(f"{stream.lost_percent:g}% lost", stream, subject=call_id)
