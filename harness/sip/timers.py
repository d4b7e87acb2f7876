"""SIP transaction timers: their names and the T1/T2/T4 configuration (RFC 3261 §17, Table 4).

Nothing here reads a clock.  A transaction asks :meth:`TimerConfig.initial` how long
a timer runs when it is started; the transaction itself keeps deadlines as plain
floats in the caller's time base (see :mod:`harness.sip.transaction`).

RFC 6026 adds Timer L (INVITE server, Accepted state) and Timer M (INVITE client,
Accepted state), both 64*T1 whatever the transport.  :attr:`TimerName.TRYING` is
the IST's "send 100 Trying if the TU has not answered within 200 ms" (§17.2.1),
which RFC 3261 describes but does not name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from harness.sip.errors import LocalProtocolError

#: RFC 3261 §17.1.1.2: Timer D is "at least 32 seconds" on an unreliable transport.
MIN_TIMER_D = 32.0


class TimerName(StrEnum):
    """The transaction timers, by their RFC letters."""

    A = "A"  #: ICT request retransmission (unreliable only): T1, doubling, no cap.
    B = "B"  #: ICT timeout in Calling: 64*T1.
    D = "D"  #: ICT wait for response retransmissions in Completed: >= 32 s, 0 if reliable.
    E = "E"  #: NICT request retransmission (unreliable only): T1, doubling up to T2.
    F = "F"  #: NICT timeout: 64*T1.
    G = "G"  #: IST final response retransmission (unreliable only): T1, doubling up to T2.
    H = "H"  #: IST wait for ACK: 64*T1.
    I = "I"  # noqa: E741  (the RFC's name) IST wait for ACK retransmissions: T4, 0 if reliable.
    J = "J"  #: NIST wait for request retransmissions: 64*T1, 0 if reliable.
    K = "K"  #: NICT wait for response retransmissions: T4, 0 if reliable.
    L = "L"  #: IST (RFC 6026) wait in Accepted for INVITE retransmissions: 64*T1.
    M = "M"  #: ICT (RFC 6026) wait in Accepted for 2xx retransmissions: 64*T1.
    TRYING = "Trying"  #: IST: send 100 Trying if the TU has not responded by then.


#: Timers that only run on unreliable transports (retransmission timers).
RETRANSMISSION_TIMERS: frozenset[TimerName] = frozenset({TimerName.A, TimerName.E, TimerName.G})


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1, T2, T4 and the two knobs RFC 3261 leaves to the implementation.

    Defaults are RFC 3261's: T1 = 500 ms (RTT estimate), T2 = 4 s (cap of non-INVITE
    and response retransmission intervals), T4 = 5 s (how long a message may stay in
    the network).  ``timer_d`` is Timer D on unreliable transports (at least 32 s).
    ``trying_delay`` is how long an INVITE server transaction waits for the TU before
    sending 100 Trying itself; ``None`` means never (the TU sends its own).

    Raises :class:`LocalProtocolError` on a configuration the RFC forbids.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = MIN_TIMER_D
    trying_delay: float | None = 0.2

    def __post_init__(self) -> None:
        if self.t1 <= 0 or self.t2 <= 0 or self.t4 <= 0:
            raise LocalProtocolError("T1, T2 and T4 must be positive")
        if self.t2 < self.t1:
            raise LocalProtocolError(f"T2 ({self.t2} s) must not be smaller than T1 ({self.t1} s)")
        if self.timer_d < MIN_TIMER_D:
            raise LocalProtocolError(
                f"Timer D must be at least {MIN_TIMER_D:g} s (RFC 3261 §17.1.1.2), "
                f"got {self.timer_d:g}"
            )
        if self.trying_delay is not None and self.trying_delay < 0:
            raise LocalProtocolError("trying_delay must be >= 0 or None")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, L, M (and J on unreliable transports)."""
        return 64 * self.t1

    def initial(self, name: TimerName, *, reliable: bool) -> float | None:
        """How long ``name`` runs when started, or None when it is not started at all.

        Retransmission timers (A, E, G) are not started on reliable transports; the
        "wait for stray retransmissions" timers (D, I, J, K) run for 0 s there, which a
        transaction treats as firing at once.
        """
        if name in RETRANSMISSION_TIMERS:
            return None if reliable else self.t1
        if name in (TimerName.B, TimerName.F, TimerName.H, TimerName.L, TimerName.M):
            return self.timeout
        if name is TimerName.D:
            return 0.0 if reliable else self.timer_d
        if name in (TimerName.I, TimerName.K):
            return 0.0 if reliable else self.t4
        if name is TimerName.J:
            return 0.0 if reliable else self.timeout
        # TimerName.TRYING: the same on every transport.
        return self.trying_delay

    def backoff(self, name: TimerName, interval: float) -> float:
        """The next interval of a retransmission timer that just fired after ``interval``.

        Timer A doubles without limit (§17.1.1.2); E and G double up to T2
        (§17.1.2.2, §17.2.1).
        """
        if name is TimerName.A:
            return 2 * interval
        if name in (TimerName.E, TimerName.G):
            return min(2 * interval, self.t2)
        raise LocalProtocolError(f"Timer {name} is not a retransmission timer")
