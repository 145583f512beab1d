"""``AsyncShell``: the same shell API as ``Shell``, awaited, over aiohttp's websocket client
(``aio_websocket``; for the Jupyter server and other asyncio code). Protocol decisions live in
``shell_protocol``."""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType

import aiohttp

from .aio_websocket import WebSocket, WebSocketClosed, connect_websocket
from .errors import (
    ShellClosedError,
    UCloudConnectionError,
    UCloudError,
    UCloudTimeoutError,
    redact,
)
from .liveness import Liveness
from .shell import MAX_FRAME, describe_ws_url
from .shell_protocol import (
    Acked,
    CommandResult,
    CommandRun,
    Event,
    Output,
    Ready,
    ShellCodec,
)
from .shell_state import ShellState

__all__ = ["AsyncShell", "OutputHandler"]

log = logging.getLogger(__name__)

#: Takes output as it arrives; may return an awaitable, and then the next frame is not read
#: from the connection until it is done (that is how a consumer pushes back).
OutputHandler = Callable[[str], "Awaitable[object] | None"]


class AsyncShell(ShellState):
    """An open shell: ``await send/resize/read/run``, ``async for chunk in shell``,
    ``async with``; or, for a relay such as the Jupyter server's terminals,
    :meth:`stream_output` and :meth:`send_nowait`."""

    def __init__(
        self,
        connection: WebSocket,
        codec: ShellCodec,
        *,
        job_id: str,
        rank: int,
        cols: int,
        rows: int,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._ws = connection
        self._codec = codec
        super().__init__(job_id=job_id, rank=rank, cols=cols, rows=rows)
        self._on_close = on_close
        # A read that timed out stays pending and is picked up by the next read: no frame is lost.
        self._reading: asyncio.Future[str | bytes | None] | None = None
        self._unread_held = False  # a frame waits for the caller: the watch is held
        #: Whether the other end answers (``None``: not watched; see ``liveness``).
        self.liveness: Liveness | None = None
        self._ping_lost = False
        #: Whether the other end has acknowledged any input (UCloud providers do).
        self.acks_seen = False
        self._watched: int | None = None
        self._watched_at: int | None = None
        self._on_watched_ack: Callable[[], None] | None = None
        self._on_output: OutputHandler | None = None
        self._on_closed: Callable[[], None] | None = None
        self._pump: asyncio.Task[None] | None = None

    def watch_next_input(self, on_acked: Callable[[], None] | None = None) -> int | None:
        """Remember where in the output the provider acknowledges the *next* ``send``, and
        call ``on_acked`` right when it does (from the read loop, before any later frame).

        Call it right before ``send``. Returns the request's stream id, or ``None`` when this
        connection has no acks (terminado). See :meth:`ack_position`."""
        stream = getattr(self._codec, "next_stream", None)
        self._watched, self._watched_at = stream, None
        self._on_watched_ack = on_acked if stream is not None else None
        return stream

    def ack_position(self) -> int | None:
        """``output_chars`` at the moment the watched input (or a later request) was
        acknowledged; ``None`` while it has not been (or nothing is watched)."""
        return self._watched_at

    def _events(self, frame: str | bytes) -> list[Event]:
        liveness = self.liveness
        if liveness is not None:
            liveness.last_heard = time.monotonic()
            if not liveness.responsive:
                liveness.heard()
        events = self._codec.events(frame)
        if events and type(events[0]) is Acked:
            self.acks_seen = True
            stream = events[0].stream
            if liveness is not None:
                liveness.acked(stream)
            watched = self._watched
            if watched is not None and self._watched_at is None and stream >= watched:
                self._watched_at = self.output_chars
                on_acked, self._on_watched_ack = self._on_watched_ack, None
                if on_acked is not None:
                    on_acked()
        return events

    def _keep_alive(self, timeout: float) -> None:
        """Watch the peer (``Liveness``): probe it with a ping when it is silent, tell when it
        stops answering, and drop the connection when a ping goes unanswered for ``timeout``
        s. (Not aiohttp's own heartbeat: it knows nothing of acks and of a consumer that
        pushes back.)"""
        liveness = Liveness(ping=self._ping, drop=self._drop_unanswered, drop_after=timeout)
        self._ws.on_pong = liveness.pong
        self.liveness = liveness
        liveness.start()

    def _ping(self) -> bool:
        if self._reading is None and self._on_output is None and not self.closed:
            # aiohttp takes a pong only inside a read: keep one under way while the caller
            # does not read (the frame it may get waits for the caller's next read).
            self._start_read()
        return self._ws.ping() and not self.closed

    def _start_read(self) -> asyncio.Future[str | bytes | None]:
        reading = self._reading = asyncio.ensure_future(self._ws.read())
        if self.liveness is not None:
            reading.add_done_callback(self._read_done)
        return reading

    def _read_done(self, reading: asyncio.Future[str | bytes | None]) -> None:
        """A frame came and waits for the caller's next read: until then the connection is
        not read, so a pong behind it cannot be heard; the watch holds (as when a consumer of
        ``stream_output`` pushes back) instead of taking the silence for a lost peer."""
        if reading.cancelled() or reading is not self._reading:
            return
        if self.liveness is not None and not self._unread_held:
            self._unread_held = True
            self.liveness.hold()

    def _took_read(self) -> None:
        self._reading = None
        if self._unread_held and self.liveness is not None:
            self._unread_held = False
            self.liveness.release()

    def _drop_unanswered(self) -> None:
        if self.closed or self.liveness is None:
            return
        self._ping_lost = True
        timeout = self.liveness.drop_after
        self._mark_closed("no answer to pings", f"no pong within {timeout:g} s")
        # A peer that does not answer pings will not answer a close handshake either.
        self._ws.abort()

    @property
    def undelivered_chars(self) -> int:
        """Characters of input the provider has not acknowledged (0 without acks)."""
        return self.liveness.unacked_chars if self.liveness is not None else 0

    @classmethod
    async def connect(
        cls,
        url: str,
        codec: ShellCodec,
        *,
        job_id: str,
        rank: int,
        cols: int = 80,
        rows: int = 24,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        secrets: list[str] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
    ) -> AsyncShell:
        """Connect and initialize.

        ``ping_interval`` (seconds; ``None``/0: not watched) turns on ``liveness``: a ping when
        the peer has been silent for 2 s, ``liveness.responsive`` false once a ping or an input
        has gone unanswered for 4 s, and a peer that has not answered a ping within
        ``ping_timeout`` (default: ``ping_interval``) taken as gone: the connection is dropped
        at once and reads end with ``ShellClosedError`` (``close_reason`` "no answer to pings",
        ``close_code`` ``None``).
        """
        where = describe_ws_url(url)
        try:
            ws = await connect_websocket(
                url, headers=headers or {}, timeout=timeout, max_size=MAX_FRAME
            )
        except asyncio.TimeoutError:  # before OSError: on 3.11 it is one
            raise UCloudTimeoutError(
                f"no websocket handshake from {where} within {timeout:g} s",
                job_id=job_id,
                rank=rank,
            ) from None
        except (OSError, aiohttp.ClientError, ValueError) as err:
            detail = redact(_describe_error(err), [*(secrets or []), url])
            raise UCloudConnectionError(
                f"cannot open {where}: {detail}", job_id=job_id, rank=rank
            ) from None
        # Keystroke echoes must not wait for Nagle + delayed ACKs: ``WebSocket`` sets
        # TCP_NODELAY.
        shell = cls(ws, codec, job_id=job_id, rank=rank, cols=cols, rows=rows, on_close=on_close)
        if ping_interval:
            shell._keep_alive(ping_timeout or ping_interval)
        try:
            await shell._handshake(timeout)
        except BaseException:
            await shell.close()
            raise
        return shell

    async def _handshake(self, timeout: float) -> None:
        for opening in self._codec.opening_frames(self.cols, self.rows):
            await self._send_frame(opening)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UCloudTimeoutError(
                    f"the shell was not ready in {timeout:g} s", job_id=self.job_id, rank=self.rank
                )
            frame = await self._recv(remaining)
            if frame is not None:
                for event in self._events(frame):
                    if isinstance(event, Ready):
                        for extra in self._codec.ready_frames(self.cols, self.rows):
                            await self._send_frame(extra)
                        return
                    self._apply(event)
            if self.closed:
                # The close reason is the provider's word for why (e.g. the job is queued).
                why = self.close_message or self.close_reason or "closed"
                raise ShellClosedError(
                    f"the shell closed before it was ready: {why}",
                    job_id=self.job_id,
                    rank=self.rank,
                )

    async def _send_frame(self, frame: str) -> None:
        if self.closed:
            raise self._closed_error("cannot send")
        try:
            await self._ws.write(frame)
        except WebSocketClosed:
            self._mark_closed("closed", "")
            raise self._closed_error("cannot send") from None

    async def _recv(self, timeout: float | None) -> str | bytes | None:
        if self.closed:
            return None
        if self._reading is None:
            # (stays under way after a timeout, ``read`` ends with one: pongs are taken by it
            # also while nobody reads)
            self._start_read()
        reading = self._reading
        assert reading is not None
        if reading.done():
            pass
        elif timeout is None:  # a plain wait (``async for``): no shield, no timer
            try:
                await reading
            except asyncio.CancelledError:
                if reading.cancelled():
                    self._took_read()  # the next read asks the connection again
                raise
        elif timeout <= 0:
            return None
        else:
            try:
                await asyncio.wait_for(asyncio.shield(reading), timeout)
            except (asyncio.TimeoutError, TimeoutError):
                return None
        frame = reading.result()
        self._took_read()
        if frame is None:
            self._mark_ended()
        return frame

    def _mark_ended(self) -> None:
        code = self._ws.close_code
        self._mark_closed(
            f"code {code}" if code is not None else "connection lost", self._ws.close_reason
        )

    @property
    def close_code(self) -> int | None:
        """The websocket close code, once closed by the other end (``None``: no close frame,
        or the peer stopped answering pings)."""
        return None if self._ping_lost else self._ws.close_code

    async def send(self, text: str) -> None:
        self._sending_input(text)
        await self._send_frame(self._codec.input_frame(text))

    def _sending_input(self, text: str) -> None:
        """Remember input the provider should acknowledge (providers with acks only)."""
        liveness = self.liveness
        if liveness is not None:
            stream = getattr(self._codec, "next_stream", None)
            if stream is not None:
                liveness.sent_input(stream, len(text))

    def send_nowait(self, text: str) -> asyncio.Future[None]:
        """Start sending ``text`` without waiting: the frame is on its way (in order with every
        other send) when this returns. The returned future says when the transport took it,
        or why not; await it, or at least look at it, before sending much more.

        For a keystroke on a hot path: one frame, no task switch. Large input goes through
        :meth:`send`, which waits for the connection to take each frame."""
        if self.closed:
            raise self._closed_error("cannot send")
        self._sending_input(text)
        try:
            return self._ws.write(self._codec.input_frame(text))
        except WebSocketClosed:
            self._mark_closed("closed", "")
            raise self._closed_error("cannot send") from None

    def stream_output(self, on_output: OutputHandler, on_closed: Callable[[], None]) -> None:
        """Hand every piece of output to ``on_output`` as its frame arrives, instead of
        :meth:`read` (which then refuses). Output already received comes first.

        ``on_output`` runs in the connection's read loop: when it returns an awaitable, no
        further frame is read until that is done, so a slow consumer slows the provider
        (its socket, then its terminal) and nothing queues up here. ``on_closed`` is called
        once when the other end closes or the connection is lost (not after :meth:`close`);
        ``close_code`` / ``close_reason`` then say how. Acknowledgements keep being tracked
        (:meth:`ack_position`)."""
        if self._on_output is not None:
            raise RuntimeError(f"{self!r} already streams its output")
        self._on_output, self._on_closed = on_output, on_closed
        reading = self._reading
        self._took_read()
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._deliver(text)
        if reading is not None and reading.done():
            if not reading.cancelled():
                self._on_frame(reading.result())
            reading = None
        if self.closed:
            self._connection_ended()  # calls on_closed, once
            return
        # A read still under way (``read`` timed out) is the first frame of the pump's.
        self._pump = asyncio.ensure_future(self._pump_frames(reading))

    async def _pump_frames(self, first: asyncio.Future[str | bytes | None] | None) -> None:
        """Hand each frame to ``_on_frame``, waiting whenever it pushes back."""
        read = self._ws.read
        try:
            frame = await first if first is not None else await read()
            while frame is not None:
                waiting = self._on_frame(frame)
                if waiting is not None:
                    await waiting
                frame = await read()
        except Exception:  # not expected: end the shell rather than leave it hanging
            log.exception("Reading the connection of %r failed", self)
        self._connection_ended()

    def _on_frame(self, frame: str | bytes | None) -> Awaitable[object] | None:
        if frame is None:
            self._connection_ended()
            return None
        text = ""
        for event in self._events(frame):
            if type(event) is Output:
                self.output_chars += len(event.text)
                text = text + event.text if text else event.text
            else:
                self._apply(event)
        return self._deliver(text) if text else None

    def _deliver(self, text: str) -> Awaitable[object] | None:
        assert self._on_output is not None
        try:
            waiting = self._on_output(text)
        except Exception:  # a consumer's bug must not silently cut the connection
            log.exception("Output handler of %r failed", self)
            return None
        liveness = self.liveness
        if waiting is None or liveness is None:
            return waiting
        # Not reading while the consumer pushes back: the peer's silence means nothing then.
        liveness.hold()
        held = asyncio.ensure_future(waiting)
        held.add_done_callback(lambda _: liveness.release())
        return held

    def _connection_ended(self) -> None:
        if self.liveness is not None:
            self.liveness.stop()
        self._mark_ended()
        on_closed, self._on_closed = self._on_closed, None
        if on_closed is not None:
            on_closed()

    async def resize(self, cols: int, rows: int) -> None:
        await self._send_frame(self._codec.resize_frame(cols, rows))
        self.cols, self.rows = cols, rows

    async def read(self, timeout: float | None = 1.0) -> str:
        """As ``Shell.read``."""
        if self._on_output is not None:
            raise RuntimeError(f"{self!r} streams its output to a handler; it cannot be read")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            if self.closed:
                raise self._closed_error("no more output")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return ""
            frame = await self._recv(remaining)
            if frame is not None:
                for event in self._events(frame):
                    self._apply(event)
        while not self.closed:
            frame = await self._recv(0)
            if frame is None:
                break
            for event in self._events(frame):
                self._apply(event)
        text = "".join(self._pending)
        self._pending.clear()
        return text

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            try:
                chunk = await self.read(None)
            except ShellClosedError:
                return
            if chunk:
                yield chunk

    async def run(self, command: str, timeout: float = 30.0) -> CommandResult:
        """As ``Shell.run``."""
        try:
            return await self._run(command, timeout)
        except ShellClosedError as err:
            raise ShellClosedError(
                f"{err.why} while running {command!r}", job_id=self.job_id, rank=self.rank
            ) from None

    async def _run(self, command: str, timeout: float) -> CommandResult:
        runner = CommandRun(command)
        await self.send(runner.input)
        deadline = time.monotonic() + timeout
        while runner.result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                with contextlib.suppress(UCloudError):
                    await self.send("\x03")
                raise UCloudTimeoutError(
                    f"{command!r} did not finish within {timeout:g} s",
                    job_id=self.job_id,
                    rank=self.rank,
                )
            runner.feed(await self.read(remaining))
        return runner.result

    async def close(self) -> None:
        """Close the connection; returns once the other end has answered the close (a peer
        that does not answer is dropped after ``aio_websocket.CLOSE_TIMEOUT`` s)."""
        self._mark_closed("closed", "")
        if self.liveness is not None:
            self.liveness.stop()
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
        self._on_closed = None
        if self._pump is not None and self._pump is not asyncio.current_task():
            self._pump.cancel()
        try:
            await self._ws.wait_closed()
        finally:
            if self._on_close is not None:
                on_close, self._on_close = self._on_close, None
                await on_close()

    async def __aenter__(self) -> AsyncShell:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<AsyncShell {self.label} {self.cols}x{self.rows} {state}>"


def _describe_error(err: BaseException) -> str:
    """What went wrong when opening a websocket, in words (not aiohttp's repr of a request)."""
    if isinstance(err, aiohttp.WSServerHandshakeError):
        if err.status == 101:  # upgraded, but not to a websocket
            return f"not a websocket handshake ({err.message})"
        try:
            phrase = http.HTTPStatus(err.status).phrase
        except ValueError:
            phrase = err.message
        return f"HTTP {err.status}: {phrase}"
    if isinstance(err, aiohttp.ClientResponseError):  # an answer that is not HTTP, e.g.
        return f"a bad answer ({err.message.splitlines()[0].rstrip(':')})"  # (not the request)
    cause = err.os_error if isinstance(err, aiohttp.ClientConnectorError) else err
    if isinstance(cause, ssl.SSLError):  # its errno is OpenSSL's, not the system's
        return str(cause)
    # asyncio's OSErrors say "Connect call failed (address)": say what errno says
    if isinstance(cause, OSError) and cause.errno:
        return os.strerror(cause.errno)
    return str(err) or type(err).__name__
