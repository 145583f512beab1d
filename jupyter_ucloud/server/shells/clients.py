"""The clients of a shell: attaching and detaching them, and sending each its output.

Each client has a sender task (``_run_client``) that takes output from the replay buffer, one
frame of at most ``FRAME_CHARS`` at a time, and awaits the write before it takes the next. A
client whose sender has sent everything is *idle*: the output path (``Shell._deliver``) then
writes new output to it at once (``_write_direct``) without waking the task - the keystroke
echo path. A frame its socket takes at once leaves the client caught up (``write_frame``
answers ``None``); only a frame left in tornado's buffer, the socket pushing back, makes the
client *writing* until it is out.

Replays (a new client, or ``?since=N``) send the held output after ``N`` with terminal *queries*
(DSR, DA, OSC colour queries, DECRQSS, ...) removed, so xterm.js does not answer them again
(terminado #247). Live output is never altered. Offsets count Unicode code points of the stream;
``["stdout", text, endOffset]`` tells a client where it is, so a reattach duplicates nothing.

A client that fell out of the replay buffer (:mod:`.pacing`) is sent ``SKIPPED_NOTE`` and
continues from the oldest output still held. Once the shell has ended, a client is sent what is
left, then ``["disconnect", reason, message]`` (:mod:`.ending`), and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import orjson

from ..replay import strip_terminal_queries
from .ending import CLOSE_CODES
from .interrupts import INTERRUPT_TAIL_CHARS
from .sizes import Resizing
from .state import ClientSink, ShellClient

__all__ = ["FRAME_CHARS", "SKIPPED_NOTE", "ClientSet", "stdout_frame"]

log = logging.getLogger(__package__)

FRAME_CHARS = 65536  # largest stdout frame to a client (tornado is slow with larger text frames)
SKIPPED_NOTE = "\r\n\x1b[2m[output skipped: this terminal fell behind]\x1b[0m\r\n"


def stdout_frame(text: str, end: int) -> bytes:
    """``["stdout", text, end]`` as UTF-8 JSON (orjson: a 64 KiB frame in microseconds, where
    ``json.dumps`` takes a tenth of a millisecond). ``text`` has no lone surrogates."""
    return orjson.dumps(["stdout", text, end])


def _cut_before_partial_escape(text: str) -> str:
    """Cut a replay frame before an escape sequence that may continue in the next frame."""
    tail = text.rfind("\x1b", max(0, len(text) - 64))
    if tail > 0:
        return text[:tail]
    return text


class ClientSet(Resizing):
    """The part of a Shell that keeps its clients and sends them output (see the module
    docstring). A client leaving may change the shell's size (:mod:`.sizes`)."""

    def attach(self, sink: ClientSink, since: int | None = None) -> tuple[ShellClient, int]:
        """Attach a client; it is sent output from ``since`` (default: all that is held).

        Returns the client and the offset its first stdout frame starts at. The caller sends
        ``setup`` first and then calls :meth:`start_client`.
        """
        start = self.buffer.start if since is None else max(since, self.buffer.start)
        client = ShellClient(sink=sink, cursor=start, live_from=self.buffer.end)
        client.write_now = getattr(sink, "write_frame", None)
        self.clients.append(client)
        self.detached_since = None
        return client, start

    def start_client(self, client: ShellClient) -> None:
        client.task = asyncio.ensure_future(self._run_client(client))

    def detach(self, client: ShellClient) -> None:
        if client in self.clients:
            self.clients.remove(client)
        if client.task is not None and not client.task.done():
            client.task.cancel()
        if not self.clients:
            self.detached_since = time.monotonic()
        self._room.set()
        if client.size is not None and self.state == "open":
            self._resize_task = asyncio.ensure_future(self._apply_size())

    async def _run_client(self, client: ShellClient) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                writing = client.writing
                if writing is not None:
                    await writing  # a frame written to it directly (_deliver)
                    if client.writing is writing:
                        client.writing = None
                end = self.buffer.end
                if client.cursor < client.skip_floor:
                    client.cursor = client.skip_floor
                if self._skipping:
                    if self._leg.acks_seen:
                        # The ack will say where the stale output ends: send nothing till then.
                        client.wake.clear()
                        await client.wake.wait()
                        continue
                    if end - client.cursor > INTERRUPT_TAIL_CHARS:
                        client.cursor = end - INTERRUPT_TAIL_CHARS
                if client.cursor >= end:
                    if self.state == "ended":
                        await self._send_disconnect(client)
                        return
                    client.pacing = True
                    self._room.set()
                    client.wake.clear()
                    client.idle = True
                    try:
                        await client.wake.wait()
                    finally:
                        client.idle = False
                    continue
                first, text = self.buffer.read(client.cursor, FRAME_CHARS)
                prefix = SKIPPED_NOTE if first > client.cursor else ""
                if first < client.live_from:  # replay: strip terminal queries
                    text = text[: client.live_from - first]
                    text = _cut_before_partial_escape(text)
                    frame_end = first + len(text)
                    text = strip_terminal_queries(text)
                else:
                    frame_end = first + len(text)
                client.write_started = loop.time()
                await client.sink.send_frame(stdout_frame(prefix + text, frame_end))
                client.write_started = None
                client.cursor = frame_end
                self._room.set()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the client went away
            log.debug("Shell %s: client gone (%s)", self.name, type(err).__name__)
            self.detach(client)

    async def _send_disconnect(self, client: ShellClient) -> None:
        reason = self.reason or "closed"
        with contextlib.suppress(Exception):
            await client.sink.send_frame(json.dumps(["disconnect", reason, self.message or ""]))
        client.sink.close_client(CLOSE_CODES.get(reason, 1000), reason)
        self.detach(client)

    def _write_direct(self, client: ShellClient, frame: bytes, end: int) -> None:
        assert client.write_now is not None
        try:
            future = client.write_now(frame)
        except Exception as err:  # closed under us: on_close detaches it
            log.debug("Shell %s: client gone (%s)", self.name, type(err).__name__)
            client.wake.set()
            return
        client.cursor = end
        if future is None:  # on the socket already: the client is caught up
            return
        client.writing = future
        client.write_started = asyncio.get_running_loop().time()
        future.add_done_callback(lambda done: self._direct_write_done(client, done))

    def _direct_write_done(self, client: ShellClient, future: asyncio.Future[Any]) -> None:
        if client.writing is future:
            client.writing = None
            client.write_started = None
        if future.cancelled() or future.exception() is not None:
            if client in self.clients:
                log.debug("Shell %s: client gone (write failed)", self.name)
                self.detach(client)
            return
        self._room.set()
