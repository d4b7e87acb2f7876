"""Headers.replace keeps a header's place among the others."""

from __future__ import annotations

import pytest

from harness.sip.errors import LocalProtocolError
from harness.sip.message import Headers


def test_replace_keeps_position_and_order() -> None:
    headers = Headers([("Via", "a"), ("From", "f"), ("Via", "b"), ("To", "t")])
    headers.replace("v", ["x", "y", "z"])
    assert list(headers) == [("Via", "x"), ("Via", "y"), ("Via", "z"), ("From", "f"), ("To", "t")]


def test_replace_of_absent_header_appends() -> None:
    headers = Headers([("From", "f")])
    headers.replace("Route", ["<sip:p;lr>"])
    assert list(headers) == [("From", "f"), ("Route", "<sip:p;lr>")]


def test_replace_with_nothing_removes() -> None:
    headers = Headers([("Via", "a"), ("From", "f")])
    headers.replace("Via", [])
    assert list(headers) == [("From", "f")]


def test_replace_refuses_line_breaks() -> None:
    with pytest.raises(LocalProtocolError):
        Headers().replace("Via", ["a\r\nInjected: 1"])
