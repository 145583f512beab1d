"""Websocket handshakes that tornado refuses, answered in UCloud's error shape."""

from __future__ import annotations

import json
from asyncio import Future
from typing import Any

from tornado.websocket import WebSocketHandler

from ..protocol import ErrorBody

__all__ = ["UCloudHandshakeErrors"]


class UCloudHandshakeErrors(WebSocketHandler):
    """A request to a websocket path that is not a valid handshake (no ``Upgrade`` or
    ``Connection: Upgrade``, bad ``Sec-WebSocket-*`` headers, an unsupported version) gets
    tornado's refusal (400, 426) as ``{statusCode, why, errorCode, detailedCode}`` JSON, like
    every other error of the embedded server, instead of a bare text or empty body."""

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Future[None]:
        status = self.get_status()
        if status >= 400 and not self._finished:
            said = chunk.decode(errors="replace") if isinstance(chunk, bytes) else chunk
            detail = said if isinstance(said, str) and said else self._reason
            why = f"Bad websocket handshake: {detail}"
            self.set_header("Content-Type", "application/json; charset=utf-8")
            chunk = json.dumps(ErrorBody(status_code=status, why=why).to_wire())
        return super().finish(chunk)
