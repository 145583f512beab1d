"""``jobs.follow`` without I/O, shared by ``JobFollower`` (sync) and ``AsyncJobFollower``: the two
ways in (codecs), keeping a job current from the messages (``merge``), and text from log entries.

Two codecs, one per way in:

* ``DirectFollowCodec``: UCloud's own websocket at ``/api/jobs`` (reference 5.2), as the web
  client speaks it: the first frame carries the access token; every frame after that is
  ``{"type": "message", "streamId", "payload": JobsFollowMessage}``.
* ``JupyterFollowCodec``: the Jupyter server's ``/ucloud/api/jobs/follow?id=`` (its own auth):
  every frame is a ``JobsFollowMessage`` itself, or ``{"error": message}`` before a close.

Both drop what the core forwards without content (log entries with neither stdout, stderr nor
channel: the provider's pings and final response) and messages left with nothing.
"""

from __future__ import annotations

import json
from typing import TextIO

from pydantic import ValidationError

from ..protocol import (
    JOBS_FOLLOW_CALL,
    FindByStringId,
    Job,
    JobsFollowMessage,
    JobsFollowRequest,
    SimpleDuration,
)
from .errors import UCloudError

__all__ = [
    "DirectFollowCodec",
    "FollowCodec",
    "JupyterFollowCodec",
    "LogLines",
    "describe_state",
    "merge",
    "without_empty_entries",
    "write_log",
]


def without_empty_entries(message: JobsFollowMessage) -> JobsFollowMessage | None:
    """``message`` without empty log entries; ``None`` when nothing is left."""
    if any(entry.is_empty for entry in message.log):
        message.log = [entry for entry in message.log if not entry.is_empty]
    return None if message.is_empty else message


class FollowCodec:
    """How one way in frames ``jobs.follow``."""

    def opening_frames(self) -> list[str]:
        """Frames to send once connected."""
        return []

    def decode(self, frame: str | bytes) -> JobsFollowMessage | None:
        """The message of ``frame`` (``None``: nothing in it for the caller); ``UCloudError``
        for an error the other end reports."""
        raise NotImplementedError


class DirectFollowCodec(FollowCodec):
    """UCloud's follow websocket (see the module docstring)."""

    def __init__(
        self, job_id: str, bearer: str | None, project: str | None, stream_id: str = "0"
    ) -> None:
        self.job_id = job_id
        self.stream_id = stream_id
        self._bearer = bearer
        self._project = project

    def opening_frames(self) -> list[str]:
        request = JobsFollowRequest(
            call=JOBS_FOLLOW_CALL,
            stream_id=self.stream_id,
            payload=FindByStringId(id=self.job_id),
            bearer=self._bearer,
            project=self._project,
        )
        return [json.dumps(request.to_wire())]

    def decode(self, frame: str | bytes) -> JobsFollowMessage | None:
        try:
            envelope = json.loads(frame)
        except (ValueError, RecursionError):
            return None
        if not isinstance(envelope, dict) or envelope.get("type") != "message":
            return None  # the core never sends anything else
        try:
            message = JobsFollowMessage.model_validate(envelope.get("payload"))
        except ValidationError:
            return None
        return without_empty_entries(message)


class JupyterFollowCodec(FollowCodec):
    """The Jupyter server's relay (see the module docstring)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id

    def decode(self, frame: str | bytes) -> JobsFollowMessage | None:
        try:
            data = json.loads(frame)
        except (ValueError, RecursionError):
            return None
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise UCloudError(data["error"], call=JOBS_FOLLOW_CALL, job_id=self.job_id)
        try:
            message = JobsFollowMessage.model_validate(data)
        except ValidationError:
            return None
        return without_empty_entries(message)


def merge(job: Job | None, message: JobsFollowMessage) -> Job | None:
    """``job`` as ``message`` leaves it: ``initialJob`` replaces it, ``updates`` are appended,
    ``newStatus`` replaces its status, and an update's ``newTimeAllocation`` moves its time
    allocation and ``expiresAt`` (the core sends no ``newStatus`` for an extension)."""
    if message.initial_job is not None:
        job = message.initial_job
    if job is None or (not message.updates and message.new_status is None):
        return job
    job = job.model_copy(deep=False)
    status = message.new_status if message.new_status is not None else job.status
    job.status = status.model_copy()
    job.updates = [*job.updates, *message.updates]
    for update in message.updates:
        if update.new_time_allocation is not None:
            job.specification = job.specification.model_copy()
            job.specification.time_allocation = SimpleDuration.from_ms(update.new_time_allocation)
            if job.status.started_at is not None:
                job.status.expires_at = job.status.started_at + update.new_time_allocation
        if update.state is not None and message.new_status is None:
            job.status.state = update.state
    return job


class LogLines:
    """Log text from entries, per rank and stream, with ``[rank N] `` before each line when
    ``prefix`` (a job of several ranks). Without a prefix text passes through as it came; with
    one, a line is given out once complete (``feed``), or by ``flush`` (then ended with a
    newline), so lines of different ranks never run into each other."""

    def __init__(self, prefix: bool) -> None:
        self.prefix = prefix
        self._held: dict[tuple[int, str], str] = {}

    def feed(self, rank: int, stream: str, text: str) -> str:
        if not self.prefix:
            return text
        key = (rank, stream)
        lines = (self._held.pop(key, "") + text).split("\n")
        if lines[-1]:
            self._held[key] = lines[-1]
        return "".join(f"[rank {rank}] {line}\n" for line in lines[:-1])

    def flush(self, stream: str | None = None) -> list[tuple[str, str]]:
        """``(stream, text)`` of every held partial line (of ``stream``, if given)."""
        out = []
        for key in sorted(self._held):
            if stream is None or key[1] == stream:
                out.append((key[1], f"[rank {key[0]}] {self._held.pop(key)}\n"))
        return out


def write_log(message: JobsFollowMessage, lines: LogLines, out: TextIO, err: TextIO) -> None:
    """Print ``message``'s output: stdout to ``out``, stderr to ``err``."""
    for entry in message.log:
        for stream, target in (("stdout", out), ("stderr", err)):
            text = getattr(entry, stream)
            if text:
                shown = lines.feed(entry.rank, stream, text)
                if shown:
                    target.write(shown)
                    target.flush()


def describe_state(job: Job) -> str:
    """``RUNNING (Your job is now running)``: the state with the job's latest status text."""
    messages = [u.status for u in job.updates if u.status]
    detail = f" ({messages[-1]})" if messages else ""
    return f"{job.state.value}{detail}"
