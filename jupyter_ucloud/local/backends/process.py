"""Jobs as local processes, each job under a supervisor process of its own.

``submit`` writes the job's spec (commands, folders, environments from the allow-list of
``environment``, time allocation) to ``<data>/jobs/<id>/supervisor-spec.json`` and starts
``python -m jupyter_ucloud.local.supervisor <job folder>`` in a session of its own. The
supervisor (``local/supervisor``) starts the ranks, captures their output, enforces the time, opens
shells on request and ends every process of the job when it ends; it outlives this server.

The backend keeps one ``watch`` connection per job: the job is RUNNING once the supervisor says
its ranks started, and its end (SUCCESS when every rank exits 0, FAILURE when one does not,
EXPIRED when the time runs out, SUCCESS when terminated) is posted as the supervisor announces
it. Shells are the supervisor's children on a PTY whose master it hands over (``SCM_RIGHTS``).

After a restart, ``recover`` re-adopts every job whose supervisor still answers (the job stays
RUNNING, new shells open on it), posts the outcome a supervisor recorded while no server was
watching, and ends as FAILURE only a job whose supervisor is gone, ending what is left of it.
A stop of the server (SIGTERM) leaves the jobs running; ``jupyter ucloud local stop`` ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...protocol import JobState
from ..config import LocalConfig
from ..pty import PtyProcess
from ..store import JobRecord
from ..supervisor import wire
from ..supervisor.client import (
    SupervisorConnection,
    SupervisorRefused,
    SupervisorUnavailable,
    call,
    open_shell,
)
from ..supervisor.spec import RankSpec, SupervisorSpec
from .base import BackendError, JobUpdateSink
from .environment import job_environment

__all__ = ["ProcessBackend", "login_shell_argv"]

log = logging.getLogger("jupyter_ucloud.local")

#: How long a new supervisor may take to answer on its socket.
SUPERVISOR_START_TIMEOUT = 30.0
TERMINATED = "The job was terminated"
RUNNING = "Your job is now running"
FINAL = ("SUCCESS", "FAILURE", "EXPIRED")


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


@dataclass
class _Watched:
    """A job whose supervisor this server watches."""

    job: JobRecord
    job_dir: Path
    connection: SupervisorConnection | None = None
    task: asyncio.Task[None] | None = None
    shells: set[PtyProcess] = field(default_factory=set)
    final_posted: bool = False


class ProcessBackend:
    """Runs each job under a local supervisor process (see the module docstring)."""

    def __init__(
        self, config: LocalConfig, sink: JobUpdateSink, data_dir: Path, umask: int = 0o022
    ) -> None:
        self._config = config
        self._sink = sink
        self._data_dir = data_dir
        self._umask = umask
        self._watched: dict[str, _Watched] = {}
        self._children: set[asyncio.Task[Any]] = set()

    # --- Backend --------------------------------------------------------------------------

    async def submit(self, job: JobRecord) -> None:
        try:
            spec = self._spec(job)
        except BackendError as err:
            await self._sink.post_update(
                job.id, JobState.FAILURE, f"The job could not start: {err.why}"
            )
            return
        watched = _Watched(job, job.work_dir)
        self._watched[job.id] = watched
        try:
            await self._start_supervisor(watched, spec)
        except (OSError, SupervisorUnavailable) as err:
            self._watched.pop(job.id, None)
            await self._sink.post_update(
                job.id, JobState.FAILURE, f"The job could not start: {err}"
            )

    async def terminate(self, job: JobRecord, why: str = TERMINATED) -> None:
        watched = self._watched.get(job.id)
        job_dir = watched.job_dir if watched is not None else job.work_dir
        try:
            answer = await call(job_dir, {"op": "terminate", "state": "SUCCESS", "why": why}, 60)
        except (SupervisorUnavailable, SupervisorRefused):
            # Nobody to ask (its supervisor is gone): end whatever is left of it ourselves.
            await asyncio.to_thread(_end_leftovers, job)
            if not job.state.is_final:
                await self._sink.post_update(job.id, JobState.SUCCESS, why)
            return
        await self._post_outcome(job.id, answer)

    async def extend(self, job: JobRecord, new_allocation_ms: int) -> None:
        watched = self._watched.get(job.id)
        if watched is None:
            raise BackendError("The job is not running", 400)
        try:
            await call(watched.job_dir, {"op": "extend", "allocationMs": new_allocation_ms})
        except SupervisorRefused as err:
            raise BackendError(f"The job's time cannot be extended: {err}", 400) from err
        except SupervisorUnavailable as err:
            raise BackendError("The job's supervisor does not answer", 503) from err

    async def open_shell(self, job: JobRecord, rank: int, cols: int, rows: int) -> PtyProcess:
        watched = self._watched.get(job.id)
        if watched is None:
            raise BackendError("The job is not running", 400)
        if not 0 <= rank < job.replicas:
            raise BackendError(f"Rank {rank} does not exist in this job", 400)
        try:
            process, master = await open_shell(watched.job_dir, rank, cols, rows)
        except SupervisorRefused as err:
            raise BackendError(str(err), 500 if err.server_side else 400) from err
        except SupervisorUnavailable as err:
            raise BackendError(
                "Could not start a shell: the job's supervisor is gone", 503
            ) from err
        os.set_blocking(master, False)
        shell = PtyProcess(
            process,
            master,
            background_nice=self._config.background_nice,
            nice=self._config.job_nice,
        )
        watched.shells.add(shell)
        self._spawn(self._forget_shell(watched, shell))
        return shell

    async def refresh(self, job: JobRecord) -> None:
        """Nothing to ask: a job's supervisor announces its end before it ends the job's
        processes, and the watcher reads that news as it comes."""

    async def recover(self, jobs: list[JobRecord]) -> None:
        adopted = 0
        for job in jobs:
            if "supervisor" not in job.backend_state:
                await self._recover_legacy(job)
                continue
            watched = _Watched(job, job.work_dir)
            try:
                connection = SupervisorConnection.open(job.work_dir)
                status = await connection.request({"op": "watch"})
            except (SupervisorUnavailable, SupervisorRefused):
                await self._post_recorded_outcome(job)
                continue
            watched.connection = connection
            self._watched[job.id] = watched
            if job.state is JobState.RUNNING and status.get("phase") == "running":
                adopted += 1
                await self._sink.post_update(
                    job.id, None, "The embedded server restarted and re-adopted the job"
                )
            else:
                await self._apply_status(job, status)
            watched.task = asyncio.ensure_future(self._watch(watched))
        if adopted:
            log.info("re-adopted %d running job(s)", adopted)

    async def close(self) -> None:
        """Server stop: end the shells (the server holds their terminals) and stop watching.
        The jobs keep running under their supervisors."""
        watched = list(self._watched.values())
        self._watched.clear()
        shells = [shell for w in watched for shell in w.shells]
        await asyncio.gather(*(shell.terminate() for shell in shells), return_exceptions=True)
        for item in watched:
            if item.task is not None:
                item.task.cancel()
            if item.connection is not None:
                item.connection.close()
            wire.forget_folder(item.job_dir)
        for task in list(self._children):
            task.cancel()

    # --- starting ---------------------------------------------------------------------------

    def _spec(self, job: JobRecord) -> SupervisorSpec:
        app = self._config.application_for(job.specification)
        if app is None:
            raise BackendError("the application no longer exists")
        product = self._config.product(job.specification.product.id)
        values = {name: value.value for name, value in (job.specification.parameters or {}).items()}
        for param in app.parameters:
            values.setdefault(param.name, param.default)
        argv = app.argv(values)
        ranks = [
            RankSpec(
                argv=argv,
                cwd=str(job.rank_dir(rank)),
                env=job_environment(job, rank, product=product, application=app),
            )
            for rank in range(job.replicas)
        ]
        return SupervisorSpec(
            job_id=job.id,
            ranks=ranks,
            shell=login_shell_argv(),
            allocation_ms=job.time_allocation_ms,
            grace=self._config.terminate_grace,
            umask=self._umask,
            log_limit=self._config.log_limit_bytes,
            nice=self._config.job_nice,
        )

    async def _start_supervisor(self, watched: _Watched, spec: SupervisorSpec) -> None:
        job_dir = watched.job_dir
        job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        wire.write_json_file(job_dir / wire.SPEC_FILE, spec.to_json())
        log_fd = os.open(
            job_dir / wire.LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
        )
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "jupyter_ucloud.local.supervisor",
                str(job_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,
                env=_supervisor_environment(),
            )
        finally:
            os.close(log_fd)
        self._spawn(process.wait())  # reap it when it exits (it is our child until we exit)
        self._sink.save_backend_state(
            watched.job.id,
            {"supervisor": {"pid": process.pid, "start": _process_start_time(process.pid)}},
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SUPERVISOR_START_TIMEOUT
        while True:
            try:
                connection = SupervisorConnection.open(job_dir)
                status = await connection.request({"op": "watch"})
                break
            except SupervisorUnavailable:
                if process.returncode is not None:
                    # A job that ended at once: its supervisor has recorded the outcome.
                    record = wire.read_json_file(job_dir / wire.RECORD_FILE)
                    if record is not None and record.get("phase") == "ended":
                        await self._apply_status(watched.job, record)
                        self._watched.pop(watched.job.id, None)
                        return
                if process.returncode is not None or loop.time() > deadline:
                    raise SupervisorUnavailable(
                        f"its supervisor did not start (see {job_dir / wire.LOG_FILE})"
                    ) from None
                await asyncio.sleep(0.01)
        watched.connection = connection
        await self._apply_status(watched.job, status)
        watched.task = asyncio.ensure_future(self._watch(watched))

    async def _apply_status(self, job: JobRecord, status: dict[str, Any]) -> None:
        """Bring the job's state up to what its supervisor says: RUNNING once its ranks
        started, then the outcome once it has one."""
        current = self._sink.get_job(job.id)
        if current is None or current.state.is_final:
            return
        if status.get("startedAtMs") is not None and current.state is not JobState.RUNNING:
            await self._sink.post_update(job.id, JobState.RUNNING, RUNNING)
        await self._post_outcome(job.id, status)

    # --- watching -------------------------------------------------------------------------

    async def _watch(self, watched: _Watched) -> None:
        assert watched.connection is not None
        job_id = watched.job.id
        try:
            while (message := await watched.connection.next()) is not None:
                if message.get("event") in ("ending", "ended"):
                    await self._post_outcome(job_id, message)
        except SupervisorUnavailable as err:
            log.warning("job %s: lost the supervisor's connection: %s", job_id, err)
        finally:
            watched.connection.close()
        if self._watched.get(job_id) is watched:
            current = self._sink.get_job(job_id)
            if current is not None and not current.state.is_final:
                # The connection ended without an outcome: the supervisor is gone.
                await self._post_recorded_outcome(watched.job)
            self._watched.pop(job_id, None)
            wire.forget_folder(watched.job_dir)

    async def _post_outcome(self, job_id: str, status: dict[str, Any]) -> None:
        outcome = status.get("outcome") or {}
        try:
            state = JobState(outcome.get("state"))
        except ValueError:
            return
        if not state.is_final:
            return
        watched = self._watched.get(job_id)
        if watched is not None:
            if watched.final_posted:
                return
            watched.final_posted = True
        await self._sink.post_update(job_id, state, str(outcome.get("why") or ""))

    async def _post_recorded_outcome(self, job: JobRecord) -> None:
        """A job whose supervisor does not answer: what it recorded, else FAILURE."""
        record = wire.read_json_file(job.work_dir / wire.RECORD_FILE) or {}
        outcome = record.get("outcome") or {}
        if record.get("phase") == "ended" and outcome.get("state") in FINAL:
            why = f"{outcome.get('why') or ''} (while the embedded server was not running)"
            await self._apply_status(job, {**record, "outcome": {**outcome, "why": why.strip()}})
            return
        ended = await asyncio.to_thread(_end_leftovers, job)
        current = self._sink.get_job(job.id) or job
        pid = (current.backend_state.get("supervisor") or {}).get("pid") or record.get("pid")
        why = f"The job's supervisor (pid {pid}) is gone, so the job was lost"
        if ended:
            why += f"; ended {ended} process(es) it left behind"
        await self._sink.post_update(job.id, JobState.FAILURE, why)

    async def _recover_legacy(self, job: JobRecord) -> None:
        """A job started by a version without supervisors: its processes cannot be adopted."""
        ended = await asyncio.to_thread(_end_leftovers, job)
        why = "The job's processes were lost when the embedded server restarted"
        if ended:
            why += f" (ended {ended} orphaned process(es))"
        await self._sink.post_update(job.id, JobState.FAILURE, why)

    # --- helpers ----------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._children.add(task)
        task.add_done_callback(self._children.discard)

    @staticmethod
    async def _forget_shell(watched: _Watched, shell: PtyProcess) -> None:
        await shell.wait()
        watched.shells.discard(shell)


def _supervisor_environment() -> dict[str, str]:
    """The supervisor needs only to find Python and our package; the jobs' environments are in
    its spec."""
    env = {name: value for name, value in os.environ.items() if name in ("PATH", "PYTHONPATH")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _end_leftovers(job: JobRecord) -> int:
    """SIGKILL processes of ``job`` that survived its supervisor: recognised by the job's id in
    their environment and a working directory inside the job's folder (the supervisor's
    process tree is the reliable record; this is the fallback once it is gone). Reads every
    process's environment in /proc (about 1 ms per 70 processes): call it in a thread."""
    root = str(job.work_dir.resolve())
    ended = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"UCLOUD_JOB_ID={job.id}".encode() not in environ.split(b"\0"):
            continue
        if cwd != root and not cwd.startswith(root + os.sep):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            ended += 1
    return ended
