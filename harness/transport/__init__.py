"""Asyncio adapters around the sans-IO core: UDP, TCP, TLS, loss impairment,
the clock, and RFC 3263 resolution."""

from harness.transport.base import (
    Address,
    EventCallback,
    Garbage,
    Received,
    Transport,
    TransportError,
    TransportEvent,
    TransportKind,
    is_ip_literal,
)
from harness.transport.clock import Clock, FakeClock, LoopClock, MonotonicClock
from harness.transport.factory import open_transport
from harness.transport.impairment import ImpairedTransport
from harness.transport.resolver import Query, ResolutionError, SipResolver
from harness.transport.tcp import StreamTransport, TcpTransport
from harness.transport.tls import TlsTransport, client_context, server_context
from harness.transport.udp import UdpTransport, must_use_stream

__all__ = [
    "Address",
    "Clock",
    "EventCallback",
    "FakeClock",
    "Garbage",
    "ImpairedTransport",
    "LoopClock",
    "MonotonicClock",
    "Query",
    "Received",
    "ResolutionError",
    "SipResolver",
    "StreamTransport",
    "TcpTransport",
    "TlsTransport",
    "Transport",
    "TransportError",
    "TransportEvent",
    "TransportKind",
    "UdpTransport",
    "client_context",
    "is_ip_literal",
    "must_use_stream",
    "open_transport",
    "server_context",
]
