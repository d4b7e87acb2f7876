"""Media for a call: open the RTP socket, read the peer's SDP, run RTP until told to stop.

:func:`run_media` wraps :meth:`RtpEndpoint.run` so that a call can end its media
early (a BYE from the peer) and still get the figures measured until then.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from harness.agent.rtp import PAYLOAD_TYPES, RtpEndpoint, RtpStats
from harness.errors import SetupError
from harness.sip.errors import RemoteProtocolError, SipError
from harness.sip.sdp import audio_endpoint, parse_sdp


@dataclass(frozen=True)
class RemoteMedia:
    """Where the peer receives audio and with which codec (from its SDP)."""

    host: str
    port: int
    codec: str
    payload_type: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


async def open_rtp(host: str, rng: random.Random | None = None) -> RtpEndpoint:
    """An RTP socket on ``host`` (any free port); SetupError when it cannot be bound."""
    try:
        return await RtpEndpoint.open(host, 0, rng=rng)
    except OSError as exc:
        raise SetupError(f"cannot bind an RTP socket on {host}: {exc.strerror or exc}") from exc


def remote_media(body: bytes) -> RemoteMedia:
    """The peer's audio endpoint and codec from an SDP body.

    Raises :class:`RemoteProtocolError` naming what is missing or unusable.
    """
    if not body:
        raise RemoteProtocolError("no SDP body")
    try:
        endpoint = audio_endpoint(parse_sdp(body))
    except SipError as exc:
        raise RemoteProtocolError(f"unusable SDP: {exc}") from exc
    if endpoint is None:
        raise RemoteProtocolError("the SDP has no active audio stream")
    if endpoint.codec is None:
        raise RemoteProtocolError("the SDP's audio stream names no voice codec")
    name = endpoint.codec.name.upper()
    if name not in PAYLOAD_TYPES:
        raise RemoteProtocolError(f"the SDP's codec {endpoint.codec.name} is not G.711")
    return RemoteMedia(endpoint.address, endpoint.port, name, endpoint.codec.payload_type)


async def run_media(
    endpoint: RtpEndpoint,
    media: RemoteMedia,
    duration: float,
    stop: asyncio.Event,
    *,
    send: bool = True,
    echo: bool = False,
) -> RtpStats | None:
    """Run RTP for ``duration`` seconds or until ``stop`` is set; the figures measured.

    None only if the endpoint could not start (it was closed).
    """
    if endpoint.closed:
        return None
    return await endpoint.run(
        (media.host, media.port),
        duration,
        codec=media.codec,
        payload_type=media.payload_type,
        send=send,
        echo=echo,
        stop=stop,
    )
