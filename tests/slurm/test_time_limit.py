"""Time limits: Slurm's TIMEOUT ends a job as EXPIRED; extending a job moves Slurm's limit."""

from __future__ import annotations

import time

import pytest

from tests.slurm.conftest import SlurmLocalServer, TimeLimitedJob, scontrol_job, terminal_spec
from tests.slurm.wire import ApiError

pytestmark = pytest.mark.slurm


def test_extend_moves_the_slurm_time_limit(slurm_local_server: SlurmLocalServer) -> None:
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=1, minutes=10))
    job = api.wait_for_state(job_id, "RUNNING")
    slurm_id = job["providerGeneratedId"]
    api.extend(job_id, hours=1, minutes=5)
    assert scontrol_job(slurm_id)["TimeLimit"] == "01:15:00"
    job = api.retrieve(job_id)
    assert job["specification"]["timeAllocation"] == {"hours": 1, "minutes": 15, "seconds": 0}
    assert job["updates"][-1]["newTimeAllocation"] == 75 * 60_000
    api.terminate(job_id)
    api.wait_for_state(job_id, "SUCCESS")
    with pytest.raises(ApiError) as err:
        api.extend(job_id, hours=1)
    assert err.value.status == 400


def test_time_limit_ends_as_expired(
    slurm_local_server: SlurmLocalServer, time_limited_job: TimeLimitedJob
) -> None:
    """A 1-minute job: Slurm kills it at its next 30-s limit check, 60-90 s after its start.
    The job was created at the start of the session, so most of the wait is already over."""
    api = slurm_local_server.api
    job_id = time_limited_job.job_id
    waited = time.monotonic() - time_limited_job.created
    job = api.wait_for_state(
        job_id, "EXPIRED", "SUCCESS", "FAILURE", timeout=max(5.0, 110 - waited)
    )
    assert job["status"]["state"] == "EXPIRED"
    last = job["updates"][-1]["status"]
    assert "time limit" in last
    assert "TIMEOUT" in last
    assert scontrol_job(job["providerGeneratedId"])["JobState"] == "TIMEOUT"
