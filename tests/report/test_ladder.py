"""Ladder layout and text lines."""

from __future__ import annotations

from harness.report.ladder import (
    COLUMN_GAP,
    arrow_kind,
    effective_ladder,
    ladder_lines,
    layout_ladder,
)
from harness.results import Arrow, LadderRecord, MessageRecord, ScenarioRecord, Verdict

UAC, PROXY, UAS = "127.0.0.1:5060", "127.0.0.2:5060", "127.0.0.3:5060"


def _record(
    ladder: LadderRecord | None = None, messages: list[MessageRecord] | None = None
) -> ScenarioRecord:
    return ScenarioRecord(
        scenario="call",
        profile="p",
        verdict=Verdict.PASS,
        ladder=ladder or LadderRecord(),
        messages=messages or [],
    )


LADDER = LadderRecord(
    participants=[UAC, PROXY, UAS],
    arrows=[
        Arrow(0, 1, "INVITE", 0.0, "udp", 0),
        Arrow(1, 2, "INVITE", 0.0021, "tcp", 1),
        Arrow(2, 1, "180 Ringing", 0.0123, "tcp", 2),
        Arrow(1, 0, "486 Busy Here", 0.5, "udp", 3),
        Arrow(1, 1, "OPTIONS", 0.6, "udp", None),
    ],
)


def test_ladder_lines_one_per_arrow_in_the_junit_format() -> None:
    lines = ladder_lines(_record(LADDER))
    assert lines == [
        "t=0.000 127.0.0.1:5060 -> 127.0.0.2:5060 udp INVITE",
        "t=0.002 127.0.0.2:5060 -> 127.0.0.3:5060 tcp INVITE",
        "t=0.012 127.0.0.3:5060 -> 127.0.0.2:5060 tcp 180 Ringing",
        "t=0.500 127.0.0.2:5060 -> 127.0.0.1:5060 udp 486 Busy Here",
        "t=0.600 127.0.0.2:5060 -> 127.0.0.2:5060 udp OPTIONS",
    ]


def test_layout_columns_rows_and_directions() -> None:
    layout = layout_ladder(LADDER)
    assert [c.name for c in layout.columns] == [UAC, PROXY, UAS]
    xs = [c.x for c in layout.columns]
    assert xs[1] - xs[0] == COLUMN_GAP
    assert xs[2] - xs[1] == COLUMN_GAP
    assert len(layout.arrows) == 5
    ys = [a.y for a in layout.arrows]
    assert ys == sorted(ys)
    assert len(set(ys)) == 5
    right, left = layout.arrows[0], layout.arrows[3]
    assert (right.x1, right.x2) == (xs[0], xs[1])
    assert (left.x1, left.x2) == (xs[1], xs[0])
    # The head's tip sits on the destination column.
    assert right.head.startswith(f"{xs[1]:.1f},")
    assert left.head.startswith(f"{xs[0]:.1f},")
    loop = layout.arrows[4]
    assert loop.label_anchor == "start"
    assert "h" in loop.path
    assert layout.width >= xs[2]
    assert layout.height > ys[-1]
    assert [a.kind for a in layout.arrows] == ["req", "req", "s1", "s4", "req"]


def test_layout_survives_bad_participant_indexes() -> None:
    layout = layout_ladder(
        LadderRecord(participants=[UAC], arrows=[Arrow(0, 3, "BYE", 0.1, "udp")])
    )
    assert len(layout.columns) == 4
    assert layout.columns[3].name == "?3"
    empty = layout_ladder(LadderRecord())
    assert empty.arrows == ()
    assert empty.width > 0


def test_long_participant_names_are_shortened_for_display_only() -> None:
    name = "[2001:db8:85a3::8a2e:370:7334]:5061"
    layout = layout_ladder(
        LadderRecord(participants=[name, UAC], arrows=[Arrow(0, 1, "X", 0, "tls")])
    )
    assert layout.columns[0].label.endswith("…")
    assert len(layout.columns[0].label) <= 26
    assert layout.columns[0].name == name


def test_effective_ladder_is_built_from_messages_when_missing() -> None:
    messages = [
        MessageRecord(0, 0.0, UAC, PROXY, "udp", "REGISTER", "REGISTER"),
        MessageRecord(1, 0.01, PROXY, UAC, "udp", "401 Unauthorized", "401"),
    ]
    ladder = effective_ladder(_record(messages=messages))
    assert ladder.participants == [UAC, PROXY]
    assert [(a.src, a.dst, a.label, a.message) for a in ladder.arrows] == [
        (0, 1, "REGISTER", 0),
        (1, 0, "401 Unauthorized", 1),
    ]
    # A record that has a ladder keeps it.
    assert effective_ladder(_record(LADDER, messages)) is LADDER


def test_arrow_kind() -> None:
    assert arrow_kind("INVITE") == "req"
    assert arrow_kind("200 OK") == "s2"
    assert arrow_kind("603 Decline") == "s6"
    assert arrow_kind("999 Odd") == "req"
