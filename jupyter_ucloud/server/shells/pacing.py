"""Flow control: the provider leg is read at the pace of the slowest client that keeps up.

When a *pacing* client is more than ``FLOW_WINDOW`` characters behind the newest output,
``_on_output`` returns ``_wait_for_room()`` and the provider leg reads no further frame until it
is done. Each sender awaits ``write_message`` before it takes the next frame, so the provider is
read at the pace of the slowest pacing client; the provider's websocket, its TCP window and
finally its PTY fill up and the producer (``yes``) blocks on its own write. Nothing grows in
between: each client has at most one frame (<= ``FRAME_CHARS``) in flight, and the replay
buffer is bounded in bytes.

A stalled or vanished browser must not freeze the shell for everyone, so a client stops pacing
when it holds the output back too long:

* a client whose write has not completed for ``stalled_client_timeout`` seconds (1 s) while
  another client of the shell still takes frames: one stalled tab never holds the others back
  for longer than that;
* a client whose write has not completed for ``slow_client_timeout`` seconds (5 s) when no other
  client takes frames either: a slow link alone still paces the program, as a terminal does.

A client that stopped pacing keeps its position and catches up from the replay buffer; if it fell
out of the buffer it gets a visible "output skipped" note and continues from the oldest output
still held. Once it has caught up it paces again. Memory stays bounded: its pending frame plus
the replay buffer.

``_room`` is set whenever a client may have moved on (a frame written, a client gone, a skip
started or ended); ``_wait_for_room`` then looks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .state import ShellClient, ShellState

__all__ = ["FLOW_WINDOW", "Pacing"]

log = logging.getLogger(__package__)

FLOW_WINDOW = 16384  # how far the provider may be read ahead of the slowest pacing client


class Pacing(ShellState):
    """The part of a Shell that holds the provider leg back for slow clients (see the module
    docstring)."""

    slow_client_timeout: float
    stalled_client_timeout: float

    def _pacing_behind(self) -> list[ShellClient]:
        """The pacing clients more than ``FLOW_WINDOW`` behind the newest output."""
        end = self.buffer.end
        return [c for c in self.clients if c.pacing and end - c.cursor > FLOW_WINDOW]

    async def _wait_for_room(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._skipping or self._closing:
                return
            behind = self._pacing_behind()
            if not behind:
                return
            now = loop.time()
            limit = self.stalled_client_timeout
            stuck = {c: now - c.write_started for c in self.clients if c.write_started is not None}
            wait = self.slow_client_timeout
            stopped = False
            for client in behind:
                if client not in stuck:
                    continue  # it has data to send and will take it now
                waited = stuck[client]
                others_move = any(
                    other is not client and other.pacing and stuck.get(other, 0.0) < limit
                    for other in self.clients
                )
                if others_move and waited >= limit:
                    stopped = self._stop_pacing(client, f"held the others back for {waited:.1f} s")
                elif waited >= self.slow_client_timeout:
                    stopped = self._stop_pacing(client, f"took no frame for {waited:.1f} s")
                else:
                    wait = min(wait, (limit if others_move else self.slow_client_timeout) - waited)
            if stopped:
                continue  # look again at once: the others may read on now
            self._room.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._room.wait(), timeout=max(wait, 0.01))

    def _stop_pacing(self, client: ShellClient, why: str) -> bool:
        client.pacing = False
        log.info("Shell %s: a slow client stopped pacing the output (it %s)", self.name, why)
        return True
