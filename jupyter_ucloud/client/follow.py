"""``JobFollower``: a job's ``jobs.follow`` stream over a websocket (``websockets.sync``), for
scripts and notebooks: typed ``JobsFollowMessage``s, and the job kept current from them. The
framing is a codec from ``follow_protocol`` (UCloud's own socket, or the Jupyter server's)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import TracebackType

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from ..protocol import JOBS_FOLLOW_CALL, Job, JobsFollowMessage
from .errors import UCloudConnectionError, UCloudError, UCloudTimeoutError, redact
from .follow_protocol import FollowCodec, merge
from .shell import _LEGACY, MAX_FRAME, describe_ws_url, ws_logger

__all__ = ["FollowRefused", "JobFollower", "handshake_error", "refused_error"]

#: Seconds ``close()`` waits for the other end's close frame (it may sit behind unread output).
CLOSE_TIMEOUT = 3.0


class FollowRefused(UCloudError):
    """The stream closed before it sent the job: an unknown job, someone else's, or a refused
    token (UCloud's core closes without a word for all three)."""


def refused_error(job_id: str) -> FollowRefused:
    return FollowRefused(
        "the stream closed before it sent the job: the job does not exist, is not yours, or "
        "the token was refused",
        call=JOBS_FOLLOW_CALL,
        job_id=job_id,
    )


def handshake_error(status: int, body: bytes, where: str, job_id: str) -> UCloudError:
    """The error of a refused websocket upgrade (the Jupyter server's 4xx/5xx with its JSON
    ``message``)."""
    why = ""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        why = str(data.get("message") or data.get("reason") or data.get("why") or "")
    if not why:
        why = f"{where} refused the websocket"
    return UCloudError(why, status=status, call=JOBS_FOLLOW_CALL, job_id=job_id)


class JobFollower:
    """An open ``jobs.follow`` stream (see the module docstring).

    ``read(timeout)`` gives the next message (``None`` after ``timeout``, or once the stream has
    ended); iterating gives every message until the stream ends. The first is the one with
    ``initial_job``. ``job`` is the job as the messages so far leave it. Use it as a context
    manager, or ``close()`` it."""

    def __init__(self, connection: ClientConnection, codec: FollowCodec, job_id: str) -> None:
        self._ws = connection
        self._codec = codec
        self.job_id = job_id
        self.job: Job | None = None
        self.closed = False
        self.close_code: int | None = None
        self._held: JobsFollowMessage | None = None

    @classmethod
    def connect(
        cls,
        url: str,
        codec: FollowCodec,
        *,
        job_id: str,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        secrets: list[str] | None = None,
    ) -> JobFollower:
        """Connect, send the opening frame and wait (up to ``timeout``) for the job.
        ``FollowRefused`` when the other end closes first."""
        where = describe_ws_url(url)
        try:
            ws = connect(
                url,
                **_LEGACY,
                additional_headers=headers,
                open_timeout=timeout,
                max_size=MAX_FRAME,
                compression=None,
                logger=ws_logger,
                close_timeout=CLOSE_TIMEOUT,
            )
        except TimeoutError:
            raise UCloudTimeoutError(
                f"no websocket handshake from {where} within {timeout:g} s",
                call=JOBS_FOLLOW_CALL,
                job_id=job_id,
            ) from None
        except InvalidStatus as err:
            status, body = err.response.status_code, bytes(err.response.body or b"")
            raise handshake_error(status, body, where, job_id) from None
        except (OSError, InvalidHandshake, InvalidURI) as err:
            detail = redact(str(err) or type(err).__name__, [*(secrets or []), url])
            raise UCloudConnectionError(
                f"cannot open {where}: {detail}", call=JOBS_FOLLOW_CALL, job_id=job_id
            ) from None
        follower = cls(ws, codec, job_id)
        try:
            for frame in codec.opening_frames():
                ws.send(frame)
            first = follower.read(timeout)
        except BaseException:
            follower.close()
            raise
        if first is None or first.initial_job is None:
            closed = follower.closed
            follower.close()
            if closed:
                raise refused_error(job_id)
            raise UCloudTimeoutError(
                f"{where} sent no job within {timeout:g} s", call=JOBS_FOLLOW_CALL, job_id=job_id
            )
        follower._held = first
        return follower

    def read(self, timeout: float | None = None) -> JobsFollowMessage | None:
        """The next message, waiting up to ``timeout`` s (``None``: until one comes); ``None``
        when none came in time or the stream has ended (then ``closed``)."""
        if self._held is not None:
            held, self._held = self._held, None
            return held
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.closed:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                frame = self._ws.recv(timeout=remaining)
            except TimeoutError:
                return None
            except ConnectionClosed as closed:
                self.closed = True
                self.close_code = closed.rcvd.code if closed.rcvd is not None else None
                return None
            try:
                message = self._codec.decode(frame)
            except UCloudError:
                self.close()
                raise
            if message is not None:
                self.job = merge(self.job, message)
                return message
        return None

    def __iter__(self) -> Iterator[JobsFollowMessage]:
        while True:
            message = self.read(None)
            if message is None:
                return
            yield message

    @property
    def ended(self) -> bool:
        """Whether the job has reached a final state (as far as the messages say)."""
        return self.job is not None and self.job.state.is_final

    def close(self) -> None:
        self.closed = True
        self._ws.close()

    def __enter__(self) -> JobFollower:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self.job.state.value if self.job is not None else "?"
        return f"<JobFollower job {self.job_id} {state}{' closed' if self.closed else ''}>"
