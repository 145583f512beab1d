"""Jobs of the embedded server on a real Slurm cluster (``backend = "slurm"``).

A job is one ``sbatch`` allocation (see ``slurm_script``); its Slurm id is the job's
``providerGeneratedId``. One poller task asks ``squeue`` about every job that has not ended, every
``poll_interval`` seconds (and at once after a submit or cancel), and posts each change of state
with Slurm's reason (``slurm_states``). Terminate is ``scancel``, extend is ``scontrol update
TimeLimit``. A shell is UCloud's ``srun --overlap --pty --jobid <id> -w <node>`` on a real PTY
whose controlling terminal is srun's, so resizes reach the remote shell. Jobs outlive the server:
after a restart, ``recover`` re-adopts those Slurm still knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ...protocol import JobState
from ..config import LocalConfig
from ..pty import PtyProcess
from ..store import JobRecord
from .base import BackendError, JobUpdateSink
from .environment import job_environment, tool_environment
from .slurm_cli import SlurmCli, SlurmCommandError, SlurmJobInfo, minutes_for
from .slurm_config import SlurmSettings
from .slurm_script import batch_script, job_name, sbatch_options, shell_argv
from .slurm_states import describe, ucloud_state

__all__ = ["SlurmBackend"]

log = logging.getLogger(__name__)

_NO_REASON = {"", "None", "(null)"}
#: Polls in a row in which Slurm does not know a job before it is declared lost.
_LOST_AFTER_POLLS = 2


@dataclass
class _Tracked:
    """A job whose end the poller is waiting for."""

    job_id: str
    slurm_id: str
    posted: JobState | None  # the last state posted to the sink
    reason: str = "None"  # the last Slurm reason posted (while queued)
    missing: int = 0  # polls in a row without Slurm knowing the job


class SlurmBackend:
    """The ``Backend`` of the embedded server that runs jobs on Slurm (module docstring)."""

    def __init__(self, config: LocalConfig, sink: JobUpdateSink, data_dir: Path) -> None:
        self._config = config
        self._sink = sink
        self._data_dir = data_dir
        self.settings = SlurmSettings.from_config(config.slurm)
        # Slurm's tools find the cluster through SLURM_CONF (the settings', else the server's).
        slurm_conf = self.settings.slurm_conf or os.environ.get("SLURM_CONF", "")
        self._extra_env = {"SLURM_CONF": slurm_conf} if slurm_conf else {}
        self.cli = SlurmCli(
            tool_environment(self._extra_env), timeout=self.settings.command_timeout
        )
        self._tracked: dict[str, _Tracked] = {}
        self._nodes: dict[str, list[str]] = {}  # Slurm id -> host names, once allocated
        self._shells: set[PtyProcess] = set()
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._failing_since: float | None = None
        self._applying = asyncio.Lock()  # the poller and refresh() post one change once

    # --- Backend --------------------------------------------------------------------------

    async def submit(self, job: JobRecord) -> None:
        spec = job.specification
        app = self._config.application_for(spec)
        product = self._config.product(spec.product.id)
        if app is None or product is None:
            missing = "application" if app is None else "product"
            await self._sink.post_update(
                job.id, JobState.FAILURE, f"The job could not start: its {missing} is unknown"
            )
            return
        values = {name: value.value for name, value in (spec.parameters or {}).items()}
        for param in app.parameters:
            values.setdefault(param.name, param.default)
        for rank in range(job.replicas):
            job.rank_dir(rank).mkdir(parents=True, exist_ok=True)
        options = sbatch_options(job, product, self.settings)
        env = job_environment(job, None, product=product, application=app, extra=self._extra_env)
        try:
            script = batch_script(job, app.argv(values), self._config.log_limit_bytes)
            slurm_id = await self.cli.sbatch(options, script, env)
        except SlurmCommandError as err:
            await self._sink.post_update(
                job.id, JobState.FAILURE, f"Slurm did not accept the job: {err.message}"
            )
            return
        self._sink.save_backend_state(
            job.id, {"slurm_job_id": slurm_id, "slurm_job_name": job_name(job.id)}
        )
        partition = next((o.split("=", 1)[1] for o in options if o.startswith("--partition=")), "")
        where = f" in partition {partition}" if partition else ""
        await self._sink.post_update(
            job.id,
            JobState.IN_QUEUE,
            f"Submitted to Slurm as job {slurm_id}{where}",
            provider_generated_id=slurm_id,
        )
        self._track(_Tracked(job.id, slurm_id, JobState.IN_QUEUE))

    async def terminate(self, job: JobRecord, why: str = "The job was terminated") -> None:
        slurm_id = _slurm_id(job)
        if slurm_id is None:
            if not job.state.is_final:
                await self._sink.post_update(
                    job.id, JobState.SUCCESS, f"{why} before it reached Slurm"
                )
            return
        try:
            await self.cli.scancel(slurm_id)
        except SlurmCommandError as err:
            why = f"Slurm could not cancel job {slurm_id}: {err.message}"
            raise BackendError(why, 502) from err
        # Slurm shows the job COMPLETING until its processes are gone (up to KillWait), then
        # CANCELLED; UCloud ends a terminated job as SUCCESS at once, which also ends its shells.
        tracked = self._tracked.get(job.id)
        if tracked is not None:
            self._untrack(tracked)
        if not job.state.is_final:
            await self._sink.post_update(
                job.id, JobState.SUCCESS, f"{why} (Slurm job {slurm_id} cancelled)"
            )

    async def extend(self, job: JobRecord, new_allocation_ms: int) -> None:
        slurm_id = _slurm_id(job)
        if job.state.is_final or slurm_id is None:
            raise BackendError("The job has already ended; its time cannot be extended", 400)
        try:
            await self.cli.update_time_limit(slurm_id, minutes_for(new_allocation_ms))
        except SlurmCommandError as err:
            raise BackendError(
                f"Slurm did not extend the time limit of job {slurm_id}: {err.message}", 400
            ) from err

    async def open_shell(self, job: JobRecord, rank: int, cols: int, rows: int) -> PtyProcess:
        slurm_id = _slurm_id(job)
        if slurm_id is None:
            raise BackendError("The job never reached Slurm, so it has no nodes to open", 400)
        info = await self._running_info(job, slurm_id)
        nodes = await self._nodes_of(info)
        if not 0 <= rank < len(nodes):
            raise BackendError(
                f"Rank {rank} does not exist: the job has {len(nodes)} node(s)"
                f" (ranks 0 to {len(nodes) - 1})",
                400,
            )
        rank_dir = job.rank_dir(rank)
        rank_dir.mkdir(parents=True, exist_ok=True)
        argv = shell_argv(slurm_id, nodes[rank], str(rank_dir), self.settings.shell)
        try:
            shell = await PtyProcess.spawn(
                argv,
                cwd=rank_dir,
                env=self._shell_environment(job, rank),
                cols=cols,
                rows=rows,
            )
        except OSError as err:
            raise BackendError(f"Could not start srun: {err.strerror or err}", 500) from err
        self._shells.add(shell)
        asyncio.create_task(self._forget_shell(shell))  # noqa: RUF006 - ends with the shell
        return shell

    async def refresh(self, job: JobRecord) -> None:
        tracked = self._tracked.get(job.id)
        if tracked is None:
            return
        try:
            infos = await self.cli.squeue_jobs([tracked.slurm_id])
        except SlurmCommandError:
            return  # the poller keeps trying
        info = infos.get(tracked.slurm_id)
        if info is not None and self._tracked.get(job.id) is tracked:
            await self._apply(tracked, info)

    async def recover(self, jobs: list[JobRecord]) -> None:
        adopted: list[tuple[JobRecord, str]] = []
        for job in jobs:
            slurm_id = _slurm_id(job)
            if slurm_id is None:
                await self._sink.post_update(
                    job.id, JobState.FAILURE, "The job never reached Slurm (the server stopped)"
                )
            else:
                adopted.append((job, slurm_id))
        if not adopted:
            return
        try:
            known = await self.cli.squeue_jobs(slurm_id for _, slurm_id in adopted)
        except SlurmCommandError as err:
            log.warning(
                "Slurm is not reachable (%s); will keep asking about %d job(s)",
                err.message,
                len(adopted),
            )
            for job, slurm_id in adopted:
                self._track(_Tracked(job.id, slurm_id, job.state))
            return
        for job, slurm_id in adopted:
            info = known.get(slurm_id)
            if info is None or info.name != job_name(job.id):
                await self._post_lost(job.id, slurm_id, renamed=info is not None)
                continue
            tracked = _Tracked(job.id, slurm_id, job.state)
            self._track(tracked)
            await self._apply(tracked, info)
        log.info("re-adopted %d Slurm job(s)", len(self._tracked))

    async def close(self) -> None:
        """Stop polling and end the shells. The Slurm jobs keep running (``recover`` adopts
        them when the server starts again); terminate them through the API to end them."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        shells = list(self._shells)
        self._shells.clear()
        await asyncio.gather(*(s.terminate(grace=1.0) for s in shells), return_exceptions=True)

    # --- for benchmarks and diagnostics -----------------------------------------------------

    def shell_command(self, slurm_id: str, node: str, work_dir: str) -> list[str]:
        """The exact ``srun`` argv a shell on ``node`` runs (to time ``srun --pty`` alone)."""
        return shell_argv(slurm_id, node, work_dir, self.settings.shell)

    # --- shells ---------------------------------------------------------------------------

    async def _running_info(self, job: JobRecord, slurm_id: str) -> SlurmJobInfo:
        """Slurm's view of a job a shell should open in; a clear error unless it runs."""
        try:
            info = await self.cli.show_job(slurm_id)
        except SlurmCommandError as err:
            raise BackendError(f"Slurm is not reachable: {err.message}", 503) from err
        if info is None or info.name != job_name(job.id):
            raise BackendError(
                f"The job has ended: Slurm no longer knows job {slurm_id}", 400, "JOB_ENDED"
            )
        state = ucloud_state(info.state)
        if state is JobState.IN_QUEUE:
            reason = "" if info.reason in _NO_REASON else f" ({info.reason})"
            raise BackendError(
                f"The job is still waiting in the Slurm queue{reason}; a shell can be opened"
                " once it runs",
                400,
                "JOB_PENDING",
            )
        if state is JobState.SUSPENDED:
            raise BackendError("The job is suspended; a shell can be opened once it resumes", 400)
        if state is None or state.is_final:
            raise BackendError(f"The job has ended: {describe(info)}", 400, "JOB_ENDED")
        return info

    async def _nodes_of(self, info: SlurmJobInfo) -> list[str]:
        nodes = self._nodes.get(info.job_id)
        if nodes is None:
            if not info.has_nodes:
                raise BackendError("Slurm has not assigned nodes to the job yet", 400)
            try:
                nodes = await self.cli.expand_hostnames(info.node_list)
            except SlurmCommandError as err:
                raise BackendError(f"Slurm is not reachable: {err.message}", 503) from err
            self._nodes[info.job_id] = nodes
        return nodes

    def _shell_environment(self, job: JobRecord, rank: int) -> dict[str, str]:
        return job_environment(
            job,
            rank,
            product=self._config.product(job.specification.product.id),
            application=self._config.application_for(job.specification),
            extra=self._extra_env,
            for_shell=True,
        )

    async def _forget_shell(self, shell: PtyProcess) -> None:
        await shell.wait()
        self._shells.discard(shell)

    # --- polling --------------------------------------------------------------------------

    def _track(self, tracked: _Tracked) -> None:
        self._tracked[tracked.job_id] = tracked
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever(), name="slurm-poller")
        self._wake.set()

    def _untrack(self, tracked: _Tracked) -> None:
        self._tracked.pop(tracked.job_id, None)
        self._nodes.pop(tracked.slurm_id, None)

    async def _poll_forever(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
            self._wake.clear()
            if not self._tracked:
                continue
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the poller
                log.exception("polling Slurm failed")

    async def _poll_once(self) -> None:
        tracked = list(self._tracked.values())
        try:
            infos = await self.cli.squeue_jobs(t.slurm_id for t in tracked)
        except SlurmCommandError as err:
            loop_time = asyncio.get_running_loop().time()
            if self._failing_since is None:
                self._failing_since = loop_time
                log.warning(
                    "squeue failed (%s); retrying every %g s",
                    err.message,
                    self.settings.poll_interval,
                )
            return
        if self._failing_since is not None:
            log.info("squeue answers again")
            self._failing_since = None
        for item in tracked:
            if self._tracked.get(item.job_id) is not item:
                continue  # untracked meanwhile
            info = infos.get(item.slurm_id)
            if info is None:
                item.missing += 1
                if item.missing >= _LOST_AFTER_POLLS:
                    self._untrack(item)
                    await self._post_lost(item.job_id, item.slurm_id, renamed=False)
                continue
            item.missing = 0
            if info.name != job_name(item.job_id):
                self._untrack(item)
                await self._post_lost(item.job_id, item.slurm_id, renamed=True)
                continue
            await self._apply(item, info)

    async def _apply(self, item: _Tracked, info: SlurmJobInfo) -> None:
        """Post what changed since the last update of ``item``; stop tracking it once final."""
        async with self._applying:
            if self._tracked.get(item.job_id) is item:
                await self._apply_unlocked(item, info)

    async def _apply_unlocked(self, item: _Tracked, info: SlurmJobInfo) -> None:
        if info.state == "COMPLETING" or ucloud_state(info.state) in (
            JobState.SUCCESS,
            JobState.FAILURE,
            JobState.EXPIRED,
        ):
            # squeue says COMPLETING while the processes die (up to KillWait); scontrol already
            # has the outcome (CANCELLED, TIMEOUT...) and the exit code.
            with contextlib.suppress(SlurmCommandError):
                info = await self.cli.show_job(item.slurm_id) or info
        state = ucloud_state(info.state)
        if state is None:
            return
        queued_reason_changed = (
            state is JobState.IN_QUEUE
            and info.reason != item.reason
            and info.reason not in _NO_REASON
        )
        if state is not item.posted or queued_reason_changed:
            await self._sink.post_update(item.job_id, state, describe(info))
            item.posted = state
            item.reason = info.reason
        if state.is_final:
            self._untrack(item)

    async def _post_lost(self, job_id: str, slurm_id: str, *, renamed: bool) -> None:
        why = (
            f"Slurm job {slurm_id} is no longer this job (the cluster was reset?)"
            if renamed
            else f"Slurm no longer knows job {slurm_id}: it ended while nobody was watching"
        )
        await self._sink.post_update(job_id, JobState.FAILURE, why)


def _slurm_id(job: JobRecord) -> str | None:
    slurm_id = job.backend_state.get("slurm_job_id") or job.provider_generated_id
    return str(slurm_id) if slurm_id and str(slurm_id).isdigit() else None
