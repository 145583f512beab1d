"""The ``ack`` frames of the provider shell socket (reference section 4.3: one for every input,
resize and later initialize, on that frame's ``streamId``), written where they cost the client
least.

A keystroke's ack goes out with the output the keystroke causes, its echo: the echo, then the
ack, in one write to the socket (``with_output``, ``tornado_ws.write_text_frames``), so the
client takes both in one read and handles the echo first. Written at once, the ack reached the
Jupyter bridge some 40 µs ahead of the echo, woke it on its own, and the echo waited behind its
handling: 0.19 ms of the bridge's 0.95 ms echo (p50, docs/benchmarks.md). Measured against
that: the ack first, in the same turn but its own write, cost as much; the echo first, in its
own write, was as fast, but a crash between the two writes left a client that had seen the echo
without the ack (the bridge then reported the keystroke as lost; CI caught it); both in one
segment with ``TCP_CORK`` cost 0.25 ms more. Input that causes no output is acknowledged
``ACK_DELAY`` seconds later at the latest.

Only keystrokes without an interrupt character wait (:meth:`ShellAcks.soon`). Everything else
is acknowledged at once (:meth:`ShellAcks.now`), in order after the acks still due: a client
skips the stale output before an interrupt's ack, so that ack must not move past the output
that follows it.

Pushback: an ack the socket does not take at once waits in tornado's buffer. Beyond
``MAX_ACKS_IN_FLIGHT`` of them (a client that writes and never reads), ``now`` returns an
awaitable that tornado waits for before it reads the next frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import orjson
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..protocol.shell import INTERRUPT_CHARS
from ..tornado_ws import all_on_socket, write_text_frames

__all__ = ["ACK_DELAY", "MAX_ACKS_IN_FLIGHT", "ShellAcks", "ack_frame"]

ACK_DELAY = 0.01  # seconds a keystroke's ack waits for the output it causes
MAX_ACKS_IN_FLIGHT = 64  # acks written but not yet taken by the socket, before reading waits


def ack_frame(stream_id: str) -> bytes:
    envelope = {"type": "message", "payload": {"type": "ack"}, "streamId": stream_id}
    return orjson.dumps(envelope)


def _on_socket(sent: asyncio.Future[None]) -> asyncio.Future[None]:
    """Done once a frame is on the socket, or the socket closed (its ``on_close`` has cleaned up
    then; tornado would log the error of an awaitable it was handed). A future, not a
    coroutine: a caller that has no use for it may drop it."""
    on_socket: asyncio.Future[None] = sent.get_loop().create_future()

    def taken(_: asyncio.Future[None]) -> None:
        if not on_socket.done():
            on_socket.set_result(None)

    sent.add_done_callback(taken)
    return on_socket


class ShellAcks:
    """The acks of one shell socket (see the module docstring)."""

    def __init__(self, socket: WebSocketHandler) -> None:
        self._socket = socket
        self._due: list[str] = []  # streamIds of keystrokes not acknowledged yet
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight = 0

    def soon(self, stream_id: str, text: str) -> Awaitable[None] | None:
        """Acknowledge the input ``text``, which the terminal took, with the output it causes
        (``with_output``), or after ``ACK_DELAY``; at once if it holds an interrupt character."""
        if (
            self._in_flight  # the socket is behind anyway: nothing to gain by waiting
            or len(self._due) >= MAX_ACKS_IN_FLIGHT
            # the bridge skips output until an interrupt's ack; in raw mode (an editor) the
            # terminal passes it on as a byte, so it is acked at once, before the answer to it
            or any(char in text for char in INTERRUPT_CHARS)
        ):
            return self.now(stream_id)
        self._due.append(stream_id)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(ACK_DELAY, self.flush)
        return None

    def now(self, stream_id: str) -> Awaitable[None] | None:
        """Acknowledge at once, after the acks still due. Returns what to wait for before the
        next frame is read, if acks pile up unsent."""
        self.flush()
        sent = self._write(stream_id)
        if sent is not None and self._in_flight > MAX_ACKS_IN_FLIGHT:
            return _on_socket(sent)
        return None

    def flush(self) -> None:
        """Write the acks that are due: before any other frame (``with_output`` takes them
        with an output frame), and from the timer."""
        for stream_id in self._take_due():
            self._write(stream_id)

    def with_output(self, frame: bytes) -> asyncio.Future[None]:
        """Write the output ``frame`` and the acks that are due after it, in one write; the
        future is done when the socket took them. Raises ``WebSocketClosedError``."""
        if not self._due:  # most output frames: nothing typed is waiting
            return self._socket.write_message(frame)
        return write_text_frames(self._socket, [frame, *map(ack_frame, self._take_due())])

    def drop(self) -> None:
        """The socket closed: nothing is due any more."""
        self._take_due()

    def _take_due(self) -> list[str]:
        """The acks that are due, which the caller writes now: the timer is no longer needed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due, self._due = self._due, []
        return due

    def _write(self, stream_id: str) -> asyncio.Future[None] | None:
        """Write one ack; the future when it is not on the socket yet."""
        try:
            sent = self._socket.write_message(ack_frame(stream_id))
        except WebSocketClosedError:
            return None
        if all_on_socket(self._socket):
            return None
        self._in_flight += 1
        sent.add_done_callback(self._taken)
        return sent

    def _taken(self, sent: asyncio.Future[None]) -> None:
        self._in_flight -= 1
        if not sent.cancelled():
            sent.exception()  # a closed socket: its on_close cleans up
