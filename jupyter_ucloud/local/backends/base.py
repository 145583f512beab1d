"""The contract between the embedded server and the backends that run jobs (process, Slurm).

The server creates a backend with ``Backend(config, sink, data_dir)``. It calls ``recover`` once
at start with every job the store still has as IN_QUEUE/RUNNING/SUSPENDED, then ``submit`` for
each new job. Jobs outlive the server: ``close`` (server stop) leaves them running. Backends
report every state change through ``sink.post_update``; the sink records
a ``JobUpdate``, moves the job's state (never out of a final state), sets ``startedAt`` on the
first RUNNING, and closes the job's shells when the job ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ...protocol import JobState

if TYPE_CHECKING:
    from ..pty import PtyProcess
    from ..store import JobRecord

__all__ = ["Backend", "BackendError", "JobUpdateSink"]


class BackendError(Exception):
    """A request the backend cannot honour. ``status`` and ``why`` go to the client as a UCloud
    error body (``why`` must not contain secrets)."""

    def __init__(self, why: str, status: int = 400, error_code: str = "") -> None:
        super().__init__(why)
        self.why = why
        self.status = status
        self.error_code = error_code


class JobUpdateSink(Protocol):
    async def post_update(
        self,
        job_id: str,
        state: JobState | None,
        status: str | None,
        *,
        new_time_allocation_ms: int | None = None,
        provider_generated_id: str | None = None,
    ) -> None:
        """Record an update of ``job_id`` (a state change and/or a status message)."""
        ...

    def save_backend_state(self, job_id: str, state: dict[str, Any]) -> None:
        """Persist the backend's private data of a job (``JobRecord.backend_state``)."""
        ...

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job as it is stored now."""
        ...


class Backend(Protocol):
    async def submit(self, job: JobRecord) -> None:
        """Start the job's ranks (or queue them); returns once submitted, reports via the sink."""
        ...

    async def terminate(self, job: JobRecord, why: str = "The job was terminated") -> None:
        """Stop every rank; the job then ends as SUCCESS (UCloud's "cancelled") with ``why``
        as its status. Returns once the job's processes are gone."""
        ...

    async def extend(self, job: JobRecord, new_allocation_ms: int) -> None:
        """Move the job's deadline to ``startedAt + new_allocation_ms`` (or raise BackendError)."""
        ...

    async def open_shell(self, job: JobRecord, rank: int, cols: int, rows: int) -> PtyProcess:
        """A login shell on ``rank`` of a running job, in that rank's working directory, with
        ``TERM=xterm-256color``, ``UCLOUD_JOB_ID`` and ``UCLOUD_RANK`` set."""
        ...

    async def refresh(self, job: JobRecord) -> None:
        """Learn the job's current state now instead of at the next poll (one of its shells
        just ended: was it the job that ended?). Posts any change to the sink."""
        ...

    async def recover(self, jobs: list[JobRecord]) -> None:
        """After a restart: re-adopt these jobs, or end them (FAILURE with an update saying why)."""
        ...

    async def close(self) -> None:
        """Server shutdown: end the shells and stop watching; the jobs keep running (a later
        server's ``recover`` re-adopts them)."""
        ...
