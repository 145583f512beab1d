"""``LocalServer``: the embedded UCloud-compatible server (core API subset + provider websocket)."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from .api import NotFoundHandler, api_routes
from .auth import TokenAuthority
from .backends import create_backend
from .backends.base import Backend
from .catalog import Catalog
from .config import LocalConfig
from .jobs import JobService
from .sessions import ShellSessions
from .shell_socket import ProviderShellSocket, ShellSocketServer
from .store import Store

__all__ = ["LocalServer", "default_data_dir"]

log = logging.getLogger("jupyter_ucloud.local")
access_log = logging.getLogger("jupyter_ucloud.local.access")

#: Hard cap on any request body (the API answers larger bodies than ``max_body_bytes`` itself).
HARD_BODY_LIMIT = 64 * 1024 * 1024


def default_data_dir() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "ucloud-local"


def _log_request(handler: RequestHandler) -> None:
    # Only method, path and status: query strings can hold session identifiers.
    request = handler.request
    access_log.info(
        "%d %s %s %.1fms",
        handler.get_status(),
        request.method,
        request.path,
        1000 * request.request_time(),
    )


class LocalServer:
    """Start with ``await LocalServer(config).start()`` on a running loop; ``await stop()``."""

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.data_dir = (config.data_dir or default_data_dir()).expanduser().resolve()
        self.url = ""
        self.refresh_token_file = self.data_dir / "refresh_token"
        self.shell_sockets: set[ProviderShellSocket] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: HTTPServer | None = None
        self.store: Store
        self.authority: TokenAuthority
        self.catalog: Catalog
        self.sessions: ShellSessions
        self.jobs: JobService
        self.backend: Backend

    async def start(self) -> LocalServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        (self.data_dir / "jobs").mkdir(exist_ok=True)
        self.store = Store(self.data_dir / "jobs.sqlite")
        self.authority = TokenAuthority(self.config, self.store, self.data_dir)
        self.authority.ensure_refresh_token_file(self.refresh_token_file, self.config.username)
        log.info("Refresh token for user '%s' in %s", self.config.username, self.refresh_token_file)
        self.catalog = Catalog(self.config)
        self.sessions = ShellSessions(ttl=self.config.session_unused_ttl)
        self.jobs = JobService(self.config, self.store, self.catalog, self.sessions, self.data_dir)
        self.backend = create_backend(self.config.backend, self.config, self.jobs, self.data_dir)
        self.jobs.backend = self.backend
        await self.backend.recover(self.store.active_jobs())

        provider = re.escape(self.config.provider_id)
        socket_args: dict[str, ShellSocketServer] = {"server": self}
        routes: list[Any] = [
            *api_routes(self),
            (rf"/ucloud/{provider}/websocket/?", ProviderShellSocket, socket_args),
        ]
        app = Application(
            routes,
            default_handler_class=NotFoundHandler,
            default_handler_args={"server": self},
            websocket_max_message_size=self.config.max_frame_bytes,
            websocket_ping_interval=self.config.websocket_ping_interval or None,
            websocket_ping_timeout=self.config.websocket_ping_interval or None,
            compress_response=True,
            log_function=_log_request,
            xsrf_cookies=False,
        )
        sockets = bind_sockets(
            self.config.port,
            address=self.config.ip,
            family=socket.AF_INET if ":" not in self.config.ip else socket.AF_INET6,
        )
        self._http = HTTPServer(app, max_body_size=HARD_BODY_LIMIT, idle_connection_timeout=300)
        self._http.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        host = self.config.ip
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        self.url = f"http://{host}:{port}"
        public = (self.config.public_url or self.url).rstrip("/")
        self.jobs.provider_domain = re.sub(r"^http", "ws", public)
        log.info(
            "Embedded UCloud server listening on %s (provider '%s', backend '%s')",
            self.url,
            self.config.provider_id,
            self.config.backend,
        )
        return self

    def track(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` in the background; ``stop()`` waits for it."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Stop listening, close shells, end every job's process groups, close the store."""
        if self._http is not None:
            self._http.stop()
        await asyncio.gather(
            *(s.shutdown() for s in list(self.shell_sockets)), return_exceptions=True
        )
        await self.backend.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        if self._http is not None:
            try:
                await asyncio.wait_for(self._http.close_all_connections(), 5)
            except asyncio.TimeoutError:
                log.warning("some connections did not close in time")
            self._http = None
        self.store.close()
        log.info("Embedded UCloud server stopped")
