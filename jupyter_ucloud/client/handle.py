"""``JobHandle``: one job, for notebooks: state, waiting with progress, its output (``logs``,
``follow``), commands on one rank or on all ranks at once, shells, termination. Built on the
UCloud-named calls of ``UCloud``; waiting and output use the job's ``jobs.follow`` stream."""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol, TextIO

from ..protocol import Job, JobSpecification, JobState, NameAndVersion, SimpleDuration
from .errors import UCloudError, UCloudJobStateError, UCloudTimeoutError
from .follow import JobFollower
from .follow_protocol import LogLines, describe_state, write_log
from .shell import Shell
from .shell_protocol import CommandResult
from .tables import ProductTable

__all__ = ["JobClient", "JobHandle", "start_job"]

Progress = bool | Callable[[Job], None]


class _JobCalls(Protocol):
    def retrieve(self, id: str, **flags: Any) -> Job: ...

    def follow(self, id: str) -> JobFollower: ...

    def create(self, spec: JobSpecification | dict[str, Any]) -> str: ...

    def terminate(self, id: str | list[str]) -> None: ...

    def extend(
        self,
        id: str,
        requested_time: SimpleDuration | None = None,
        *,
        hours: int = 0,
        minutes: int = 0,
        seconds: int = 0,
    ) -> None: ...


class _ShellCalls(Protocol):
    def open_job(self, job_id: str, rank: int = 0, cols: int = 80, rows: int = 24) -> Shell: ...


class JobClient(Protocol):
    """What a :class:`JobHandle` needs of its client (``sync.UCloud`` fits)."""

    @property
    def jobs(self) -> _JobCalls: ...

    @property
    def shells(self) -> _ShellCalls: ...

    def products(self) -> ProductTable: ...


class JobHandle:
    """A job by id. ``refresh()`` re-reads it; ``state`` is as of the last read."""

    def __init__(self, client: JobClient, job: str | Job) -> None:
        self._client = client
        self._job: Job | None = job if isinstance(job, Job) else None
        self.id = job.id if isinstance(job, Job) else str(job)

    @property
    def job(self) -> Job:
        """The job as last read (read now if never)."""
        return self._job if self._job is not None else self.refresh()

    def refresh(self) -> Job:
        try:
            self._job = self._client.jobs.retrieve(self.id, include_product=True)
        except UCloudError as err:
            raise err.about(job_id=self.id) from None
        return self._job

    @property
    def state(self) -> JobState:
        return self.refresh().state

    @property
    def ranks(self) -> int:
        return self.job.specification.replicas

    def _last_status(self) -> str:
        messages = [u.status for u in self.job.updates if u.status]
        return messages[-1] if messages else ""

    def wait_until(
        self,
        state: JobState | str = JobState.RUNNING,
        timeout: float = 300.0,
        progress: Progress = True,
        poll_interval: float = 0.5,
    ) -> JobHandle:
        """Wait until the job is in ``state``. ``progress``: ``True`` prints state changes,
        a callable gets the job at each change, ``False`` is silent. Raises
        ``UCloudJobStateError`` if the job ends in another state, ``UCloudTimeoutError`` after
        ``timeout`` seconds.

        The job's ``jobs.follow`` stream tells each change as it happens; where it cannot be
        opened, or ends early, the job is polled every ``poll_interval`` seconds instead."""
        wanted = JobState(state)
        deadline = time.monotonic() + timeout
        seen: list[JobState | None] = [None]
        try:
            follower = self._client.jobs.follow(self.id)
        except UCloudError:
            follower = None  # e.g. a server without jobs.follow: poll (its errors are raised)
        if follower is not None:
            with follower:
                while True:
                    job = follower.job
                    assert job is not None
                    self._job = job
                    if self._reached(job, wanted, seen, progress):
                        return self
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._still(job, wanted, timeout)
                    # Log frames come too: they just wake the loop.
                    if follower.read(timeout=remaining) is None and follower.closed:
                        break  # the stream ended early: poll for the rest of the time
        while True:
            job = self.refresh()
            if self._reached(job, wanted, seen, progress):
                return self
            if time.monotonic() >= deadline:
                raise self._still(job, wanted, timeout)
            time.sleep(poll_interval)

    def _reached(
        self, job: Job, wanted: JobState, seen: list[JobState | None], progress: Progress
    ) -> bool:
        """Report a change; ``True`` once ``wanted``, ``UCloudJobStateError`` if it ended."""
        if job.state != seen[0]:
            seen[0] = job.state
            self._report(job, progress)
        if job.state == wanted:
            return True
        if job.state.is_final:
            detail = self._last_status()
            raise UCloudJobStateError(
                f"ended as {job.state.value} while waiting for {wanted.value}"
                + (f": {detail}" if detail else ""),
                job_id=self.id,
            )
        return False

    def _still(self, job: Job, wanted: JobState, timeout: float) -> UCloudTimeoutError:
        return UCloudTimeoutError(
            f"still {job.state.value} after {timeout:g} s, waiting for {wanted.value}",
            job_id=self.id,
        )

    # --- output -------------------------------------------------------------------------------

    def logs(
        self,
        rank: int | None = None,
        *,
        stream: Literal["stdout", "stderr"] | None = None,
        quiet: float = 0.5,
        timeout: float = 30.0,
    ) -> str:
        """The job's output so far: what its ranks printed to stdout and stderr, in the order
        it came. ``rank``: one rank's only; ``stream``: only ``"stdout"`` or ``"stderr"``. For a
        job of several ranks and no ``rank``, each line starts with ``[rank N] ``.

        Read from the job's ``jobs.follow`` stream until it has been quiet for ``quiet``
        seconds, or it ends (the job ended and everything was sent), or after ``timeout``
        seconds (for a job that keeps printing)."""
        lines = LogLines(prefix=rank is None and self.ranks > 1)
        parts: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            follower = self._client.jobs.follow(self.id)
        except UCloudError as err:
            raise err.about(job_id=self.id) from None
        with follower:
            self._job = follower.job
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                message = follower.read(timeout=min(quiet, remaining))
                if message is None:
                    break  # quiet, or the end
                for entry in message.log:
                    if rank is not None and entry.rank != rank:
                        continue
                    for name in ("stdout", "stderr"):
                        text = getattr(entry, name)
                        if text and stream in (None, name):
                            parts.append(lines.feed(entry.rank, name, text))
            if follower.job is not None:
                self._job = follower.job
        parts += [text for _, text in lines.flush()]
        return "".join(parts)

    def follow(
        self,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        progress: bool = True,
    ) -> JobHandle:
        """Print the job's output as it comes (in a notebook: into the cell's output) until
        the job ends or the cell is interrupted (Ctrl-C / the stop button). A rank's stdout
        goes to ``sys.stdout`` and its stderr to ``sys.stderr`` (or ``stdout``/``stderr``); for a
        job of several ranks each line starts with ``[rank N] ``. With ``progress``, the job's
        state changes are printed too, as ``wait_until`` does."""
        out = stdout or sys.stdout
        err = stderr or sys.stderr
        lines = LogLines(prefix=self.ranks > 1)
        try:
            follower = self._client.jobs.follow(self.id)
        except UCloudError as error:
            raise error.about(job_id=self.id) from None
        state: JobState | None = None
        try:
            with follower:
                while True:
                    job = follower.job
                    if job is not None:
                        self._job = job
                        if progress and job.state != state:
                            state = job.state
                            out.write(f"job {self.id}: {describe_state(job)}\n")
                            out.flush()
                    message = follower.read(timeout=1.0)
                    if message is None:
                        for name, text in lines.flush():  # quiet: show partial lines
                            (out if name == "stdout" else err).write(text)
                        if follower.closed:
                            break
                        continue
                    write_log(message, lines, out, err)
        except KeyboardInterrupt:
            out.write(f"[stopped following job {self.id}; the job goes on]\n")
        finally:
            for name, text in lines.flush():
                (out if name == "stdout" else err).write(text)
            out.flush()
            err.flush()
        job = self._job
        if progress and job is not None and job.state != state:
            out.write(f"job {self.id}: {describe_state(job)}\n")
            out.flush()
        return self

    def _report(self, job: Job, progress: Progress) -> None:
        if callable(progress):
            progress(job)
        elif progress:
            detail = self._last_status()
            print(f"job {self.id}: {job.state.value}" + (f" ({detail})" if detail else ""))

    def shell(self, rank: int = 0, cols: int = 80, rows: int = 24) -> Shell:
        """A shell on ``rank`` (use it as a context manager)."""
        try:
            return self._client.shells.open_job(self.id, rank, cols, rows)
        except UCloudError as err:
            raise self._explain(err, rank) from None

    def run(self, command: str, rank: int = 0, timeout: float = 60.0) -> CommandResult:
        """Run ``command`` in a fresh shell on ``rank``: its output and exit status."""
        try:
            with self._client.shells.open_job(self.id, rank) as shell:
                return shell.run(command, timeout=timeout)
        except UCloudError as err:
            raise self._explain(err, rank) from None

    def run_all(self, command: str, timeout: float = 60.0) -> dict[int, CommandResult]:
        """Run ``command`` on every rank at once: ``{rank: CommandResult}``. If any rank fails,
        the error of the first failing rank is raised (the others still run to the end)."""
        ranks = range(self.ranks)
        with ThreadPoolExecutor(max_workers=max(1, len(ranks))) as pool:
            futures = {rank: pool.submit(self.run, command, rank, timeout) for rank in ranks}
            return {rank: future.result() for rank, future in futures.items()}

    def _explain(self, err: UCloudError, rank: int) -> UCloudError:
        """``err`` naming the job and rank, with the job's state when it has ended."""
        err.about(job_id=self.id, rank=rank)
        if isinstance(err, UCloudTimeoutError):
            return err
        try:
            job = self.refresh()
        except UCloudError:
            return err
        if job.state != JobState.RUNNING:
            detail = self._last_status()
            return UCloudJobStateError(
                f"the job is {job.state.value}, not RUNNING"
                + (f" ({detail})" if detail else "")
                + f": {err.why}",
                status=err.status,
                call=err.call,
                job_id=self.id,
                rank=rank,
            )
        return err

    def terminate(self, wait: bool = False, timeout: float = 60.0) -> JobHandle:
        """``jobs.terminate``; with ``wait``, until the job has ended."""
        try:
            self._client.jobs.terminate(self.id)
        except UCloudError as err:
            raise err.about(job_id=self.id) from None
        if wait:
            deadline = time.monotonic() + timeout
            while not self.refresh().state.is_final:
                if time.monotonic() >= deadline:
                    raise UCloudTimeoutError(
                        f"still {self.job.state.value} {timeout:g} s after terminate",
                        job_id=self.id,
                    )
                time.sleep(0.25)
        return self

    def extend(self, hours: int = 0, minutes: int = 0, seconds: int = 0) -> JobHandle:
        try:
            self._client.jobs.extend(self.id, hours=hours, minutes=minutes, seconds=seconds)
        except UCloudError as err:
            raise err.about(job_id=self.id) from None
        return self

    def __repr__(self) -> str:
        state = self._job.state.value if self._job is not None else "?"
        return f"<JobHandle {self.id} {state}>"

    def _repr_html_(self) -> str:
        job = self.job
        spec = job.specification
        app = f"{spec.application.name} {spec.application.version}"
        return (
            f"<b>UCloud job {html.escape(job.id)}</b>: {html.escape(job.state.value)}, "
            f"{html.escape(app)} on {html.escape(spec.product.id)}, "
            f"{spec.replicas} rank{'s' if spec.replicas != 1 else ''}"
        )


def time_allocation(hours: int | None, minutes: int | None) -> SimpleDuration:
    """``hours`` + ``minutes``; a duration given in either unit replaces the default of one
    hour (``minutes=30`` is 30 minutes, not 1 h 30 min)."""
    if hours is None and minutes is None:
        return SimpleDuration(hours=1, minutes=0)
    return SimpleDuration(hours=hours or 0, minutes=minutes or 0)


def start_job(
    client: JobClient,
    application: str,
    version: str | None,
    *,
    product: str | None,
    replicas: int,
    hours: int | None,
    minutes: int | None,
    name: str | None,
    parameters: dict[str, Any] | None,
    wait: bool,
    timeout: float,
    progress: Progress,
) -> JobHandle:
    products = client.products()
    if product is None:
        chosen = next((p for p in products if p.supports_terminal), None)
        if chosen is None:
            raise UCloudError("no product supports terminals: pass product=...", call="jobs.create")
    else:
        found = products.find(product)
        if found is None:
            names = ", ".join(p.product.name for p in products)
            raise UCloudError(f"no product {product!r} (there are: {names})", call="jobs.create")
        chosen = found
    spec: dict[str, Any] = {
        "application": NameAndVersion(name=application, version=version or "1"),
        "product": chosen.product.reference,
        "replicas": replicas,
        "time_allocation": time_allocation(hours, minutes),
    }
    if name:
        spec["name"] = name
    if parameters is not None:
        spec["parameters"] = parameters
    handle = JobHandle(client, client.jobs.create(JobSpecification(**spec)))
    if wait:
        handle.wait_until(JobState.RUNNING, timeout=timeout, progress=progress)
    return handle
