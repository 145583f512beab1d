"""The provider's shell websocket, ``/ucloud/<providerId>/websocket`` (reference section 4).

Client frames are ``ShellRequestEnvelope`` text frames; the first accepted payload must be
``initialize`` with a session identifier from ``jobs.openInteractiveSession``. Answers:
``initialize`` once on the initialize ``streamId``; all output as ``data`` on that same
``streamId``; an ``ack`` for every later input/resize/initialize on that frame's ``streamId``.
Before initialize every other frame is ignored; a non-JSON frame closes the socket, binary
frames are ignored; no initialize within ``session_init_timeout`` (30 s) closes it; so does an
unknown, expired or already used session. The socket closes when the shell exits or the job ends.

Flow control: the PTY is read only after the previous ``data`` frame was written to the socket,
and each read coalesces what is available (up to 64 KiB) into one frame.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..protocol import (
    JobState,
    ShellAck,
    ShellData,
    ShellInitialize,
    ShellInitialized,
    ShellInput,
    ShellRequestEnvelope,
    ShellResize,
    ShellResponseEnvelope,
)
from .backends.base import BackendError
from .pty import READ_CHUNK, PtyProcess

if TYPE_CHECKING:
    from .server import LocalServer
    from .sessions import ShellSession
    from .store import JobRecord

__all__ = ["ProviderShellSocket"]

log = logging.getLogger("jupyter_ucloud.local")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
QUEUE_WAIT_STEP = 0.1


def _frame(payload: Any, stream_id: str) -> str:
    envelope = ShellResponseEnvelope(payload=payload, stream_id=stream_id)
    return json.dumps(envelope.to_wire(), ensure_ascii=False, separators=(",", ":"))


class ProviderShellSocket(WebSocketHandler):
    server: LocalServer

    def initialize(self, server: LocalServer) -> None:
        self.server = server
        self._shell: PtyProcess | None = None
        self._session: ShellSession | None = None
        self._initializing = False
        self._init_timer: asyncio.TimerHandle | None = None
        self._pump: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._username_hint: str | None = None
        self._closed = False

    def check_origin(self, origin: str) -> bool:
        # As UCloud's IM: the session identifier inside the first frame is the credential,
        # so a cross-origin page without it gets nothing.
        return True

    def open(self, *args: str) -> None:
        self.set_nodelay(True)  # keystroke echoes must not wait for Nagle + delayed ACKs
        self.server.shell_sockets.add(self)
        hint = self.get_query_argument("usernameHint", default=None)
        if hint:
            try:
                self._username_hint = base64.b64decode(hint, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                self._username_hint = "\x00invalid"
        timeout = self.server.config.session_init_timeout
        self._init_timer = asyncio.get_running_loop().call_later(timeout, self._init_timed_out)

    def _init_timed_out(self) -> None:
        if self._shell is None:
            self._close(CLOSE_POLICY, "initialize timeout")

    async def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes) or self._closed:
            return  # non-text frames are ignored
        try:
            frame = json.loads(message)
        except (ValueError, RecursionError):
            self._close(CLOSE_POLICY, "frame is not JSON")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("payload"), dict):
            self._close(CLOSE_POLICY, "frame is not a request envelope")
            return
        try:
            envelope = ShellRequestEnvelope.model_validate(frame)
        except ValidationError:
            if frame["payload"].get("type") == "initialize" and self._shell is None:
                self._close(CLOSE_POLICY, "malformed initialize")
            return  # anything else that does not parse is ignored, as unknown types are
        payload = envelope.payload
        if self._shell is None:
            if isinstance(payload, ShellInitialize) and not self._initializing:
                await self._start(payload, envelope.stream_id, envelope.bearer)
            return  # before initialize everything else is ignored
        shell = self._shell
        if isinstance(payload, ShellInput):
            shell.write(payload.data.encode("utf-8", "replace"))
            await shell.drain()
        elif isinstance(payload, (ShellResize, ShellInitialize)):
            shell.resize(payload.cols, payload.rows)
        await self._send(_frame(ShellAck(), envelope.stream_id))

    async def _start(self, request: ShellInitialize, stream_id: str, bearer: str | None) -> None:
        self._initializing = True
        session = self.server.sessions.claim(request.session_identifier)
        if session is None:
            log.info("shell websocket: bad session")
            self._close(CLOSE_POLICY, "bad session")
            return
        self._session = session
        if self._username_hint is not None and self._username_hint != session.username:
            log.info("shell websocket: session of another user")
            self._close(CLOSE_POLICY, "bad session")
            return
        if bearer:
            who = self.server.authority.verify_bearer(bearer)
            if who is not None and who.username != session.username:
                self._close(CLOSE_POLICY, "bad session")
                return
        job = await self._running_job(session.job_id)
        if job is None or self._closed:
            self._close(CLOSE_NORMAL, "job is not running")
            return
        try:
            shell = await self.server.backend.open_shell(
                job, session.rank, request.cols, request.rows
            )
        except BackendError as err:
            log.info("shell websocket: cannot open a shell for job %s: %s", job.id, err.why)
            self._close(CLOSE_NORMAL, "cannot open shell")
            return
        if self._closed:
            await shell.terminate()
            return
        self._shell = shell
        if self._init_timer is not None:
            self._init_timer.cancel()
        self._unsubscribe = self.server.jobs.on_job_end(job.id, self._job_ended)
        current = self.server.jobs.get_job(job.id)
        if current is None or current.state.is_final:
            self._close(CLOSE_NORMAL, "job ended")
            return
        await self._send(_frame(ShellInitialized(), stream_id))
        self._pump = asyncio.create_task(self._pump_output(shell, stream_id))
        log.info("shell opened on job %s rank %d", job.id, session.rank)

    async def _running_job(self, job_id: str) -> JobRecord | None:
        """The job once RUNNING (waiting while it is queued, within the init timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.server.config.session_init_timeout
        while not self._closed:
            job = self.server.jobs.get_job(job_id)
            if job is None or job.state.is_final:
                return None
            if job.state is JobState.RUNNING:
                return job
            if loop.time() > deadline:
                return None
            await asyncio.sleep(QUEUE_WAIT_STEP)
        return None

    async def _pump_output(self, shell: PtyProcess, stream_id: str) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                data = await shell.read(READ_CHUNK)
                text = decoder.decode(data, final=not data)
                if text and not await self._send(_frame(ShellData(data=text), stream_id)):
                    return
                if not data:
                    break
        except asyncio.CancelledError:
            return
        self._close(CLOSE_NORMAL, "shell exited")

    async def _send(self, text: str) -> bool:
        """Write a frame and wait until it is on the socket; ``False`` once the socket closed."""
        if self._closed:
            return False
        try:
            await self.write_message(text)
        except WebSocketClosedError:
            return False
        return True

    def _job_ended(self, job: JobRecord) -> None:
        self._close(CLOSE_NORMAL, f"job {job.state.value.lower()}")

    def _close(self, code: int, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self.close(code, reason)
        self._cleanup()

    def on_close(self) -> None:
        self._closed = True
        self._cleanup()

    def _cleanup(self) -> None:
        self.server.shell_sockets.discard(self)
        if self._init_timer is not None:
            self._init_timer.cancel()
            self._init_timer = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._pump is not None and self._pump is not asyncio.current_task():
            self._pump.cancel()
        self._pump = None
        shell, self._shell = self._shell, None
        if shell is not None:
            self.server.track(shell.terminate())

    async def shutdown(self) -> None:
        """Server stop: close the socket and end the shell."""
        shell = self._shell
        self._close(CLOSE_GOING_AWAY, "server stopping")
        if shell is not None:
            with contextlib.suppress(Exception):
                await shell.terminate()
