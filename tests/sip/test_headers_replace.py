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


@pytest.mark.parametrize(
    "fields",
    [
        [("Via", "a, b"), ("Via", "c")],
        [("Via", ""), ("Via", " x ")],
        [("Contact", '"A, B" <sip:a@b>, <sip:c@d>')],
        [("Authorization", 'Digest username="a", realm="b"')],
        [("Subject", "hello, world")],
        [("Route", " , <sip:p;lr>")],
        [],
    ],
)
def test_get_is_the_first_of_get_all(fields: list[tuple[str, str]]) -> None:
    headers = Headers(fields)
    for name in ("Via", "Contact", "Authorization", "Subject", "Route", "To"):
        values = headers.get_all(name)
        assert headers.get(name) == (values[0] if values else None)
