"""Captures: reading pcap/pcapng, decoding SIP, the flow model, RTP statistics.

Typical use::

    decoded = decode_capture("run.pcap")        # messages, issues, TLS, RTP candidates
    flows = build_flows(decoded)                # calls, transactions, ladder
    rtp = analyze_rtp("run.pcap")               # tshark RTP statistics (small files)
    per_call = attach_streams(flows, rtp.streams)
"""

from harness.capture.decode import (
    ISSUE_KINDS,
    CapturedMessage,
    Decoded,
    DecodeIssue,
    Endpoint,
    MessageStream,
    RtpCandidate,
    SdpMedia,
    TlsPair,
    TlsStream,
    Unreachable,
    decode_capture,
    iter_messages,
    looks_like_sip,
    message_sdp,
    sdp_media,
)
from harness.capture.flows import (
    Arrow,
    Call,
    Flows,
    Ladder,
    SdpExchange,
    Transaction,
    build_flows,
    build_ladder,
    build_transactions,
)
from harness.capture.live import (
    Capture,
    CaptureStats,
    LiveCapture,
    NullCapture,
    PacketFilter,
    build_filter,
    live_capture,
)
from harness.capture.pcapfile import (
    CaptureError,
    CaptureReader,
    Frame,
    InterfaceInfo,
    PcapngWriter,
    PcapWriter,
    ReadProblem,
    open_capture,
)
from harness.capture.rtp import (
    RtpAnalysis,
    RtpStream,
    analyze_rtp,
    attach_streams,
    parse_rtp_streams,
    streams_for_call,
)

__all__ = [
    "ISSUE_KINDS",
    "Arrow",
    "Call",
    "Capture",
    "CaptureError",
    "CaptureReader",
    "CaptureStats",
    "CapturedMessage",
    "DecodeIssue",
    "Decoded",
    "Endpoint",
    "Flows",
    "Frame",
    "InterfaceInfo",
    "Ladder",
    "LiveCapture",
    "MessageStream",
    "NullCapture",
    "PacketFilter",
    "PcapWriter",
    "PcapngWriter",
    "ReadProblem",
    "RtpAnalysis",
    "RtpCandidate",
    "RtpStream",
    "SdpExchange",
    "SdpMedia",
    "TlsPair",
    "TlsStream",
    "Transaction",
    "Unreachable",
    "analyze_rtp",
    "attach_streams",
    "build_filter",
    "build_flows",
    "build_ladder",
    "build_transactions",
    "decode_capture",
    "iter_messages",
    "live_capture",
    "looks_like_sip",
    "message_sdp",
    "open_capture",
    "parse_rtp_streams",
    "sdp_media",
    "streams_for_call",
]
