"""Fixtures shared by every test: the embedded UCloud-compatible server as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from jupyter_ucloud.server.embedded import local_server_command

pytest_plugins = ["pytest_jupyter.jupyter_server"]


def isolated_shell_env(data_dir: Path) -> dict[str, str]:
    """The environment for servers whose login shells the tests drive.

    HOME points at an empty directory so `bash --login` reads no dotfiles of the machine: they
    make prompts unpredictable, and some (pyenv's `rehash`) take a lock that a shell killed at
    the wrong moment leaves behind, hanging every later shell.
    """
    home = data_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "HOME": str(home)}


@dataclass
class LocalServerProcess:
    """`jupyter ucloud local` running as a child process on a random loopback port."""

    data_dir: Path
    config_file: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    provider_id: str = "local"
    log_file: Path | None = None

    @property
    def refresh_token(self) -> str:
        return (self.data_dir / "refresh_token").read_text().strip()

    def start(self, timeout: float = 30.0) -> LocalServerProcess:
        ready = self.data_dir / "ready.json"
        ready.unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [*local_server_command(self.data_dir, ready, self.config_file), *self.extra_args]
        self.log_file = self.data_dir / "server.log"
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=isolated_shell_env(self.data_dir),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.exists():
                try:
                    info = json.loads(ready.read_text())
                except ValueError:
                    info = None
                if info:
                    self.url = info["url"]
                    self.provider_id = info.get("providerId", "local")
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded server did not start:\n{self.log_file.read_text()[-4000:]}")

    def stop(self, sig: int | None = None, timeout: float = 15.0) -> None:
        """``jupyter ucloud local stop``: the server ends its jobs and exits. If it is gone
        already (a test killed it), its jobs' supervisors are asked directly, so that no job
        outlives the test. With ``sig``: just that signal (SIGTERM keeps the jobs running)."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            if sig is None:
                self._stop_orphaned_jobs(timeout)
            return
        self.proc.send_signal(signal.SIGUSR1 if sig is None else sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            if sig is None:
                self._stop_orphaned_jobs(timeout)

    def _stop_orphaned_jobs(self, timeout: float) -> None:
        subprocess.run(
            [*local_cli("stop", self.data_dir), "--timeout", str(timeout)],
            check=False,
            capture_output=True,
            timeout=timeout + 30,
        )

    def restart(self) -> LocalServerProcess:
        """Stop the server (SIGTERM: its jobs keep running) and start it again."""
        self.stop(signal.SIGTERM)
        return self.start()


def access_token(server: LocalServerProcess) -> str:
    """An access token from the embedded server ``server``, for its user's refresh token."""
    answer = requests.post(
        server.url + "/auth/refresh",
        headers={"Authorization": f"Bearer {server.refresh_token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["accessToken"])


def local_cli(action: str, data_dir: Path) -> list[str]:
    """``jupyter ucloud local <action> --data-dir <data_dir>`` in this Python."""
    return [sys.executable, "-m", "jupyter_ucloud", "local", action, "--data-dir", str(data_dir)]


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    """One embedded server for the whole session (default products and applications)."""
    server = LocalServerProcess(tmp_path_factory.mktemp("ucloud-local")).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_local_server(tmp_path: Path) -> Iterator[LocalServerProcess]:
    """An embedded server of the test's own, for tests that restart or break it."""
    server = LocalServerProcess(tmp_path / "ucloud-local").start()
    yield server
    server.stop()
