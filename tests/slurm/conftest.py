"""Fixtures of the Slurm tests: a reachable cluster (``scripts/dev-slurm start``), and the
embedded server on its Slurm backend (``slurm_local_server``, reusable by other test areas).

The dev cluster has nodes ``n1``..``nN`` and partitions ``debug`` (default) and ``short``
(MaxTime=30 minutes). The server's config maps product ``short-queue`` to ``short``, and has a
product ``huge-memory`` that no node can hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LocalServerProcess
from tests.slurm.wire import Api

#: Products of the test server: the built-in defaults plus one mapped to partition `short`.
PRODUCTS: list[dict[str, Any]] = [
    {"name": "compute-example", "cpu": 1, "memory_in_gigs": 2},
    {"name": "batch-small", "cpu": 1, "memory_in_gigs": 1, "terminal": False},
    {
        "name": "compute-multi",
        "cpu": 2,
        "memory_in_gigs": 4,
        "time_extension": True,
        "max_replicas": 4,
    },
    {"name": "short-queue", "cpu": 1, "memory_in_gigs": 1, "time_extension": True},
    {"name": "huge-memory", "cpu": 1, "memory_in_gigs": 1_000_000},
]
SLURM_SETTINGS: dict[str, Any] = {"poll_interval": 1, "partitions": {"short-queue": "short"}}


def _cluster_problem() -> str | None:
    """Why the Slurm tests cannot run here, or ``None`` when a controller answers."""
    if not os.environ.get("SLURM_CONF"):
        return 'SLURM_CONF is not set (start a dev cluster: eval "$(scripts/dev-slurm start)")'
    try:
        out = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"scontrol ping failed: {err}"
    if out.returncode != 0 or " is UP" not in out.stdout:
        return f"slurmctld is not reachable: {(out.stdout + out.stderr).strip()}"
    return None


def slurm(*args: str) -> str:
    """Run a Slurm command on the test cluster; its stdout."""
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout


def scontrol_job(slurm_id: str) -> dict[str, str]:
    from jupyter_ucloud.local.backends.slurm_cli import parse_scontrol_record

    return parse_scontrol_record(slurm("scontrol", "show", "job", "-o", slurm_id))


@pytest.fixture(scope="session")
def slurm_cluster() -> dict[str, str]:
    """The environment of a reachable Slurm cluster; skips the test when there is none."""
    problem = _cluster_problem()
    if problem:
        pytest.skip(problem)
    return {"SLURM_CONF": os.environ["SLURM_CONF"]}


def write_slurm_config(path: Path, **slurm_overrides: Any) -> Path:
    config = {
        "backend": "slurm",
        "products": PRODUCTS,
        "slurm": {**SLURM_SETTINGS, **slurm_overrides},
    }
    path.write_text(json.dumps(config))
    return path


def cancel_jobs_under(data_dir: Path) -> None:
    """scancel every Slurm job whose working directory is in ``data_dir`` (test clean-up)."""
    out = subprocess.run(
        ["squeue", "--noheader", "--format=%i|%Z"], capture_output=True, text=True, timeout=30
    ).stdout
    ids = [
        line.split("|", 1)[0]
        for line in out.splitlines()
        if "|" in line and line.split("|", 1)[1].startswith(str(data_dir))
    ]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


@dataclass
class SlurmLocalServer:
    """The embedded server on the Slurm backend, and a UCloud wire client for it."""

    process: LocalServerProcess
    api: Api

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def data_dir(self) -> Path:
        return self.process.data_dir

    def restart(self) -> None:
        self.process.restart()
        self.api = Api(self.process.url, self.process.refresh_token, self.process.provider_id)


def start_slurm_server(data_dir: Path) -> SlurmLocalServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    config = write_slurm_config(data_dir.parent / f"{data_dir.name}-config.json")
    process = LocalServerProcess(
        data_dir, config_file=config, extra_args=["--backend", "slurm"]
    ).start()
    return SlurmLocalServer(process, Api(process.url, process.refresh_token, process.provider_id))


@pytest.fixture(scope="session")
def slurm_local_server(
    slurm_cluster: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SlurmLocalServer]:
    """`jupyter ucloud local --backend slurm` for the whole session (jobs polled every 1 s).
    Its Slurm jobs are cancelled at the end (they outlive the server by design)."""
    server = start_slurm_server(tmp_path_factory.mktemp("ucloud-slurm") / "data")
    yield server
    server.process.stop()
    cancel_jobs_under(server.data_dir)


@pytest.fixture
def fresh_slurm_local_server(
    slurm_cluster: dict[str, str], tmp_path: Path
) -> Iterator[SlurmLocalServer]:
    """A Slurm-backed embedded server of the test's own (for restarts)."""
    server = start_slurm_server(tmp_path / "data")
    yield server
    server.process.stop()
    cancel_jobs_under(server.data_dir)


def terminal_spec(
    replicas: int = 1, minutes: int = 10, product: str = "compute-multi"
) -> dict[str, Any]:
    return {
        "application": {"name": "terminal", "version": "1"},
        "product": {"id": product, "category": product, "provider": "local"},
        "replicas": replicas,
        "timeAllocation": {"hours": 0, "minutes": minutes, "seconds": 0},
        "parameters": {},
        "resources": [],
    }


def batch_spec(command: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "application": {"name": "batch", "version": "1"},
        "product": {"id": "compute-multi", "category": "compute-multi", "provider": "local"},
        "replicas": replicas,
        "timeAllocation": {"hours": 0, "minutes": 10, "seconds": 0},
        "parameters": {"command": {"type": "text", "value": command}},
        "resources": [],
    }


@dataclass
class TimeLimitedJob:
    job_id: str
    created: float  # time.monotonic() at creation


@pytest.fixture(scope="session")
def time_limited_job(slurm_local_server: SlurmLocalServer) -> TimeLimitedJob:
    """A 1-minute terminal job. Slurm checks time limits every 30 s (PERIODIC_TIMEOUT, compiled
    in), so it ends 60-90 s after it started; it is created as early as possible (see
    ``_start_time_limited_job_early``) so that the wait overlaps the other tests."""
    job_id = slurm_local_server.api.create(terminal_spec(replicas=1, minutes=1))
    return TimeLimitedJob(job_id, time.monotonic())


@pytest.fixture(scope="session", autouse=True)
def _start_time_limited_job_early(request: pytest.FixtureRequest) -> None:
    """When the time-limit test is selected, create its job before the first Slurm test runs."""
    wanted = any(
        "time_limited_job" in getattr(item, "fixturenames", ()) for item in request.session.items
    )
    if wanted and _cluster_problem() is None:
        request.getfixturevalue("time_limited_job")
