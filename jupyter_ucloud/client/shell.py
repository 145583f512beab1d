"""``Shell``: a shell in a job rank over a websocket (``websockets.sync``), for scripts and
notebooks. The protocol (UCloud's provider socket or the Jupyter server's terminado bridge) is
a codec from ``shell_protocol``; this class only moves frames and waits."""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from .errors import (
    ShellClosedError,
    UCloudConnectionError,
    UCloudError,
    UCloudTimeoutError,
    redact,
)
from .shell_protocol import CommandResult, CommandRun, Ready, ShellCodec
from .shell_state import ShellState

__all__ = ["Shell", "ws_logger"]

#: websockets logs every frame at DEBUG; frames carry the session identifier, so its logger
#: stays at INFO whatever the root level is.
ws_logger = logging.getLogger("jupyter_ucloud.client.websocket")
ws_logger.setLevel(logging.INFO)

MAX_FRAME = 16 * 1024 * 1024
# websockets >= 17 warns unless a directly used connect() says legacy=True (older: no such flag).
_LEGACY: dict[str, Any] = (
    {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}
)


def describe_ws_url(url: str) -> str:
    """``url`` without its query string (which holds the session identifier)."""
    return url.split("?", 1)[0]


class Shell(ShellState):
    """An open shell. ``send``/``resize``/``read``/iterate, ``run(command)``; close when done
    (or use it as a context manager)."""

    def __init__(
        self,
        connection: ClientConnection,
        codec: ShellCodec,
        *,
        job_id: str,
        rank: int,
        cols: int,
        rows: int,
        secrets: list[str],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._ws = connection
        self._codec = codec
        super().__init__(job_id=job_id, rank=rank, cols=cols, rows=rows)
        self._secrets = secrets
        self._on_close = on_close

    @classmethod
    def connect(
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
        on_close: Callable[[], None] | None = None,
    ) -> Shell:
        """Connect, send the opening frames and wait (up to ``timeout``) until the other end
        has accepted the shell."""
        secrets = secrets or []
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
            )
        except TimeoutError:
            raise UCloudTimeoutError(
                f"no websocket handshake from {where} within {timeout:g} s",
                job_id=job_id,
                rank=rank,
            ) from None
        except (OSError, InvalidHandshake, InvalidURI) as err:
            detail = redact(str(err) or type(err).__name__, [*secrets, url])
            raise UCloudConnectionError(
                f"cannot open {where}: {detail}", job_id=job_id, rank=rank
            ) from None
        shell = cls(
            ws,
            codec,
            job_id=job_id,
            rank=rank,
            cols=cols,
            rows=rows,
            secrets=secrets,
            on_close=on_close,
        )
        try:
            shell._handshake(timeout)
        except BaseException:
            shell.close()
            raise
        return shell

    def _handshake(self, timeout: float) -> None:
        for opening in self._codec.opening_frames(self.cols, self.rows):
            self._send_frame(opening)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UCloudTimeoutError(
                    f"the shell was not ready in {timeout:g} s", job_id=self.job_id, rank=self.rank
                )
            frame = self._recv(remaining)
            for event in self._codec.decode(frame) if frame is not None else []:
                if isinstance(event, Ready):
                    for extra in self._codec.ready_frames(self.cols, self.rows):
                        self._send_frame(extra)
                    return
                self._apply(event)
            if self.closed:
                raise self._closed_error("the shell closed before it was ready")

    # --- frames ---------------------------------------------------------------------------

    def _send_frame(self, frame: str) -> None:
        if self.closed:
            raise self._closed_error("cannot send")
        try:
            self._ws.send(frame)
        except ConnectionClosed:
            self._mark_closed("closed", "")
            raise self._closed_error("cannot send") from None

    def _recv(self, timeout: float | None) -> str | bytes | None:
        """One frame, or ``None`` after ``timeout``; marks the shell closed when the socket is."""
        if self.closed:
            return None
        try:
            return self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as closed:
            received = closed.rcvd
            reason = f"code {received.code}" if received is not None else "connection lost"
            message = received.reason if received is not None else ""
            self._mark_closed(reason, message)
            return None

    # --- public API -----------------------------------------------------------------------

    def send(self, text: str) -> None:
        """Type ``text`` into the shell (add ``\\n`` to run a line)."""
        self._send_frame(self._codec.input_frame(text))

    def resize(self, cols: int, rows: int) -> None:
        self._send_frame(self._codec.resize_frame(cols, rows))
        self.cols, self.rows = cols, rows

    def read(self, timeout: float | None = 1.0) -> str:
        """Output that has arrived, waiting up to ``timeout`` s for some (``None``: until some
        comes). ``""`` when nothing came; ``ShellClosedError`` once closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            if self.closed:
                raise self._closed_error("no more output")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return ""
            frame = self._recv(remaining)
            if frame is not None:
                for event in self._codec.decode(frame):
                    self._apply(event)
        while not self.closed:  # take what else is already there, without waiting
            frame = self._recv(0)
            if frame is None:
                break
            for event in self._codec.decode(frame):
                self._apply(event)
        text = "".join(self._pending)
        self._pending.clear()
        return text

    def __iter__(self) -> Iterator[str]:
        """Output chunks until the shell closes."""
        while True:
            try:
                chunk = self.read(None)
            except ShellClosedError:
                return
            if chunk:
                yield chunk

    def run(self, command: str, timeout: float = 30.0) -> CommandResult:
        """Run ``command`` and return its output (escape codes stripped, no prompt, no echo)
        and exit status. On timeout the command is interrupted (Ctrl-C) and
        ``UCloudTimeoutError`` raised."""
        try:
            return self._run(command, timeout)
        except ShellClosedError as err:
            raise ShellClosedError(
                f"{err.why} while running {command!r}", job_id=self.job_id, rank=self.rank
            ) from None

    def _run(self, command: str, timeout: float) -> CommandResult:
        runner = CommandRun(command)
        self.send(runner.input)
        deadline = time.monotonic() + timeout
        while runner.result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._interrupt()
                raise UCloudTimeoutError(
                    f"{command!r} did not finish within {timeout:g} s",
                    job_id=self.job_id,
                    rank=self.rank,
                )
            runner.feed(self.read(remaining))
        return runner.result

    def _interrupt(self) -> None:
        with contextlib.suppress(UCloudError):
            self.send("\x03")

    def close(self) -> None:
        """Close the websocket (and, through the Jupyter server, the shell itself)."""
        self._mark_closed("closed", "")
        try:
            self._ws.close()
        finally:
            if self._on_close is not None:
                on_close, self._on_close = self._on_close, None
                on_close()

    def __enter__(self) -> Shell:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Shell {self.label} {self.cols}x{self.rows} {state}>"
