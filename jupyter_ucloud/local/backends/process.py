"""Jobs as local process groups: one group per rank, in ``<data>/jobs/<id>/rank-<r>``.

Each rank runs the application's command in its own session (``start_new_session``), with its
output in ``<data>/jobs/<id>/rank-<r>.log``. The job is RUNNING once every rank started; it ends
SUCCESS when every rank exits 0, FAILURE when one does not, EXPIRED when the time allocation runs
out, and SUCCESS when terminated (as UCloud ends a cancelled job). Whatever is left in a rank's
process group when the job ends is killed, and so are the job's shells.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...protocol import JobState
from ..config import LocalConfig
from ..pty import PtyProcess
from ..store import JobRecord
from .base import BackendError, JobUpdateSink

__all__ = ["ProcessBackend", "job_environment", "login_shell_argv"]


def job_environment(job: JobRecord, rank: int) -> dict[str, str]:
    """The environment of a rank's processes and shells."""
    env = dict(os.environ)
    env.update(
        TERM="xterm-256color",
        UCLOUD_JOB_ID=job.id,
        UCLOUD_RANK=str(rank),
        UCLOUD_NODES=str(job.replicas),
    )
    return env


def login_shell_argv() -> list[str]:
    """``bash --login`` (or ``sh -l`` where there is no bash)."""
    bash = shutil.which("bash") or ("/bin/bash" if Path("/bin/bash").exists() else None)
    return [bash, "--login"] if bash else ["/bin/sh", "-l"]


def _process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of ``/proc/<pid>/stat``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@dataclass
class _JobRun:
    job: JobRecord
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    shells: set[PtyProcess] = field(default_factory=set)
    started: float = 0.0  # loop time when the job started running
    allocation_ms: int | None = None
    deadline_changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when the server decides the outcome (terminated, expired, shutdown).
    outcome: tuple[JobState, str] | None = None
    task: asyncio.Task[None] | None = None


class ProcessBackend:
    """Runs each rank as a local process group (see the module docstring)."""

    def __init__(self, config: LocalConfig, sink: JobUpdateSink, data_dir: Path) -> None:
        self._config = config
        self._sink = sink
        self._data_dir = data_dir
        self._runs: dict[str, _JobRun] = {}

    # --- Backend --------------------------------------------------------------------------

    async def submit(self, job: JobRecord) -> None:
        run = _JobRun(job, allocation_ms=job.time_allocation_ms)
        self._runs[job.id] = run
        run.task = asyncio.create_task(self._run(run), name=f"job-{job.id}")

    async def terminate(self, job: JobRecord) -> None:
        run = self._runs.get(job.id)
        if run is None:
            if not job.state.is_final:
                await self._sink.post_update(job.id, JobState.SUCCESS, "The job was terminated")
            return
        if run.outcome is None:
            run.outcome = (JobState.SUCCESS, "The job was terminated")
        await self._stop_run(run)

    async def extend(self, job: JobRecord, new_allocation_ms: int) -> None:
        run = self._runs.get(job.id)
        if run is None:
            raise BackendError("The job is not running", 400)
        run.allocation_ms = new_allocation_ms
        run.deadline_changed.set()

    async def open_shell(self, job: JobRecord, rank: int, cols: int, rows: int) -> PtyProcess:
        run = self._runs.get(job.id)
        if run is None or run.outcome is not None:
            raise BackendError("The job is not running", 400)
        if not 0 <= rank < job.replicas:
            raise BackendError(f"Rank {rank} does not exist in this job", 400)
        rank_dir = job.rank_dir(rank)
        rank_dir.mkdir(parents=True, exist_ok=True)
        try:
            shell = await PtyProcess.spawn(
                login_shell_argv(),
                cwd=rank_dir,
                env=job_environment(job, rank),
                cols=cols,
                rows=rows,
            )
        except OSError as err:
            raise BackendError(f"Could not start a shell: {err.strerror}", 500) from err
        run.shells.add(shell)
        asyncio.create_task(self._forget_shell(run, shell))  # noqa: RUF006 - ends with the shell
        return shell

    async def recover(self, jobs: list[JobRecord]) -> None:
        for job in jobs:
            leftovers = 0
            for rank in job.backend_state.get("ranks", []):
                pid, start = rank.get("pid"), rank.get("start")
                alive = isinstance(pid, int) and start and _process_start_time(pid) == start
                if alive and _signal_group(pid, signal.SIGKILL):
                    leftovers += 1
            why = "The job's processes were lost when the embedded server restarted"
            if leftovers:
                why += f" (ended {leftovers} orphaned process group(s))"
            await self._sink.post_update(job.id, JobState.FAILURE, why)

    async def close(self) -> None:
        runs = list(self._runs.values())
        for run in runs:
            if run.outcome is None:
                run.outcome = (
                    JobState.FAILURE,
                    "The embedded server was stopped, which ended the job's processes",
                )
        await asyncio.gather(*(self._stop_run(run) for run in runs), return_exceptions=True)

    # --- running a job --------------------------------------------------------------------

    async def _run(self, run: _JobRun) -> None:
        job = run.job
        try:
            await self._start_ranks(run)
        except (OSError, BackendError) as err:
            why = err.why if isinstance(err, BackendError) else f"{err.strerror or err}"
            await self._kill_groups(run, grace=0)
            await self._sink.post_update(
                job.id, JobState.FAILURE, f"The job could not start: {why}"
            )
            self._runs.pop(job.id, None)
            return
        try:
            if run.outcome is None:
                await self._sink.post_update(job.id, JobState.RUNNING, "Your job is now running")
            else:  # terminated (or the server stopped) while the ranks were starting
                await self._kill_groups(run, grace=0)
            exit_codes = await self._wait_for_ranks(run)
            state, why = run.outcome or self._outcome_of(exit_codes)
        finally:
            await self._kill_groups(run, grace=0)
            await self._end_shells(run)
            self._runs.pop(job.id, None)
        await self._sink.post_update(job.id, state, why)

    async def _start_ranks(self, run: _JobRun) -> None:
        job = run.job
        app = self._config.application_for(job.specification)
        if app is None:
            raise BackendError("the application no longer exists")
        values = {name: value.value for name, value in (job.specification.parameters or {}).items()}
        for param in app.parameters:
            values.setdefault(param.name, param.default)
        argv = app.argv(values)
        ranks_state: list[dict[str, Any]] = []
        for rank in range(job.replicas):
            if run.outcome is not None:
                break
            rank_dir = job.rank_dir(rank)
            rank_dir.mkdir(parents=True, exist_ok=True)
            log_path = job.work_dir / f"rank-{rank}.log"
            log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=rank_dir,
                    env=job_environment(job, rank),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log_fd,
                    stderr=log_fd,
                    start_new_session=True,
                )
            finally:
                os.close(log_fd)
            run.processes.append(process)
            ranks_state.append({"pid": process.pid, "start": _process_start_time(process.pid)})
            self._sink.save_backend_state(job.id, {"ranks": ranks_state})
        run.started = asyncio.get_running_loop().time()

    async def _wait_for_ranks(self, run: _JobRun) -> list[int]:
        loop = asyncio.get_running_loop()
        all_exited = asyncio.gather(*(process.wait() for process in run.processes))
        try:
            while not all_exited.done():
                timeout = None
                if run.allocation_ms is not None and run.outcome is None:
                    timeout = max(0.0, run.started + run.allocation_ms / 1000 - loop.time())
                run.deadline_changed.clear()
                changed: asyncio.Future[Any] = asyncio.ensure_future(run.deadline_changed.wait())
                waiting: set[asyncio.Future[Any]] = {all_exited, changed}
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                changed.cancel()
                if not done and run.outcome is None:
                    run.outcome = (JobState.EXPIRED, "The job's time allocation has expired")
                    await self._kill_groups(run, grace=self._config.terminate_grace)
            return list(await all_exited)
        finally:
            if not all_exited.done():
                all_exited.cancel()

    @staticmethod
    def _outcome_of(exit_codes: list[int]) -> tuple[JobState, str]:
        failed = [(rank, code) for rank, code in enumerate(exit_codes) if code != 0]
        if not failed:
            return JobState.SUCCESS, "The job has completed"
        rank, code = failed[0]
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return JobState.FAILURE, f"Rank {rank} {how}"

    async def _stop_run(self, run: _JobRun) -> None:
        """End the job's process groups (SIGTERM, then SIGKILL) and wait for its monitor."""
        await self._kill_groups(run, grace=self._config.terminate_grace)
        if run.task is not None and run.task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(run.task)

    async def _kill_groups(self, run: _JobRun, grace: float) -> None:
        pgids = [process.pid for process in run.processes]
        if grace > 0:
            for pgid in pgids:
                _signal_group(pgid, signal.SIGTERM)
            waits = [p.wait() for p in run.processes if p.returncode is None]
            if waits:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*waits), grace)
        for pgid in pgids:
            _signal_group(pgid, signal.SIGKILL)

    async def _end_shells(self, run: _JobRun) -> None:
        shells = list(run.shells)
        run.shells.clear()
        await asyncio.gather(*(shell.terminate(grace=1.0) for shell in shells))

    @staticmethod
    async def _forget_shell(run: _JobRun, shell: PtyProcess) -> None:
        await shell.wait()
        run.shells.discard(shell)
