"""``jobs.follow``: the websocket at ``/api/jobs`` (a GET with ``Upgrade: websocket`` on the path
of ``jobs.create``; reference section 5.2).

The client's first text frame is ``{"call": "jobs.follow", "streamId", "payload": {"id"},
"bearer": <access token>, "project"}``; later frames are ignored, as the core ignores them. A bad
or missing bearer, a project the user is not a member of, an unknown job or another user's job:
the socket closes (1008) without a message, as UCloud's core closes it. No first frame within
``session_init_timeout``: the same.

Then every frame is ``{"type": "message", "streamId", "payload": JobsFollowMessage}``:

1. ``initialJob``: the job as ``jobs.retrieve`` gives it with ``includeProduct``,
   ``includeSupport``, ``includeUpdates`` and ``includeOthers``;
2. ``updates`` (and ``newStatus``, the whole status, when the state changed) as each update is
   recorded (``JobService.on_update``: pushed, nothing polls the store);
3. one ``log`` entry ``{rank, stdout|stderr, channel: null}`` per chunk of a rank's captured
   output (``rank_logs``), from the start of the files: a follower that connects late gets
   everything so far, then what follows. Only for products with the ``logs`` feature.

Once the job has ended and its output is complete and read, the socket closes with 1000.

Flow control: at most one frame waits in tornado's buffer (counted with ``all_on_socket``), and
the files are read (``READ_CHUNKS`` chunks of 64 KiB at a time) only once the socket took the
frames read before: a follower that does not read holds a frame and a few chunks of memory,
however much the job prints.

Watching the files: while a follower has read everything, the files are looked at again every
``POLL_SECONDS`` (a ``pread`` per file in a worker thread). This is simpler than inotify (not in
the standard library, and not available for files on NFS, where Slurm jobs often write) or a
notification from every backend (the Slurm ranks write on other nodes), and cheap: it only runs
while someone follows a job that has not ended, and an update of the job wakes it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from pydantic import ValidationError
from tornado.httputil import HTTPServerRequest
from tornado.routing import PathMatches, Rule
from tornado.websocket import WebSocketClosedError

from ..protocol import (
    JOBS_FOLLOW_PATH,
    JobFlags,
    JobsFollowRequest,
    JobUpdate,
    to_wire,
)
from ..tornado_ws import all_on_socket
from .handshake import UCloudHandshakeErrors
from .rank_logs import RankLogs, output_complete

if TYPE_CHECKING:
    from .auth import TokenAuthority
    from .catalog import Catalog
    from .config import LocalConfig
    from .jobs import JobService
    from .store import JobRecord

__all__ = ["FollowSocketServer", "JobFollowSocket", "follow_route"]

log = logging.getLogger("jupyter_ucloud.local")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_REFUSED = 1008
#: How often the files of a job that has not ended are looked at while a follower is caught up.
POLL_SECONDS = 0.1
#: Chunks read per trip to the worker thread (each is sent as a frame of its own, at the pace
#: of the socket; a trip costs more than a page-cached read, so one reads a few).
READ_CHUNKS = 4
#: After the end: how long files without a supervisor record must stay quiet.
QUIET_SECONDS = 0.5
#: After the end: the longest wait for the output to be complete (beyond the grace period).
COMPLETE_WAIT_SECONDS = 10.0

#: What ``jobs.follow`` retrieves the job with (as the core's ``retrieveFlags``).
FOLLOW_FLAGS = JobFlags(
    include_product=True, include_support=True, include_updates=True, include_others=True
)


class FollowSocketServer(Protocol):
    """What the follow socket needs of the running server (``server.LocalServer`` fits)."""

    config: LocalConfig
    authority: TokenAuthority
    jobs: JobService
    catalog: Catalog
    follow_sockets: set[JobFollowSocket]  # the open sockets, closed by the server's stop()

    def track(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` in the background; the server's ``stop()`` waits for it."""


class _WebSocketUpgrade(PathMatches):
    """``path`` for GET requests that ask for a websocket (``POST`` stays ``jobs.create``)."""

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        if request.method != "GET":
            return None
        if request.headers.get("Upgrade", "").strip().lower() != "websocket":
            return None
        return super().match(request)


def follow_route(server: FollowSocketServer) -> Rule:
    """The route of the follow socket; put it before the API's routes."""
    path = JOBS_FOLLOW_PATH.rstrip("/") + "/?$"
    return Rule(_WebSocketUpgrade(path), JobFollowSocket, {"server": server})


def _message(
    stream_id: str,
    *,
    updates: list[Any] | None = None,
    log: list[dict[str, Any]] | None = None,
    new_status: Any = None,
    initial_job: Any = None,
) -> bytes:
    """A ``{"type": "message", "streamId", "payload": JobsFollowMessage}`` frame as Go writes it
    (built from plain values: log frames are the hot path)."""
    payload = {
        "updates": updates or [],
        "log": log or [],
        "newStatus": new_status,
        "initialJob": initial_job,
    }
    return orjson.dumps({"type": "message", "streamId": stream_id, "payload": payload})


def _log_frame(stream_id: str, rank: int, stream: str, text: str) -> bytes:
    entry = {"rank": rank, "stdout": None, "stderr": None, "channel": None, stream: text}
    return _message(stream_id, log=[entry])


class JobFollowSocket(UCloudHandshakeErrors):
    """One follower of one job (see the module docstring)."""

    server: FollowSocketServer

    def initialize(self, server: FollowSocketServer) -> None:
        self.server = server
        self._closed = False
        self._started = False
        self._timer: asyncio.TimerHandle | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._pending: deque[bytes] = deque()  # update frames not sent yet
        self._wake = asyncio.Event()
        self._in_flight: asyncio.Future[None] | None = None
        self._ended_at: float | None = None  # loop time the job was seen final

    def check_origin(self, origin: str) -> bool:
        # As UCloud's core: the bearer inside the first frame is the credential, so a
        # cross-origin page without one gets nothing.
        return True

    def open(self, *args: str) -> None:
        self.set_nodelay(True)  # a state change is one small frame: no Nagle + delayed ACK
        self.server.follow_sockets.add(self)
        timeout = self.server.config.session_init_timeout
        self._timer = asyncio.get_running_loop().call_later(timeout, self._refuse)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        if self._started or self._closed:
            return None  # only the first frame is read
        self._started = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if isinstance(message, bytes):
            self._refuse()
            return None
        try:
            request = JobsFollowRequest.model_validate_json(message)
        except (ValidationError, ValueError, RecursionError):
            self._refuse()
            return None
        job = self._authorised_job(request)
        if job is None:
            self._refuse()
            return None
        self.server.track(self._follow(job, request.stream_id))
        return None

    def _authorised_job(self, request: JobsFollowRequest) -> JobRecord | None:
        """The job, if the bearer is valid, its project is the user's and the job is theirs."""
        who = self.server.authority.verify_bearer(request.bearer or "")
        if who is None:
            return None
        project = (request.project or "").strip()
        if project and who.username not in self.server.config.projects.get(project, []):
            return None
        job = self.server.jobs.get_job(request.payload.id)
        if job is None or job.owner != who.username:
            return None
        return job

    # --- the stream -----------------------------------------------------------------------------

    async def _follow(self, job: JobRecord, stream_id: str) -> None:
        jobs = self.server.jobs
        # Subscribe and take the initial job in one step (nothing runs in between): every
        # update after the ones in initialJob is pushed, none twice.
        self._unsubscribe = jobs.on_update(
            job.id, lambda now, update, changed: self._on_update(stream_id, now, update, changed)
        )
        current = jobs.get_job(job.id) or job
        initial = jobs.to_job(current, FOLLOW_FLAGS, strip=False)
        if current.state.is_final:
            self._ended_at = self._end_time(initial.updates)
        support = self.server.catalog.resolved_support(current.specification.product.id)
        logs = (
            RankLogs(current.work_dir, current.replicas)
            if support is not None and support.supports_logs
            else None
        )
        try:
            await self._send(_message(stream_id, initial_job=to_wire(initial)))
            await self._stream(current, stream_id, logs)
        except WebSocketClosedError:
            pass  # the follower went away
        except Exception:
            log.exception("jobs.follow of job %s failed", job.id)
            self._close(1011)
        finally:
            if logs is not None:
                logs.close()
            self._cleanup()

    async def _stream(self, job: JobRecord, stream_id: str, logs: RankLogs | None) -> None:
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while not self._closed:
            while self._pending:
                await self._send(self._pending.popleft())
            chunks = await logs.next_chunks(READ_CHUNKS) if logs is not None else []
            if chunks:
                for chunk in chunks:
                    await self._send(_log_frame(stream_id, *chunk))
                quiet_since = loop.time()
                continue
            if self._ended_at is not None and await self._complete(job, quiet_since):
                for tail in logs.flush() if logs is not None else []:
                    await self._send(_log_frame(stream_id, *tail))
                while self._pending:
                    await self._send(self._pending.popleft())
                await self._drain()
                self._close(CLOSE_NORMAL)
                return
            # Files are looked at again in a moment; with nothing to watch, only an update wakes.
            watching = logs is not None or self._ended_at is not None
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS if watching else None)

    async def _complete(self, job: JobRecord, quiet_since: float) -> bool:
        """Whether the output of the ended job is complete (everything read so far)."""
        assert self._ended_at is not None
        now = asyncio.get_running_loop().time()
        if now - self._ended_at > self.server.config.terminate_grace + COMPLETE_WAIT_SECONDS:
            return True  # a supervisor that never recorded its end: stop waiting
        complete = await asyncio.to_thread(output_complete, job.work_dir)
        if complete is not None:
            return complete
        return now - max(quiet_since, self._ended_at) >= QUIET_SECONDS

    def _end_time(self, updates: list[JobUpdate]) -> float:
        """Loop time at which a job that is final already ended (from its last update)."""
        loop = asyncio.get_running_loop()
        last = max((u.timestamp for u in updates), default=0)
        ago = max(0.0, time.time() - last / 1000)
        return loop.time() - ago

    def _on_update(self, stream_id: str, job: JobRecord, update: JobUpdate, changed: bool) -> None:
        """An update was recorded: queue its frame (``newStatus`` when the state changed)."""
        if self._closed:
            return
        status = None
        if changed:
            status = to_wire(self.server.jobs.to_job(job, FOLLOW_FLAGS, strip=False).status)
        self._pending.append(_message(stream_id, updates=[to_wire(update)], new_status=status))
        if job.state.is_final and self._ended_at is None:
            self._ended_at = asyncio.get_running_loop().time()
        self._wake.set()

    # --- sending --------------------------------------------------------------------------------

    async def _send(self, frame: bytes) -> None:
        """Write ``frame`` once the frame before it is on the socket (at most one waits in
        tornado's buffer). ``WebSocketClosedError`` once the socket is closed."""
        await self._drain()
        if self._closed:
            raise WebSocketClosedError()
        sent = self.write_message(frame)
        if not all_on_socket(self):
            self._in_flight = sent

    async def _drain(self) -> None:
        waiting, self._in_flight = self._in_flight, None
        if waiting is not None:
            await waiting

    # --- closing --------------------------------------------------------------------------------

    def _refuse(self) -> None:
        """Close without a message (bad request, bearer, project or job; no first frame)."""
        self._close(CLOSE_REFUSED)

    def _close(self, code: int) -> None:
        if not self._closed:
            self._closed = True
            self.close(code)
            self._wake.set()
        self._cleanup()

    def on_close(self) -> None:
        self._closed = True
        self._wake.set()
        self._cleanup()

    def _cleanup(self) -> None:
        self.server.follow_sockets.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def shutdown(self) -> None:
        """Server stop: close the socket (the follower reconnects to the next server)."""
        self._close(CLOSE_GOING_AWAY)
