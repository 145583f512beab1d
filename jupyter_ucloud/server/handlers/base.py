"""What every handler shares: authorization resource, JSON bodies, error answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
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


def _too_big() -> ProxyError:
    return ProxyError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")


def user_key(user: Any) -> str:
    """A stable key for the Jupyter user who owns a shell."""
    return str(getattr(user, "username", None) or user)


@web.stream_request_body
class UCloudAPIHandler(ExtensionHandlerMixin, APIHandler):
    """JSON API handler of the extension; errors are ``{"message", "reason"}`` (+ ``why``).

    Bodies are streamed, so that nothing of a body is read before Jupyter's authentication
    and the ``ucloud`` authorization have passed (``prepare``: 403 first), and a body over
    ``MAX_BODY_BYTES`` is refused with 413 from its ``Content-Length`` or as soon as the bytes
    received pass the limit, without reading the rest (tornado then closes the connection).
    """

    auth_resource = AUTH_RESOURCE
    _body: bytearray | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self._finished:
            return
        user = self.current_user
        if not user:
            raise web.HTTPError(403)
        action = HTTP_METHOD_TO_AUTH_ACTION.get((self.request.method or "").upper(), "write")
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, action, self.auth_resource)
        )
        if not allowed:
            raise web.HTTPError(
                403, f"User is not authorized to {action} on resource: {self.auth_resource}."
            )
        self._body = bytearray()
        length = self.request.headers.get("Content-Length", "").strip()
        if (
            length.isascii()
            and length.isdigit()
            and (len(length) > 18 or int(length) > MAX_BODY_BYTES)
        ):
            raise _too_big()

    def data_received(self, chunk: bytes) -> None:
        if self._finished or self._body is None:
            return
        if len(self._body) + len(chunk) > MAX_BODY_BYTES:
            self._body = None
            error = _too_big()
            self.send_error(error.status_code, exc_info=(type(error), error, None))
            return
        self._body += chunk

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
        """The request body as JSON, or a 400 that says what is wrong with it."""
        body = bytes(self._body or b"")
        if not body.strip():
            raise web.HTTPError(400, "The request needs a JSON body.")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise web.HTTPError(400, f"The request body is not valid JSON: {err}") from None
        except RecursionError:
            raise web.HTTPError(
                400, "The request body is not valid JSON: it is nested too deeply."
            ) from None

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def write_json_bytes(self, body: bytes, status: int = 200) -> None:
        """Answer with ``body``, JSON already (an upstream answer passed on as it came)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self._body is None:
            # Refused before the body was read (403 in prepare, 413): tornado closes the
            # connection after this answer. Say so, or a client that reuses the connection for
            # its next request gets a reset instead of an answer.
            self.set_header("Connection", "close")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ProxyError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.body()))
            return
        super().write_error(status_code, **kwargs)
