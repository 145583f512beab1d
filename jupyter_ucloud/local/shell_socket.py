"""The provider's shell websocket, ``/ucloud/<providerId>/websocket`` (reference section 4).

Client frames are ``ShellRequestEnvelope`` text frames; the first accepted payload must be
``initialize`` with a session identifier from ``jobs.openInteractiveSession``. Answers:
``initialize`` once on the initialize ``streamId``; all output as ``data`` on that same
``streamId``; an ``ack`` for every later input/resize/initialize on that frame's ``streamId``
(a keystroke's right after its echo: ``shell_acks``).
Before initialize every other frame is ignored; a non-JSON frame closes the socket, binary
frames are ignored; no initialize within ``session_init_timeout`` (30 s) closes it; so does an
unknown, expired or already used session. The socket closes when the shell exits or the job ends.

Close codes: 1000 with reason "shell exited" when the shell process ends (clients tell this from a
lost provider by it), 1000 "job <state>" when the job ends, 1001 when the server stops, 1008 for
protocol and session problems.

A job that is not running yet (``IN_QUEUE``, ``SUSPENDED``): the socket answers ``initialize`` at
once and prints ``Waiting for job <id> to start...`` with the job's latest status (e.g. the Slurm
queue reason) as terminal output, then opens the shell when the job runs - as UCloud's own
container integration prints "A terminal is being prepared for you..." while a pod starts. Input
typed meanwhile is kept (up to 64 KiB) and resizes apply. It gives up after ``QUEUE_WAIT_LIMIT``
(5 minutes, as UCloud) or when the job ends, saying so. Clients therefore never time out on a
queued job, and a user sees why nothing happens yet.

A shell that cannot be opened (``Backend.open_shell`` raises ``BackendError``, e.g. Slurm's "the
job is still waiting in the Slurm queue (Resources)", or an ``OSError``): the reason is sent as
one ``data`` line (what UCloud's web client and a terminal show) and the socket closes with it as
the close reason (at most 120 bytes; code 1000 for refusals, 1011 for server-side errors).

Flow control: the PTY is read only after the previous ``data`` frame was written to the socket,
and each read coalesces what is available (up to 64 KiB) into one frame. Input the terminal does
not take yet holds the reading of further frames (the client is pushed back); meanwhile a ping
goes out every ``INPUT_STALL_PROBE`` seconds, so that a client that left is noticed (a write to
it fails) and its shell ends, even when the shell neither reads nor prints.

Interrupts: input with a ``^C`` (or ``^\\``, ``^Z``) that the terminal answers by discarding its
output is acknowledged where the terminal did so, in the output stream
(``PtyProcess.on_interrupt_taken``; after ``INTERRUPT_ACK_WAIT`` seconds at the latest):
output before the ack was written before the interrupt, output after it came after, apart from
a few KiB the terminal still held (``pty_packets``). Clients skip stale output up to the ack
(the Jupyter bridge does). Frames that follow are read only after the ack.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import contextlib
import json
import logging
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from pydantic import ValidationError
from tornado.websocket import WebSocketClosedError

from ..protocol import (
    JobState,
    ShellData,
    ShellInitialize,
    ShellInitialized,
    ShellInput,
    ShellRequestEnvelope,
    ShellResize,
    ShellResponseEnvelope,
)
from ..tornado_ws import all_on_socket
from .backends.base import BackendError
from .handshake import UCloudHandshakeErrors
from .pty import PtyProcess
from .shell_acks import ShellAcks, ack_frame

if TYPE_CHECKING:
    from .auth import TokenAuthority
    from .backends.base import Backend
    from .config import LocalConfig
    from .jobs import JobService
    from .sessions import ShellSession, ShellSessions
    from .store import JobRecord

__all__ = ["ProviderShellSocket", "ShellSocketServer"]

log = logging.getLogger("jupyter_ucloud.local")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL_ERROR = 1011
QUEUE_WAIT_STEP = 0.1
QUEUE_WAIT_LIMIT = 300.0
TYPEAHEAD_LIMIT = 65536
CLOSE_REASON_BYTES = 120
EXIT_SETTLE = 0.1  # seconds between a shell's hang-up and saying why it ended
EXIT_REFRESH_LIMIT = 3.0  # seconds to wait for the backend to say whether the job ended
INPUT_STALL_PROBE = 2.0  # seconds between pings while input waits for the terminal
INTERRUPT_ACK_WAIT = 1.0  # seconds an interrupt's ack waits for the terminal to act on it


def close_reason(text: str) -> str:
    """``text`` cut to fit a websocket close reason (at most 120 UTF-8 bytes, whole characters)."""
    return text.encode("utf-8")[:CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def _frame(payload: Any, stream_id: str) -> str:
    envelope = ShellResponseEnvelope(payload=payload, stream_id=stream_id)
    return json.dumps(envelope.to_wire(), ensure_ascii=False, separators=(",", ":"))


# The hot paths (every output chunk, every keystroke's ack) build the same JSON as ``_frame``
# from plain dicts, without a model round trip.


def _data_frame(text: str, stream_id: str) -> bytes:
    envelope = {"type": "message", "payload": {"type": "data", "data": text}, "streamId": stream_id}
    return orjson.dumps(envelope)  # the same bytes as _frame's, many times faster


_PLAIN_REQUEST_KEYS = frozenset(("call", "streamId", "payload", "project"))


def _plain_input(frame: dict[str, Any]) -> tuple[str, str] | None:
    """``(data, streamId)`` of an ``input`` request in exactly the usual shape (what the model
    would accept), else ``None`` (then the model decides)."""
    payload = frame["payload"]
    stream_id = frame.get("streamId")
    data = payload.get("data")
    if (
        payload.get("type") == "input"
        and len(payload) == 2
        and type(data) is str
        and type(stream_id) is str
        and type(frame.get("call")) is str
        and frame.keys() <= _PLAIN_REQUEST_KEYS
        and (frame.get("project") is None or type(frame.get("project")) is str)
    ):
        return data, stream_id
    return None


class ShellSocketServer(Protocol):
    """What the provider shell socket needs of the running server (``server.LocalServer``
    fits)."""

    config: LocalConfig
    authority: TokenAuthority
    sessions: ShellSessions
    jobs: JobService
    backend: Backend
    shell_sockets: set[ProviderShellSocket]  # the open sockets, closed by the server's stop()

    def track(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` in the background; the server's ``stop()`` waits for it."""


class ProviderShellSocket(UCloudHandshakeErrors):
    server: ShellSocketServer

    def initialize(self, server: ShellSocketServer) -> None:
        self.server = server
        self._shell: PtyProcess | None = None
        self._session: ShellSession | None = None
        self._initializing = False
        self._init_timer: asyncio.TimerHandle | None = None
        self._unsubscribe: Any = None
        self._username_hint: str | None = None
        self._closed = False
        self._acks = ShellAcks(self)
        self._answered = False  # the initialize answer was sent
        self._deferred_acks: list[str] = []
        self._starter: asyncio.Task[None] | None = None
        self._typeahead: list[bytes] = []
        self._typeahead_bytes = 0
        self._size = (80, 24)  # (cols, rows) asked for while waiting

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

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """Input in the usual shape is written and acknowledged right here (the keystroke
        path: no task, no model); anything else is handled in a task that tornado awaits
        before it reads the next frame."""
        if isinstance(message, bytes) or self._closed:
            return None  # non-text frames are ignored
        try:
            frame = json.loads(message)
        except (ValueError, RecursionError):
            self._close(CLOSE_POLICY, "frame is not JSON")
            return None
        if not isinstance(frame, dict) or not isinstance(frame.get("payload"), dict):
            self._close(CLOSE_POLICY, "frame is not a request envelope")
            return None
        shell = self._shell
        if shell is not None:
            plain = _plain_input(frame)
            if plain is not None:
                shell.write(plain[0].encode("utf-8", "replace"))
                if not shell.drained:
                    return self._ack_when_taken(shell, plain[1])
                if shell.interrupting:
                    return self._ack_at_interrupt(shell, plain[1])
                return self._acks.soon(plain[1], plain[0])  # with its echo (shell_acks)
        return self._on_request(frame)

    async def _ack_when_taken(self, shell: PtyProcess, stream_id: str) -> None:
        """Acknowledge input once the terminal took all of it (and acted on an interrupt in
        it)."""
        await self._drain(shell)
        if shell.interrupting and not self._closed:
            await self._ack_at_interrupt(shell, stream_id)
        else:
            await self._send(ack_frame(stream_id))

    def _ack_at_interrupt(self, shell: PtyProcess, stream_id: str) -> asyncio.Future[None]:
        """Acknowledge right where the terminal acts on the interrupt just written, between
        the output before and after it (from the PTY's reader), or after
        ``INTERRUPT_ACK_WAIT`` seconds (the PTY is not read while this socket's client does not
        read). Done when the ack is out: tornado reads the next frame only then."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def ack() -> None:
            if not acked.done():
                timer.cancel()
                self._acks.now(stream_id)
                acked.set_result(None)

        timer = loop.call_later(INTERRUPT_ACK_WAIT, ack)
        shell.on_interrupt_taken(ack)
        return acked

    async def _drain(self, shell: PtyProcess) -> None:
        """Wait until the terminal took every byte written to it. Tornado reads no frame
        meanwhile, so it would not see the client go: a ping every ``INPUT_STALL_PROBE``
        seconds makes a write to a client that left fail, which closes the socket and ends the
        shell (a shell that neither reads its input nor prints was otherwise left running)."""
        while not shell.drained and not self._closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(shell.drain(), INPUT_STALL_PROBE)
                return
            try:
                self.ping()
            except WebSocketClosedError:
                return

    async def _on_request(self, frame: dict[str, Any]) -> None:
        try:
            envelope = ShellRequestEnvelope.model_validate(frame)
        except ValidationError:
            if frame["payload"].get("type") == "initialize" and self._shell is None:
                self._close(CLOSE_POLICY, "malformed initialize")
            return  # anything else that does not parse is ignored, as unknown types are
        payload = envelope.payload
        if self._shell is None:
            if self._initializing:
                # The shell is being opened (or the job is queued): keep what was typed, follow
                # resizes; acknowledge once the initialize answer is out.
                self._while_starting(payload)
                if self._answered:
                    await self._send(ack_frame(envelope.stream_id))
                else:
                    self._deferred_acks.append(envelope.stream_id)
            elif isinstance(payload, ShellInitialize):
                # Opened in a task: tornado delivers the next frame only once on_message returns.
                self._initializing = True
                self._starter = asyncio.create_task(
                    self._start_safely(payload, envelope.stream_id, envelope.bearer)
                )
            return  # before initialize everything else is ignored
        shell = self._shell
        if isinstance(payload, ShellInput):
            shell.write(payload.data.encode("utf-8", "replace"))
            await self._ack_when_taken(shell, envelope.stream_id)
            return
        if isinstance(payload, (ShellResize, ShellInitialize)):
            shell.resize(payload.cols, payload.rows)
        await self._send(ack_frame(envelope.stream_id))

    async def _start_safely(
        self, request: ShellInitialize, stream_id: str, bearer: str | None
    ) -> None:
        try:
            await self._start(request, stream_id, bearer)
        except Exception:
            log.exception("shell websocket: opening the shell failed")
            self._close(CLOSE_INTERNAL_ERROR, "internal error")

    async def _answer_initialize(self, stream_id: str) -> None:
        await self._send(_frame(ShellInitialized(), stream_id))
        self._answered = True
        acks, self._deferred_acks = self._deferred_acks, []
        for ack_stream in acks:
            await self._send(ack_frame(ack_stream))

    async def _start(self, request: ShellInitialize, stream_id: str, bearer: str | None) -> None:
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
        self._size = (request.cols, request.rows)
        job = self.server.jobs.get_job(session.job_id)
        if job is None or job.state.is_final:
            state = job.state.value if job is not None else "gone"
            await self._refuse(f"The job has ended ({state}); no shell can be opened.", stream_id)
            return
        if job.state is not JobState.RUNNING:
            if self._init_timer is not None:
                self._init_timer.cancel()
            await self._answer_initialize(stream_id)
            job = await self._wait_until_running(job, stream_id)
            if job is None:
                return  # said why and closed
        cols, rows = self._size
        try:
            shell = await self.server.backend.open_shell(job, session.rank, cols, rows)
        except BackendError as err:
            log.info("shell websocket: cannot open a shell for job %s: %s", job.id, err.why)
            code = CLOSE_INTERNAL_ERROR if err.status >= 500 else CLOSE_NORMAL
            await self._refuse(f"Cannot open a shell: {err.why}", stream_id, code)
            return
        except OSError as err:
            log.warning("shell websocket: cannot open a shell for job %s: %s", job.id, err)
            why = f"Cannot open a shell: {err.strerror or err}"
            await self._refuse(why, stream_id, CLOSE_INTERNAL_ERROR)
            return
        if self._closed:
            await shell.terminate()
            return
        self._shell = shell
        if self._typeahead:  # before any await: input that arrives from now on goes after it
            shell.write(b"".join(self._typeahead))
            self._typeahead.clear()
        if self._size != (cols, rows):  # resized while the shell was starting
            shell.resize(*self._size)
        if self._init_timer is not None:
            self._init_timer.cancel()
        self._unsubscribe = self.server.jobs.on_job_end(job.id, self._job_ended)
        current = self.server.jobs.get_job(job.id)
        if current is None or current.state.is_final:
            self._close(CLOSE_NORMAL, "job ended")
            return
        if not self._answered:
            await self._answer_initialize(stream_id)
        self._stream_output(shell, stream_id)
        log.info("shell opened on job %s rank %d", job.id, session.rank)

    def _while_starting(self, payload: Any) -> None:
        """Input and resizes that arrive while the shell starts or the job is still queued."""
        if isinstance(payload, ShellInput):
            data = payload.data.encode("utf-8", "replace")
            if self._typeahead_bytes + len(data) <= TYPEAHEAD_LIMIT:
                self._typeahead.append(data)
                self._typeahead_bytes += len(data)
        elif isinstance(payload, (ShellResize, ShellInitialize)):
            self._size = (payload.cols, payload.rows)

    async def _wait_until_running(self, job: JobRecord, stream_id: str) -> JobRecord | None:
        """Say that the shell waits for ``job``, and wait until it runs (``None``: it will not;
        the client was told why and the socket is closed)."""
        status = self._latest_status(job.id)
        detail = f" ({status})" if status else ""
        line = f"Waiting for job {job.id} to start: it is {job.state.value}{detail}...\r\n"
        await self._send(_frame(ShellData(data=line), stream_id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + QUEUE_WAIT_LIMIT
        while not self._closed:
            current = self.server.jobs.get_job(job.id)
            if current is None or current.state.is_final:
                state = current.state.value if current is not None else "gone"
                await self._refuse(f"The job ended before it started ({state}).", stream_id)
                return None
            if current.state is JobState.RUNNING:
                return current
            if loop.time() > deadline:
                minutes = QUEUE_WAIT_LIMIT / 60
                await self._refuse(
                    f"Job {job.id} has not started within {minutes:g} minutes; "
                    "open a shell again once it is running.",
                    stream_id,
                )
                return None
            await asyncio.sleep(QUEUE_WAIT_STEP)
        return None

    def _latest_status(self, job_id: str) -> str:
        updates = self.server.jobs.store.updates(job_id)
        for update in reversed(updates):
            if update.status:
                return update.status
        return ""

    async def _refuse(self, why: str, stream_id: str, code: int = CLOSE_NORMAL) -> None:
        """Tell the client why there is no shell (a line of output) and close with the reason."""
        await self._send(_frame(ShellData(data=f"\r\n{why}\r\n"), stream_id))
        self._close(code, close_reason(why))

    def _stream_output(self, shell: PtyProcess, stream_id: str) -> None:
        """Terminal output -> ``data`` frames, from the PTY's reader callback. A frame the
        socket takes at once is done with; of those it does not, at most two are on their way:
        while the older one is not on the socket, the PTY is not read (its buffer fills and the
        program writing to it blocks)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        in_flight = 0

        def written(sent: asyncio.Future[None]) -> None:
            nonlocal in_flight
            in_flight -= 1
            if not sent.cancelled():
                sent.exception()  # a closed socket: on_close cleans up

        def on_output(data: bytes) -> Awaitable[object] | None:
            nonlocal in_flight
            text = decoder.decode(data, final=not data)
            waiting = None
            if text and not self._closed:
                try:  # keystrokes' acks go with their echo (shell_acks)
                    sent = self._acks.with_output(_data_frame(text, stream_id))
                except WebSocketClosedError:
                    return None
                if not all_on_socket(self):
                    in_flight += 1
                    sent.add_done_callback(written)
                    if in_flight > 1:
                        waiting = sent
            if not data:
                self._shell_exited()
            return waiting

        shell.stream_output(on_output)

    def _shell_exited(self) -> None:
        """Close for a shell that ended - said as "job <state>" when it ended because its job
        did. The process backend's supervisor announces a job's end before it ends the job's
        processes, but that news may be read a moment after the terminal's hang-up; Slurm ends
        a step (and its shell) after the job was cancelled, and is asked at once."""
        session = self._session
        if session is not None:
            self.server.track(self._close_after_exit(session.job_id))
        else:
            self._close(CLOSE_NORMAL, "shell exited")

    async def _close_after_exit(self, job_id: str) -> None:
        await asyncio.sleep(EXIT_SETTLE)
        job = self.server.jobs.get_job(job_id)
        if job is not None and not job.state.is_final:
            with contextlib.suppress(asyncio.TimeoutError, BackendError, OSError):
                await asyncio.wait_for(self.server.backend.refresh(job), EXIT_REFRESH_LIMIT)
            job = self.server.jobs.get_job(job_id)
        if job is not None and job.state.is_final:
            self._close(CLOSE_NORMAL, f"job {job.state.value.lower()}")
        else:
            self._close(CLOSE_NORMAL, "shell exited")

    async def _send(self, text: str | bytes) -> bool:
        """Write a frame and wait until it is on the socket; ``False`` once the socket closed."""
        if self._closed:
            return False
        self._acks.flush()  # acks stay in order
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
        self._acks.drop()
        if self._init_timer is not None:
            self._init_timer.cancel()
            self._init_timer = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        shell, self._shell = self._shell, None
        if shell is not None:
            shell.stop_output()
            self.server.track(shell.terminate())

    async def shutdown(self) -> None:
        """Server stop: close the socket and end the shell."""
        shell = self._shell
        self._close(CLOSE_GOING_AWAY, "server stopping")
        if shell is not None:
            with contextlib.suppress(Exception):
                await shell.terminate()
