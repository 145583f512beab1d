"""``FollowHub``: one upstream ``jobs.follow`` stream per job, however many browser tabs follow it.

A :class:`JobStream` holds, per job, the upstream stream (``AsyncJobFollower``, opened with the
server's credentials), the job as the stream leaves it (``initialJob`` with every update and
status applied: what a tab that joins later gets as its ``initialJob``), the frames that are not
log output (updates, status, ``channel`` entries; the last ``MAX_EVENTS``), and a bounded history
of each rank's stdout and stderr (a :class:`~.replay.ReplayBuffer` per rank and stream,
``history_bytes`` each, 1 MiB by default).

Each tab is a :class:`Follower` with a sender task that sends, in order: ``initialJob``; the
history (not to a tab that follows the status only, ``logs=False``: it gets no log output);
then, as they come, update frames (the one that ends the job included: a tab learns of the end
at once) and log output; and once the job has ended and the upstream is done (the
output complete), a final frame ``{"updates": [], "newStatus": <final status>}``, then a close
(1000). If the upstream fails
(cannot be opened, or ends before the job does) every tab gets ``{"error": message}`` and a close
(1011). Update frames go before log output that is waiting; log output of several ranks and
streams is sent in turn, a frame of at most ``FRAME_CHARS`` characters at a time.

Flow control, as the shells do it (``shells.pacing``): the upstream is read at the pace of the
slowest tab that keeps up: while a *pacing* tab is more than ``FLOW_WINDOW`` characters behind,
the next upstream frame is not read (then the upstream socket fills, and the embedded server
stops reading the job's files). A tab whose frame has not been taken for
``slow_client_timeout`` seconds stops pacing; it continues from the history, and if it fell out
of it gets ``SKIPPED_NOTE`` in its log text where output is missing. Memory per job is bounded by
the histories plus one frame per tab, whatever the tabs do.

The upstream closes ``linger`` seconds after the last tab left (a reload finds it still open,
with its history), and the stream is forgotten ``linger`` seconds after the job ended and no tab
follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from ..protocol import Job, JobsFollowMessage, to_wire
from .replay import ReplayBuffer

__all__ = [
    "FLOW_WINDOW",
    "FRAME_CHARS",
    "MAX_EVENTS",
    "SKIPPED_NOTE",
    "FollowHub",
    "FollowSink",
    "FollowUpstream",
    "Follower",
    "JobStream",
]

log = logging.getLogger(__name__)

FRAME_CHARS = 65536
#: How far (characters of log output, all ranks) the upstream may be read ahead of the slowest
#: pacing tab.
FLOW_WINDOW = 262144
#: Frames other than log output kept for tabs that are behind (update frames are few; this
#: bounds ``channel`` entries).
MAX_EVENTS = 1024
#: In the log text where output is missing for a tab (it fell behind, or joined after the
#: history had dropped the beginning).
SKIPPED_NOTE = "\n[jupyter-ucloud: output skipped: only the most recent output is kept here]\n"
#: After the job has ended: how long an upstream that sends nothing is waited for before the
#: stream counts as done (UCloud's core keeps the socket open when a product has no logs).
FINAL_QUIET = 10.0

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_ERROR = 1011

Key = tuple[int, str]  # (rank, "stdout" | "stderr")


class FollowSink(Protocol):
    """A tab's websocket as the hub sees it (``handlers.follow`` fits)."""

    async def send_frame(self, frame: bytes) -> None:
        """Send one text frame (UTF-8 JSON); returns once the socket has taken it."""

    def close_client(self, code: int, reason: str) -> None:
        """Close the websocket."""


class UpstreamFollower(Protocol):
    """An open upstream stream (``client.AsyncJobFollower`` fits)."""

    job: Job | None
    closed: bool

    async def read(self, timeout: float | None = None) -> JobsFollowMessage | None: ...

    async def close(self) -> None: ...


class FollowUpstream(Protocol):
    """Where streams come from (``upstream.Upstream`` fits)."""

    async def follow_job(self, job_id: str) -> UpstreamFollower:
        """Open ``jobs.follow`` for ``job_id``; an exception with a ``message`` (or its text)
        when it cannot be opened."""


def _frame(
    *,
    updates: list[Any] | None = None,
    log_entries: list[dict[str, Any]] | None = None,
    new_status: Any = None,
    initial_job: Any = None,
) -> bytes:
    return orjson.dumps(
        {
            "updates": updates or [],
            "log": log_entries or [],
            "newStatus": new_status,
            "initialJob": initial_job,
        }
    )


def _log_frame(rank: int, stream: str, text: str) -> bytes:
    entry = {"rank": rank, "stdout": None, "stderr": None, "channel": None, stream: text}
    return _frame(log_entries=[entry])


@dataclass(eq=False)
class Follower:
    """One tab following one job."""

    stream: JobStream
    sink: FollowSink
    #: ``False``: the tab follows the job's status only (no log frames, never paces the stream).
    logs: bool = True
    offsets: dict[Key, int] = field(default_factory=dict)
    event_index: int = 0
    pacing: bool = True
    write_started: float | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    _turn: int = 0  # which (rank, stream) to look at first

    def behind(self) -> int:
        """Characters of log output held for this tab that it has not been sent."""
        if not self.logs:
            return 0
        return sum(
            buffer.end - max(self.offsets.get(key, 0), buffer.start)
            for key, buffer in self.stream.logs.items()
        )

    def next_log(self) -> tuple[Key, int, str] | None:
        """``(key, first offset, text)`` of the next log output to send, taking the ranks and
        streams in turn; ``None`` when the tab has everything (or follows the status only)."""
        if not self.logs:
            return None
        keys = sorted(self.stream.logs)
        for step in range(len(keys)):
            key = keys[(self._turn + step) % len(keys)]
            buffer = self.stream.logs[key]
            offset = self.offsets.get(key, 0)
            if offset < buffer.end:
                self._turn = (self._turn + step + 1) % len(keys)
                first, text = buffer.read(offset, FRAME_CHARS)
                return key, first, text
        return None


class JobStream:
    """One job's upstream stream and what it keeps for its tabs (module docstring)."""

    def __init__(self, hub: FollowHub, job_id: str) -> None:
        self.hub = hub
        self.job_id = job_id
        self.job: Job | None = None
        self.logs: dict[Key, ReplayBuffer] = {}
        self.events: deque[bytes] = deque(maxlen=MAX_EVENTS)
        self.events_end = 0  # index after the newest event ever added
        self.ended = False  # the job has ended and the upstream is done
        self.error: str | None = None
        self.followers: list[Follower] = []
        self._room = asyncio.Event()
        self._upstream: UpstreamFollower | None = None
        self._linger: asyncio.TimerHandle | None = None
        self.task = asyncio.ensure_future(self._read_upstream())

    @property
    def events_start(self) -> int:
        return self.events_end - len(self.events)

    @property
    def done(self) -> bool:
        return self.ended or self.error is not None

    # --- the upstream leg -----------------------------------------------------------------------

    async def _read_upstream(self) -> None:
        try:
            upstream = await self.hub.upstream.follow_job(self.job_id)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self._fail(str(getattr(err, "message", None) or err))
            return
        self._upstream = upstream
        try:
            while True:
                final = self.job is not None and self.job.state.is_final
                message = await upstream.read(FINAL_QUIET if final else None)
                if message is None:
                    break
                self._apply(message, upstream.job)
                await self._pace()
            if self.job is not None and self.job.state.is_final:
                self.ended = True
                self._wake_all()
            else:
                self._fail(
                    f"The stream of job {self.job_id} from UCloud ended before the job did;"
                    " follow it again to continue."
                )
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the upstream broke, or sent an error
            self._fail(str(getattr(err, "why", None) or err))
        finally:
            with contextlib.suppress(Exception):
                await upstream.close()
            self._upstream = None
            self._maybe_linger()

    def _apply(self, message: JobsFollowMessage, job: Job | None) -> None:
        self.job = job
        for entry in message.log:
            texts = [(s, getattr(entry, s)) for s in ("stdout", "stderr") if getattr(entry, s)]
            for stream, text in texts:
                key = (entry.rank, stream)
                buffer = self.logs.get(key)
                if buffer is None:
                    buffer = self.logs[key] = ReplayBuffer(self.hub.history_bytes)
                buffer.append(text)
            if not texts and entry.channel is not None:
                self._add_event(_frame(log_entries=[to_wire(entry)]))
        if message.updates or message.new_status is not None:
            updates = to_wire(message.updates)
            status = to_wire(message.new_status) if message.new_status is not None else None
            self._add_event(_frame(updates=updates, new_status=status))
        self._wake_all()

    def _add_event(self, frame: bytes) -> None:
        self.events.append(frame)
        self.events_end += 1

    def _fail(self, why: str) -> None:
        if not self.done:
            self.error = why or "The job's stream from UCloud failed."
            log.info("Follow job %s: %s", self.job_id, self.error)
        self._wake_all()

    def _wake_all(self) -> None:
        for follower in self.followers:
            follower.wake.set()

    async def _pace(self) -> None:
        """Wait while a pacing tab is more than ``FLOW_WINDOW`` behind (module docstring)."""
        loop = asyncio.get_running_loop()
        timeout = self.hub.slow_client_timeout
        while True:
            behind = [f for f in self.followers if f.pacing and f.behind() > FLOW_WINDOW]
            if not behind:
                return
            now = loop.time()
            wait = timeout
            for follower in behind:
                started = follower.write_started
                if started is None:
                    continue  # it is about to send
                if now - started >= timeout:
                    follower.pacing = False
                    log.info("Follow job %s: a slow tab stopped pacing the stream", self.job_id)
                else:
                    wait = min(wait, timeout - (now - started))
            self._room.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._room.wait(), max(wait, 0.01))

    # --- tabs -----------------------------------------------------------------------------------

    def attach(self, sink: FollowSink, *, logs: bool = True) -> Follower:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        follower = Follower(self, sink, logs=logs)
        self.followers.append(follower)
        follower.task = asyncio.ensure_future(self._run_follower(follower))
        return follower

    def detach(self, follower: Follower) -> None:
        if follower in self.followers:
            self.followers.remove(follower)
        if follower.task is not None and not follower.task.done():
            follower.task.cancel()
        self._room.set()
        self._maybe_linger()

    async def _run_follower(self, follower: Follower) -> None:
        sink = follower.sink
        try:
            while self.job is None and not self.done:
                follower.wake.clear()
                await follower.wake.wait()
            if self.job is None:
                await self._send(follower, orjson.dumps({"error": self.error}))
                sink.close_client(CLOSE_ERROR, "upstream failed")
                return
            follower.event_index = self.events_end
            await self._send(follower, _frame(initial_job=to_wire(self.job)))
            while True:
                if follower.event_index < self.events_end:
                    follower.event_index = max(follower.event_index, self.events_start)
                    frame = self.events[follower.event_index - self.events_start]
                    follower.event_index += 1
                    await self._send(follower, frame)
                    continue
                found = follower.next_log()
                if found is not None:
                    (rank, stream), first, text = found
                    offset = follower.offsets.get((rank, stream), 0)
                    follower.offsets[(rank, stream)] = first + len(text)
                    note = SKIPPED_NOTE if first > offset else ""
                    await self._send(follower, _log_frame(rank, stream, note + text))
                    continue
                if self.error is not None:
                    await self._send(follower, orjson.dumps({"error": self.error}))
                    sink.close_client(CLOSE_ERROR, "upstream failed")
                    return
                if self.ended:
                    final = _frame(new_status=to_wire(self.job.status))
                    await self._send(follower, final)
                    sink.close_client(CLOSE_NORMAL, "job ended")
                    return
                follower.pacing = True
                follower.wake.clear()
                await follower.wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the tab went away
            log.debug("Follow job %s: tab gone (%s)", self.job_id, type(err).__name__)
        finally:
            if follower in self.followers:
                self.followers.remove(follower)
                self._room.set()
                self._maybe_linger()

    async def _send(self, follower: Follower, frame: bytes) -> None:
        loop = asyncio.get_running_loop()
        follower.write_started = loop.time()
        try:
            await follower.sink.send_frame(frame)
        finally:
            follower.write_started = None
            self._room.set()

    # --- lifetime -------------------------------------------------------------------------------

    def _maybe_linger(self) -> None:
        """With no tab left: close the upstream (or forget an ended stream) after ``linger``."""
        if self.followers or self._linger is not None or self.hub.closing:
            return
        loop = asyncio.get_running_loop()
        self._linger = loop.call_later(self.hub.linger, self._expire)

    def _expire(self) -> None:
        self._linger = None
        if not self.followers:
            self.hub.forget(self)
            self.hub.closing_tasks.add(closing := asyncio.ensure_future(self.close()))
            closing.add_done_callback(self.hub.closing_tasks.discard)

    async def close(self, code: int = CLOSE_GOING_AWAY) -> None:
        """Close the upstream and every tab."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        for follower in list(self.followers):
            with contextlib.suppress(Exception):
                follower.sink.close_client(code, "closing")
            self.detach(follower)
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            with contextlib.suppress(Exception):
                await upstream.close()


class FollowHub:
    """Every followed job of this Jupyter server (module docstring)."""

    def __init__(
        self,
        upstream: FollowUpstream,
        *,
        history_bytes: int = 1024 * 1024,
        linger: float = 30.0,
        slow_client_timeout: float = 5.0,
    ) -> None:
        self.upstream = upstream
        self.history_bytes = history_bytes
        self.linger = linger
        self.slow_client_timeout = slow_client_timeout
        self.streams: dict[str, JobStream] = {}
        self.closing = False
        self.closing_tasks: set[asyncio.Task[None]] = set()  # streams being closed

    def follow(self, job_id: str, sink: FollowSink, *, logs: bool = True) -> Follower:
        """Attach ``sink`` to the stream of ``job_id`` (opened now if there is none); with
        ``logs=False`` the tab gets the job and its updates but no log output."""
        stream = self.streams.get(job_id)
        if stream is None or (stream.error is not None and not stream.followers):
            stream = self.streams[job_id] = JobStream(self, job_id)
        return stream.attach(sink, logs=logs)

    def unfollow(self, follower: Follower) -> None:
        follower.stream.detach(follower)

    def forget(self, stream: JobStream) -> None:
        if self.streams.get(stream.job_id) is stream:
            del self.streams[stream.job_id]

    async def close_all(self) -> None:
        self.closing = True
        streams = list(self.streams.values())
        self.streams.clear()
        await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)
