"""``LocalServer``: the embedded UCloud-compatible server (core API subset + provider websocket)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
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
from .follow_socket import JobFollowSocket, follow_route
from .instance import DataDirLock, ServerInfo, read_info, remove_info, write_info
from .jobs import JobService
from .sessions import ShellSessions
from .shell_socket import ProviderShellSocket, ShellSocketServer
from .store import Store

__all__ = ["AlreadyRunning", "LocalServer", "default_data_dir"]

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


class AlreadyRunning(Exception):
    """Another server holds the data dir (``info``: what it announced, if it has yet)."""

    def __init__(self, data_dir: Path, info: ServerInfo | None) -> None:
        where = f" (pid {info.pid}, {info.url})" if info is not None else ""
        super().__init__(f"an embedded server is already running for {data_dir}{where}")
        self.info = info


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class LocalServer:
    """Start with ``await LocalServer(config).start()`` on a running loop; ``await stop()``.

    ``job_umask`` is the umask of jobs' processes (default: this process's umask now); the
    server's own files are private whatever it is (see ``cli``)."""

    def __init__(self, config: LocalConfig, job_umask: int | None = None) -> None:
        self.config = config
        self.data_dir = (config.data_dir or default_data_dir()).expanduser().resolve()
        self.job_umask = _current_umask() if job_umask is None else job_umask
        self.url = ""
        self.refresh_token_file = self.data_dir / "refresh_token"
        self.shell_sockets: set[ProviderShellSocket] = set()
        self.follow_sockets: set[JobFollowSocket] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: HTTPServer | None = None
        self._lock = DataDirLock(self.data_dir)
        self._last_activity = time.monotonic()
        self._idle_watch: asyncio.Task[None] | None = None
        #: Set when the server has been idle for ``config.idle_timeout`` (the CLI then stops).
        self.idle = asyncio.Event()
        self.store: Store
        self.authority: TokenAuthority
        self.catalog: Catalog
        self.sessions: ShellSessions
        self.jobs: JobService
        self.backend: Backend

    async def start(self) -> LocalServer:
        """Take the data dir (``AlreadyRunning`` if a live server has it), recover its jobs,
        listen, and announce the server in ``server.json``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if not self._lock.acquire():
            raise AlreadyRunning(self.data_dir, read_info(self.data_dir))
        stale = read_info(self.data_dir)
        if stale is not None:
            log.info(
                "Taking over %s: the server that ran there (pid %d) is gone",
                self.data_dir,
                stale.pid,
            )
        try:
            await self._start()
        except BaseException:
            self._lock.release()
            raise
        return self

    async def _start(self) -> None:
        (self.data_dir / "jobs").mkdir(exist_ok=True)
        self.store = Store(self.data_dir / "jobs.sqlite")
        self.authority = TokenAuthority(self.config, self.store, self.data_dir)
        self.authority.ensure_refresh_token_file(self.refresh_token_file, self.config.username)
        log.info("Refresh token for user '%s' in %s", self.config.username, self.refresh_token_file)
        self.catalog = Catalog(self.config)
        self.sessions = ShellSessions(ttl=self.config.session_unused_ttl)
        self.jobs = JobService(self.config, self.store, self.catalog, self.sessions, self.data_dir)
        self.backend = create_backend(
            self.config.backend, self.config, self.jobs, self.data_dir, job_umask=self.job_umask
        )
        self.jobs.backend = self.backend
        await self.backend.recover(self.store.active_jobs())

        provider = re.escape(self.config.provider_id)
        socket_args: dict[str, ShellSocketServer] = {"server": self}
        routes: list[Any] = [
            follow_route(self),  # GET /api/jobs with Upgrade: websocket (POST is jobs.create)
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
            log_function=self._on_request,
            xsrf_cookies=False,
        )
        sockets = bind_sockets(
            self.config.port,
            address=self.config.ip,
            family=socket.AF_INET if ":" not in self.config.ip else socket.AF_INET6,
        )
        self._http = HTTPServer(
            app,
            # The API streams bodies and refuses those over max_body_bytes itself (413); this
            # cap is for the routes that do not stream (the provider websocket).
            max_body_size=min(self.config.max_body_bytes, HARD_BODY_LIMIT),
            # tornado uses the idle timeout as the time allowed for a request's headers too.
            idle_connection_timeout=self.config.header_timeout,
            body_timeout=self.config.body_timeout,
        )
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
        write_info(self.info())
        if self.config.idle_timeout:
            self._idle_watch = asyncio.ensure_future(self._watch_idleness(self.config.idle_timeout))

    def info(self) -> ServerInfo:
        """What this server announces in ``server.json``."""
        return ServerInfo(
            url=self.url,
            pid=os.getpid(),
            refresh_token_file=self.refresh_token_file,
            provider_id=self.config.provider_id,
            data_dir=self.data_dir,
            backend=self.config.backend,
            started_at=time.time(),
        )

    # --- activity ---------------------------------------------------------------------------

    def _on_request(self, handler: RequestHandler) -> None:
        self.touch()
        _log_request(handler)

    def touch(self) -> None:
        """Note a client's request (the idle timeout counts from the last one)."""
        self._last_activity = time.monotonic()

    def busy(self) -> str | None:
        """Why the server is not idle (running jobs, open websockets), or ``None``."""
        jobs = len(self.store.active_jobs())
        if jobs:
            return f"{jobs} job(s) not ended"
        if self.shell_sockets:
            return f"{len(self.shell_sockets)} open shell(s)"
        if self.follow_sockets:
            return f"{len(self.follow_sockets)} job follower(s)"
        return None

    async def _watch_idleness(self, timeout: float) -> None:
        """Set ``idle`` once there has been no job, websocket or request for ``timeout`` s."""
        step = max(0.2, min(30.0, timeout / 4))
        while True:
            await asyncio.sleep(step)
            if self.busy() is not None:
                self.touch()
            elif time.monotonic() - self._last_activity >= timeout:
                log.info("No job and no client for %g s: stopping", timeout)
                self.idle.set()
                return

    def track(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` in the background; ``stop()`` waits for it."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def end_jobs(self, why: str) -> int:
        """Terminate every job that has not ended (``jupyter ucloud local stop``)."""
        jobs = self.store.active_jobs()
        for job in jobs:
            try:
                await self.backend.terminate(job, why)
            except Exception:  # one job that cannot be ended must not keep the others running
                log.exception("job %s could not be terminated", job.id)
        return len(jobs)

    async def stop(self) -> None:
        """Stop listening and close the shells; jobs keep running (their supervisors, or
        Slurm, own them) and the next server re-adopts them. Releases the data dir."""
        if self._idle_watch is not None:
            self._idle_watch.cancel()
        if self._http is not None:
            self._http.stop()
        for follower in list(self.follow_sockets):
            follower.shutdown()
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
        remove_info(self.data_dir, os.getpid())
        self._lock.release()
        log.info("Embedded UCloud server stopped")
