"""Live capture of a run's traffic to a pcap file (Linux ``AF_PACKET``, kernel BPF filter).

A scenario is wrapped in a capture::

    with LiveCapture("run.pcap", hosts=["127.0.0.1", "127.0.0.2"], ports=[5060]) as cap:
        ...                      # every packet sent from here on is in the file
    print(cap.stats.packets, cap.stats.dropped)

    async with LiveCapture(...):  # the same, without blocking the event loop
        ...

What a caller may rely on:

* :meth:`LiveCapture.start` returns only once the capture socket is bound with its
  filter attached: a packet sent after it returns is captured (unless the kernel
  drops it for lack of buffer space, which :attr:`CaptureStats.dropped` counts).
* :meth:`LiveCapture.stop` first reads what the kernel has already queued, until the
  socket has been idle for :data:`DRAIN_IDLE` seconds or :data:`DRAIN_MAX` seconds have
  passed, then closes the file. Packets sent before ``stop()`` was called are in it.
* The file is a classic pcap (microsecond timestamps, taken by the kernel on
  receipt) written as packets arrive; memory does not grow with the capture. Its
  link type is the interface's: Ethernet for ``lo`` (zeroed MAC addresses) and
  Ethernet devices, raw IP for ``tun``-style devices.
* Every way the capture cannot start is a :class:`~harness.errors.SetupError` whose
  message is one line: no privilege (root or ``CAP_NET_RAW`` needed), unknown
  interface (the available ones are listed), unwritable file, filter that libpcap
  rejects.

Why not ``scapy.all``: importing it costs ≈ 60 MiB of RSS and half a second, and
``scapy.arch.linux`` alone ≈ 40 MiB, against a 150 MiB budget for a whole run. The
kernel part of a capture is a plain ``AF_PACKET`` socket; what scapy adds is its
ctypes binding of libpcap (``scapy.libs.winpcapy``, ≈ 5 MiB), used here to compile the
filter expression to BPF. Without libpcap the same filter is applied in Python
(:class:`PacketFilter`), slower but equivalent.

Loopback sees each packet twice (once leaving, once arriving); like libpcap, only
the arriving copy is kept.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import ipaddress
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Literal, Protocol, Self

from harness.capture.pcapfile import LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter
from harness.errors import SetupError

__all__ = [
    "DRAIN_IDLE",
    "DRAIN_MAX",
    "Capture",
    "CaptureStats",
    "HostMatch",
    "LiveCapture",
    "NullCapture",
    "PacketFilter",
    "PortSpec",
    "build_filter",
    "compile_filter",
    "live_capture",
]

#: ``stop()`` reads until the socket has been idle this long (seconds)...
DRAIN_IDLE: Final = 0.05
#: ...or this long at most, even if traffic keeps coming.
DRAIN_MAX: Final = 0.5

HostMatch = Literal["either", "both"]
PortSpec = int | tuple[int, int]

# --- Linux constants the socket module does not export ------------------------------
_ETH_P_ALL: Final = 0x0003
_SOL_PACKET: Final = 263
_PACKET_STATISTICS: Final = 6
_PACKET_AUXDATA: Final = 8
_PACKET_IGNORE_OUTGOING: Final = 23  # Linux 4.20+
_PACKET_OUTGOING: Final = 4
_SO_ATTACH_FILTER: Final = 26
_SO_RCVBUFFORCE: Final = 33
_SO_TIMESTAMPNS: Final = 35  # SCM_TIMESTAMPNS has the same value
_ARPHRD_ETHER: Final = 1
_ARPHRD_LOOPBACK: Final = 772
_ARPHRD_NONE: Final = 0xFFFE  # tun devices: raw IP, no link header

_TIMESPEC: Final = struct.Struct("=qq")
_AUXDATA: Final = struct.Struct("=IIIHHHH")  # tpacket_auxdata: status, len, snaplen, ...
_TPACKET_STATS: Final = struct.Struct("=II")  # tp_packets, tp_drops
_ANCILLARY_SPACE: Final = socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(_AUXDATA.size)

#: Receive buffer: larger than any frame loopback (MTU 65536) or GRO can deliver.
_RECV_BUFFER: Final = 256 * 1024
#: Requested kernel socket buffer; 2,000 SIP datagrams on loopback need ≈ 5 MiB.
DEFAULT_SOCKET_BUFFER: Final = 16 * 1024 * 1024
#: Packets read in one go before the stop flag is looked at again.
_BATCH: Final = 512
#: The reader wakes at least this often (seconds) to flush the file and check its state.
_TICK: Final = 0.25
_PCAP_NETMASK_UNKNOWN: Final = 0xFFFFFFFF

_LINKTYPES: Final[dict[int, int]] = {
    _ARPHRD_ETHER: LINKTYPE_ETHERNET,
    _ARPHRD_LOOPBACK: LINKTYPE_ETHERNET,
    _ARPHRD_NONE: LINKTYPE_RAW,
}

_PRIVILEGE_HINT: Final = (
    "packet capture needs root or CAP_NET_RAW: run as root or `setcap cap_net_raw+eip <python>`"
)


# =====================================================================================
# Results and the common interface
# =====================================================================================


@dataclass(frozen=True)
class CaptureStats:
    """What a capture saw.

    ``packets``/``bytes`` were written to the file (``bytes`` counts captured
    link-layer bytes). ``dropped`` packets passed the filter but the kernel had no
    buffer space for them: a capture with ``dropped > 0`` is incomplete evidence.
    ``kernel_packets`` is the kernel's count of packets that passed its filter (``None``
    when the kernel did not say). ``filtered_out`` counts packets rejected by the
    Python-side filter (only non-zero when libpcap was unavailable, ``bpf`` False).
    """

    packets: int = 0
    bytes: int = 0
    dropped: int = 0
    kernel_packets: int | None = None
    filtered_out: int = 0
    filter: str = ""
    bpf: bool = False


class Capture(Protocol):
    """A capture a scenario can be wrapped in; :class:`NullCapture` when disabled."""

    @property
    def path(self) -> Path | None: ...

    @property
    def interface(self) -> str: ...

    @property
    def stats(self) -> CaptureStats: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> CaptureStats: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class NullCapture:
    """The capture used when capturing is switched off: same interface, no file.

    ``path`` is ``None``; ``start``/``stop`` only track state; ``stats`` stay zero.
    """

    def __init__(self, *, interface: str = "lo") -> None:
        self._interface = interface
        self._running = False

    @property
    def path(self) -> Path | None:
        return None

    @property
    def interface(self) -> str:
        return self._interface

    @property
    def stats(self) -> CaptureStats:
        return CaptureStats()

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        self._running = True

    def stop(self) -> CaptureStats:
        self._running = False
        return CaptureStats()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# =====================================================================================
# The filter: expression, BPF compilation, Python equivalent
# =====================================================================================


def _normalise_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    result: list[str] = []
    for host in hosts:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            # A name would make libpcap resolve it (DNS off loopback) at compile time.
            raise ValueError(f"capture host {host!r} is not an IP address") from None
        text = str(address)
        if text not in result:
            result.append(text)
    if not result:
        raise ValueError("a capture needs at least one host address")
    return tuple(result)


def _normalise_ports(ports: Iterable[PortSpec] | None) -> tuple[PortSpec, ...]:
    result: list[PortSpec] = []
    for spec in ports or ():
        low, high = (spec, spec) if isinstance(spec, int) else spec
        if not 0 <= low <= high <= 65535:
            raise ValueError(f"capture port {spec!r} is not a port or a (low, high) range")
        result.append(low if low == high else (low, high))
    return tuple(result)


def build_filter(
    hosts: Sequence[str],
    ports: Sequence[PortSpec] | None = None,
    *,
    match: HostMatch = "either",
) -> str:
    """The pcap-filter expression for a run's hosts and ports.

    ``match="either"`` keeps packets with at least one end in ``hosts``; ``"both"``
    only packets between two of them (so that parallel runs sharing an address, such
    as the harness's own, stay apart). UDP and TCP are kept, restricted to ``ports``
    (an ``int`` or an inclusive ``(low, high)`` range, either end) when given; ICMP
    between the hosts always (a port-unreachable is evidence), and IP fragments,
    which carry no ports, so that large UDP messages reassemble.

    Raises :class:`ValueError` for a host that is not an IP literal or a bad port.
    """
    addresses = _normalise_hosts(hosts)
    port_specs = _normalise_ports(ports)
    if match == "either":
        host_expr = " or ".join(f"host {a}" for a in addresses)
    elif match == "both":
        src = " or ".join(f"src host {a}" for a in addresses)
        dst = " or ".join(f"dst host {a}" for a in addresses)
        host_expr = f"({src}) and ({dst})"
    else:
        raise ValueError(f"match must be 'either' or 'both', not {match!r}")
    transport = "udp or tcp"
    if port_specs:
        port_expr = " or ".join(
            f"port {p}" if isinstance(p, int) else f"portrange {p[0]}-{p[1]}" for p in port_specs
        )
        transport = f"(udp or tcp) and ({port_expr})"
    kinds = [
        f"({transport})",
        "icmp",
        "icmp6",
        "(ip[6:2] & 0x1fff != 0)",  # IPv4 fragments after the first: no UDP header
        "(ip6 and ip6[6] == 44)",  # IPv6 fragment header first: ports unreadable
    ]
    return f"({host_expr}) and ({' or '.join(kinds)})"


class _NoLibpcap(Exception):
    """libpcap cannot be loaded: filter in Python instead."""


def compile_filter(expression: str, *, linktype: int, snaplen: int) -> bytes:
    """Compile a pcap-filter expression to the kernel's ``sock_filter`` array.

    Uses libpcap through scapy's ctypes binding, with a "dead" handle (no interface,
    no privilege). Raises :class:`SetupError` (one line, libpcap's reason) when the
    expression does not compile; raises ``_NoLibpcap`` when libpcap is absent.
    """
    try:
        # Lazy: loading libpcap is only worth it when a capture starts.
        from scapy.libs import winpcapy  # noqa: PLC0415
        from scapy.libs.structures import bpf_program  # noqa: PLC0415
    except (ImportError, OSError) as exc:
        raise _NoLibpcap(str(exc)) from exc
    handle = winpcapy.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise SetupError(f"libpcap cannot open a handle for link type {linktype}")
    try:
        program = bpf_program()
        status = winpcapy.pcap_compile(
            handle, ctypes.byref(program), expression.encode(), 1, _PCAP_NETMASK_UNKNOWN
        )
        if status != 0:
            reason = (winpcapy.pcap_geterr(handle) or b"unknown error").decode(errors="replace")
            raise SetupError(f"capture filter {expression!r} does not compile: {reason}")
        try:
            # struct bpf_insn and the kernel's struct sock_filter share one layout.
            size = program.bf_len * 8
            return ctypes.string_at(program.bf_insns, size)
        finally:
            winpcapy.pcap_freecode(ctypes.byref(program))
    finally:
        winpcapy.pcap_close(handle)


def _attach_filter(sock: socket.socket, instructions: bytes) -> None:
    count = len(instructions) // 8
    array = ctypes.create_string_buffer(instructions, len(instructions))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (padded).
    fprog = struct.pack("HL", count, ctypes.addressof(array))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


class PacketFilter:
    """The :func:`build_filter` expression evaluated in Python (libpcap absent).

    ``accepts(frame)`` takes link-layer bytes of the capture's link type.
    """

    def __init__(
        self,
        hosts: Sequence[str],
        ports: Sequence[PortSpec] | None = None,
        *,
        match: HostMatch = "either",
        linktype: int = LINKTYPE_ETHERNET,
    ) -> None:
        self._hosts = frozenset(ipaddress.ip_address(h).packed for h in _normalise_hosts(hosts))
        specs = _normalise_ports(ports)
        self._ports = frozenset(p for p in specs if isinstance(p, int))
        self._ranges = tuple(p for p in specs if not isinstance(p, int))
        self._any_port = not specs
        self._both = match == "both"
        self._linktype = linktype

    def _hosts_match(self, src: bytes, dst: bytes) -> bool:
        if self._both:
            return src in self._hosts and dst in self._hosts
        return src in self._hosts or dst in self._hosts

    def _port_match(self, port: int) -> bool:
        return port in self._ports or any(lo <= port <= hi for lo, hi in self._ranges)

    def _transport_match(self, proto: int, l4: bytes) -> bool:
        if proto in (1, 58):  # ICMP, ICMPv6
            return True
        if proto not in (6, 17) or len(l4) < 4:
            return False
        if self._any_port:
            return True
        sport, dport = struct.unpack_from("!HH", l4)
        return self._port_match(sport) or self._port_match(dport)

    def accepts(self, frame: bytes) -> bool:
        if self._linktype == LINKTYPE_ETHERNET:
            if len(frame) < 14:
                return False
            (ethertype,) = struct.unpack_from("!H", frame, 12)
            packet = frame[14:]
        else:
            packet = frame
            ethertype = {4: 0x0800, 6: 0x86DD}.get(frame[0] >> 4 if frame else 0, 0)
        if ethertype == 0x0800 and len(packet) >= 20:
            if not self._hosts_match(packet[12:16], packet[16:20]):
                return False
            (flags_offset,) = struct.unpack_from("!H", packet, 6)
            if flags_offset & 0x1FFF:
                return True
            header = (packet[0] & 0x0F) * 4
            return self._transport_match(packet[9], packet[header:])
        if ethertype == 0x86DD and len(packet) >= 40:
            if not self._hosts_match(packet[8:24], packet[24:40]):
                return False
            if packet[6] == 44:
                return True
            return self._transport_match(packet[6], packet[40:])
        return False


# =====================================================================================
# Interfaces
# =====================================================================================


def _interface_names() -> list[str]:
    return [name for _index, name in socket.if_nameindex()]


def _interface_linktype(name: str) -> tuple[int, int]:
    """``name``'s hardware type and the pcap link type of its raw frames, or ``SetupError``."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        available = ", ".join(_interface_names())
        raise SetupError(f"interface {name!r} does not exist; available: {available}") from None
    try:
        arphrd = int(Path("/sys/class/net", name, "type").read_text().strip())
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read the link type of interface {name!r}: {exc}") from exc
    linktype = _LINKTYPES.get(arphrd)
    if linktype is None:
        raise SetupError(
            f"interface {name!r} has hardware type {arphrd}, which live capture does not "
            "support (Ethernet, loopback and tun devices are supported)"
        )
    return arphrd, linktype


# =====================================================================================
# The live capture
# =====================================================================================


class LiveCapture:
    """Capture packets on ``interface`` to the pcap file ``path`` (see the module doc).

    ``hosts`` are IP literals; ``ports`` ints or ``(low, high)`` ranges; ``match`` as in
    :func:`build_filter`. ``snaplen`` caps the bytes stored per packet.
    ``socket_buffer`` is the kernel buffer asked for (root may exceed ``rmem_max``).
    The constructor only validates its arguments (``ValueError``); nothing is opened
    before :meth:`start`. A capture runs once: start, then stop.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interface: str = "lo",
        hosts: Sequence[str],
        ports: Sequence[PortSpec] | None = None,
        match: HostMatch = "either",
        snaplen: int = 65535,
        socket_buffer: int = DEFAULT_SOCKET_BUFFER,
    ) -> None:
        if snaplen <= 0:
            raise ValueError(f"snaplen must be positive, not {snaplen}")
        self._path = Path(path)
        self._interface = interface
        self._hosts = _normalise_hosts(hosts)
        self._ports = _normalise_ports(ports)
        self._match: HostMatch = match
        self._filter = build_filter(self._hosts, self._ports, match=match)
        self._snaplen = snaplen
        self._socket_buffer = socket_buffer
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None
        self._writer: PcapWriter | None = None
        self._py_filter: PacketFilter | None = None
        self._keep_outgoing = True
        self._thread: threading.Thread | None = None
        self._wake_r = -1
        self._wake_w = -1
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._started = False
        self._stopped = False
        self._packets = 0
        self._bytes = 0
        self._filtered_out = 0
        self._kernel_packets: int | None = None
        self._dropped = 0

    # --- properties -------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def interface(self) -> str:
        return self._interface

    @property
    def filter(self) -> str:
        """The pcap-filter expression this capture applies."""
        return self._filter

    @property
    def running(self) -> bool:
        return self._started and not self._stopped

    @property
    def stats(self) -> CaptureStats:
        """Counters so far (final once :meth:`stop` has returned)."""
        return CaptureStats(
            packets=self._packets,
            bytes=self._bytes,
            dropped=self._dropped,
            kernel_packets=self._kernel_packets,
            filtered_out=self._filtered_out,
            filter=self._filter,
            bpf=self._started and self._py_filter is None,
        )

    # --- start ------------------------------------------------------------------------

    def start(self) -> None:
        """Open the socket, attach the filter, start reading; see the module doc.

        Raises :class:`SetupError` (one line) when the capture cannot start, and
        :class:`RuntimeError` when this capture was already started.
        """
        if self._started:
            raise RuntimeError("a LiveCapture can be started only once")
        arphrd, linktype = _interface_linktype(self._interface)
        try:
            program: bytes | None = compile_filter(
                self._filter, linktype=linktype, snaplen=self._snaplen
            )
        except _NoLibpcap:
            program = None
        sock = self._open_socket(program, linktype, loopback=arphrd == _ARPHRD_LOOPBACK)
        try:
            self._open_file(linktype)
            self._wake_r, self._wake_w = os.pipe()
        except BaseException:
            sock.close()
            self._close_file()
            raise
        self._sock = sock
        self._started = True
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self._interface}", daemon=True
        )
        self._thread.start()

    def _open_socket(
        self, program: bytes | None, linktype: int, *, loopback: bool
    ) -> socket.socket:
        if not hasattr(socket, "AF_PACKET"):
            raise SetupError("live capture needs Linux (AF_PACKET sockets)")
        try:
            # Protocol 0: the socket receives nothing until bound, so no unfiltered
            # packet can be queued before the filter is attached.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise SetupError(_PRIVILEGE_HINT) from None
        except OSError as exc:
            raise SetupError(f"cannot open a packet socket: {exc.strerror or exc}") from exc
        try:
            self._configure(sock, program, linktype, loopback=loopback)
            sock.bind((self._interface, _ETH_P_ALL))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.ENODEV:
                available = ", ".join(_interface_names())
                raise SetupError(
                    f"interface {self._interface!r} does not exist; available: {available}"
                ) from None
            raise SetupError(
                f"cannot capture on interface {self._interface!r}: {exc.strerror or exc}"
            ) from exc
        sock.setblocking(False)
        return sock

    def _configure(
        self, sock: socket.socket, program: bytes | None, linktype: int, *, loopback: bool
    ) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, self._socket_buffer)
        except PermissionError:
            # Without CAP_NET_ADMIN the request is capped at net.core.rmem_max.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._socket_buffer)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        sock.setsockopt(_SOL_PACKET, _PACKET_AUXDATA, 1)
        if loopback:
            try:
                sock.setsockopt(_SOL_PACKET, _PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                self._keep_outgoing = False  # older kernel: drop them on reading
        if program is None:
            self._py_filter = PacketFilter(
                self._hosts, self._ports, match=self._match, linktype=linktype
            )
        else:
            _attach_filter(sock, program)

    def _open_file(self, linktype: int) -> None:
        try:
            self._file = self._path.open("wb")
        except OSError as exc:
            raise SetupError(
                f"cannot create capture file {str(self._path)!r}: {exc.strerror or exc}"
            ) from exc
        self._writer = PcapWriter(self._file, linktype=linktype, snaplen=self._snaplen)

    # --- the reader thread -------------------------------------------------------------

    def _run(self) -> None:
        assert self._sock is not None
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._sock, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                buffer = bytearray(_RECV_BUFFER)
                while not self._stopping.is_set():
                    events = selector.select(_TICK)
                    if any(key.fileobj is self._sock for key, _ in events):
                        self._read_available(buffer, _BATCH)
                    elif self._file is not None:
                        self._file.flush()  # idle: let readers of the file see it
                self._drain(selector, buffer)
        except BaseException as exc:  # handed to stop(), which raises it as SetupError
            self._error = exc

    def _drain(self, selector: selectors.BaseSelector, buffer: bytearray) -> None:
        selector.unregister(self._wake_r)
        deadline = time.monotonic() + DRAIN_MAX
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(min(DRAIN_IDLE, left)):
                break  # idle for DRAIN_IDLE: the kernel has delivered everything
            self._read_available(buffer, _BATCH)

    def _read_available(self, buffer: bytearray, limit: int) -> None:
        sock, writer = self._sock, self._writer
        assert sock is not None
        assert writer is not None
        view = memoryview(buffer)
        snaplen = self._snaplen
        for _ in range(limit):
            try:
                size, ancillary, _flags, address = sock.recvmsg_into(
                    [view], _ANCILLARY_SPACE, socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return
            if not self._keep_outgoing and address[2] == _PACKET_OUTGOING:
                continue
            timestamp: float | None = None
            orig_len = size
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(data)
                    timestamp = sec + nsec / 1e9
                elif level == _SOL_PACKET and kind == _PACKET_AUXDATA:
                    orig_len = _AUXDATA.unpack_from(data)[1]
            frame = bytes(view[: min(size, snaplen)])
            if self._py_filter is not None and not self._py_filter.accepts(frame):
                self._filtered_out += 1
                continue
            writer.write(frame, time.time() if timestamp is None else timestamp, orig_len=orig_len)
            self._packets += 1
            self._bytes += len(frame)

    # --- stop -------------------------------------------------------------------------

    def stop(self) -> CaptureStats:
        """Drain what the kernel has queued, close the file, return the final stats.

        Calling it again returns the same stats. Raises :class:`SetupError` when the
        reader failed (for instance the disk filled up); the file then holds what was
        written before the failure.
        """
        if not self._started or self._stopped:
            self._stopped = self._started
            return self.stats
        self._stopped = True
        self._stopping.set()
        os.write(self._wake_w, b"\x00")
        thread = self._thread
        assert thread is not None
        # The reader's drain is bounded by DRAIN_MAX; the margin covers a busy machine.
        thread.join(DRAIN_MAX + 5.0)
        if thread.is_alive():
            self._error = self._error or TimeoutError("the capture reader did not stop")
        self._read_kernel_stats()
        assert self._sock is not None
        if not thread.is_alive():
            self._sock.close()
            self._close_file()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._error is not None:
            error = self._error
            raise SetupError(
                f"capture to {str(self._path)!r} failed: {_describe(error)}"
            ) from error
        return self.stats

    def _read_kernel_stats(self) -> None:
        assert self._sock is not None
        try:
            raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _TPACKET_STATS.size)
        except OSError:
            return  # the kernel does not keep them: dropped stays unknown (0)
        # tp_packets counts what passed the filter, dropped or not (reading resets it).
        packets, drops = _TPACKET_STATS.unpack(raw)
        self._kernel_packets = packets
        self._dropped = drops

    def _close_file(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    # --- context managers ---------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Compiling the filter loads libpcap the first time (tens of ms): not on the loop.
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def live_capture(
    path: str | os.PathLike[str] | None,
    *,
    interface: str = "lo",
    hosts: Sequence[str],
    ports: Sequence[PortSpec] | None = None,
    match: HostMatch = "either",
    snaplen: int = 65535,
) -> LiveCapture | NullCapture:
    """A :class:`LiveCapture` to ``path``, or a :class:`NullCapture` when ``path`` is None."""
    if path is None:
        _normalise_hosts(hosts)  # the same argument errors whether capturing or not
        return NullCapture(interface=interface)
    return LiveCapture(
        path, interface=interface, hosts=hosts, ports=ports, match=match, snaplen=snaplen
    )
