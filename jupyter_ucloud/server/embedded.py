"""Start and stop the embedded UCloud-compatible server (`jupyter ucloud local`) as a child process.

Runs with the Jupyter server when no UCloud host is configured. Everything here is asynchronous:
the child is spawned with ``asyncio.create_subprocess_exec`` and its ready file is polled with
``asyncio.sleep``, so the Jupyter server's event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EmbeddedServer", "EmbeddedServerError", "EmbeddedServerInfo", "local_server_command"]


def local_server_command(
    data_dir: Path, ready_file: Path, config_file: str | Path | None = None
) -> list[str]:
    """``jupyter ucloud local`` on a free loopback port, in this Python, announcing itself in
    ``ready_file`` once it listens."""
    args = [
        sys.executable,
        "-m",
        "jupyter_ucloud",
        "local",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--ready-file",
        str(ready_file),
    ]
    if config_file:
        args += ["--config", str(config_file)]
    return args


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started (the message says why; it holds no secret)."""


@dataclass(frozen=True)
class EmbeddedServerInfo:
    url: str
    pid: int
    refresh_token_file: Path
    provider_id: str

    def read_refresh_token(self) -> str:
        return self.refresh_token_file.read_text().strip()


class EmbeddedServer:
    """One `jupyter ucloud local` child, started once on demand and stopped with the server."""

    def __init__(
        self,
        data_dir: Path,
        config_file: str = "",
        start_timeout: float = 60.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config_file = config_file
        self.start_timeout = start_timeout
        self.log = log or logging.getLogger(__name__)
        self._process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[EmbeddedServerInfo] | None = None
        self.info: EmbeddedServerInfo | None = None

    @property
    def ready_file(self) -> Path:
        return self.data_dir / "jupyter-server-ready.json"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "embedded-server.log"

    async def ensure_started(self) -> EmbeddedServerInfo:
        """Start the child if needed and wait (without blocking the loop) until it listens."""
        if self.info is not None and self._process is not None and self._process.returncode is None:
            return self.info
        if self._starting is None or self._starting.done():
            if self._starting is not None and self._starting.done() and self.info is not None:
                # It was running and has died: start it again.
                self.log.warning("The embedded UCloud server exited; starting it again")
                self.info = None
            self._starting = asyncio.ensure_future(self._start())
        return await asyncio.shield(self._starting)

    async def _start(self) -> EmbeddedServerInfo:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.ready_file.unlink()
        args = local_server_command(self.data_dir, self.ready_file, self.config_file)
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        self.log.info(
            "Starting the embedded UCloud server (pid %s, data in %s)",
            self._process.pid,
            self.data_dir,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while loop.time() < deadline:
            info = self._read_ready_file()
            if info is not None:
                self.info = info
                self.log.info("The embedded UCloud server listens on %s", info.url)
                return info
            if self._process.returncode is not None:
                raise EmbeddedServerError(
                    f"The embedded UCloud server exited with status {self._process.returncode}; "
                    f"see {self.log_file}"
                )
            await asyncio.sleep(0.05)
        await self.stop()
        raise EmbeddedServerError(
            f"The embedded UCloud server did not start within {self.start_timeout:g} s; "
            f"see {self.log_file}"
        )

    def _read_ready_file(self) -> EmbeddedServerInfo | None:
        try:
            data = json.loads(self.ready_file.read_text())
            return EmbeddedServerInfo(
                url=str(data["url"]).rstrip("/"),
                pid=int(data["pid"]),
                refresh_token_file=Path(
                    data.get("refreshTokenFile") or self.data_dir / "refresh_token"
                ),
                provider_id=str(data.get("providerId") or "local"),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not written yet (it is written atomically, but be lenient)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the child: SIGTERM, then SIGKILL to its process group after ``timeout``."""
        process, self._process = self._process, None
        self.info = None
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        self.log.info("Stopped the embedded UCloud server")
