"""Terminals take turns: how much of a round of the event loop the reading of busy PTYs may take.

One server streams every terminal of every job from one event loop. Reading a PTY costs a
syscall per 4 KiB and, on a loaded machine, each can take a fraction of a millisecond (it wakes
the program writing to the terminal, which may take the CPU). With ten terminals streaming
(``yes``), every round of the loop read 64 KiB from each of them: 50 ms and more, and a
keystroke needs two or three rounds to reach its shell and come back as an echo (issue 14).

So the terminals' reads share a budget per round of the loop (``ROUND_BUDGET`` seconds, reset
when the round ends): a read coalesces only while the budget lasts, once it is spent a terminal
that becomes readable is not read in this round but in the next, and a terminal that read a bulk
chunk when the budget ran out lets the others go first next round. A round is then short,
whatever the number of busy terminals, and a quiet terminal's echo is read within a round or
two; a terminal that streams alone still coalesces 64 KiB. Nothing is dropped: the PTY keeps
what was not read.

While a terminal is typed into and others stream (``foreground``: the loop is *contended*), a
round gets ``CONTENDED_BUDGET`` instead: a keystroke that arrives in the middle of a round waits
less for its end, at the price of smaller frames for the streaming terminals (with one terminal
streaming, the echo's median on another was 6.8 ms at 2 ms and 3.6 ms at 0.5 ms in one run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..per_loop import PerLoop
from .foreground import Foreground, foreground

__all__ = ["BULK_BYTES", "CONTENDED_BUDGET", "ROUND_BUDGET", "ReadRound", "read_round"]

#: Seconds of PTY reading (and sending on) all terminals together get per round of the loop.
ROUND_BUDGET = 0.002
#: The same while a terminal is typed into and others stream (see ``foreground``).
CONTENDED_BUDGET = 0.0005
#: A read at least this large was bulk output: the terminal goes to the back of the queue.
BULK_BYTES = 4096


class ReadRound:
    """The reading budget of one event loop's current round."""

    def __init__(self, loop: asyncio.AbstractEventLoop, foreground: Foreground) -> None:
        self._loop = loop
        self.foreground = foreground  # whose state sets the budget
        self.spent = 0.0
        self._ending = False
        self._next: list[Callable[[], None]] = []  # to watch again next round, in turn order
        self._back: list[Callable[[], None]] = []  # terminals that read bulk: after the others

    @property
    def budget(self) -> float:
        """Seconds of reading this round gets."""
        return CONTENDED_BUDGET if self.foreground.contended else ROUND_BUDGET

    @property
    def spent_up(self) -> bool:
        return self.spent >= self.budget

    @property
    def left(self) -> float:
        """Seconds of the budget left in this round."""
        return max(0.0, self.budget - self.spent)

    def charge(self, seconds: float) -> None:
        self.spent += seconds
        self._end_later()

    def next_round(self, watch: Callable[[], None], bulk: bool = False) -> None:
        """Call ``watch`` when this round ends (after the others, if ``bulk``)."""
        (self._back if bulk else self._next).append(watch)
        self._end_later()

    def _end_later(self) -> None:
        if not self._ending:
            self._ending = True
            self._loop.call_soon(self._end)

    def _end(self) -> None:
        self._ending = False
        self.spent = 0.0
        waiting = self._next + self._back
        self._next, self._back = [], []
        for watch in waiting:
            watch()


#: The running loop's round: ``read_round()``.
read_round: PerLoop[ReadRound] = PerLoop(lambda loop: ReadRound(loop, foreground()))
