"""The sans-IO SIP core: no sockets, no clocks, no containers.

Everything here takes bytes and ``now`` in and gives bytes, events and timer
deadlines out, so that it can be tested with a fake link and a fake clock.
"""

from harness.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from harness.sip.message import Headers, Message, Request, Response

__all__ = [
    "Headers",
    "LocalProtocolError",
    "Message",
    "RemoteProtocolError",
    "Request",
    "Response",
    "SipError",
]
