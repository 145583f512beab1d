"""The terminal size: one for the shell, the smallest any attached client asked for.

Resizes: the shell takes the smallest rows and columns any attached client asked for (as
terminado does); a client leaving can make the shell larger again. Only a change is sent to
the provider, and only while the shell is open.
"""

from __future__ import annotations

import asyncio
import contextlib

from .state import ShellClient, ShellState

__all__ = ["Resizing"]


class Resizing(ShellState):
    """The part of a Shell that sizes its terminal (see the module docstring)."""

    _size: tuple[int, int]  # (rows, cols) last sent to the provider
    _initial_size: tuple[int, int]
    _resize_task: asyncio.Task[None] | None  # a size change after a client left

    async def resize(self, client: ShellClient, rows: int, cols: int) -> None:
        """``client`` asks for ``rows`` x ``cols``; the shell takes the smallest asked for."""
        client.size = (rows, cols)
        await self._apply_size()

    async def _apply_size(self) -> None:
        sizes = [c.size for c in self.clients if c.size is not None]
        if not sizes:
            return
        size = (min(s[0] for s in sizes), min(s[1] for s in sizes))
        if size != self._size and self.state == "open":
            self._size = size
            with contextlib.suppress(Exception):
                await self._leg.resize(size[1], size[0])
