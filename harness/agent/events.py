"""The agent's event stream: every message sent and received, in order, with times.

What a caller may rely on:

* :class:`EventLog` keeps :class:`AgentEvent` values in the order they happened
  (sends are recorded once the transport accepted the bytes, receives when the
  transport delivered them); listeners added with :meth:`EventLog.subscribe` see
  each event as it is recorded.
* ``time`` is the event loop's clock (``loop.time()``, the scale transaction
  timers use); ``wall_time`` is :func:`time.time` for reports.
* SIP events carry the parsed message and its raw bytes; non-SIP events (garbage
  from a peer, transaction timeouts, transport errors, notes) carry a summary and
  what is known of the addresses.
* The number's password is never given to this module: requests carry only the
  digest response computed from it, as on the wire.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from harness.sip.message import Request, Response

EventKind = Literal["sip", "garbage", "timeout", "transport-error", "note"]
Direction = Literal["out", "in"]


def summarize(message: Request | Response) -> str:
    """One line naming a message: ``INVITE sip:+1555@x (CSeq 1 INVITE)`` or
    ``200 OK (CSeq 1 INVITE)``."""
    cseq = message.headers.get("CSeq") or "?"
    if isinstance(message, Request):
        return f"{message.method} {message.uri} (CSeq {cseq})"
    return f"{message.status} {message.reason} (CSeq {cseq})"


@dataclass(frozen=True)
class AgentEvent:
    """One thing the agent did or saw.

    ``direction`` is ``"out"`` or ``"in"`` for SIP and garbage events, None for
    timeouts, transport errors and notes.  ``local`` / ``remote`` are ``host:port``
    strings (empty when unknown).  ``message`` and ``raw`` are set for SIP events;
    ``raw`` holds the garbage bytes for garbage events.
    """

    time: float
    wall_time: float
    kind: EventKind
    direction: Direction | None
    transport: str
    local: str
    remote: str
    summary: str
    message: Request | Response | None = None
    raw: bytes = b""
    call_id: str | None = None

    def to_dict(self, *, origin: float | None = None, with_raw: bool = False) -> dict[str, Any]:
        """JSON-ready form; ``origin`` makes ``t`` relative to it (seconds)."""
        data: dict[str, Any] = {
            "t": round(self.time - origin, 6) if origin is not None else self.time,
            "wall_time": self.wall_time,
            "kind": self.kind,
            "direction": self.direction,
            "transport": self.transport,
            "local": self.local,
            "remote": self.remote,
            "summary": self.summary,
            "call_id": self.call_id,
        }
        if with_raw:
            data["raw"] = self.raw.decode("utf-8", errors="replace")
        return data


Listener = Callable[[AgentEvent], None]


class EventLog:
    """An ordered, append-only list of :class:`AgentEvent` with listeners."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._events: list[AgentEvent] = []
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every future event; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def record(
        self,
        kind: EventKind,
        summary: str,
        *,
        direction: Direction | None = None,
        transport: str = "",
        local: str = "",
        remote: str = "",
        message: Request | Response | None = None,
        raw: bytes = b"",
        at: float | None = None,
    ) -> AgentEvent:
        """Append an event (stamped now unless ``at`` is given) and notify listeners."""
        event = AgentEvent(
            time=self._clock() if at is None else at,
            wall_time=time.time(),
            kind=kind,
            direction=direction,
            transport=transport,
            local=local,
            remote=remote,
            summary=summary,
            message=message,
            raw=raw,
            call_id=message.call_id if message is not None else None,
        )
        self._events.append(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    def __iter__(self) -> Iterator[AgentEvent]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)

    def since(self, index: int) -> list[AgentEvent]:
        """Events recorded at or after position ``index`` (use ``len(log)`` as a mark)."""
        return self._events[index:]

    def sip(self) -> list[AgentEvent]:
        """The SIP events only (what a ladder diagram shows)."""
        return [e for e in self._events if e.kind == "sip"]

    def of_kind(self, kind: EventKind) -> list[AgentEvent]:
        return [e for e in self._events if e.kind == kind]
