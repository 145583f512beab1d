"""Taking turns: shells streaming bulk output let the loop go round between their frames.

All shells of a Jupyter server share one event loop. tornado reads a websocket's buffered
frames back to back, up to 256 KiB before it yields to the loop; with several shells streaming
(``yes``), a keystroke's echo frame on another shell's provider leg - and the keystroke itself,
on its browser socket - waited behind megabytes of other shells' output (issue 14: echo p99
0.5 s with ten shells streaming).

So the output handling of all shells shares a budget per round of the loop (``ROUND_BUDGET``
seconds from the round's first ``_on_output`` on, reset when the round ends: wall-clock time,
so that the provider legs' reading and decoding of frames between two ``_on_output`` calls,
which run back to back without yielding, counts too). Once it is spent, ``_on_output`` hands
the provider leg an awaitable that is done when the round ends: that leg reads no further frame
before the loop has run whatever else was ready - keystrokes, other shells' echoes. The frame in
hand is always delivered first, so an echo is never held back; a single bulk shell on a quiet
server loses one loop round (microseconds) per ``ROUND_BUDGET`` of work.

While a shell is typed into (for ``FOREGROUND_SECONDS`` after a keystroke) and other shells
stream, a round gets ``CONTENDED_BUDGET`` instead: a keystroke or an echo that arrives during a
round waits less for its end. A shell streaming alone, even one typed into, keeps the full
budget and its large frames. (The embedded server does the same with its terminals' reads, and
lowers the streaming terminals' CPU priority: ``local/foreground.py``.)
"""

from __future__ import annotations

import asyncio
import time

from ...contention import FOREGROUND_SECONDS, Contention
from ...per_loop import PerLoop
from .state import ShellState

__all__ = ["CONTENDED_BUDGET", "FOREGROUND_SECONDS", "ROUND_BUDGET", "Turns"]

#: Seconds of output handling all shells together get per round of the event loop.
ROUND_BUDGET = 0.002
#: The same while a shell is typed into and others stream.
CONTENDED_BUDGET = 0.0005


class _Round(Contention["Turns"]):
    """The current round of one event loop (since when shells handle output in it); its
    budget is short while a shell is typed into and others stream (``Contention``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.began: float | None = None  # when the round's first output handling began
        self.ended: asyncio.Future[None] | None = None  # done when the round ends
        self._ending = False

    @property
    def budget(self) -> float:
        return CONTENDED_BUDGET if self.contended else ROUND_BUDGET

    def charge(self, started: float) -> asyncio.Future[None] | None:
        if self.began is None:
            self.began = started
        if not self._ending:
            self._ending = True
            self.loop.call_soon(self._end)
        if time.perf_counter() - self.began < self.budget:
            return None
        if self.ended is None:
            self.ended = self.loop.create_future()
        return self.ended

    def _end(self) -> None:
        self._ending = False
        self.began = None
        ended, self.ended = self.ended, None
        if ended is not None and not ended.done():
            ended.set_result(None)


_round: PerLoop[_Round] = PerLoop(_Round)  # the running loop's round


class Turns(ShellState):
    """The part of a Shell that lets other shells go between its frames (module docstring)."""

    def _typed_into(self) -> None:
        """The shell got input from a client."""
        _round().typed(self)

    def _take_turn(self, started: float, chars: int) -> asyncio.Future[None] | None:
        """Charge the handling of ``chars`` of output that began at ``started``
        (``time.perf_counter()``) to the round: ``None`` (read on at once) while the round's
        budget lasts, else a future done when the round ends."""
        found = _round()
        found.streamed(self, chars)
        return found.charge(started)
