"""The terminal being typed into goes first: other terminals' bulk output yields to it.

The terminal typed into last is the *foreground* terminal for ``FOREGROUND_SECONDS`` after each
keystroke. A terminal that streams output (reads of ``contention.STREAMING_SIZE`` bytes or
more) meanwhile is a *background* terminal. While both exist, the event loop is *contended*, and:

* the terminals' reads take short turns (``read_turns``: ``CONTENDED_BUDGET`` per round of the
  loop instead of ``ROUND_BUDGET``), so a keystroke and its echo wait for a short round at most;
* each background terminal is told so (:meth:`Background.set_background`). A PTY
  (``pty.PtyProcess``) is then read at most every ``BACKGROUND_READ_GAP`` seconds, and the CPU
  priority of its session is lowered: the programs that fill those terminals, and the servers
  that carry their output, leave the CPUs to the shell being typed into, to the servers that
  carry its echo and to the browser. On a machine whose CPUs are busy, that is what the echo
  waits for (each hop of a keystroke, browser -> Jupyter -> embedded server -> shell and back,
  waits for a CPU). A background terminal's output slows down meanwhile: ``yes`` streams at
  about a third of its rate (docs/benchmarks.md).

Applied to every stream, these would cost a terminal streaming alone: short turns cut its bulk
output by a quarter (smaller frames), a lower priority for every job (``job_nice``) by two
thirds (the busy servers kept taking the CPU from the program writing), and the read gap caps
it. So none of this applies to output nobody competes with: a terminal streaming alone, even
one typed into, keeps 64 KiB reads and its priority. When nobody has typed for
``FOREGROUND_SECONDS``, every background terminal comes back to the front; a background terminal
typed into comes back at once.

One :class:`Foreground` per event loop (:func:`foreground`), shared by all its terminals: the
test of typing against streaming is ``contention.Contention``'s, which the Jupyter server's
shells use too.
Figures: docs/benchmarks.md, "The terminal being typed into goes first".
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

from ..contention import FOREGROUND_SECONDS, Contention
from ..per_loop import PerLoop

__all__ = [
    "BACKGROUND_READ_GAP",
    "FOREGROUND_SECONDS",
    "Background",
    "Foreground",
    "foreground",
]

#: Seconds between two reads of a background terminal.
BACKGROUND_READ_GAP = 0.005


class Background(Protocol):
    """A terminal that can be put in the background (and back)."""

    def set_background(self, background: bool) -> None: ...


class Foreground(Contention[Background]):
    """Which terminal of one event loop is typed into, and which stream meanwhile (the
    background terminals)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._background: weakref.WeakSet[Background] = weakref.WeakSet()
        self._expiry: asyncio.TimerHandle | None = None

    def typed(self, terminal: Background) -> bool:
        """``terminal`` got input from its user (back to the front if it was not)."""
        if not super().typed(terminal):
            return False
        if terminal in self._background:
            self._background.discard(terminal)
            terminal.set_background(False)
        return True

    def streamed(self, terminal: Background, size: int) -> bool:
        """``terminal`` gave ``size`` bytes of output in one read (to the background if that
        competes with typing)."""
        if not super().streamed(terminal, size):
            return False
        if terminal not in self._background:
            self._background.add(terminal)
            terminal.set_background(True)
            if self._expiry is None:
                self._expiry = self.loop.call_at(self.typed_at + FOREGROUND_SECONDS, self._expire)
        return True

    def forget(self, terminal: Background) -> None:
        """``terminal`` is closed: nothing more to restore."""
        self._background.discard(terminal)

    def _expire(self) -> None:
        self._expiry = None
        left = self.typed_at + FOREGROUND_SECONDS - self.loop.time()
        if left > 0:  # typed again since: look again when that keystroke is old enough
            self._expiry = self.loop.call_later(left, self._expire)
            return
        waiting, self._background = list(self._background), weakref.WeakSet()
        for terminal in waiting:
            terminal.set_background(False)


#: The running loop's :class:`Foreground`: ``foreground()``.
foreground: PerLoop[Foreground] = PerLoop(Foreground)
