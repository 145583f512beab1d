"""What every handler shares: authorization resource, JSON bodies, error answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..errors import ProxyError

if TYPE_CHECKING:
    from ..shells import ShellManager
    from ..upstream import Upstream

__all__ = ["AUTH_RESOURCE", "MAX_BODY_BYTES", "UCloudAPIHandler", "user_key"]

AUTH_RESOURCE = "ucloud"
MAX_BODY_BYTES = 1024 * 1024


def user_key(user: Any) -> str:
    """A stable key for the Jupyter user who owns a shell."""
    return str(getattr(user, "username", None) or user)


class UCloudAPIHandler(ExtensionHandlerMixin, APIHandler):
    """JSON API handler of the extension; errors are ``{"message", "reason"}`` (+ ``why``)."""

    auth_resource = AUTH_RESOURCE

    @property
    def upstream(self) -> Upstream:
        return self.settings["ucloud_upstream"]  # type: ignore[no-any-return]

    @property
    def shells(self) -> ShellManager:
        return self.settings["ucloud_shells"]  # type: ignore[no-any-return]

    @property
    def owner(self) -> str:
        return user_key(self.current_user)

    def json_body(self) -> Any:
        """The request body as JSON, or a 400/413 that says what is wrong with it."""
        body = self.request.body or b""
        if len(body) > MAX_BODY_BYTES:
            raise web.HTTPError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        if not body.strip():
            raise web.HTTPError(400, "The request needs a JSON body.")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise web.HTTPError(400, f"The request body is not valid JSON: {err}") from None

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ProxyError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.body()))
            return
        super().write_error(status_code, **kwargs)
