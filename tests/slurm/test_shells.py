"""Shells into Slurm jobs over the provider websocket: `srun --overlap --pty` on rank r's node."""

from __future__ import annotations

import time

import pytest

from tests.slurm.conftest import SlurmLocalServer, slurm, terminal_spec

pytestmark = pytest.mark.slurm


def settled_size(shell, expected: str, timeout: float = 5.0) -> str:
    """`stty size` once srun has passed the resize on: it forwards SIGWINCH to the remote pty
    asynchronously, so the first `stty size` after a resize may still see the old size."""
    deadline = time.monotonic() + timeout
    while True:
        size = shell.run("stty size").strip()
        if size == expected or time.monotonic() > deadline:
            return size
        time.sleep(0.1)


def test_shell_per_rank_lands_on_its_node_and_resizes(slurm_local_server: SlurmLocalServer) -> None:
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=2))
    slurm_id = api.wait_for_state(job_id, "RUNNING")["providerGeneratedId"]
    work = slurm_local_server.data_dir / "jobs" / job_id
    shells = []
    try:
        for rank, node in ((1, "n2"), (0, "n1")):
            shell = api.open_shell(job_id, rank, cols=100, rows=30)
            shells.append(shell)
            assert shell.run("echo $SLURMD_NODENAME").strip() == node
            env = shell.run('echo "$UCLOUD_JOB_ID $UCLOUD_RANK $TERM $SLURM_JOB_ID"').split()
            assert env == [job_id, str(rank), "xterm-256color", slurm_id]
            assert shell.run("pwd").strip() == str(work / f"rank-{rank}")
            assert shell.run("stty size").strip() == "30 100"
            assert shell.run("tty").strip().startswith("/dev/pts/")
        shell = shells[0]  # rank 1
        shell.resize(132, 50)
        assert settled_size(shell, "50 132") == "50 132"
        shell.resize(90, 20)
        assert settled_size(shell, "20 90") == "20 90"
        assert shell.run("echo $SLURMD_NODENAME").strip() == "n2"
    finally:
        for shell in shells:
            shell.close()
        api.terminate(job_id)


def test_scancel_with_shell_open_ends_job_and_closes_socket(
    slurm_local_server: SlurmLocalServer,
) -> None:
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=1))
    job = api.wait_for_state(job_id, "RUNNING")
    shell = api.open_shell(job_id, 0)
    try:
        assert shell.run("echo ready").strip() == "ready"
        shell.send("sleep 1000\n")
        time.sleep(0.3)
        started = time.monotonic()
        slurm("scancel", job["providerGeneratedId"])  # as a cluster admin would
        closed_after = shell.wait_closed(timeout=15)
        job = api.wait_for_state(job_id, "SUCCESS", timeout=15)
        ended_after = time.monotonic() - started
    finally:
        shell.close()
    assert closed_after < 10, f"socket closed only {closed_after:.1f} s after scancel"
    assert ended_after < 12, f"job SUCCESS only {ended_after:.1f} s after scancel"
    assert "CANCELLED" in job["updates"][-1]["status"]


def test_terminate_through_the_api_closes_the_shell_at_once(
    slurm_local_server: SlurmLocalServer,
) -> None:
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=1))
    api.wait_for_state(job_id, "RUNNING")
    shell = api.open_shell(job_id, 0)
    try:
        assert shell.run("echo $SLURMD_NODENAME").strip() == "n1"
        started = time.monotonic()
        api.terminate(job_id)
        closed_after = shell.wait_closed(timeout=10)
    finally:
        shell.close()
    assert closed_after < 3
    assert time.monotonic() - started < 4
    assert api.retrieve(job_id)["status"]["state"] == "SUCCESS"


def test_no_shell_on_an_ended_job(slurm_local_server: SlurmLocalServer) -> None:
    from tests.slurm.wire import ApiError

    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=1))
    api.wait_for_state(job_id, "RUNNING")
    api.terminate(job_id)
    api.wait_for_state(job_id, "SUCCESS")
    with pytest.raises(ApiError) as err:
        api.open_shell(job_id, 0)
    assert err.value.status == 400
    assert "already ended" in str(err.value.body)
