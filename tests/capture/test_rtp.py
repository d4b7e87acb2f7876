"""RTP statistics through tshark, attached to calls by their SDP."""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import pytest

from harness.capture import analyze_rtp, attach_streams, build_flows, decode_capture
from harness.capture.decode import Endpoint
from harness.capture.rtp import parse_rtp_streams
from tests.capture.builders import CaptureBuilder, invite_dialog

TABLE = """\
========================= RTP Streams ========================
   Start time      End time     Src IP addr  Port    Dest IP addr  Port       SSRC          Payload  Pkts         Lost   Min Delta(ms)  Mean Delta(ms)   Max Delta(ms)  Min Jitter(ms) Mean Jitter(ms)  Max Jitter(ms) Problems?
     0.005999      0.103992       127.0.0.2 50000       127.0.0.1 40000 0x00005678            g711U    50     2 (3.8%)           1.999           2.000          40.000           1.125          12.723          17.238 X
     1.005000      2.102992     2001:db8::1 40000     2001:db8::2 50000 0x00001234  g711A, telephone-event    50    -1 (-2.0%)           1.999           2.000           2.000           0.000           0.500           1.000
==============================================================
"""  # noqa: E501


def test_parse_rtp_streams_table() -> None:
    first, second = parse_rtp_streams(TABLE, time_origin=100.0)
    assert first.src == Endpoint("127.0.0.2", 50000)
    assert first.dst == ("127.0.0.1", 40000)
    assert first.ssrc == 0x5678
    assert first.payload == "g711U"
    assert (first.packets, first.lost, first.lost_percent) == (50, 2, 3.8)
    assert first.max_delta_ms == 40.0
    assert first.mean_jitter_ms == 12.723
    assert first.max_jitter_ms == 17.238
    assert first.start == pytest.approx(100.005999)
    assert first.problem
    assert second.payload == "g711A, telephone-event"
    assert second.lost == -1
    assert not second.problem
    assert second.src.ip == "2001:db8::1"


def _capture_with_rtp(path: Path) -> Path:
    cap = CaptureBuilder()
    a, b = ("127.0.0.1", 5060), ("127.0.0.2", 5080)
    media = (("127.0.0.1", 40000), ("127.0.0.2", 50000))
    dialog = invite_dialog("rtpcall", a, b, media=media)
    for src, dst, payload in dialog[:5]:
        cap.udp(src, dst, payload)
    cap.step = 0.02
    for seq in range(60):
        if seq == 30:
            cap.clock += cap.step  # one packet lost: its slot passes without it
            continue
        cap.udp(
            media[0],
            media[1],
            struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1111) + b"\xff" * 160,
        )
    for src, dst, payload in dialog[5:]:
        cap.udp(src, dst, payload)
    return cap.save(path)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_analyze_rtp_measures_streams_and_attaches_them_to_the_call(tmp_path: Path) -> None:
    path = _capture_with_rtp(tmp_path / "rtp.pcap")
    analysis = analyze_rtp(path)
    assert analysis.available, analysis.reason
    (stream,) = analysis.streams
    assert stream.ssrc == 0x1111
    assert stream.packets == 59
    assert stream.lost == 1
    assert stream.payload == "g711U"
    assert stream.max_delta_ms == pytest.approx(40.0, abs=0.1)
    flows = build_flows(decode_capture(path))
    assert attach_streams(flows, analysis.streams) == {"rtpcall": (stream,)}
    assert stream.start >= flows.calls[0].start


def test_missing_tshark_gives_unavailable_with_a_reason(tmp_path: Path) -> None:
    path = _capture_with_rtp(tmp_path / "rtp.pcap")
    analysis = analyze_rtp(path, tshark=str(tmp_path / "no-such-tshark"))
    assert not analysis.available
    assert analysis.streams == ()
    assert analysis.reason is not None
    assert "tshark" in analysis.reason


def test_streams_not_announced_in_sdp_are_not_attached() -> None:
    (stream,) = parse_rtp_streams(TABLE.splitlines()[2], time_origin=0.0)
    cap = CaptureBuilder()
    for src, dst, payload in invite_dialog("other", ("10.0.0.1", 5060), ("10.0.0.2", 5060)):
        cap.udp(src, dst, payload)
    flows = build_flows(decode_capture(io.BytesIO(cap.pcap())))
    assert attach_streams(flows, [stream]) == {"other": ()}
