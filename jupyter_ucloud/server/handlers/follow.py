"""The job follow websocket ``/ucloud/api/jobs/follow?id=<job id>``: a job's ``jobs.follow``
stream relayed to the browser (docs/architecture.md section 4 is the contract).

Each server frame is one ``JobsFollowMessage`` JSON object (no envelope): ``initialJob`` first,
then ``updates``/``newStatus`` and ``log`` entries, finally a frame with ``newStatus`` and a close
(1000) once the job has ended; ``{"error": message}`` and a close (1011) when the upstream fails.
With ``&logs=0`` no log output is sent (the panel follows job states so). Frames from the
browser are ignored. The upstream stream, its history and flow control are the
hub's (``..follow_hub``); the server's UCloud credentials never reach this socket.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.websocket import WebSocketHandler

from ...protocol import CALLS
from ..errors import ProxyError
from ..follow_hub import Follower, FollowHub
from .base import AUTH_RESOURCE

__all__ = ["MAX_JOB_ID_DIGITS", "JobFollowWebSocketHandler"]

MAX_JOB_ID_DIGITS = 18


class JobFollowWebSocketHandler(
    ExtensionHandlerMixin, WebSocketMixin, WebSocketHandler, JupyterHandler
):
    auth_resource = AUTH_RESOURCE

    _job_id = ""
    _logs = True
    _follower: Follower | None = None

    @property
    def ping_interval(self) -> float:  # type: ignore[override]
        return float(self.extensionapp.ping_interval) * 1000  # type: ignore[attr-defined]

    @property
    def hub(self) -> FollowHub:
        return self.settings["ucloud_follow"]  # type: ignore[no-any-return]

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        user = self.current_user
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, "execute", self.auth_resource)
        )
        if not allowed:
            raise web.HTTPError(403, f"User is not authorized to use {self.auth_resource}.")
        job_id = self.get_query_argument("id", "")
        # ASCII digits only: UCloud's ids are decimal int64s (and so are the embedded server's)
        if not (job_id.isascii() and job_id.isdigit()) or len(job_id) > MAX_JOB_ID_DIGITS:
            raise web.HTTPError(400, "id must be a job id (decimal digits).")
        if job_id not in self.hub.streams:
            await self._check_job(job_id)
        logs = self.get_query_argument("logs", "1")
        if logs not in ("0", "1"):
            raise web.HTTPError(400, "logs must be 0 (status only) or 1.")
        self._job_id = job_id
        self._logs = logs == "1"
        await super().get(*args, **kwargs)  # type: ignore[misc]

    async def _check_job(self, job_id: str) -> None:
        """A clear answer before the upgrade for a job that cannot be followed."""
        upstream = self.settings["ucloud_upstream"]
        try:
            await upstream.call(CALLS["jobs.retrieve"], query={"id": job_id})
        except ProxyError as err:
            if err.status_code in (403, 404):
                raise web.HTTPError(
                    404, f"Job {job_id} does not exist, or this server's UCloud user cannot see it."
                ) from None
            raise

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A refused upgrade answers JSON ``{"message", "reason"}``, as the REST API does."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = ""
        if isinstance(exc, ProxyError):
            message = exc.message
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message or self._reason, "reason": self._reason}))

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.set_nodelay(True)  # a state change is one small frame: no Nagle + delayed ACK
        self._follower = self.hub.follow(self._job_id, self, logs=self._logs)

    def on_message(self, message: str | bytes) -> None:
        pass  # nothing is read from the browser

    def on_close(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            self.hub.unfollow(follower)

    # --- FollowSink -----------------------------------------------------------------------------

    async def send_frame(self, frame: bytes) -> None:
        await self.write_message(frame)

    def close_client(self, code: int, reason: str) -> None:
        self.close(code, reason)
