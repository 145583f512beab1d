"""One object per asyncio event loop, as ``threading.local`` keeps one per thread.

The turn-taking of both servers keeps its state per loop (``local.read_turns``,
``local.foreground``, ``server.shells.turns``): a process may run more than one loop over its
life (tests do), and an object bound to a closed loop must not be reused. ``local`` and
``server`` may not import each other, so this sits below both and imports nothing of ours.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """``PerLoop(factory)()``: the running loop's object, made by ``factory(loop)`` on first
    use, dropped with the loop."""

    def __init__(self, factory: Callable[[asyncio.AbstractEventLoop], T]) -> None:
        self._factory = factory
        self._objects: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self) -> T:
        loop = asyncio.get_running_loop()
        found = self._objects.get(loop)
        if found is None:
            found = self._objects[loop] = self._factory(loop)
        return found
