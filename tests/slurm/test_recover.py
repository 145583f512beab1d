"""Slurm jobs outlive the embedded server: after a restart it re-adopts those Slurm still knows."""

from __future__ import annotations

import signal

import pytest

from tests.slurm.conftest import SlurmLocalServer, slurm, terminal_spec

pytestmark = pytest.mark.slurm


def test_restart_readopts_running_jobs_and_catches_up(
    fresh_slurm_local_server: SlurmLocalServer,
) -> None:
    server = fresh_slurm_local_server
    api = server.api
    keep = api.create(terminal_spec(replicas=2))
    gone = api.create(terminal_spec(replicas=1))
    keep_slurm = api.wait_for_state(keep, "RUNNING")["providerGeneratedId"]
    gone_slurm = api.wait_for_state(gone, "RUNNING")["providerGeneratedId"]

    server.process.stop(signal.SIGTERM)  # a plain stop: the Slurm jobs keep running
    slurm("scancel", gone_slurm)  # ends while nobody is watching
    server.restart()
    api = server.api

    job = api.wait_for_state(gone, "SUCCESS", timeout=15)
    assert "CANCELLED" in job["updates"][-1]["status"]
    assert api.retrieve(keep)["status"]["state"] == "RUNNING"
    shell = api.open_shell(keep, 1)
    try:
        assert shell.run("echo $SLURMD_NODENAME $SLURM_JOB_ID").split() == ["n2", keep_slurm]
    finally:
        shell.close()
    slurm("scancel", keep_slurm)
    api.wait_for_state(keep, "SUCCESS", timeout=15)
