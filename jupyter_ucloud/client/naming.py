"""How a job is named and ordered wherever it is shown (the Python twin of the labextension's
``model.ts``): its name if it has one, else ``Job <id>``; running jobs first, then the most
recently active first."""

from __future__ import annotations

from collections.abc import Iterable

from ..protocol import Job, JobState

__all__ = ["job_title", "job_tooltip", "last_activity", "last_status", "sort_jobs"]


def job_title(job: Job) -> str:
    """``"my job"``, or ``"Job 42"`` for a job without a name."""
    name = (job.specification.name or "").strip() if job.specification else ""
    return name or f"Job {job.id}"


def job_tooltip(job: Job) -> str:
    """The full title with the id: ``"my job (job 42)"``, or ``"Job 42"``."""
    title = job_title(job)
    return title if title == f"Job {job.id}" else f"{title} (job {job.id})"


def last_status(job: Job) -> str | None:
    """The last status message UCloud recorded for the job (its ``updates``), if any."""
    return next((u.status for u in reversed(job.updates or []) if u.status), None)


def last_activity(job: Job) -> int:
    """When the job last changed (its latest update, else its creation), in ms."""
    stamps = [u.timestamp for u in job.updates or [] if u.timestamp]
    return max([int(job.created_at or 0), *stamps])


def sort_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Running jobs first, then the most recently active first (a job that just ended comes
    before jobs that ended long ago)."""
    return sorted(
        jobs,
        key=lambda j: (
            j.state != JobState.RUNNING,
            -last_activity(j),
            -int(j.id) if j.id.isdigit() else 0,
        ),
    )
