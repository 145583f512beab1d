"""Find, or start, the embedded UCloud-compatible server (`jupyter ucloud local`) of a data dir.

Runs with the Jupyter server when no UCloud host is configured. The embedded server is not the
Jupyter server's to stop: it holds its data dir's lock for its life (``local.instance``), outlives
the Jupyter server while it has jobs (their processes live under supervisors of their own), and
exits by itself after ``idle_timeout`` seconds without jobs or clients. So this module:

* finds a live server of the data dir (its ``server.json``, its lock held, its pid alive) and
  uses it - the one a previous Jupyter server started, or one started by hand;
* otherwise starts one, detached (a session of its own), and waits for it to announce itself.
  Two Jupyter servers starting at once end up on the same server: the second ``jupyter ucloud
  local`` finds the lock taken, exits 0, and both then read the winner's ``server.json``;
* after a failed start (a corrupt job store, a port in use), waits before trying again, 5 s then
  doubling up to 5 minutes, and reports the failure (``last_error``) instead of respawning on
  every request.

Everything here is asynchronous: the child is spawned with ``asyncio.create_subprocess_exec`` and
files are read in a thread or polled with ``asyncio.sleep``, so the event loop never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from pathlib import Path

from ..local.instance import ServerInfo, find_running, pid_alive

__all__ = [
    "EmbeddedServer",
    "EmbeddedServerError",
    "EmbeddedServerInfo",
    "local_server_command",
]

#: What the extension knows of the running embedded server (kept under its old name).
EmbeddedServerInfo = ServerInfo

FIRST_BACKOFF = 5.0
MAX_BACKOFF = 300.0


def local_server_command(
    data_dir: Path,
    ready_file: Path | None = None,
    config_file: str | Path | None = None,
    idle_timeout: float | None = None,
) -> list[str]:
    """``jupyter ucloud local`` on a free loopback port, in this Python (announcing itself in
    ``ready_file`` too, if given)."""
    args = [sys.executable, "-m", "jupyter_ucloud", "local", "--port", "0"]
    args += ["--data-dir", str(data_dir)]
    if ready_file is not None:
        args += ["--ready-file", str(ready_file)]
    if config_file:
        args += ["--config", str(config_file)]
    if idle_timeout:
        args += ["--idle-timeout", f"{idle_timeout:g}"]
    return args


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started (the message says why; it holds no secret)."""


class EmbeddedServer:
    """The embedded server of one data dir, found or started on demand (module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        config_file: str = "",
        start_timeout: float = 60.0,
        idle_timeout: float = 600.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config_file = config_file
        self.start_timeout = start_timeout
        self.idle_timeout = idle_timeout
        self.log = log or logging.getLogger(__name__)
        self._starting: asyncio.Task[ServerInfo] | None = None
        self._children: set[asyncio.Task[int]] = set()
        self.info: ServerInfo | None = None
        #: Why the last start failed, while starts are held back (``None``: no failure).
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._backoff = FIRST_BACKOFF

    @property
    def log_file(self) -> Path:
        return self.data_dir / "embedded-server.log"

    async def ensure_started(self) -> ServerInfo:
        """The live server's info: the one known, one found, or a new one (never blocks)."""
        info = self.info
        if info is not None and pid_alive(info.pid):
            return info
        if info is not None:
            self.log.warning("The embedded UCloud server (pid %d) has exited", info.pid)
            self.info = None
        if self._starting is None or self._starting.done():
            now = time.monotonic()
            if self.last_error is not None and now < self._retry_at:
                raise EmbeddedServerError(
                    f"{self.last_error} (next attempt in {self._retry_at - now:.0f} s)"
                )
            self._starting = asyncio.ensure_future(self._find_or_start())
        return await asyncio.shield(self._starting)

    async def _find_or_start(self) -> ServerInfo:
        try:
            info = await self._find(wait=0.0)
            if info is None:
                info = await self._start()
            else:
                self.log.info(
                    "Using the embedded UCloud server already running for %s (pid %d, %s)",
                    self.data_dir,
                    info.pid,
                    info.url,
                )
        except EmbeddedServerError as err:
            self.last_error = str(err)
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            self.log.error("%s; trying again in %.0f s", err, self._retry_at - time.monotonic())
            raise
        self.last_error = None
        self._backoff = FIRST_BACKOFF
        self.info = info
        return info

    async def _find(self, wait: float) -> ServerInfo | None:
        return await asyncio.to_thread(find_running, self.data_dir, wait)

    async def _start(self) -> ServerInfo:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = local_server_command(
            self.data_dir, config_file=self.config_file, idle_timeout=self.idle_timeout
        )
        with self.log_file.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # not in the Jupyter server's process group: it stays
            )
        reaper = asyncio.ensure_future(process.wait())  # reaped whenever it exits
        self._children.add(reaper)
        reaper.add_done_callback(self._children.discard)
        self.log.info(
            "Starting the embedded UCloud server (pid %s, data in %s)", process.pid, self.data_dir
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while loop.time() < deadline:
            info = await self._find(wait=0.0)
            if info is not None:
                self.log.info("The embedded UCloud server listens on %s", info.url)
                return info
            if process.returncode is not None:
                if process.returncode == 0:
                    # Another server took the data dir first (a second Jupyter server starting
                    # at the same moment): it announces itself shortly.
                    info = await self._find(wait=max(0.0, deadline - loop.time()))
                    if info is not None:
                        return info
                raise EmbeddedServerError(
                    f"The embedded UCloud server exited with status {process.returncode}"
                    f"{self._last_log_line()}; see {self.log_file}"
                )
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise EmbeddedServerError(
            f"The embedded UCloud server did not start within {self.start_timeout:g} s; "
            f"see {self.log_file}"
        )

    def _last_log_line(self) -> str:
        """The child's last words (its own one-line explanation, e.g. a corrupt job store)."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(0, 2)
                log.seek(max(0, log.tell() - 4096))
                lines = log.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        last = lines[-1].strip() if lines else ""
        return f": {last}" if last else ""
