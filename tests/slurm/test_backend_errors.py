"""The Slurm backend's own errors, on a real cluster: what a shell, an extension or a recovery
gets when Slurm says the job is pending, gone, or not this job any more."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from jupyter_ucloud.local.backends.base import BackendError
from jupyter_ucloud.local.backends.slurm import SlurmBackend
from jupyter_ucloud.local.config import LocalConfig
from jupyter_ucloud.local.store import JobRecord
from jupyter_ucloud.protocol import JobSpecification, JobState
from tests.slurm.conftest import PRODUCTS, SLURM_SETTINGS, terminal_spec

pytestmark = pytest.mark.slurm


class RecordingSink:
    """A ``JobUpdateSink`` that keeps what the backend reports (the server's one writes SQLite)."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, JobState | None, str | None, dict[str, Any]]] = []
        self.backend_state: dict[str, dict[str, Any]] = {}

    async def post_update(
        self, job_id: str, state: JobState | None, status: str | None, **extra: Any
    ) -> None:
        self.updates.append((job_id, state, status, extra))

    def save_backend_state(self, job_id: str, state: dict[str, Any]) -> None:
        self.backend_state[job_id] = state

    def states(self, job_id: str) -> list[JobState | None]:
        return [state for jid, state, _, _ in self.updates if jid == job_id]

    def last_status(self, job_id: str) -> str:
        return [status for jid, _, status, _ in self.updates if jid == job_id][-1] or ""


def _backend(tmp_path: Path, sink: RecordingSink) -> SlurmBackend:
    config = LocalConfig.model_validate({"products": PRODUCTS, "slurm": SLURM_SETTINGS})
    return SlurmBackend(config, sink, tmp_path)


def _job(tmp_path: Path, job_id: str, **spec: Any) -> JobRecord:
    specification = JobSpecification.model_validate(terminal_spec(**spec))
    minutes = specification.time_allocation.to_ms() if specification.time_allocation else None
    return JobRecord(
        id=job_id,
        owner="user",
        project=None,
        specification=specification,
        state=JobState.IN_QUEUE,
        created_at=0,
        work_dir=tmp_path / "jobs" / job_id,
        time_allocation_ms=minutes,
    )


async def _wait(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def test_shell_errors_pending_unknown_and_rank(
    slurm_cluster: dict[str, str], tmp_path: Path
) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        backend = _backend(tmp_path, sink)
        # pending forever: 2 hours in partition `short` (MaxTime 30 minutes)
        pending = _job(tmp_path, "9001", minutes=120, product="short-queue")
        running = _job(tmp_path, "9002", replicas=2)
        try:
            for job in (pending, running):
                await backend.submit(job)
                job.backend_state = sink.backend_state[job.id]
            await _wait(lambda: JobState.RUNNING in sink.states("9002"))
            with pytest.raises(BackendError) as err:
                await backend.open_shell(pending, 0, 80, 24)
            assert err.value.why.startswith(
                "The job is still waiting in the Slurm queue (Partition"
            )
            assert err.value.error_code == "JOB_PENDING"

            with pytest.raises(BackendError) as err:
                await backend.open_shell(running, 2, 80, 24)
            assert err.value.why == "Rank 2 does not exist: the job has 2 node(s) (ranks 0 to 1)"

            stranger = _job(tmp_path, "9003")
            stranger.backend_state = {"slurm_job_id": sink.backend_state["9002"]["slurm_job_id"]}
            with pytest.raises(BackendError) as err:  # a Slurm id that belongs to another job
                await backend.open_shell(stranger, 0, 80, 24)
            assert "no longer knows job" in err.value.why

            forgotten = _job(tmp_path, "9004")
            forgotten.backend_state = {"slurm_job_id": "987654321"}
            with pytest.raises(BackendError) as err:
                await backend.open_shell(forgotten, 0, 80, 24)
            assert err.value.why == "The job has ended: Slurm no longer knows job 987654321"

            await backend.terminate(running)
            running.state = JobState.SUCCESS
            with pytest.raises(BackendError) as err:
                await backend.extend(running, 3_600_000)
            assert "already ended" in err.value.why
        finally:
            for job in (pending, running):
                await backend.terminate(job)
            await backend.close()

    asyncio.run(scenario())


def test_extend_refused_by_slurm_is_a_clear_error(
    slurm_cluster: dict[str, str], tmp_path: Path
) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        backend = _backend(tmp_path, sink)
        job = _job(tmp_path, "9101")
        await backend.submit(job)
        job.backend_state = sink.backend_state[job.id]
        slurm_id = job.backend_state["slurm_job_id"]
        await backend.cli.scancel(slurm_id)  # ended behind the server's back
        await _wait(lambda: sink.states(job.id)[-1] is JobState.SUCCESS)
        with pytest.raises(BackendError) as err:
            await backend.extend(job, 3_600_000)  # the store has not seen the end yet
        assert err.value.why == (
            f"Slurm did not extend the time limit of job {slurm_id}:"
            f" Job has already finished for job {slurm_id}"
        )
        await backend.close()

    asyncio.run(scenario())


def test_recover_adopts_known_jobs_and_fails_lost_ones(
    slurm_cluster: dict[str, str], tmp_path: Path
) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        first = _backend(tmp_path, sink)
        alive = _job(tmp_path, "9201")
        await first.submit(alive)
        alive.backend_state = sink.backend_state[alive.id]
        await _wait(lambda: JobState.RUNNING in sink.states(alive.id))
        await first.close()  # the server stops; the Slurm job keeps running
        alive.state = JobState.RUNNING

        lost = _job(tmp_path, "9202")
        lost.state = JobState.RUNNING
        lost.provider_generated_id = "987654321"
        renamed = _job(tmp_path, "9203")
        renamed.state = JobState.RUNNING
        renamed.provider_generated_id = alive.backend_state["slurm_job_id"]  # not its job
        never = _job(tmp_path, "9204")

        sink.updates.clear()
        second = _backend(tmp_path, sink)
        try:
            await second.recover([alive, lost, renamed, never])
            assert sink.states("9201") == []  # still RUNNING: nothing to report
            assert sink.states("9202") == [JobState.FAILURE]
            assert "no longer knows job 987654321" in sink.last_status("9202")
            assert sink.states("9203") == [JobState.FAILURE]
            assert "is no longer this job" in sink.last_status("9203")
            assert sink.states("9204") == [JobState.FAILURE]
            assert "never reached Slurm" in sink.last_status("9204")
            shell = await second.open_shell(alive, 0, 80, 24)
            shell.write(b"echo adopted-$SLURMD_NODENAME; exit\n")
            output = b""
            while chunk := await shell.read():
                output += chunk
            assert b"adopted-n1" in output
            await second.cli.scancel(alive.backend_state["slurm_job_id"])
            await _wait(lambda: sink.states("9201")[-1:] == [JobState.SUCCESS], timeout=15)
        finally:
            await second.close()

    asyncio.run(scenario())
