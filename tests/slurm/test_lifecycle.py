"""On Slurm too: one embedded server per data dir, and a job's environment (batch step and
shells) built from the allow-list, not from the server's environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import local_cli
from tests.slurm.conftest import (
    SlurmLocalServer,
    batch_spec,
    cancel_jobs_under,
    start_slurm_server,
    terminal_spec,
)

pytestmark = pytest.mark.slurm

CANARIES = {
    "JUPYTER_TOKEN": "canary-jupyter-token-slurm",
    "MY_SECRET": "canary-secret-slurm",
    "SOME_API_KEY": "canary-api-key-slurm",
    "UCLOUD_REFRESH_TOKEN": "canary-refresh-slurm",
    "UNRELATED_SETTING": "canary-unrelated-slurm",
}


@pytest.fixture
def canary_server(slurm_cluster: dict[str, str], tmp_path: Path) -> Iterator[SlurmLocalServer]:
    """A Slurm-backed server started with canary secrets in its environment."""
    saved = {name: os.environ.get(name) for name in CANARIES}
    os.environ.update(CANARIES)
    try:
        server = start_slurm_server(tmp_path / "data")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield server
    server.process.stop()
    cancel_jobs_under(server.data_dir)


def test_no_server_secret_reaches_a_slurm_job(canary_server: SlurmLocalServer) -> None:
    api = canary_server.api
    batch = api.create(batch_spec("env > env.txt"))
    api.wait_for_state(batch, "SUCCESS", timeout=60)
    batch_env = (canary_server.data_dir / "jobs" / batch / "rank-0" / "env.txt").read_text()
    interactive = api.create(terminal_spec())
    api.wait_for_state(interactive, "RUNNING", timeout=60)
    shell = api.open_shell(interactive, 0)
    shell_env = shell.run("env")
    shell.close()
    for env in (batch_env, shell_env):
        for value in CANARIES.values():
            assert value not in env
        assert "UCLOUD_JOB_ID=" in env
        assert "SLURM_JOB_ID=" in env
    assert "TERM=xterm-256color" in shell_env


def test_one_slurm_server_per_data_dir(slurm_local_server: SlurmLocalServer) -> None:
    server = slurm_local_server
    second = subprocess.run(
        [*local_cli("serve", server.data_dir), "--port", "0", "--backend", "slurm"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    assert f"(pid {server.process.proc.pid}" in second.stderr
    assert server.process.proc.poll() is None
    assert server.api.call("GET", "/api/jobs/browse")["items"] is not None
