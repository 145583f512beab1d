"""``AsyncJobFollower``: ``JobFollower`` awaited, over tornado's websocket client (for the Jupyter
server's relay and other asyncio code). Framing and bookkeeping are in ``follow_protocol``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from ..protocol import JOBS_FOLLOW_CALL, Job, JobsFollowMessage
from .errors import UCloudConnectionError, UCloudError, UCloudTimeoutError, redact
from .follow import handshake_error, refused_error
from .follow_protocol import FollowCodec, merge
from .shell import MAX_FRAME, describe_ws_url

__all__ = ["AsyncJobFollower"]


class AsyncJobFollower:
    """An open ``jobs.follow`` stream: ``await read(timeout)``, ``async for``, ``async with``;
    ``job`` is the job as the messages so far leave it (see ``JobFollower``)."""

    def __init__(
        self, connection: WebSocketClientConnection, codec: FollowCodec, job_id: str
    ) -> None:
        self._ws = connection
        self._codec = codec
        self.job_id = job_id
        self.job: Job | None = None
        self.closed = False
        self.close_code: int | None = None
        self._held: JobsFollowMessage | None = None
        # A read that timed out stays pending and is picked up by the next read.
        self._reading: asyncio.Future[str | bytes | None] | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        codec: FollowCodec,
        *,
        job_id: str,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        secrets: list[str] | None = None,
    ) -> AsyncJobFollower:
        """Connect, send the opening frame and wait (up to ``timeout``) for the job;
        ``FollowRefused`` when the other end closes first."""
        where = describe_ws_url(url)
        request = HTTPRequest(
            url, headers=headers or {}, connect_timeout=timeout, request_timeout=timeout
        )
        try:
            ws = await asyncio.wait_for(
                websocket_connect(request, max_message_size=MAX_FRAME), timeout
            )
        except (asyncio.TimeoutError, TimeoutError):
            raise UCloudTimeoutError(
                f"no websocket handshake from {where} within {timeout:g} s",
                call=JOBS_FOLLOW_CALL,
                job_id=job_id,
            ) from None
        except HTTPClientError as err:
            if err.code == 599:
                detail = redact(str(err), [*(secrets or []), url])
                raise UCloudConnectionError(
                    f"cannot open {where}: {detail}", call=JOBS_FOLLOW_CALL, job_id=job_id
                ) from None
            body = err.response.body if err.response is not None else b""
            raise handshake_error(err.code, body or b"", where, job_id) from None
        except (OSError, ValueError) as err:
            detail = redact(str(err) or type(err).__name__, [*(secrets or []), url])
            raise UCloudConnectionError(
                f"cannot open {where}: {detail}", call=JOBS_FOLLOW_CALL, job_id=job_id
            ) from None
        if ws.protocol is not None:
            ws.protocol.set_nodelay(True)  # small frames (state changes) go at once
        follower = cls(ws, codec, job_id)
        try:
            for frame in codec.opening_frames():
                await ws.write_message(frame)
            first = await follower.read(timeout)
        except BaseException:
            await follower.close()
            raise
        if first is None or first.initial_job is None:
            closed = follower.closed
            await follower.close()
            if closed:
                raise refused_error(job_id)
            raise UCloudTimeoutError(
                f"{where} sent no job within {timeout:g} s", call=JOBS_FOLLOW_CALL, job_id=job_id
            )
        follower._held = first
        return follower

    async def read(self, timeout: float | None = None) -> JobsFollowMessage | None:
        """The next message, or ``None`` after ``timeout`` s or once the stream has ended."""
        if self._held is not None:
            held, self._held = self._held, None
            return held
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self.closed:
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._ws.read_message())
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                frame = await asyncio.wait_for(asyncio.shield(self._reading), remaining)
            except (asyncio.TimeoutError, TimeoutError):
                return None
            self._reading = None
            if frame is None:
                self.closed = True
                self.close_code = self._ws.close_code
                return None
            try:
                message = self._codec.decode(frame)
            except UCloudError:
                await self.close()
                raise
            if message is not None:
                self.job = merge(self.job, message)
                return message
        return None

    def __aiter__(self) -> AsyncIterator[JobsFollowMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[JobsFollowMessage]:
        while True:
            message = await self.read(None)
            if message is None:
                return
            yield message

    @property
    def ended(self) -> bool:
        return self.job is not None and self.job.state.is_final

    async def close(self) -> None:
        self.closed = True
        self._ws.close()
        reading, self._reading = self._reading, None
        if reading is not None and not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading

    async def __aenter__(self) -> AsyncJobFollower:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = self.job.state.value if self.job is not None else "?"
        return f"<AsyncJobFollower job {self.job_id} {state}{' closed' if self.closed else ''}>"
