"""Async wrappers around Slurm's command-line tools and parsers of what they print.

Every call runs the tool as an asyncio subprocess (never blocking the event loop), with a
timeout, and raises :class:`SlurmCommandError` with the tool's own message when it fails.
Written against Slurm 22.05 (``squeue --json`` there ignores ``-j``; ``scontrol --json`` does not
exist), so the text formats are parsed instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "SQUEUE_FORMAT",
    "SlurmCli",
    "SlurmCommandError",
    "SlurmJobInfo",
    "base_state",
    "minutes_for",
    "parse_scontrol_record",
    "parse_squeue_line",
    "run_slurm",
]

DEFAULT_TIMEOUT = 30.0

# `scontrol show job -o` prints `Key=Value` pairs separated by spaces, but values such as
# JobName, Command or WorkDir may contain spaces: split only before something that looks like a key.
_KEY_SPLIT = re.compile(r" (?=[A-Za-z][A-Za-z0-9_/:]*=)")

# squeue fields, `|`-separated, the (user-chosen, free-text) job name last so that it may
# contain the separator: id, state, reason, node list, time limit, start, end, name.
SQUEUE_FORMAT = "%i|%T|%r|%N|%l|%S|%e|%j"
_SQUEUE_FIELDS = 8


class SlurmCommandError(Exception):
    """A Slurm tool failed (non-zero exit, timeout, or not installed)."""

    def __init__(self, command: str, returncode: int | None, message: str) -> None:
        self.command = command
        self.returncode = returncode
        self.message = message.strip() or f"{command} failed with exit code {returncode}"
        super().__init__(self.message)

    @property
    def invalid_job(self) -> bool:
        """Slurm does not know the job (never existed, or purged after ``MinJobAge``)."""
        return "invalid job id" in self.message.lower()


@dataclass(frozen=True)
class SlurmJobInfo:
    """What the backend needs to know of one Slurm job."""

    job_id: str
    name: str
    state: str  # base state, e.g. PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT
    reason: str  # Slurm's Reason (None, Resources, TimeLimit, NonZeroExitCode, ...)
    node_list: str  # compressed, e.g. n[1-2]; empty or "(null)" while pending
    time_limit: str = ""
    start_time: str = ""
    end_time: str = ""
    exit_code: str = ""  # "rc:signal", only from scontrol

    @property
    def has_nodes(self) -> bool:
        return bool(self.node_list) and self.node_list not in ("(null)", "None")

    @property
    def exit_status(self) -> int | None:
        """The batch script's exit code (``ExitCode=rc:signal``), when known."""
        rc, _, _sig = self.exit_code.partition(":")
        return int(rc) if rc.isdigit() else None


def base_state(state: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``RUNNING+`` -> ``RUNNING``; upper case."""
    word = state.strip().split(" ", 1)[0] if state.strip() else ""
    return word.rstrip("+*").upper()


def parse_scontrol_record(line: str) -> dict[str, str]:
    """One line of ``scontrol show <entity> -o`` as a dict of its ``Key=Value`` pairs."""
    fields: dict[str, str] = {}
    for part in _KEY_SPLIT.split(line.strip()):
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value
    return fields


def parse_squeue_line(line: str) -> SlurmJobInfo | None:
    """One line of ``squeue -h -o SQUEUE_FORMAT``; ``None`` for a line that is not one."""
    parts = line.rstrip("\n").split("|", _SQUEUE_FIELDS - 1)
    if len(parts) != _SQUEUE_FIELDS or not parts[0].strip():
        return None
    job_id, state, reason, nodes, limit, start, end = (p.strip() for p in parts[:7])
    return SlurmJobInfo(
        job_id=job_id,
        name=parts[7],
        state=base_state(state),
        reason=reason,
        node_list=nodes,
        time_limit=limit,
        start_time=start,
        end_time=end,
    )


def _info_from_record(fields: Mapping[str, str]) -> SlurmJobInfo:
    return SlurmJobInfo(
        job_id=fields.get("JobId", ""),
        name=fields.get("JobName", ""),
        state=base_state(fields.get("JobState", "")),
        reason=fields.get("Reason", ""),
        node_list=fields.get("NodeList", ""),
        time_limit=fields.get("TimeLimit", ""),
        start_time=fields.get("StartTime", ""),
        end_time=fields.get("EndTime", ""),
        exit_code=fields.get("ExitCode", ""),
    )


def minutes_for(milliseconds: int) -> int:
    """Slurm time limits have minute resolution: round a duration up to whole minutes (>= 1)."""
    return max(1, math.ceil(milliseconds / 60_000))


async def run_slurm(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a Slurm tool; its stdout, or :class:`SlurmCommandError` with its stderr."""
    command = argv[0]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input_text is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
        )
    except OSError as exc:
        raise SlurmCommandError(command, None, f"cannot run {command}: {exc.strerror}") from exc
    data = input_text.encode() if input_text is not None else None
    try:
        out, errout = await asyncio.wait_for(process.communicate(data), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise SlurmCommandError(
            command, None, f"{command} did not answer within {timeout:g} s"
        ) from exc
    stdout = out.decode(errors="replace")
    if process.returncode != 0:
        message = errout.decode(errors="replace").strip() or stdout.strip()
        raise SlurmCommandError(command, process.returncode, message)
    return stdout


class SlurmCli:
    """The Slurm commands the backend uses, with one environment (``SLURM_CONF``) and timeout."""

    def __init__(self, env: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.env = dict(env) if env is not None else None
        self.timeout = timeout

    async def run(
        self,
        argv: Sequence[str],
        input_text: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run a Slurm tool with this client's environment (or ``env``)."""
        return await run_slurm(
            argv, input_text=input_text, timeout=self.timeout, env=env or self.env
        )

    async def ping(self) -> bool:
        """Whether the controller answers (``scontrol ping``)."""
        try:
            out = await self.run(["scontrol", "ping"])
        except SlurmCommandError:
            return False
        return " is UP" in out

    async def sbatch(
        self, options: Sequence[str], script: str, env: Mapping[str, str] | None = None
    ) -> str:
        """Submit ``script`` (read from stdin) with ``options``; Slurm's job id. With
        ``--export=ALL`` the job gets ``env`` (sbatch's own environment)."""
        out = await self.run(["sbatch", "--parsable", *options], input_text=script, env=env)
        job_id = out.strip().splitlines()[-1].split(";", 1)[0] if out.strip() else ""
        if not job_id.isdigit():
            raise SlurmCommandError("sbatch", 0, f"sbatch printed no job id: {out.strip()!r}")
        return job_id

    async def squeue_jobs(self, job_ids: Iterable[str]) -> dict[str, SlurmJobInfo]:
        """The jobs among ``job_ids`` Slurm still knows (finished ones within ``MinJobAge``)."""
        ids = sorted({j for j in job_ids if j.isdigit()}, key=int)
        if not ids:
            return {}
        argv = ["squeue", "--noheader", "--states=all", f"--format={SQUEUE_FORMAT}"]
        try:
            out = await self.run([*argv, "--jobs=" + ",".join(ids)])
        except SlurmCommandError as err:
            if err.invalid_job:  # squeue fails only when it knows none of the ids
                return {}
            raise
        jobs: dict[str, SlurmJobInfo] = {}
        for line in out.splitlines():
            info = parse_squeue_line(line)
            if info is not None and info.job_id in ids:
                jobs[info.job_id] = info
        return jobs

    async def show_job(self, job_id: str) -> SlurmJobInfo | None:
        """``scontrol show job -o``: details (base state, ExitCode); ``None`` when forgotten."""
        try:
            out = await self.run(["scontrol", "show", "job", "-o", job_id])
        except SlurmCommandError as err:
            if err.invalid_job:
                return None
            raise
        for line in out.splitlines():
            fields = parse_scontrol_record(line)
            if fields.get("JobId") == job_id:
                return _info_from_record(fields)
        return None

    async def scancel(self, job_id: str) -> None:
        """Cancel a job (Slurm ignores ids it does not know)."""
        await self.run(["scancel", job_id])

    async def update_time_limit(self, job_id: str, minutes: int) -> None:
        await self.run(["scontrol", "update", f"JobId={job_id}", f"TimeLimit={minutes}"])

    async def expand_hostnames(self, node_list: str) -> list[str]:
        """``n[1-2],gpu3`` -> ``["n1", "n2", "gpu3"]`` (``scontrol show hostnames``)."""
        out = await self.run(["scontrol", "show", "hostnames", node_list])
        return [line.strip() for line in out.splitlines() if line.strip()]
