"""Each Slurm rank's stdout and stderr in ``rank-<r>.out/.err`` (bounded, with the same note as
the process backend's), streamed by ``jobs.follow`` as on the process backend."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from jupyter_ucloud.local.backends.slurm_script import RANK_LAUNCHER
from jupyter_ucloud.protocol import JobState
from tests.local.follow_wire import Follow
from tests.slurm.conftest import SlurmLocalServer, batch_spec


def _launch(
    work: Path, rank: int, limit: int, command: str, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    """The rank launcher of the batch script, as srun runs it on a node (plain bash here)."""
    env = {**os.environ, "SLURM_NODEID": str(rank)}
    argv = ["bash", "-c", RANK_LAUNCHER, "ucloud-rank", str(work), str(limit)]
    return subprocess.run(
        [*argv, "bash", "-c", command], env=env, capture_output=True, timeout=timeout
    )


def test_rank_launcher_captures_each_stream(tmp_path: Path) -> None:
    done = _launch(tmp_path, 1, 1000, 'echo out; echo err >&2; pwd; echo "$UCLOUD_RANK"; exit 3')
    assert done.returncode == 3  # the command's status
    assert done.stdout == b""
    assert done.stderr == b""
    out = tmp_path / "rank-1.out"
    assert out.read_text() == f"out\n{tmp_path / 'rank-1'}\n1\n"
    assert (tmp_path / "rank-1.err").read_text() == "err\n"
    for path in (out, tmp_path / "rank-1.err"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rank_launcher_bounds_the_files(tmp_path: Path) -> None:
    # 5 MB through a 1000-byte limit: the command is never blocked by a full pipe.
    done = _launch(tmp_path, 0, 1000, "head -c 5000000 /dev/zero | tr '\\0' x; echo tail >&2")
    assert done.returncode == 0
    assert (tmp_path / "rank-0.out").read_text() == "x" * 1000 + (
        "\n[jupyter-ucloud: rank 0's stdout passed the limit of 1000 bytes;"
        " the rest was not kept]\n"
    )
    assert (tmp_path / "rank-0.err").read_text() == "tail\n"


@pytest.mark.slurm
def test_follow_a_slurm_batch_job_on_two_ranks(slurm_local_server: SlurmLocalServer) -> None:
    api = slurm_local_server.api
    products = api.call("GET", "/api/jobs/retrieveProducts")
    (multi,) = [
        item
        for item in products["productsByProvider"]["local"]
        if item["product"]["name"] == "compute-multi"
    ]
    assert "jobs.docker.logs" in multi["features"]

    command = (
        'for i in 1 2 3; do echo "out-$UCLOUD_RANK-$i"; echo "err-$UCLOUD_RANK-$i" >&2;'
        " sleep 0.3; done"
    )
    job_id = api.create(batch_spec(command, replicas=2))
    follow = Follow.open(slurm_local_server.url, job_id, api._token())
    follow.until_closed(timeout=120)
    assert follow.close_code == 1000
    assert follow.messages[0].initial_job is not None
    assert follow.states()[-1] is JobState.SUCCESS
    for rank in (0, 1):
        assert follow.text(rank, "stdout") == "".join(f"out-{rank}-{i}\n" for i in (1, 2, 3))
        assert follow.text(rank, "stderr") == "".join(f"err-{rank}-{i}\n" for i in (1, 2, 3))
    work = slurm_local_server.data_dir / "jobs" / job_id
    assert (work / "rank-1.out").read_text() == follow.text(1, "stdout")
