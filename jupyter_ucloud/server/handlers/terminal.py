"""The terminal websocket ``/ucloud/shells/<name>/websocket``: terminado frames, one shell.

server -> client: ``["setup", {name, jobId, rank, offset}]`` first, then
``["stdout", text, endOffset]``, finally ``["disconnect", reason, message]`` and a close
(4001 job ended, 4002 provider lost, 1000 closed or exited). ``["error", message]`` answers a
frame that could not be understood (the stock JupyterLab terminal ignores it).
client -> server: ``["stdin", text]``, ``["set_size", rows, cols, height, width]``.
``?since=<offset>`` replays only what came after ``offset``. Flow control: ``..shells.pacing``.
"""

from __future__ import annotations

import contextlib
import json
import socket
from asyncio import Future
from collections.abc import Awaitable
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ...tornado_ws import all_on_socket
from ..shells import Shell, ShellClient, ShellManager
from .base import AUTH_RESOURCE

__all__ = ["MAX_MESSAGE_BYTES", "TerminalWebSocketHandler"]

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
CLIENT_SEND_BUFFER = 131072  # SO_SNDBUF of the browser connection (Linux doubles it)


class TerminalWebSocketHandler(
    ExtensionHandlerMixin, WebSocketMixin, WebSocketHandler, JupyterHandler
):
    auth_resource = AUTH_RESOURCE

    _shell: Shell | None = None
    _client: ShellClient | None = None
    _since: int | None = None

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        return MAX_MESSAGE_BYTES

    @property
    def ping_interval(self) -> float:  # type: ignore[override]
        return float(self.extensionapp.ping_interval) * 1000  # type: ignore[attr-defined]

    @property
    def manager(self) -> ShellManager:
        return self.settings["ucloud_shells"]  # type: ignore[no-any-return]

    @ws_authenticated
    async def get(self, name: str, *args: Any, **kwargs: Any) -> None:
        user = self.current_user
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, "execute", self.auth_resource)
        )
        if not allowed:
            raise web.HTTPError(403, f"User is not authorized to use {self.auth_resource}.")
        shell = self.manager.get(name)
        if shell is None:
            raise web.HTTPError(404, f"No shell named {name!r}.")
        since = self.get_query_argument("since", None)
        if since is not None:
            # ASCII digits only: int() also reads Unicode digits, signs, "_" and white space
            if not (since.isascii() and since.isdigit()) or len(since) > 18:
                raise web.HTTPError(400, "since must be an integer offset.")
            self._since = int(since)
            if self._since < 0 or self._since > shell.buffer.end:
                raise web.HTTPError(
                    400,
                    f"since={self._since} is outside this shell's output (0-{shell.buffer.end}).",
                )
        self._shell = shell
        await super().get(name, *args, **kwargs)  # type: ignore[misc]

    async def open(self, name: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().open(name, *args, **kwargs)
        self.set_nodelay(True)  # keystroke echoes must not wait for Nagle + delayed ACKs
        self._limit_send_buffer()
        shell = self._shell
        assert shell is not None
        client, start = shell.attach(self, self._since)
        self._client = client
        setup = {"name": shell.name, "jobId": shell.job_id, "rank": shell.rank, "offset": start}
        try:
            await self.write_message(json.dumps(["setup", setup]))
        except WebSocketClosedError:
            shell.detach(client)
            return
        shell.start_client(client)

    def _limit_send_buffer(self) -> None:
        """Keep what is in flight to the browser small. Output in the kernel's socket buffers
        cannot be taken back after a Ctrl-C, and Linux lets them grow to megabytes for a slow
        reader; ``CLIENT_SEND_BUFFER`` still carries tens of MB/s on a LAN."""
        connection = self.ws_connection
        stream = getattr(connection, "stream", None)
        sock = getattr(stream, "socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CLIENT_SEND_BUFFER)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """A keystroke goes to the provider right here; anything else in a task that tornado
        awaits before it reads the next frame (so input stays in order)."""
        shell = self._shell
        if shell is None or self._client is None:
            return None
        try:
            frame = json.loads(message)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self._error('Frames must be JSON arrays such as ["stdin", "text"].')
        if (
            type(frame) is list
            and len(frame) == 2
            and frame[0] == "stdin"
            and type(frame[1]) is str
            and shell.write_nowait(frame[1])
        ):
            return None
        return self._handle_frame(frame)

    async def _handle_frame(self, frame: Any) -> None:
        shell, client = self._shell, self._client
        if shell is None or client is None:
            return
        if not isinstance(frame, list) or not frame or not isinstance(frame[0], str):
            await self._error('Frames must be JSON arrays such as ["stdin", "text"].')
            return
        kind, args = frame[0], frame[1:]
        if kind == "stdin":
            if len(args) < 1 or not isinstance(args[0], str):
                await self._error('stdin needs one text argument: ["stdin", text].')
                return
            await shell.write(args[0])
        elif kind == "set_size":
            size = args[:2]
            if len(size) < 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10000 for v in size
            ):
                await self._error('set_size needs rows and columns: ["set_size", rows, cols].')
                return
            await shell.resize(client, size[0], size[1])
        # Other frame types are ignored, as terminado does.

    async def _error(self, message: str) -> None:
        with contextlib.suppress(WebSocketClosedError):
            await self.write_message(json.dumps(["error", message]))

    def on_close(self) -> None:
        if self._shell is not None and self._client is not None:
            self._shell.detach(self._client)

    # --- ClientSink -------------------------------------------------------------------------------

    async def send_frame(self, frame: str | bytes) -> None:
        await self.write_message(frame)

    def write_frame(self, frame: str | bytes) -> Future[None] | None:
        sent = self.write_message(frame)
        return None if all_on_socket(self) else sent

    def close_client(self, code: int, reason: str) -> None:
        self.close(code, reason)
