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
"""

from __future__ import annotations

from tornado.websocket import WebSocketHandler

__all__ = ["all_on_socket"]


def all_on_socket(handler: WebSocketHandler) -> bool:
    """Whether every frame written to ``handler`` so far is on its socket.

    ``False`` when it cannot tell (no connection yet, or it is closed)."""
    stream = getattr(handler.ws_connection, "stream", None)
    if stream is None or stream.closed():
        return False
    return not stream.writing()
