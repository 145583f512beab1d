"""Whether the other end of a shell connection still answers, and what it has not confirmed.

A provider can stop answering without closing anything (its process is stopped, its host is
overloaded, a network path is gone): TCP then keeps the connection and buffers what is typed,
and nothing tells the user. ``Liveness`` watches a connection from the outside:

* it sends a websocket ping when nothing was heard for ``probe_after`` seconds (one at a time);
* the peer is *unresponsive* once a ping has gone unanswered, or input has gone unacknowledged
  (UCloud providers ack every ``input``), for ``unresponsive_after`` seconds; it is responsive
  again as soon as anything arrives;
* a ping unanswered for ``drop_after`` seconds drops the connection (the peer is taken as gone).

It also counts the input the peer has not acknowledged yet, so that a connection that ends can
say how much of what was typed never arrived. ``AsyncShell`` owns one per connection.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Liveness"]

PROBE_AFTER = 2.0
UNRESPONSIVE_AFTER = 4.0
TICK = 0.5


class Liveness:
    def __init__(
        self,
        *,
        ping: Callable[[], bool],
        drop: Callable[[], None],
        drop_after: float,
        probe_after: float = PROBE_AFTER,
        unresponsive_after: float = UNRESPONSIVE_AFTER,
    ) -> None:
        self._ping = ping
        self._drop = drop
        self.drop_after = drop_after
        self.probe_after = min(probe_after, drop_after)
        self.unresponsive_after = min(unresponsive_after, drop_after)
        #: When anything was last heard from the peer (monotonic); set by the connection.
        self.last_heard = time.monotonic()
        self._ping_sent: float | None = None
        #: Input sent and not acknowledged: (stream id, monotonic time sent, characters).
        self._unacked: deque[tuple[int, float, int]] = deque()
        self.responsive = True
        #: Called with the new value of ``responsive`` when it changes.
        self.on_change: Callable[[bool], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._held = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # --- what the connection reports ------------------------------------------------------

    def pong(self) -> None:
        self._ping_sent = None
        self.heard()

    def heard(self) -> None:
        self.last_heard = time.monotonic()
        if not self.responsive:
            self._set(True)

    def sent_input(self, stream: int, chars: int) -> None:
        self._unacked.append((stream, time.monotonic(), chars))

    def acked(self, stream: int) -> None:
        """The peer acknowledged ``stream`` (and so every earlier request)."""
        unacked = self._unacked
        while unacked and unacked[0][0] <= stream:
            unacked.popleft()

    @property
    def unacked_chars(self) -> int:
        """Characters of input sent and not (yet) acknowledged."""
        return sum(chars for _, _, chars in self._unacked)

    def silent_for(self) -> float:
        return time.monotonic() - self.last_heard

    def hold(self) -> None:
        """The connection is not being read (its consumer pushes back): whatever the peer
        sent waits unread, so its silence means nothing until ``release``."""
        self._held = True

    def release(self) -> None:
        """Reading goes on: the clocks start again from now."""
        self._held = False
        now = time.monotonic()
        self.last_heard = now
        if self._ping_sent is not None:
            self._ping_sent = now
        if self._unacked:
            self._unacked = deque((stream, now, chars) for stream, _, chars in self._unacked)

    # --- the watch ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            if self._held:
                continue
            now = time.monotonic()
            if self._ping_sent is None:
                if now - self.last_heard >= self.probe_after:
                    if not self._ping():
                        return
                    self._ping_sent = now
            elif now - self._ping_sent >= self.drop_after:
                self._drop()
                return
            waiting = [now - self._ping_sent] if self._ping_sent is not None else []
            if self._unacked:
                waiting.append(now - max(self._unacked[0][1], self.last_heard))
            stuck = max(waiting, default=0.0) >= self.unresponsive_after
            if stuck and self.responsive:
                self._set(False)

    def _set(self, responsive: bool) -> None:
        self.responsive = responsive
        if self.on_change is not None:
            self.on_change(responsive)
