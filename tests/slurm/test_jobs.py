"""Jobs of the embedded server on real Slurm, over real HTTP: sbatch options, states, exit codes."""

from __future__ import annotations

import time

import pytest

from tests.slurm.conftest import (
    SlurmLocalServer,
    batch_spec,
    scontrol_job,
    slurm,
    terminal_spec,
)

pytestmark = pytest.mark.slurm


def _statuses(job: dict) -> list[str]:
    return [u.get("status") or "" for u in job["updates"]]


def test_two_rank_job_is_one_allocation_of_two_nodes(slurm_local_server: SlurmLocalServer) -> None:
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=2, minutes=10))
    job = api.wait_for_state(job_id, "RUNNING")
    slurm_id = job["providerGeneratedId"]
    assert slurm_id.isdigit()
    fields = scontrol_job(slurm_id)
    assert fields["JobName"] == f"ucloud-{job_id}"
    assert fields["JobState"] == "RUNNING"
    assert fields["NumNodes"] == "2"
    assert fields["NodeList"] == "n[1-2]"
    assert fields["TimeLimit"] == "00:10:00"
    assert fields["Partition"] == "debug"
    assert fields["MinMemoryNode"] == "4G"
    assert fields["NumCPUs"] == "4"  # 2 CPUs (compute-multi) on each of 2 nodes
    assert fields["WorkDir"] == str(slurm_local_server.data_dir / "jobs" / job_id)
    statuses = _statuses(job)
    assert f"Submitted to Slurm as job {slurm_id}" in statuses
    assert any(s.startswith("Running on n[1-2]") for s in statuses)

    api.terminate(job_id)
    job = api.wait_for_state(job_id, "SUCCESS", timeout=5)
    assert "cancelled" in _statuses(job)[-1]
    assert scontrol_job(slurm_id)["JobState"] in ("CANCELLED", "COMPLETING")


def test_batch_job_success_runs_on_every_rank(slurm_local_server: SlurmLocalServer) -> None:
    api = slurm_local_server.api
    job_id = api.create(
        batch_spec(
            'echo "rank $UCLOUD_RANK of job $UCLOUD_JOB_ID on $SLURMD_NODENAME" > out.txt',
            replicas=2,
        )
    )
    job = api.wait_for_state(job_id, "SUCCESS", "FAILURE")
    assert job["status"]["state"] == "SUCCESS", _statuses(job)
    assert "COMPLETED" in _statuses(job)[-1]
    assert "exit code 0" in _statuses(job)[-1]
    work = slurm_local_server.data_dir / "jobs" / job_id
    assert (work / "rank-0" / "out.txt").read_text() == f"rank 0 of job {job_id} on n1\n"
    assert (work / "rank-1" / "out.txt").read_text() == f"rank 1 of job {job_id} on n2\n"


def test_batch_job_exit_code_decides_failure(slurm_local_server: SlurmLocalServer) -> None:
    api = slurm_local_server.api
    job_id = api.create(batch_spec('[ "$UCLOUD_RANK" = 1 ] && exit 3; exit 0', replicas=2))
    job = api.wait_for_state(job_id, "SUCCESS", "FAILURE")
    assert job["status"]["state"] == "FAILURE"
    last = _statuses(job)[-1]
    assert "Slurm job" in last
    assert "FAILED" in last
    assert "exit code 3" in last
    assert "NonZeroExitCode" in last


def test_product_maps_to_partition_and_queue_reason_is_reported(
    slurm_local_server: SlurmLocalServer,
) -> None:
    # Partition `short` allows 30 minutes: a 2-hour job waits there (Reason=Partition...).
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=1, minutes=120, product="short-queue"))
    job = api.wait_for_state(job_id, "IN_QUEUE")
    slurm_id = job["providerGeneratedId"]
    fields = scontrol_job(slurm_id)
    assert fields["Partition"] == "short"
    assert fields["JobState"] == "PENDING"
    reason = fields["Reason"]
    assert reason in ("PartitionConfig", "PartitionTimeLimit")
    deadline = time.monotonic() + 5
    while not any("(Partition" in s for s in _statuses(api.retrieve(job_id))):
        assert time.monotonic() < deadline, _statuses(api.retrieve(job_id))
        time.sleep(0.2)
    api.terminate(job_id)
    api.wait_for_state(job_id, "SUCCESS", timeout=5)


def test_job_that_cannot_fit_waits_with_slurms_reason(slurm_local_server: SlurmLocalServer) -> None:
    # compute-multi allows 4 replicas; a cluster of fewer nodes queues such a job
    # (EnforcePartLimits=NO, Slurm's default) with Reason=PartitionNodeLimit, shown in the updates.
    nodes = len(slurm("sinfo", "--noheader", "--Node", "--partition=debug", "--format=%N").split())
    if nodes >= 4:
        pytest.skip(f"the cluster has {nodes} nodes: a 4-node job fits")
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=4))
    deadline = time.monotonic() + 10
    while not any("PartitionNodeLimit" in s for s in _statuses(api.retrieve(job_id))):
        assert time.monotonic() < deadline, _statuses(api.retrieve(job_id))
        time.sleep(0.2)
    assert api.retrieve(job_id)["status"]["state"] == "IN_QUEUE"
    api.terminate(job_id)
    api.wait_for_state(job_id, "SUCCESS", timeout=5)


def test_job_slurm_refuses_fails_with_slurms_reason(slurm_local_server: SlurmLocalServer) -> None:
    # Product `huge-memory` asks for more memory than any node has: sbatch refuses at once.
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=1, product="huge-memory"))
    job = api.wait_for_state(job_id, "FAILURE", timeout=10)
    last = _statuses(job)[-1]
    assert last.startswith("Slurm did not accept the job: sbatch: error:"), last
    assert "node configuration is not available" in last
    assert "providerGeneratedId" not in job
