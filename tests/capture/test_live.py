"""Live capture on loopback: real AF_PACKET sockets, real UDP/TCP traffic, decoded back.

Every test uses its own 127.x.y.z addresses and kernel-chosen ports, so that other
tests sending loopback traffic at the same time (pytest-xdist) cannot leak into the
counts asserted here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.capture import decode_capture, open_capture
from harness.capture import live as live_module
from harness.capture.live import (
    HostMatch,
    LiveCapture,
    NullCapture,
    PacketFilter,
    PortSpec,
    build_filter,
    compile_filter,
    live_capture,
)
from harness.capture.pcapfile import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    LINKTYPE_ETHERNET,
    TCP_SYN,
    ethernet_frame,
    ipv4_packet,
    ipv6_packet,
    tcp_segment,
    udp_datagram,
)
from harness.errors import SetupError
from tests.capture.builders import invite_dialog, request, response

Addr = tuple[str, int]


def _can_capture() -> bool:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except (PermissionError, AttributeError):
        return False
    return True


needs_capture = pytest.mark.skipif(
    not _can_capture(), reason="packet capture needs root or CAP_NET_RAW"
)

_NETS = itertools.count(1)


@pytest.fixture
def net() -> str:
    """A /24 prefix (``127.A.B``) no other test of any worker uses at the same time."""
    return f"127.{100 + os.getpid() % 150}.{next(_NETS) % 250 + 1}"


def _udp(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    return sock


def _port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def _options(src: Addr, n: int, *, transport: str = "UDP") -> bytes:
    return request(
        "OPTIONS",
        call_id=f"live-{n}@{src[0]}",
        cseq=n,
        src=src,
        branch=f"z9hG4bK-{n}",
        transport=transport,
    )


def _drain_udp(sock: socket.socket, count: int, timeout: float = 5.0) -> None:
    """Receive ``count`` datagrams: proves they were delivered before stop()."""
    sock.settimeout(timeout)
    for _ in range(count):
        sock.recv(65535)


# --- filter expression and Python filter (no privilege needed) -----------------------


def test_build_filter_either_end_with_ports_and_ranges() -> None:
    expr = build_filter(["127.0.0.2", "::1", "127.0.0.2"], [5060, (10000, 20000)])
    assert expr.startswith("(host 127.0.0.2 or host ::1) and ")
    assert "(udp or tcp) and (port 5060 or portrange 10000-20000)" in expr
    assert "icmp" in expr


def test_build_filter_both_ends() -> None:
    expr = build_filter(["127.0.0.2", "127.0.0.3"], match="both")
    assert expr.startswith(
        "((src host 127.0.0.2 or src host 127.0.0.3) and "
        "(dst host 127.0.0.2 or dst host 127.0.0.3)) and"
    )


@pytest.mark.parametrize(
    ("hosts", "ports"),
    [(["carrier.example.com"], None), ([], None), (["127.0.0.1"], [70000]), (["::1"], [(9, 3)])],
)
def test_bad_hosts_or_ports_are_refused_before_anything_opens(
    hosts: list[str], ports: list[int | tuple[int, int]] | None, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="capture"):
        LiveCapture(tmp_path / "x.pcap", hosts=hosts, ports=ports)
    assert not (tmp_path / "x.pcap").exists()


def test_filter_that_libpcap_rejects_is_a_one_line_setup_error() -> None:
    with pytest.raises(SetupError) as info:
        compile_filter("host and udp", linktype=LINKTYPE_ETHERNET, snaplen=65535)
    message = str(info.value)
    assert "does not compile" in message
    assert "\n" not in message


def _frames() -> list[tuple[str, bytes]]:
    """Ethernet frames around hosts 127.0.0.2/3 and ::1, ports 5060 and 10000-10010."""

    def v4(src: str, dst: str, proto: int, l4: bytes, flags_offset: int = 0) -> bytes:
        packet = ipv4_packet(src, dst, proto, l4, flags_offset=flags_offset)
        return ethernet_frame(packet, ETHERTYPE_IPV4)

    def v6(src: str, dst: str, proto: int, l4: bytes) -> bytes:
        return ethernet_frame(ipv6_packet(src, dst, proto, l4), ETHERTYPE_IPV6)

    udp, tcp = udp_datagram, tcp_segment
    return [
        ("udp to listed host, sip port", v4("127.0.0.2", "127.0.0.9", 17, udp(4000, 5060, b"x"))),
        ("udp from listed host, rtp range", v4("127.0.0.9", "127.0.0.3", 17, udp(10005, 4, b""))),
        ("udp between hosts, other port", v4("127.0.0.2", "127.0.0.3", 17, udp(4000, 5061, b""))),
        ("udp between outsiders", v4("127.0.0.8", "127.0.0.9", 17, udp(5060, 5060, b""))),
        (
            "tcp syn to sip port",
            v4("127.0.0.3", "127.0.0.4", 6, tcp(4000, 5060, 1, b"", flags=TCP_SYN)),
        ),
        ("tcp range end", v4("127.0.0.3", "127.0.0.4", 6, tcp(10010, 4000, 1, b"y"))),
        ("tcp past range", v4("127.0.0.3", "127.0.0.4", 6, tcp(10011, 4000, 1, b"y"))),
        ("icmp from listed host", v4("127.0.0.3", "127.0.0.9", 1, b"\x03\x03\x00\x00" * 2)),
        ("icmp between outsiders", v4("127.0.0.8", "127.0.0.9", 1, b"\x03\x03\x00\x00")),
        ("later ipv4 fragment", v4("127.0.0.2", "127.0.0.9", 17, b"z" * 16, flags_offset=185)),
        ("gre from listed host", v4("127.0.0.2", "127.0.0.9", 47, b"\x00" * 8)),
        ("udp over ipv6 loopback", v6("::1", "::1", 17, udp(4000, 5060, b"x"))),
        ("udp over ipv6, other port", v6("::1", "::1", 17, udp(4000, 4001, b"x"))),
        ("udp over ipv6, outsider", v6("::2", "::3", 17, udp(4000, 5060, b"x"))),
        ("ipv6 fragment header", v6("::1", "::5", 44, b"\x11\x00\x00\x01" + b"\x00" * 12)),
        ("arp", ethernet_frame(b"\x00" * 28, 0x0806)),
    ]


@pytest.mark.parametrize("match", ["either", "both"])
def test_python_filter_agrees_with_libpcap(match: HostMatch) -> None:
    """The fallback decides every frame the way the compiled BPF program does."""
    import ctypes
    import ctypes.util

    from scapy.libs.structures import bpf_insn, bpf_program

    library = ctypes.util.find_library("pcap")
    if library is None:
        pytest.skip("libpcap is not installed")
    libpcap = ctypes.CDLL(library)

    class Header(ctypes.Structure):
        _fields_ = [
            ("sec", ctypes.c_long),
            ("usec", ctypes.c_long),
            ("caplen", ctypes.c_uint32),
            ("len", ctypes.c_uint32),
        ]

    libpcap.pcap_offline_filter.restype = ctypes.c_int
    libpcap.pcap_offline_filter.argtypes = [
        ctypes.POINTER(bpf_program),
        ctypes.POINTER(Header),
        ctypes.c_char_p,
    ]
    hosts = ["127.0.0.2", "127.0.0.3", "::1"]
    ports: list[PortSpec] = [5060, (10000, 10010)]
    code = compile_filter(
        build_filter(hosts, ports, match=match),
        linktype=LINKTYPE_ETHERNET,
        snaplen=65535,
    )
    insns = ctypes.create_string_buffer(code, len(code))
    program = bpf_program(len(code) // 8, ctypes.cast(insns, ctypes.POINTER(bpf_insn)))
    python = PacketFilter(hosts, ports, match=match)
    decisions = []
    for name, frame in _frames():
        header = Header(0, 0, len(frame), len(frame))
        kernel = libpcap.pcap_offline_filter(ctypes.byref(program), ctypes.byref(header), frame)
        decisions.append((name, bool(kernel), python.accepts(frame)))
    assert [d for d in decisions if d[1] != d[2]] == []
    # The frame set exercises both outcomes.
    assert {d[1] for d in decisions} == {True, False}


# --- the null capture ------------------------------------------------------------------


def test_null_capture_has_the_same_interface_and_writes_nothing(tmp_path: Path) -> None:
    cap = live_capture(None, interface="lo", hosts=["127.0.0.2"])
    assert isinstance(cap, NullCapture)
    with cap as entered:
        assert entered.running
        assert entered.path is None
        assert entered.interface == "lo"
    assert not cap.running
    assert cap.stop().packets == 0
    assert isinstance(live_capture(tmp_path / "a.pcap", hosts=["127.0.0.2"]), LiveCapture)


def test_null_capture_async() -> None:
    async def main() -> bool:
        async with NullCapture() as cap:
            return cap.running

    assert asyncio.run(main())


# --- set-up errors -----------------------------------------------------------------------


def test_unknown_interface_is_a_one_line_setup_error_listing_the_real_ones(
    tmp_path: Path,
) -> None:
    cap = LiveCapture(tmp_path / "x.pcap", interface="lo0", hosts=["127.0.0.2"])
    with pytest.raises(SetupError) as info:
        cap.start()
    message = str(info.value)
    assert message.startswith("interface 'lo0' does not exist; available: ")
    assert "lo" in message.split("available: ")[1].split(", ")
    assert "\n" not in message
    assert not cap.running


def test_missing_privilege_is_a_one_line_setup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_socket = socket.socket

    def refuse(family: int = -1, kind: int = -1, proto: int = -1) -> socket.socket:
        if family == socket.AF_PACKET:
            raise PermissionError(1, "Operation not permitted")  # what the kernel says
        return real_socket(family, kind, proto)

    monkeypatch.setattr(socket, "socket", refuse)
    with pytest.raises(SetupError) as info:
        LiveCapture(tmp_path / "x.pcap", hosts=["127.0.0.2"]).start()
    assert str(info.value) == (
        "packet capture needs root or CAP_NET_RAW: run as root or `setcap cap_net_raw+eip <python>`"
    )
    assert not (tmp_path / "x.pcap").exists()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="dropping CAP_NET_RAW needs root and setpriv",
)
def test_without_cap_net_raw_for_real(tmp_path: Path) -> None:
    """Root whose bounding set lacks CAP_NET_RAW: the real kernel refusal, mapped."""
    script = (
        "from harness.capture.live import LiveCapture\n"
        "from harness.errors import SetupError\n"
        "try:\n"
        f"    LiveCapture({str(tmp_path / 'x.pcap')!r}, hosts=['127.0.0.2']).start()\n"
        "except SetupError as err:\n"
        "    print(err)\n"
    )
    result = subprocess.run(
        ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip().startswith("packet capture needs root or CAP_NET_RAW")


@needs_capture
def test_unwritable_file_is_a_setup_error(tmp_path: Path) -> None:
    cap = LiveCapture(tmp_path / "missing-dir" / "x.pcap", hosts=["127.0.0.2"])
    with pytest.raises(SetupError, match="cannot create capture file"):
        cap.start()
    assert not cap.running


# --- capturing real traffic ---------------------------------------------------------------


@needs_capture
def test_udp_sip_between_loopback_addresses_is_captured_and_decodes(
    tmp_path: Path, net: str
) -> None:
    a, b = _udp(f"{net}.2"), _udp(f"{net}.3")
    ea, eb = a.getsockname(), b.getsockname()
    sent: list[tuple[Addr, Addr, bytes]] = []
    path = tmp_path / "udp.pcap"
    with LiveCapture(path, hosts=[f"{net}.2", f"{net}.3"], ports=[_port(a), _port(b)]) as cap:
        for n in range(1, 6):
            req = _options(ea, n)
            a.sendto(req, eb)
            resp = response(
                200,
                "OK",
                call_id=f"live-{n}@{ea[0]}",
                cseq=n,
                method="OPTIONS",
                via=ea,
                branch=f"z9hG4bK-{n}",
            )
            b.sendto(resp, ea)
            sent += [(ea, eb, req), (eb, ea, resp)]
        _drain_udp(a, 5)
        _drain_udp(b, 5)
    assert cap.stats.packets == 10
    assert cap.stats.dropped == 0
    assert cap.stats.bpf

    decoded = decode_capture(path)
    assert decoded.linktypes == ("ethernet",)
    assert not decoded.issues
    got = [(tuple(m.src), tuple(m.dst), m.message.to_bytes()) for m in decoded.messages]
    assert got == sent
    assert all(m.transport == "udp" for m in decoded.messages)


@needs_capture
def test_tcp_sip_messages_are_captured_and_reassembled(tmp_path: Path, net: str) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((f"{net}.3", 0))
    server.listen(1)
    path = tmp_path / "tcp.pcap"
    with LiveCapture(path, hosts=[f"{net}.2", f"{net}.3"], ports=[_port(server)]):
        client = socket.create_connection(server.getsockname(), source_address=(f"{net}.2", 0))
        conn, _ = server.accept()
        src = client.getsockname()
        messages = [_options(src, n, transport="TCP") for n in range(1, 5)]
        # One message split over two writes, two messages in one write, one alone.
        half = len(messages[0]) // 2
        for chunk in (
            messages[0][:half],
            messages[0][half:],
            messages[1] + messages[2],
            messages[3],
        ):
            client.sendall(chunk)
            time.sleep(0.01)  # separate segments, not one coalesced write
        received = b""
        conn.settimeout(5)
        while len(received) < sum(map(len, messages)):
            received += conn.recv(65535)
        client.close()
        conn.close()
    server.close()

    decoded = decode_capture(path)
    assert [m.message.to_bytes() for m in decoded.messages] == messages
    assert {m.transport for m in decoded.messages} == {"tcp"}
    assert decoded.messages[0].src == src


@needs_capture
def test_traffic_of_other_hosts_is_not_captured(tmp_path: Path, net: str) -> None:
    inside, peer = _udp(f"{net}.2"), _udp(f"{net}.3")
    outsider_a, outsider_b = _udp(f"{net}.4"), _udp(f"{net}.5")
    path = tmp_path / "filtered.pcap"
    with LiveCapture(path, hosts=[f"{net}.2", f"{net}.3"]) as cap:
        outsider_a.sendto(b"OUTSIDE", outsider_b.getsockname())
        inside.sendto(b"INSIDE", peer.getsockname())
        _drain_udp(outsider_b, 1)
        _drain_udp(peer, 1)
    frames = list(open_capture(path))
    assert len(frames) == 1 == cap.stats.packets
    assert frames[0].data.endswith(b"INSIDE")


@needs_capture
def test_first_packet_after_start_is_captured(tmp_path: Path, net: str) -> None:
    a, b = _udp(f"{net}.2"), _udp(f"{net}.3")
    # Several fresh captures: a start() that returned before the socket was ready
    # would lose the first datagram in some of them.
    for attempt in range(20):
        path = tmp_path / f"first-{attempt}.pcap"
        cap = LiveCapture(path, hosts=[f"{net}.2"], ports=[_port(a)])
        cap.start()
        a.sendto(f"FIRST-{attempt}".encode(), b.getsockname())
        _drain_udp(b, 1)
        cap.stop()
        frames = list(open_capture(path))
        assert [f.data[-len(f"FIRST-{attempt}") :] for f in frames] == [f"FIRST-{attempt}".encode()]


@needs_capture
def test_stop_right_after_the_last_packet_keeps_it(tmp_path: Path, net: str) -> None:
    a, b = _udp(f"{net}.2"), _udp(f"{net}.3")
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    path = tmp_path / "last.pcap"
    cap = LiveCapture(path, hosts=[f"{net}.2"], ports=[_port(a)])
    cap.start()
    for n in range(300):
        a.sendto(b"%05d" % n, b.getsockname())
    started = time.monotonic()
    stats = cap.stop()  # nothing waited for: the reader may be far behind
    assert time.monotonic() - started < 2.0
    frames = list(open_capture(path))
    assert stats.packets == len(frames) == 300
    assert frames[-1].data.endswith(b"00299")


@needs_capture
def test_two_parallel_captures_on_different_hosts_do_not_mix(tmp_path: Path, net: str) -> None:
    a1, b1, a2, b2 = (_udp(f"{net}.{i}") for i in (2, 3, 4, 5))
    path1, path2 = tmp_path / "one.pcap", tmp_path / "two.pcap"
    with (
        LiveCapture(path1, hosts=[f"{net}.2", f"{net}.3"]) as one,
        LiveCapture(path2, hosts=[f"{net}.4", f"{net}.5"]) as two,
    ):
        for n in range(50):
            a1.sendto(b"ONE-%d" % n, b1.getsockname())
            a2.sendto(b"TWO-%d" % n, b2.getsockname())
        _drain_udp(b1, 50)
        _drain_udp(b2, 50)
    assert one.stats.packets == two.stats.packets == 50
    assert all(b"ONE-" in f.data for f in open_capture(path1))
    assert all(b"TWO-" in f.data for f in open_capture(path2))


@needs_capture
def test_match_both_separates_runs_that_share_the_harness_address(tmp_path: Path, net: str) -> None:
    harness, peer1, peer2 = _udp(f"{net}.1"), _udp(f"{net}.2"), _udp(f"{net}.3")
    path = tmp_path / "both.pcap"
    with LiveCapture(path, hosts=[f"{net}.1", f"{net}.2"], match="both") as cap:
        harness.sendto(b"TO-PEER-1", peer1.getsockname())
        harness.sendto(b"TO-PEER-2", peer2.getsockname())
        _drain_udp(peer1, 1)
        _drain_udp(peer2, 1)
    assert cap.stats.packets == 1
    assert next(iter(open_capture(path))).data.endswith(b"TO-PEER-1")


@needs_capture
def test_icmp_port_unreachable_between_the_hosts_is_kept(tmp_path: Path, net: str) -> None:
    a = _udp(f"{net}.2")
    closed = _udp(f"{net}.3")
    closed_addr = closed.getsockname()
    closed.close()  # nothing listens there now: the kernel answers ICMP
    path = tmp_path / "icmp.pcap"
    with LiveCapture(path, hosts=[f"{net}.2", f"{net}.3"], ports=[_port(a)]):
        a.connect(closed_addr)  # only a connected socket is told of the ICMP error
        a.send(b"ANYONE?")
        a.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            a.recv(100)  # the ICMP error has arrived
    protocols = [f.data[14 + 9] for f in open_capture(path)]
    assert protocols == [17, 1]


@needs_capture
def test_ipv6_loopback(tmp_path: Path) -> None:
    a = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    a.bind(("::1", 0))
    b.bind(("::1", 0))
    path = tmp_path / "v6.pcap"
    with LiveCapture(path, hosts=["::1"], ports=[_port(a)]):
        a.sendto(_options(("::1", _port(a)), 1), b.getsockname())
        _drain_udp(b, 1)
    decoded = decode_capture(path)
    assert [(m.src.ip, m.dst.port) for m in decoded.messages] == [("::1", _port(b))]


@needs_capture
def test_snaplen_truncates_but_keeps_the_original_length(tmp_path: Path, net: str) -> None:
    a, b = _udp(f"{net}.2"), _udp(f"{net}.3")
    path = tmp_path / "snap.pcap"
    with LiveCapture(path, hosts=[f"{net}.2"], snaplen=100):
        a.sendto(b"x" * 1000, b.getsockname())
        _drain_udp(b, 1)
    (frame,) = open_capture(path)
    assert len(frame.data) == 100
    assert frame.orig_len == 14 + 20 + 8 + 1000


@needs_capture
def test_python_filter_fallback_when_libpcap_is_missing(
    tmp_path: Path, net: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_libpcap(expression: str, *, linktype: int, snaplen: int) -> bytes:
        raise live_module._NoLibpcap("Cannot find libpcap.so library")

    monkeypatch.setattr(live_module, "compile_filter", no_libpcap)
    inside, peer = _udp(f"{net}.2"), _udp(f"{net}.3")
    outsider_a, outsider_b = _udp(f"{net}.4"), _udp(f"{net}.5")
    path = tmp_path / "fallback.pcap"
    with LiveCapture(path, hosts=[f"{net}.2", f"{net}.3"]) as cap:
        outsider_a.sendto(b"OUTSIDE", outsider_b.getsockname())
        inside.sendto(_options(inside.getsockname(), 1), peer.getsockname())
        _drain_udp(outsider_b, 1)
        _drain_udp(peer, 1)
    stats = cap.stats
    assert not stats.bpf
    assert stats.filtered_out >= 1
    decoded = decode_capture(path)
    assert stats.packets == decoded.frames == 1
    assert decoded.messages[0].src == inside.getsockname()


@needs_capture
def test_async_context_manager_inside_an_event_loop(tmp_path: Path, net: str) -> None:
    path = tmp_path / "async.pcap"

    async def main() -> int:
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes] = asyncio.Queue()

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
                received.put_nowait(data)

        sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=(f"{net}.3", 0))
        source, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(f"{net}.2", 0)
        )
        async with LiveCapture(path, hosts=[f"{net}.2", f"{net}.3"]) as cap:
            for n in range(10):
                source.sendto(b"ASYNC-%d" % n, sink.get_extra_info("sockname"))
            for _ in range(10):
                await asyncio.wait_for(received.get(), 5)
        sink.close()
        source.close()
        return cap.stats.packets

    assert asyncio.run(main()) == 10
    assert len(list(open_capture(path))) == 10


@needs_capture
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_the_file(tmp_path: Path, net: str) -> None:
    a, b = _udp(f"{net}.2"), _udp(f"{net}.3")
    path = tmp_path / "tshark.pcap"
    with LiveCapture(path, hosts=[f"{net}.2"]):
        for n in range(1, 8):
            a.sendto(_options(a.getsockname(), n), b.getsockname())
        _drain_udp(b, 7)
    result = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(path),
            "-d",
            f"udp.port=={_port(b)},sip",
            "-T",
            "fields",
            "-e",
            "sip.Method",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["OPTIONS"] * 7


@needs_capture
@pytest.mark.skipif(shutil.which("sngrep") is None, reason="sngrep is not installed")
def test_sngrep_reads_the_file(tmp_path: Path, net: str) -> None:
    """sngrep finds the dialog and re-exports every one of its messages."""
    socks = {f"{net}.{i}": _udp(f"{net}.{i}") for i in (2, 3)}
    ends = {ip: s.getsockname() for ip, s in socks.items()}
    dialog = invite_dialog("sngrep-1@live", ends[f"{net}.2"], ends[f"{net}.3"])
    path, export = tmp_path / "sngrep.pcap", tmp_path / "exported.pcap"
    with LiveCapture(path, hosts=list(socks)):
        for src, dst, data in dialog:
            socks[src[0]].sendto(data, dst)
        _drain_udp(socks[f"{net}.3"], 3)  # INVITE, ACK, BYE
        _drain_udp(socks[f"{net}.2"], 4)  # 100, 180, 200, 200
    subprocess.run(
        ["sngrep", "-N", "-q", "-I", str(path), "-O", str(export)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert [f.data for f in open_capture(export)] == [f.data for f in open_capture(path)]
    assert len(decode_capture(export).messages) == len(dialog)


# --- load ------------------------------------------------------------------------------


@needs_capture
def test_two_thousand_datagrams_lose_none(tmp_path: Path, net: str) -> None:
    a, b = _udp(f"{net}.2"), _udp(f"{net}.3")
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    payloads = [_options(a.getsockname(), n) for n in range(2000)]
    path = tmp_path / "load.pcap"
    with LiveCapture(path, hosts=[f"{net}.2"], ports=[_port(a)]) as cap:
        for payload in payloads:  # as fast as the sender can: the capture must keep up
            a.sendto(payload, b.getsockname())
    stats = cap.stats
    assert stats.dropped == 0
    assert stats.kernel_packets == 2000
    assert stats.packets == 2000
    decoded = decode_capture(path)
    assert [m.message.to_bytes() for m in decoded.messages] == payloads


@needs_capture
@pytest.mark.slow
def test_throughput_and_memory(tmp_path: Path, net: str) -> None:
    """A sender process at full speed; prints the figures (run with ``-s``).

    The datagrams go to a socket nobody reads: the capture tap sees them before UDP
    drops them, so the receiver costs nothing. The capture must account for every
    packet (written or counted as dropped) without its memory growing.
    """
    total = 100_000
    sink = _udp(f"{net}.3")
    sender = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.bind(({net + '.2'!r}, 0))\n"
        "print(s.getsockname()[1], flush=True)\n"
        "sys.stdin.readline()\n"
        f"for _ in range({total}):\n"
        f"    s.sendto(b'x' * 700, {sink.getsockname()!r})\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", sender], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    path = tmp_path / "rate.pcap"
    with LiveCapture(path, hosts=[f"{net}.2"], ports=[port]) as cap:
        started = time.perf_counter()
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=120) == 0
        sent = time.perf_counter()
    elapsed = time.perf_counter() - started
    stats = cap.stats
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"\nlive capture: sender {total / (sent - started):,.0f} packets/s; captured "
        f"{stats.packets} in {elapsed:.2f} s = {stats.packets / elapsed:,.0f} packets/s, "
        f"dropped {stats.dropped}; file {path.stat().st_size / 1e6:.1f} MB; "
        f"peak RSS {rss_before // 1024} -> {rss_after // 1024} MiB"
    )
    assert stats.kernel_packets == total
    assert stats.packets + stats.dropped == total
    assert stats.packets / elapsed > 10_000
    assert rss_after - rss_before < 20 * 1024  # KiB: memory does not grow with the file
