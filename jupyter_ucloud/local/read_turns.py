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
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

__all__ = ["BULK_BYTES", "ROUND_BUDGET", "ReadRound", "read_round"]

#: Seconds of PTY reading (and sending on) all terminals together get per round of the loop.
ROUND_BUDGET = 0.002
#: A read at least this large was bulk output: the terminal goes to the back of the queue.
BULK_BYTES = 4096


class ReadRound:
    """The reading budget of one event loop's current round."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.spent = 0.0
        self._ending = False
        self._next: list[Callable[[], None]] = []  # to watch again next round, in turn order
        self._back: list[Callable[[], None]] = []  # terminals that read bulk: after the others

    @property
    def spent_up(self) -> bool:
        return self.spent >= ROUND_BUDGET

    @property
    def left(self) -> float:
        """Seconds of the budget left in this round."""
        return max(0.0, ROUND_BUDGET - self.spent)

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


_rounds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReadRound] = (
    weakref.WeakKeyDictionary()
)


def read_round() -> ReadRound:
    """The running loop's round."""
    loop = asyncio.get_running_loop()
    found = _rounds.get(loop)
    if found is None:
        found = _rounds[loop] = ReadRound(loop)
    return found
