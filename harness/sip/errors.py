"""Errors of the sans-IO core, split as h11 splits them.

* :class:`LocalProtocolError`: our own side asked for something the protocol does
  not allow (build a CANCEL for a non-INVITE, send on a terminated transaction...).
* :class:`RemoteProtocolError`: what the remote side sent cannot be accepted
  (a malformed message, a bad header, a body shorter than Content-Length...).

Both derive from :class:`SipError`; parsing code raises nothing else.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by :mod:`harness.sip`."""


class LocalProtocolError(SipError):
    """Our side misused the core."""


class RemoteProtocolError(SipError):
    """The remote side sent something that is not valid SIP."""
