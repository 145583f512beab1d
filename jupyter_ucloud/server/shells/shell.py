"""The Shell: a provider leg, a replay buffer and clients (the data flow: the package docstring).

Here are the shell's lifecycle (``start``, ``model``, ``close``), the output path (``_on_output``
appends each provider frame to the buffer, ``_deliver`` hands it to the clients) and the input
path. The other parts of a Shell are the mixins of the sibling modules.

Input: a keystroke (at most ``STDIN_CHUNK`` characters, no interrupt character, nothing else
being sent) goes to the provider at once, without a task (``write_nowait``). Large pastes are
sent in ``STDIN_CHUNK`` pieces, each awaited, so the provider's socket pushes back instead of
a write blocking anything (terminado #183).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..replay import ReplayBuffer
from .clients import FRAME_CHARS, ClientSet, stdout_frame
from .ending import Ending
from .health import ProviderHealth
from .interrupts import INTERRUPT_CHARS, InterruptSkip
from .pacing import Pacing
from .sizes import Resizing
from .state import ProviderLeg, ShellClient
from .turns import Turns

__all__ = ["STDIN_CHUNK", "Shell"]

log = logging.getLogger(__package__)  # "jupyter_ucloud.server.shells", one for the package

STDIN_CHUNK = 4096  # large pastes go to the provider in pieces of this size


def _now_ms() -> int:
    return int(time.time() * 1000)


class Shell(ClientSet, Pacing, Turns, InterruptSkip, Resizing, Ending, ProviderHealth):
    """A named shell into one rank of a job; see the package docstring for the data flow."""

    def __init__(
        self,
        *,
        name: str,
        owner: str,
        job_id: str,
        rank: int,
        leg: ProviderLeg,
        job_state: Callable[[], Awaitable[str | None]],
        replay_bytes: int,
        slow_client_timeout: float,
        stalled_client_timeout: float = 1.0,
        size: tuple[int, int],
        replaces: str | None = None,
    ) -> None:
        self.name = name
        self.owner = owner
        self.job_id = job_id
        self.rank = rank
        self.replaces = replaces
        self._leg = leg
        self._job_state = job_state
        self.buffer = ReplayBuffer(replay_bytes)
        self.slow_client_timeout = slow_client_timeout
        self.stalled_client_timeout = stalled_client_timeout
        self.clients: list[ShellClient] = []
        self.state = "open"
        self.reason: str | None = None
        self.message: str | None = None
        self.last_job_state: str | None = "RUNNING"
        self.created_at = _now_ms()
        self.last_activity = self.created_at
        self.detached_since: float | None = time.monotonic()
        self.ended_at: float | None = None
        self._size = size  # (rows, cols) last sent to the provider
        self._initial_size = size
        self._room = asyncio.Event()
        self._input_lock = asyncio.Lock()
        self._skipping = False  # an interrupt was sent and its boundary is not known yet
        self._skip_timer: asyncio.TimerHandle | None = None
        self._ending: asyncio.Task[None] | None = None  # deciding why the provider leg closed
        self._resize_task: asyncio.Task[None] | None = None
        self._closing = False
        self.provider = "ok"  # whether the provider answers (``health``)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._leg.stream_output(self._on_output, self._on_provider_closed)
        self._watch_provider()

    def start_client(self, client: ShellClient) -> None:
        super().start_client(client)
        self._send_status_if_unresponsive(client)

    def model(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "jobId": self.job_id,
            "rank": self.rank,
            "state": self.state,
            "reason": self.reason,
            "message": self.message,
            "clients": len(self.clients),
            "createdAt": self.created_at,
            "lastActivity": self.last_activity,
            "jobState": self.last_job_state,
            "offset": self.buffer.end,
            "replaces": self.replaces,
            "provider": self.provider,
        }

    async def close(self, reason: str = "closed", message: str = "The shell was closed.") -> None:
        """End the shell and close the provider leg (the job keeps running)."""
        self._closing = True
        if self._skip_timer is not None:
            self._skip_timer.cancel()
            self._skip_timer = None
        self._end(reason, message)
        if self._ending is not None and not self._ending.done():
            self._ending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ending
        with contextlib.suppress(Exception):
            await self._leg.close()

    # --- provider -> clients ----------------------------------------------------------------------

    def _on_output(self, text: str) -> Awaitable[None] | None:
        """A provider frame's output: keep it, deliver it; ``_wait_for_room()`` when the
        provider leg must not read on yet (see :mod:`.pacing`), else a turn of the loop after
        each ``TURN_CHARS`` (see :mod:`.turns`)."""
        if self._closing:
            return None
        started = time.perf_counter()
        if not text.isascii():
            text = _encodable(text)
        start = self.buffer.end
        # A client that keeps up (pacing) must not lose output the buffer's limit would evict:
        # a provider frame may be larger than the whole buffer. (Not while an interrupt's stale
        # output is being skipped: that is read unpaced and is not wanted.)
        wanted = [max(c.cursor, c.skip_floor) for c in self.clients if c.pacing]
        keep_from = min(wanted) if wanted and not self._skipping else None
        self.buffer.append(text, keep_from)
        self.last_activity = _now_ms()
        self._deliver(text, start)
        if self._skipping or not self._pacing_behind():
            return self._take_turn(started, len(text))
        return self._wait_for_room()

    def _deliver(self, text: str, start: int) -> None:
        """New output from ``start`` on: written at once to each client whose sender is idle
        and caught up (one frame, no task switch - the keystroke echo path); the others'
        senders are woken."""
        if self._skipping and self._leg.acks_seen:
            return  # clients wait for the interrupt's ack (see _run_client)
        end = self.buffer.end
        frame: bytes | None = None
        direct = not self._skipping and len(text) <= FRAME_CHARS
        for client in self.clients:
            if (
                direct
                and client.idle
                and client.writing is None
                and client.write_now is not None
                and client.cursor == start
                and client.skip_floor <= start
            ):
                if frame is None:
                    frame = stdout_frame(text, end)
                self._write_direct(client, frame, end)
            else:
                client.wake.set()

    # --- clients -> provider ----------------------------------------------------------------------

    def write_nowait(self, text: str) -> bool:
        """Send a keystroke at once, without a task; ``False`` when ``text`` must go through
        :meth:`write` instead (too long, an interrupt, input already being sent, or while
        the output after an interrupt is being skipped)."""
        if (
            self.state != "open"
            or self._skipping
            or len(text) > STDIN_CHUNK
            or self._input_lock.locked()
            or any(char in text for char in INTERRUPT_CHARS)
        ):
            return False
        try:
            sent = self._leg.send_nowait(text)
        except Exception as err:  # the provider leg is closing: its close handler reports it
            log.debug("Shell %s: input not sent (%s)", self.name, type(err).__name__)
            return True
        sent.add_done_callback(self._input_sent)
        self.last_activity = _now_ms()
        self._typed_into()
        return True

    def _input_sent(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.debug("Shell %s: input not sent (%r)", self.name, future.exception())

    async def write(self, text: str) -> None:
        """Send input to the shell, in pieces, in order."""
        if self.state != "open":
            return
        interrupt = any(char in text for char in INTERRUPT_CHARS)
        if interrupt:
            self._start_skip()
        elif self._skipping and not self._leg.acks_seen:
            self._end_skip(self.buffer.end)  # no acks to place the boundary: it is here
        self.last_activity = _now_ms()
        self._typed_into()
        async with self._input_lock:
            last = max(0, len(text) - 1) // STDIN_CHUNK * STDIN_CHUNK
            for start in range(0, len(text), STDIN_CHUNK):
                if interrupt and start == last:
                    # the boundary is where this one is acked
                    self._leg.watch_next_input(self._check_interrupt_acked)
                await self._leg.send(text[start : start + STDIN_CHUNK])


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """``text`` with each lone surrogate (from a provider's JSON) replaced by one U+FFFD, so it
    encodes as UTF-8 and keeps its length (offsets count code points)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text
