"""Ladder (sequence) diagrams of a record's messages: geometry for SVG, lines for text.

:func:`layout_ladder` turns a :class:`~harness.results.LadderRecord` into plain
numbers (column positions, one row per arrow) that the HTML template draws as SVG;
:func:`ladder_lines` gives the same ladder as one text line per arrow, as JUnit's
``system-out`` shows it::

    t=0.012 127.0.0.1:5060 -> 127.0.0.2:5060 udp INVITE

A record whose ladder is empty but which has messages gets a ladder built from
them (columns in order of first appearance), so an older or hand-made results file
still draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from harness.results import Arrow, LadderRecord, ScenarioRecord

#: Left gutter holding the time of each arrow.
TIME_GUTTER: Final = 64.0
#: Room either side of a column for its label (half a column's width).
COLUMN_HALF: Final = 110.0
#: Distance between two participant columns.
COLUMN_GAP: Final = 230.0
#: Height of the header (participant names) and of one arrow row.
HEADER: Final = 40.0
ROW: Final = 30.0
FOOTER: Final = 14.0
#: Width of a self-addressed arrow's loop.
LOOP: Final = 28.0
#: Participant labels longer than this are shortened (the full name stays in a tooltip).
MAX_LABEL: Final = 26


@dataclass(frozen=True)
class ColumnLayout:
    """A participant column: ``x`` of its lifeline, ``label`` as shown, ``name`` in full."""

    x: float
    label: str
    name: str


@dataclass(frozen=True)
class ArrowLayout:
    """One arrow: its line (``path``, an SVG path) and head (``head``, polygon points).

    ``kind`` is ``"req"`` for a request and ``"s1"``..``"s6"`` for a response of
    that class, for colouring. ``message`` is an index into the record's messages.
    """

    y: float
    x1: float
    x2: float
    path: str
    head: str
    label: str
    label_x: float
    label_y: float
    label_anchor: str  # "middle" | "start"
    time: float
    time_text: str  # "0.012": seconds, three decimals
    hit_x: float  # a transparent box around the arrow that takes hover and clicks
    hit_y: float
    hit_w: float
    transport: str
    src: str
    dst: str
    message: int | None
    kind: str


@dataclass(frozen=True)
class LadderLayout:
    """A whole diagram; ``width``/``height`` are the SVG's size in user units."""

    width: float
    height: float
    columns: tuple[ColumnLayout, ...]
    arrows: tuple[ArrowLayout, ...]
    lifeline_top: float
    lifeline_bottom: float


def effective_ladder(record: ScenarioRecord) -> LadderRecord:
    """The record's ladder, or one built from its messages when it has none."""
    if record.ladder.arrows or not record.messages:
        return record.ladder
    columns: dict[str, int] = {}
    arrows = []
    for message in record.messages:
        src = columns.setdefault(message.src, len(columns))
        dst = columns.setdefault(message.dst, len(columns))
        arrows.append(
            Arrow(
                src=src,
                dst=dst,
                label=message.label,
                time=message.time,
                transport=message.transport,
                message=message.index,
            )
        )
    return LadderRecord(participants=list(columns), arrows=arrows)


def _participant(ladder: LadderRecord, index: int) -> str:
    if 0 <= index < len(ladder.participants):
        return ladder.participants[index]
    return f"?{index}"


def ladder_lines(record: ScenarioRecord) -> list[str]:
    """One line per arrow: ``t=0.012 SRC -> DST transport LABEL`` (time in seconds)."""
    ladder = effective_ladder(record)
    return [
        " ".join(
            part
            for part in (
                f"t={arrow.time:.3f}",
                _participant(ladder, arrow.src),
                "->",
                _participant(ladder, arrow.dst),
                arrow.transport,
                arrow.label,
            )
            if part
        )
        for arrow in ladder.arrows
    ]


def arrow_kind(label: str) -> str:
    """``"req"`` for a request label, ``"s<class>"`` for a status label (``"404 ..."``)."""
    head = label[:3]
    if len(head) == 3 and head.isdigit() and "1" <= head[0] <= "6":
        return f"s{head[0]}"
    return "req"


def _short(name: str) -> str:
    if len(name) <= MAX_LABEL:
        return name
    return name[: MAX_LABEL - 1] + "…"


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def layout_ladder(ladder: LadderRecord) -> LadderLayout:
    """Positions of the columns and arrows of ``ladder``; see :class:`LadderLayout`.

    Arrows naming a participant index that does not exist get an extra column
    named ``?N`` rather than failing: a malformed ladder still draws.
    """
    names = list(ladder.participants)
    for arrow in ladder.arrows:
        for index in (arrow.src, arrow.dst):
            while max(index, 0) >= len(names):
                names.append(f"?{len(names)}")
    columns = tuple(
        ColumnLayout(TIME_GUTTER + COLUMN_HALF + i * COLUMN_GAP, _short(name), name)
        for i, name in enumerate(names)
    )
    arrows = []
    for row, arrow in enumerate(ladder.arrows):
        y = HEADER + ROW * (row + 1)
        src = columns[max(arrow.src, 0)]
        dst = columns[max(arrow.dst, 0)]
        x1, x2 = src.x, dst.x
        if x1 == x2:
            # A message to itself: a small loop to the right, head pointing back.
            path = f"M{_fmt(x1)} {_fmt(y - 8)} h{_fmt(LOOP)} v12 h{_fmt(-LOOP + 8)}"
            tip = (x1, y + 4)
            head = _head(tip, direction=-1)
            label_x, anchor = x1 + LOOP + 6, "start"
        else:
            direction = 1 if x2 > x1 else -1
            path = f"M{_fmt(x1)} {_fmt(y)} H{_fmt(x2 - direction * 8)}"
            head = _head((x2, y), direction=direction)
            label_x, anchor = (x1 + x2) / 2, "middle"
        arrows.append(
            ArrowLayout(
                y=y,
                x1=x1,
                x2=x2,
                path=path,
                head=head,
                label=arrow.label,
                label_x=round(label_x, 1),
                label_y=y - 6,
                label_anchor=anchor,
                time=arrow.time,
                time_text=f"{arrow.time:.3f}",
                hit_x=min(x1, x2) - 4,
                hit_y=y - 20,
                hit_w=abs(x2 - x1) + (LOOP + 90 if x1 == x2 else 8),
                transport=arrow.transport,
                src=src.name,
                dst=dst.name,
                message=arrow.message,
                kind=arrow_kind(arrow.label),
            )
        )
    width = (columns[-1].x + COLUMN_HALF) if columns else TIME_GUTTER + 2 * COLUMN_HALF
    bottom = HEADER + ROW * (len(arrows) + 1) - ROW / 2
    return LadderLayout(
        width=round(width),
        height=round(bottom + FOOTER),
        columns=columns,
        arrows=tuple(arrows),
        lifeline_top=HEADER - 8,
        lifeline_bottom=bottom,
    )


def _head(tip: tuple[float, float], *, direction: int) -> str:
    """Polygon points of an arrowhead at ``tip`` pointing right (+1) or left (-1)."""
    x, y = tip
    back = x - direction * 9
    return f"{_fmt(x)},{_fmt(y)} {_fmt(back)},{_fmt(y - 4.5)} {_fmt(back)},{_fmt(y + 4.5)}"
