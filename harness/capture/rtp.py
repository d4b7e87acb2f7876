"""RTP stream statistics through tshark's RTP analysis, attached to calls.

This module runs the ``tshark`` program directly (``subprocess``, no shell), not
pyshark: ``tshark -q -z rtp,streams`` already computes per-stream loss, delta and
jitter, and one process over the whole file is far faster than pyshark's
per-packet objects. It is meant for small captures (a test run, a customer's
trace); the SIP decoder (:mod:`harness.capture.decode`) never depends on it.

RTP is recognised heuristically (``rtp.heuristic_rtp:TRUE``) so that streams count
even when tshark did not follow the SDP, and SDP conversation tracking is off
(``sdp.establish_conversation:FALSE``: it makes tshark's time grow faster than the
capture). Name resolution is off (``-n``): nothing is looked up off the machine.

When tshark is missing, fails or times out, :func:`analyze_rtp` returns an
:class:`RtpAnalysis` with ``available=False`` and a one-line ``reason``; it never
raises for that.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from harness.capture.decode import Endpoint
from harness.capture.flows import Call, Flows
from harness.capture.pcapfile import open_capture

DEFAULT_TIMEOUT: Final = 120.0

_ROW: Final = re.compile(
    r"^\s*(?P<start>-?[\d.]+)\s+(?P<end>-?[\d.]+)\s+"
    r"(?P<src>\S+)\s+(?P<sport>\d+)\s+(?P<dst>\S+)\s+(?P<dport>\d+)\s+"
    r"(?P<ssrc>0x[0-9a-fA-F]+)\s+(?P<payload>.+?)\s+(?P<packets>\d+)\s+"
    r"(?P<lost>-?\d+)\s+\((?P<lost_pct>-?[\d.]+)%\)\s+"
    r"(?P<min_delta>[\d.]+)\s+(?P<mean_delta>[\d.]+)\s+(?P<max_delta>[\d.]+)\s+"
    r"(?P<min_jitter>[\d.]+)\s+(?P<mean_jitter>[\d.]+)\s+(?P<max_jitter>[\d.]+)"
    r"\s*(?P<problem>X)?\s*$"
)


@dataclass(frozen=True)
class RtpStream:
    """One RTP stream (one SSRC in one direction) as tshark measured it.

    Times are seconds since the epoch; deltas and jitter are milliseconds.
    ``lost`` may be negative when packets were duplicated (tshark's convention);
    ``problem`` is tshark's "Problems?" mark (sequence errors, wrong timestamps...).
    """

    src: Endpoint
    dst: Endpoint
    ssrc: int
    payload: str
    packets: int
    lost: int
    lost_percent: float
    start: float
    end: float
    min_delta_ms: float
    mean_delta_ms: float
    max_delta_ms: float
    min_jitter_ms: float
    mean_jitter_ms: float
    max_jitter_ms: float
    problem: bool


@dataclass(frozen=True)
class RtpAnalysis:
    """The result of :func:`analyze_rtp`: streams, or why there are none."""

    available: bool
    streams: tuple[RtpStream, ...] = ()
    reason: str | None = None


def parse_rtp_streams(text: str, *, time_origin: float = 0.0) -> tuple[RtpStream, ...]:
    """Parse the table printed by ``tshark -q -z rtp,streams``.

    tshark prints start and end times relative to the first frame; ``time_origin``
    (that frame's timestamp) turns them into epoch seconds. Lines that are not
    stream rows (banners, headers, rulers) are ignored.
    """
    streams: list[RtpStream] = []
    for line in text.splitlines():
        row = _ROW.match(line)
        if row is None:
            continue
        streams.append(
            RtpStream(
                src=Endpoint(row["src"], int(row["sport"])),
                dst=Endpoint(row["dst"], int(row["dport"])),
                ssrc=int(row["ssrc"], 16),
                payload=row["payload"].strip(),
                packets=int(row["packets"]),
                lost=int(row["lost"]),
                lost_percent=float(row["lost_pct"]),
                start=time_origin + float(row["start"]),
                end=time_origin + float(row["end"]),
                min_delta_ms=float(row["min_delta"]),
                mean_delta_ms=float(row["mean_delta"]),
                max_delta_ms=float(row["max_delta"]),
                min_jitter_ms=float(row["min_jitter"]),
                mean_jitter_ms=float(row["mean_jitter"]),
                max_jitter_ms=float(row["max_jitter"]),
                problem=row["problem"] is not None,
            )
        )
    return tuple(streams)


def _first_timestamp(path: str | os.PathLike[str]) -> float:
    with open_capture(path) as reader:
        for frame in reader:
            return frame.timestamp
    return 0.0


def analyze_rtp(
    path: str | os.PathLike[str],
    *,
    tshark: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> RtpAnalysis:
    """Measure every RTP stream of the capture at ``path`` with tshark.

    ``tshark`` names the program (default: found on PATH). Raises
    :class:`~harness.capture.pcapfile.CaptureError` only when ``path`` is not a
    capture; a missing or failing tshark gives ``available=False`` and a reason.
    """
    origin = _first_timestamp(path)  # also rejects a non-capture with CaptureError
    program = tshark or shutil.which("tshark")
    if program is None:
        return RtpAnalysis(False, reason="tshark is not installed: RTP statistics unavailable")
    command = [
        program,
        "-n",
        "-r",
        os.fspath(path),
        "-q",
        "-o",
        "rtp.heuristic_rtp:TRUE",
        "-o",
        "sdp.establish_conversation:FALSE",
        "-z",
        "rtp,streams",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return RtpAnalysis(
            False, reason=f"tshark took longer than {timeout:g} s: RTP statistics unavailable"
        )
    except OSError as err:
        return RtpAnalysis(
            False,
            reason=f"tshark could not run ({err.strerror or err}): RTP statistics unavailable",
        )
    if done.returncode != 0:
        noise = ("Running as user", "dangerous")
        lines = [
            ln for ln in done.stderr.splitlines() if ln.strip() and not any(n in ln for n in noise)
        ]
        detail = lines[0].strip() if lines else f"exit status {done.returncode}"
        return RtpAnalysis(False, reason=f"tshark failed: {detail}")
    return RtpAnalysis(True, parse_rtp_streams(done.stdout, time_origin=origin))


def call_media_endpoints(call: Call) -> frozenset[Endpoint]:
    """Media endpoints (address, port) announced in a call's SDP; port 0 excluded."""
    return frozenset(media.endpoint for media in call.media if media.port)


def streams_for_call(call: Call, streams: Iterable[RtpStream]) -> tuple[RtpStream, ...]:
    """The streams whose source or destination a call's SDP announced."""
    endpoints = call_media_endpoints(call)
    return tuple(s for s in streams if s.src in endpoints or s.dst in endpoints)


def attach_streams(
    flows: Flows | Iterable[Call], streams: Iterable[RtpStream]
) -> Mapping[str, tuple[RtpStream, ...]]:
    """Call-ID -> its RTP streams, for every call that announced media.

    A stream can belong to several calls when their SDP reused an address and port
    (a re-INVITE in another call, a test that recycles ports); it is listed in each.
    """
    calls = flows.calls if isinstance(flows, Flows) else tuple(flows)
    every = tuple(streams)
    return {
        call.call_id: streams_for_call(call, every) for call in calls if call_media_endpoints(call)
    }
