"""Whether a terminal is typed into while others stream: the test both servers' turn-taking
rests on (issue 14). The embedded server's terminals (``local.foreground``) and the Jupyter
server's shells (``server.shells.turns``) each keep one :class:`Contention` per event loop and
give streaming output shorter turns while it says ``contended``. ``local`` and ``server`` may
not import each other, so this sits below both and imports nothing of ours.

A terminal is *typed into* for ``FOREGROUND_SECONDS`` after a keystroke. Output of
``STREAMING_SIZE`` or more at once (an echo or a prompt is far smaller) from another terminal
meanwhile is *streaming* that competes with the typing. The loop is contended while both were
seen within ``FOREGROUND_SECONDS``.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Generic, TypeVar

__all__ = ["FOREGROUND_SECONDS", "STREAMING_SIZE", "Contention"]

#: Seconds a terminal counts as typed into after a keystroke.
FOREGROUND_SECONDS = 2.0
#: Output at least this large at once (bytes of a read, characters of a frame) is streaming.
STREAMING_SIZE = 1024

T = TypeVar("T")


class Contention(Generic[T]):
    """Which terminal of one event loop is typed into, and whether others stream meanwhile."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.typed_at = -math.inf  # the loop's time of the last keystroke
        self._typed: weakref.ref[T] | None = None  # the terminal typed into last
        self._streamed_at = -math.inf

    def typed(self, terminal: T) -> bool:
        """``terminal`` got input from its user; ``True`` when it was not the one typed into
        last."""
        self.typed_at = self.loop.time()
        if self.is_typed(terminal):
            return False
        self._typed = weakref.ref(terminal)
        return True

    def is_typed(self, terminal: T) -> bool:
        """Whether ``terminal`` is the one typed into last."""
        return self._typed is not None and self._typed() is terminal

    def streamed(self, terminal: T, size: int) -> bool:
        """``terminal`` gave ``size`` of output at once; ``True`` when that is streaming that
        competes with typing (another terminal is typed into)."""
        if size < STREAMING_SIZE:
            return False
        now = self.loop.time()
        if now - self.typed_at >= FOREGROUND_SECONDS or self.is_typed(terminal):
            return False  # nobody types, or it is the output of the terminal typed into
        self._streamed_at = now
        return True

    @property
    def contended(self) -> bool:
        """Whether a terminal is typed into while others stream."""
        now = self.loop.time()
        return (
            now - self.typed_at < FOREGROUND_SECONDS
            and now - self._streamed_at < FOREGROUND_SECONDS
        )
