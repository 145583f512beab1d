"""Everything the embedded server writes is its user's alone (files 0600, directories 0700),
even when it is started with a umask that lets everyone read and write."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from jupyter_ucloud.server.embedded import local_server_command

from .conftest import Api, ShellSocket, api_for, batch_spec, terminal_spec

LOCAL = [sys.executable, "-m", "jupyter_ucloud", "local"]


class _Server:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir

    @property
    def refresh_token(self) -> str:
        return (self.data_dir / "refresh_token").read_text().strip()


def _modes(root: Path) -> dict[str, str]:
    """``{relative path: octal mode}`` of ``root`` and everything under it."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def _wrong_modes(root: Path) -> dict[str, str]:
    wrong = {}
    for name, mode in _modes(root).items():
        path = root / name
        expected = "0o700" if path.is_dir() else "0o600"
        if not path.is_symlink() and mode != expected:
            wrong[name] = mode
    return wrong


def test_files_and_directories_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "ucloud-local"  # the server makes it
    ready = tmp_path / "run" / "ready.json"  # and the ready file's directory
    home = tmp_path / "home"
    home.mkdir()
    with (tmp_path / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            local_server_command(data_dir, ready),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(home)},
            start_new_session=True,
            umask=0,  # everything would be world-writable without the server's own umask
        )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        api: Api = api_for(_Server(info["url"], data_dir))
        batch, terminal = api.create(batch_spec("echo done"), terminal_spec())
        api.wait_for_state(batch, "SUCCESS")
        api.wait_for_state(terminal, "RUNNING")
        shell = ShellSocket(api.open_shell_session(terminal))
        try:
            shell.initialize()
        finally:
            shell.close()
        created = subprocess.run(
            [*LOCAL, "--data-dir", str(data_dir), "--create-api-token"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            umask=0,
        )
        assert created.stdout.startswith("uc")

        names = _modes(data_dir)
        for expected in ("jobs.sqlite", "jobs.sqlite-wal", "jobs.sqlite-shm", "refresh_token"):
            assert expected in names, sorted(names)
        for captured in ("rank-0.out", "rank-0.err", "supervisor.json", "supervisor-spec.json"):
            assert f"jobs/{batch}/{captured}" in names, sorted(names)
        assert f"jobs/{terminal}/rank-0" in names, sorted(names)
        assert _wrong_modes(data_dir) == {}
        assert oct(stat.S_IMODE(ready.stat().st_mode)) == "0o600"
        assert oct(stat.S_IMODE(ready.parent.stat().st_mode)) == "0o700"
        api.terminate(terminal)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert proc.returncode == 0, (tmp_path / "server.log").read_text()
    assert _wrong_modes(data_dir) == {}
