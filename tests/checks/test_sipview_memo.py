"""The run-wide memos the checks share (harness.checks.sipview, CheckContext.memo)."""

from __future__ import annotations

from harness.checks import sipview
from harness.checks.run import build_context

from .builders import good_trace


def _counting_memo(bound: int) -> tuple[sipview._ValueMemo[str], list[str]]:
    calls: list[str] = []

    def parse(value: str) -> str:
        calls.append(value)
        return value.upper()

    return sipview._memoised(bound)(parse), calls


def test_bounded_outside_a_run() -> None:
    memo, calls = _counting_memo(2)
    for value in ("a", "b", "c", "a"):
        assert memo(value) == value.upper()
    # The third value overflowed the bound of 2, so "a" was forgotten and parsed again.
    assert calls == ["a", "b", "c", "a"]


def test_whole_run_keeps_every_value_then_empties() -> None:
    memo, calls = _counting_memo(2)
    with sipview.whole_run_memo():
        with sipview.whole_run_memo():  # nested: only the outermost exit empties
            for value in ("a", "b", "c", "d"):
                memo(value)
        for value in ("a", "b", "c", "d"):
            assert memo(value) == value.upper()
        assert calls == ["a", "b", "c", "d"]
    memo("a")
    assert calls == ["a", "b", "c", "d", "a"]


def test_first_requests_and_messages_computed_once_per_context() -> None:
    flows = good_trace().flows()
    ctx = build_context(flows)
    every = list(sipview.first_requests(ctx))
    assert every
    assert "first_requests" in ctx.memo
    expected = []
    for txn in flows.transactions:
        msg = sipview.request_of(txn.request)
        if txn.request is not None and msg is not None:
            expected.append((txn, txn.request, msg))
    assert every == expected
    invites = list(sipview.first_requests(ctx, "INVITE", initial=True))
    assert invites
    assert invites == [
        item for item in expected if item[2].method == "INVITE" and sipview.is_initial(item[2])
    ]
    first = list(ctx.messages)
    assert [m.index for m in first] == sorted(m.index for m in first)
    assert list(ctx.messages) == first
    # A new context starts empty: nothing leaks from one capture to another.
    assert build_context(flows).memo == {}


def test_transactions_by_start() -> None:
    for call in good_trace().flows().calls:
        assert call.transactions_by_start == tuple(sorted(call.transactions, key=lambda t: t.start))
