"""A damaged ``jobs.sqlite``: `jupyter ucloud local` says in one line which file, what is wrong
and what to do, exits 1, and leaves the file as it was (it may be worth rescuing)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_ucloud.server.embedded import local_server_command

from ..conftest import LocalServerProcess
from .conftest import api_for, terminal_spec


@pytest.fixture
def used_data_dir(tmp_path: Path) -> Path:
    """A data dir whose store holds a few jobs (made by a real server, then stopped)."""
    server = LocalServerProcess(tmp_path / "ucloud-local").start()
    try:
        api = api_for(server)
        for job_id in api.create(*[terminal_spec()] * 3):
            api.terminate(job_id)
    finally:
        server.stop()
    return server.data_dir


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], store: Path) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if str(store) in line]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "is damaged" in line, line
    assert "move it away" in line, line
    assert "restore it from a backup" in line, line


@pytest.mark.parametrize("damage", ["whole file", "after the header page"])
def test_damaged_store_stops_the_server_with_one_clear_line(
    used_data_dir: Path, damage: str
) -> None:
    store = used_data_dir / "jobs.sqlite"
    if damage == "whole file":
        store.write_bytes(os.urandom(store.stat().st_size))
    else:
        with store.open("r+b") as file:
            file.seek(4096)
            file.write(os.urandom(store.stat().st_size - 4096))
    before = _digest(store)
    ready = used_data_dir / "ready.json"

    result = _run(local_server_command(used_data_dir, ready))
    _assert_one_clear_line(result, store)
    assert not ready.exists()
    assert _digest(store) == before

    command = ["-m", "jupyter_ucloud", "local", "--data-dir", str(used_data_dir)]
    token = _run([sys.executable, *command, "--create-api-token"])
    _assert_one_clear_line(token, store)
    assert token.stdout == ""
    assert _digest(store) == before


def test_store_moved_away_starts_empty(used_data_dir: Path) -> None:
    """The advice works: with the damaged file moved away the server starts, with no jobs."""
    store = used_data_dir / "jobs.sqlite"
    store.write_bytes(os.urandom(store.stat().st_size))
    store.rename(store.with_name("jobs.sqlite.damaged"))
    server = LocalServerProcess(used_data_dir).start()
    try:
        api = api_for(server)
        assert api.ok("jobs.browse")["items"] == []
    finally:
        server.stop()
