"""Tornado websocket helpers both servers share: the embedded provider's shell socket
(``local.shell_socket``) and the terminal bridge (``server.handlers.terminal``). ``local`` and
``server`` may not import each other (docs/architecture.md), so this sits below both and
imports nothing of ours.

``all_on_socket(handler)``: whether a tornado websocket has handed everything written to it to
the kernel. ``WebSocketHandler.write_message`` returns a future that completes on a later turn
of the event loop (tornado wraps the stream's write in a task), even when the socket took the
whole frame at once. Code that limits how much it has in flight can ask here instead and count
only the frames that are really waiting in tornado's buffer: output then keeps flowing while
the socket takes it, and waits exactly when the socket pushes back.

``write_text_frames(handler, payloads)``: text frames written to the socket in one write (one
TCP segment when they fit), where ``write_message`` makes one write, and so one segment, each.
The embedded provider writes a keystroke's echo and its ack so: the client takes both in one
read, and no crash can fall between them (``local.shell_acks``). The frames are built as
tornado builds them: a server's frames are not masked, and the handler must not negotiate
compression (``get_compression_options`` returns ``None``, tornado's default).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

__all__ = ["all_on_socket", "write_text_frames"]

_FIN_TEXT = 0x81  # FIN + opcode 1 (text)


def all_on_socket(handler: WebSocketHandler) -> bool:
    """Whether every frame written to ``handler`` so far is on its socket.

    ``False`` when it cannot tell (no connection yet, or it is closed)."""
    stream = getattr(handler.ws_connection, "stream", None)
    if stream is None or stream.closed():
        return False
    return not stream.writing()


def write_text_frames(handler: WebSocketHandler, payloads: Sequence[bytes]) -> asyncio.Future[None]:
    """Write ``payloads`` (UTF-8 text) as text frames in one write to the socket. The future is
    done when the socket took them (``WebSocketClosedError`` if it closed first); raises
    ``WebSocketClosedError`` at once if it is closed already."""
    if handler.get_compression_options() is not None:
        raise ValueError("write_text_frames cannot compress: the handler negotiates compression")
    connection = handler.ws_connection
    stream = getattr(connection, "stream", None)
    if connection is None or connection.is_closing() or stream is None:
        raise WebSocketClosedError()
    try:
        written = stream.write(b"".join(_text_frame(payload) for payload in payloads))
    except StreamClosedError:
        raise WebSocketClosedError() from None
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def taken(future: asyncio.Future[None]) -> None:
        if done.done():
            return
        if future.cancelled():
            done.cancel()
        elif future.exception() is not None:
            done.set_exception(WebSocketClosedError())
        else:
            done.set_result(None)

    written.add_done_callback(taken)
    return done


def _text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN_TEXT, size)
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload
