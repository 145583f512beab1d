"""Slurm job states -> UCloud job states, and the status line recorded with each change."""

from __future__ import annotations

from jupyter_ucloud.protocol import JobState

from .slurm_cli import SlurmJobInfo

__all__ = ["describe", "ucloud_state"]

_QUEUED = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
}
_RUNNING = {"RUNNING", "RESIZING", "SIGNALING", "STAGE_OUT"}
_SUSPENDED = {"SUSPENDED", "STOPPED"}
_SUCCESS = {"COMPLETED", "CANCELLED"}  # UCloud: a cancelled job ends as SUCCESS
_FAILURE = {
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "PREEMPTED",
    "REVOKED",
    "SPECIAL_EXIT",
}
_EXPIRED = {"TIMEOUT", "DEADLINE"}

_NO_REASON = {"", "None", "(null)"}


def ucloud_state(slurm_state: str) -> JobState | None:
    """The UCloud state for a Slurm base state; ``None`` for transient ones (``COMPLETING``)."""
    state = slurm_state.upper()
    if state in _QUEUED:
        return JobState.IN_QUEUE
    if state in _RUNNING:
        return JobState.RUNNING
    if state in _SUSPENDED:
        return JobState.SUSPENDED
    if state in _SUCCESS:
        return JobState.SUCCESS
    if state in _FAILURE:
        return JobState.FAILURE
    if state in _EXPIRED:
        return JobState.EXPIRED
    return None


def describe(info: SlurmJobInfo) -> str:
    """A status line for the job's update history, with Slurm's state and reason."""
    reason = "" if info.reason in _NO_REASON else info.reason
    state = info.state
    text: str
    if state == "PENDING":
        text = f"Waiting in the Slurm queue ({reason or 'pending'})"
    elif state in _RUNNING:
        text = f"Running on {info.node_list}" if info.has_nodes else "Running"
    elif state == "COMPLETED":
        text = "The job has completed"
    elif state == "CANCELLED":
        text = "The job was cancelled"
    elif state == "TIMEOUT":
        text = "The job has expired: its time limit was reached"
    elif state == "DEADLINE":
        text = "The job has expired: its deadline was reached"
    elif state == "OUT_OF_MEMORY":
        text = "The job has failed: it ran out of memory"
    elif state == "NODE_FAIL":
        text = "The job has failed: a node failed"
    elif state in _FAILURE:
        text = "The job has failed"
    else:
        text = f"Slurm state {state}"
    details = [f"Slurm job {info.job_id} {state}"]
    if info.exit_status is not None and state in ("COMPLETED", "FAILED"):
        details.append(f"exit code {info.exit_status}")
    if reason and state != "PENDING":
        details.append(f"reason: {reason}")
    return f"{text} ({', '.join(details)})"
