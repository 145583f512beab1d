"""Shell sessions: one provider shell, many browser clients, a bounded history.

A :class:`Shell` is a server-side object with a name. It owns the *provider leg* (the UCloud
provider's shell websocket, through :class:`jupyter_ucloud.client.AsyncShell`) and any number of
*client legs* (browser websockets speaking terminado, or anything with the :class:`ClientSink`
interface - benchmarks attach directly). It outlives its clients; an explicit close, an idle
timeout for shells nobody is attached to, or the end of the job ends it. Closing a shell never
terminates the job.

Flow control - the design
-------------------------

Output goes provider -> :class:`~.replay.ReplayBuffer` -> clients::

    provider ws -frame-> on_output -append-> ReplayBuffer -read-> sender -await write-> client ws
                                   \\-write-> client ws (an idle, caught-up client: at once)

* The provider leg hands each frame to ``_on_output`` as it arrives (``stream_output``). A
  client that has sent everything gets the new output written to it right there - the
  keystroke echo path has no queue and no task switch - and any other client's sender task
  is woken to take it from the buffer. A frame its socket takes at once leaves the client
  caught up (``write_frame`` answers ``None``); only a frame left in tornado's buffer, the
  socket pushing back, makes the client *writing* until it is out.
* Flow control and slow clients: :mod:`.pacing`.
* Ctrl-C: the stale output already on its way is skipped (:mod:`.interrupts`).
* Input: a keystroke (at most ``STDIN_CHUNK`` characters, no interrupt character, nothing else
  being sent) goes to the provider at once, without a task (``write_nowait``). Large pastes are
  sent in ``STDIN_CHUNK`` pieces, each awaited, so the provider's socket pushes back instead of
  a write blocking anything (terminado #183).

Clients, their senders and replays: :mod:`.clients`.

Resizes: :mod:`.sizes`.

How a shell ends, and what its clients are told then: :mod:`.ending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..replay import ReplayBuffer
from .clients import FRAME_CHARS, ClientSet, stdout_frame
from .ending import Ending
from .interrupts import INTERRUPT_CHARS, InterruptSkip
from .pacing import Pacing
from .sizes import Resizing
from .state import ProviderLeg, ShellClient

if TYPE_CHECKING:
    from ..upstream import Upstream

__all__ = ["FRAME_CHARS", "Shell", "ShellError", "ShellManager"]

log = logging.getLogger(__package__)  # "jupyter_ucloud.server.shells", one for the package

STDIN_CHUNK = 4096  # large pastes go to the provider in pieces of this size


class ShellError(Exception):
    """A shell request that cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _now_ms() -> int:
    return int(time.time() * 1000)


class Shell(ClientSet, Pacing, InterruptSkip, Resizing, Ending):
    """A named shell into one rank of a job; see the module docstring for the data flow."""

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

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._leg.stream_output(self._on_output, self._on_provider_closed)

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
        provider leg must not read on yet (see the module docstring)."""
        if self._closing:
            return None
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
        if self._skipping:
            self._check_interrupt_acked()
        self._deliver(text, start)
        if self._skipping or not self._pacing_behind():
            return None
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
        async with self._input_lock:
            last = max(0, len(text) - 1) // STDIN_CHUNK * STDIN_CHUNK
            for start in range(0, len(text), STDIN_CHUNK):
                if interrupt and start == last:
                    self._leg.watch_next_input()  # the boundary is where this one is acked
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


class ShellManager:
    """Every shell of this Jupyter server, by name; opens, lists, culls and closes them.

    Shells belong to the Jupyter server, as Jupyter's own terminals do: a Jupyter server serves
    one person (JupyterHub gives each user their own), every request is authenticated and
    authorized for ``ucloud``, and Jupyter gives token-authenticated clients (a notebook's
    client) a fresh anonymous identity per request, so names of users cannot scope them. The
    per-user limit (``max_shells_per_user``) is therefore a limit on this server's open shells.
    ``owner`` is recorded for the logs.
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        replay_bytes: int = 262144,
        ping_interval: float = 30.0,
        idle_timeout: float = 3600.0,
        max_shells_per_user: int = 16,
        slow_client_timeout: float = 5.0,
        connect_timeout: float = 30.0,
        ended_retention: float = 600.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.upstream = upstream
        self.replay_bytes = replay_bytes
        self.ping_interval = ping_interval
        self.idle_timeout = idle_timeout
        self.max_shells_per_user = max_shells_per_user
        self.slow_client_timeout = slow_client_timeout
        self.connect_timeout = connect_timeout
        self.ended_retention = ended_retention
        self.log = log or logging.getLogger(__package__)
        self._shells: dict[str, Shell] = {}
        self._opening = 0
        self._culler: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._culler is None or self._culler.done():
            self._culler = asyncio.ensure_future(self._run_culler())

    def get(self, name: str) -> Shell | None:
        return self._shells.get(name)

    def shells(self) -> list[Shell]:
        return list(self._shells.values())

    async def open(
        self,
        owner: str,
        job_id: str,
        rank: int,
        cols: int = 80,
        rows: int = 24,
        replaces: str | None = None,
    ) -> Shell:
        """Open a shell into ``rank`` of ``job_id`` for ``owner`` (raises ShellError)."""
        self.start()
        open_now = sum(1 for s in self.shells() if s.state != "ended")
        if open_now + self._opening >= self.max_shells_per_user:
            raise ShellError(
                429,
                f"You have {open_now} open shells, the most allowed "
                f"(c.UCloud.max_shells_per_user = {self.max_shells_per_user}). Close one first.",
            )
        if replaces is not None:
            old = self.get(replaces)
            if old is None:
                raise ShellError(404, f"No shell named {replaces!r} to replace.")
            if (old.job_id, old.rank) != (job_id, rank):
                raise ShellError(400, "A replacement shell must be for the same job and rank.")
        self._opening += 1
        try:
            leg = await self.upstream.open_shell(
                job_id,
                rank,
                cols=cols,
                rows=rows,
                ping_interval=self.ping_interval,
                timeout=self.connect_timeout,
            )
        finally:
            self._opening -= 1
        name = f"ucloud-{_name_part(job_id)}-{rank}-{secrets.token_hex(4)}"
        shell = Shell(
            name=name,
            owner=owner,
            job_id=job_id,
            rank=rank,
            leg=leg,
            job_state=lambda: self.upstream.job_state(job_id),
            replay_bytes=self.replay_bytes,
            slow_client_timeout=self.slow_client_timeout,
            size=(rows, cols),
            replaces=replaces,
        )
        self._shells[name] = shell
        shell.start()
        if replaces is not None:
            old = self._shells.pop(replaces, None)
            if old is not None:
                await old.close("closed", f"Replaced by shell {name}.")
        self.log.info("Opened shell %s (job %s, rank %s)", name, job_id, rank)
        return shell

    async def close(self, name: str) -> bool:
        shell = self.get(name)
        if shell is None:
            return False
        self._shells.pop(name, None)
        await shell.close()
        return True

    async def close_all(self) -> None:
        if self._culler is not None:
            self._culler.cancel()
        shells, self._shells = list(self._shells.values()), {}
        await asyncio.gather(*(shell.close() for shell in shells), return_exceptions=True)

    async def _run_culler(self) -> None:
        interval = max(1.0, min(60.0, (self.idle_timeout or 60.0) / 4))
        while True:
            await asyncio.sleep(interval)
            await self.cull()

    async def cull(self) -> None:
        now = time.monotonic()
        for shell in list(self._shells.values()):
            if shell.state == "ended":
                if shell.ended_at is not None and now - shell.ended_at > self.ended_retention:
                    self._shells.pop(shell.name, None)
            elif (
                self.idle_timeout
                and not shell.clients
                and shell.detached_since is not None
                and now - shell.detached_since > self.idle_timeout
            ):
                self.log.info("Closing shell %s: nobody attached for a while", shell.name)
                self._shells.pop(shell.name, None)
                await shell.close("closed", "The shell was closed after being idle.")


def _name_part(job_id: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in job_id)[:40]
    return cleaned or "job"
