"""Reading capture files: formats, byte orders, resolutions, damage."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.capture import CaptureError, decode_capture, open_capture
from harness.capture.pcapfile import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    PcapngWriter,
    PcapWriter,
)
from harness.errors import InputError
from tests.capture.builders import CaptureBuilder, invite_dialog, link_wrap

A = ("10.0.0.1", 5060)
B = ("10.0.0.2", 5080)


def _dialog_capture(**kwargs: object) -> CaptureBuilder:
    cap = CaptureBuilder(**kwargs)  # type: ignore[arg-type]
    for src, dst, payload in invite_dialog("c1", A, B):
        cap.udp(src, dst, payload)
    return cap


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_byte_orders_and_resolutions(byteorder: str, nanosecond: bool) -> None:
    cap = _dialog_capture(step=0.000000123 if nanosecond else 0.25)
    data = cap.pcap(nanosecond=nanosecond, byteorder=byteorder)
    with open_capture(io.BytesIO(data)) as reader:
        frames = list(reader)
    assert reader.format == "pcap"
    assert [f.number for f in frames] == list(range(1, 8))
    assert frames[0].data == cap.frames[0][1]
    tolerance = 1e-9 if nanosecond else 1e-6
    for frame, (ts, _) in zip(frames, cap.frames, strict=True):
        assert frame.timestamp == pytest.approx(ts, abs=tolerance)
    decoded = decode_capture(io.BytesIO(data))
    assert len(decoded.messages) == 7
    assert decoded.issues == ()


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_pcapng_several_interfaces_link_types_and_resolutions(byteorder: str) -> None:
    out = io.BytesIO()
    writer = PcapngWriter(out, byteorder=byteorder)
    eth = writer.add_interface(LINKTYPE_ETHERNET, tsresol=6, name="eth0")
    raw = writer.add_interface(LINKTYPE_RAW, tsresol=9)
    sll2 = writer.add_interface(LINKTYPE_LINUX_SLL2, tsresol=0x80 | 20)  # 2^-20 s
    # An unknown block (a custom one) and a name-resolution block are skipped.
    writer.write_block(0x00000BAD, b"vendor data")
    writer.write_block(0x00000004, b"\x00\x00\x00\x00")
    dialog = invite_dialog("multi", A, B)
    ifaces = [eth, raw, sll2]
    linktypes = [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL2]
    builder = CaptureBuilder()
    for i, (src, dst, payload) in enumerate(dialog):
        builder.udp(src, dst, payload)
        _, frame = builder.frames[-1]
        ip = frame[14:]  # the builder makes Ethernet frames: re-wrap the IP packet
        iface = ifaces[i % 3]
        writer.write(link_wrap(linktypes[i % 3], ip), 1_700_000_000.5 + i, interface=iface)
    writer.write_simple(link_wrap(LINKTYPE_ETHERNET, builder.frames[0][1][14:]))
    with open_capture(io.BytesIO(out.getvalue())) as reader:
        frames = list(reader)
        interfaces = list(reader.interfaces)
    assert [i.linktype for i in interfaces] == linktypes
    assert interfaces[0].name == "eth0"
    assert [f.interface for f in frames[:3]] == [0, 1, 2]
    assert frames[1].timestamp == pytest.approx(1_700_000_001.5, abs=1e-9)
    assert frames[2].timestamp == pytest.approx(1_700_000_002.5, abs=2**-20)
    # The simple packet block has no timestamp: it takes the previous packet's.
    assert frames[-1].timestamp == frames[-2].timestamp
    decoded = decode_capture(io.BytesIO(out.getvalue()))
    assert decoded.format == "pcapng"
    assert decoded.linktypes == ("ethernet", "raw-ip", "linux-sll2")
    assert [m.message.call_id for m in decoded.messages] == ["multi"] * 8
    assert decoded.issues == ()


def test_gzip_compressed_capture_is_read(tmp_path: Path) -> None:
    path = tmp_path / "run.pcap.gz"
    path.write_bytes(gzip.compress(_dialog_capture().pcap()))
    assert len(decode_capture(path).messages) == 7


@pytest.mark.parametrize(
    "content",
    [b"", b"abc", b"<html><body>not a capture</body></html>", b"\x1f\x8bnot gzip at all"],
    ids=["empty", "short", "html", "bad-gzip"],
)
def test_not_a_capture_raises_one_line_error_naming_the_file(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as info:
        decode_capture(path)
    message = str(info.value)
    assert isinstance(info.value, InputError)
    assert "\n" not in message
    assert str(path) in message
    assert "not a pcap or pcapng capture" in message


def test_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot open capture"):
        decode_capture(tmp_path / "absent.pcap")


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_truncated_capture_ends_cleanly_with_a_finding(fmt: str) -> None:
    cap = _dialog_capture()
    data = cap.pcap() if fmt == "pcap" else cap.pcapng()
    cut = data[: len(data) - 40]  # inside the last packet
    decoded = decode_capture(io.BytesIO(cut))
    assert len(decoded.messages) == 6
    assert decoded.truncated
    (issue,) = decoded.issues
    assert issue.kind == "truncated-capture"
    assert issue.frame == 7
    assert "truncated" in issue.reason


def test_corrupt_record_length_stops_reading_with_a_finding() -> None:
    data = bytearray(_dialog_capture().pcap())
    # Second record header starts after the file header and the first record.
    first_len = struct.unpack_from("<I", data, 24 + 8)[0]
    second = 24 + 16 + first_len
    struct.pack_into("<I", data, second + 8, 0x7FFFFFFF)
    decoded = decode_capture(io.BytesIO(bytes(data)))
    assert len(decoded.messages) == 1
    assert [i.kind for i in decoded.issues] == ["corrupt-capture"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=4, max_value=6000), fmt=st.sampled_from(["pcap", "pcapng"]))
def test_random_truncation_never_raises(cut: int, fmt: str) -> None:
    cap = _dialog_capture()
    data = cap.pcap() if fmt == "pcap" else cap.pcapng()
    decoded = decode_capture(io.BytesIO(data[:cut]))
    assert len(decoded.messages) <= 7
    assert not any(i.kind == "internal-error" for i in decoded.issues)
    if cut < len(data):
        assert decoded.frames < 7


def test_writer_round_trip_keeps_original_length() -> None:
    out = io.BytesIO()
    writer = PcapWriter(out, linktype=LINKTYPE_RAW)
    writer.write(b"\x45" + b"\x00" * 19, 12.5, orig_len=1500)
    (frame,) = list(open_capture(io.BytesIO(out.getvalue())))
    assert frame.orig_len == 1500
    assert frame.timestamp == 12.5
    assert frame.linktype == LINKTYPE_RAW
