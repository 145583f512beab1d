"""The chaos scenario: a real Jupyter server in embedded mode, running jobs, typing clients, a
writing batch job; the checks made after every kill and at the end."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from jupyter_ucloud.local.instance import pid_alive, read_info

from . import procs
from .jupyter import JupyterServer
from .slurm import SlurmCluster
from .terminal import Client, Told, check_file

#: Interactive jobs: (key, product, ranks); one client types on each rank.
INTERACTIVE = (("a", "compute-multi", 2), ("b", "compute-multi", 2), ("c", "compute-example", 1))
BATCH_COMMAND = (
    "i=0; while [ ! -e ../stop-chaos ]; do i=$((i+1)); echo batch-$i; sleep 0.2; done;"
    " echo batch-end-$i"
)
READOPTED = "The embedded server restarted and re-adopted the job"


@dataclass
class Job:
    key: str
    id: str
    replicas: int
    batch: bool
    folder: Path
    supervisor: int | None = None
    ranks: tuple[int, ...] = ()
    slurm_id: str | None = None


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Round:
    number: int
    at: float  # seconds since the loop started
    target: str
    detail: str = ""
    told: str = ""
    timings: dict[str, list[float]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    embedded_killed: int = 0  # embedded servers this round killed
    told_at_most: int = 1  # times a client may be told (a second kill may hit its new shell)
    #: cid -> what that client must have been told (a test of the first ``Told``); the others
    #: must have been told nothing.
    expect: dict[str, Callable[[Told], bool]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


class ApiError(RuntimeError):
    pass


def wait_for(predicate: Callable[[], Any], timeout: float, pause: float = 0.05) -> Any:
    """``predicate()``'s first true value within ``timeout`` s, else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(pause)


def local_cli(action: str, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "jupyter_ucloud", "local", action, "--data-dir", str(data_dir)]


class Scenario:
    def __init__(self, root: Path, slurm: bool, rng: random.Random, hours: int) -> None:
        self.root = root
        self.rng = rng
        self.hours = hours
        self.cluster = SlurmCluster(Path(os.environ["SLURM_CONF"])) if slurm else None
        extra: dict[str, object] = {}
        if self.cluster is not None:
            config = root / "slurm-config.json"
            root.mkdir(parents=True, exist_ok=True)
            slurm_settings = {"poll_interval": 1, "slurm_conf": str(self.cluster.conf)}
            config.write_text(json.dumps({"backend": "slurm", "slurm": slurm_settings}))
            extra["embedded_config_file"] = str(config)
        self.jupyter = JupyterServer(root, extra)
        self.data_dir = self.jupyter.embedded_data_dir
        self.up = threading.Event()
        self.stop = threading.Event()
        self.jobs: list[Job] = []
        self.clients: list[Client] = []
        self.embedded_pids: list[int] = []
        self.batch_seen = 0
        self.down_slurmd: str | None = None  # killed and not started again yet
        self.slurmd_down = 3.0  # a killed slurmd stays down 0.5 s to this long

    def targets(self, extra: bool) -> list[str]:
        """What a round may kill: the issue's four (slurmd only on Slurm), and with ``extra``
        two kills at once."""
        found = ["jupyter", "embedded", "shell"] + (["slurmd"] if self.cluster else [])
        return found + (["jupyter+embedded", "embedded-twice"] if extra else [])

    @property
    def batch(self) -> Job:
        return next(job for job in self.jobs if job.batch)

    # --- the Jupyter server's API -------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        answer = requests.request(
            method,
            self.jupyter.url + path,
            headers={"Authorization": f"token {self.jupyter.token}"},
            json=body,
            timeout=timeout,
        )
        if answer.status_code >= 300:
            raise ApiError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.text else None

    def retrieve(self, job_id: str) -> dict[str, Any]:
        job = self.call("GET", f"ucloud/api/jobs/retrieve?id={job_id}&includeUpdates=true")
        assert isinstance(job, dict)
        return job

    def states(self) -> dict[str, str]:
        return {job.id: self.retrieve(job.id)["status"]["state"] for job in self.jobs}

    def _create(self, product: str, replicas: int, command: str | None = None) -> str:
        spec: dict[str, Any] = {
            "application": {"name": "batch" if command else "terminal", "version": "1"},
            "product": {"id": product, "category": product, "provider": "local"},
            "replicas": replicas,
            "timeAllocation": {"hours": self.hours, "minutes": 0, "seconds": 0},
        }
        if command:
            spec["parameters"] = {"command": {"type": "text", "value": command}}
        answer = self.call("POST", "ucloud/api/jobs", {"items": [spec]})
        return str(answer["responses"][0]["id"])

    # --- set-up -------------------------------------------------------------------------------

    def setup(self) -> None:
        self.jupyter.start()
        self.up.set()
        for key, product, ranks in INTERACTIVE:
            job_id = self._create(product, ranks)
            self.jobs.append(Job(key, job_id, ranks, False, self.data_dir / "jobs" / job_id))
        batch_id = self._create("batch-small", 1, BATCH_COMMAND)
        self.jobs.append(Job("batch", batch_id, 1, True, self.data_dir / "jobs" / batch_id))
        states = wait_for(
            lambda: set(self.states().values()) == {"RUNNING"} and self.states(), 180, 0.5
        )
        if not states:
            raise RuntimeError(f"the jobs did not all start: {self.states()}")
        for job in self.jobs:
            self._identify(job)
        self._note_embedded()
        for job in self.jobs:
            for rank in range(job.replicas if not job.batch else 0):
                cid = f"{job.key}{rank}"
                file = job.folder / f"rank-{rank}" / f"chaos-{cid}.txt"
                client = Client(cid, job.id, rank, file, self.jupyter, self.up, self.stop)
                self.clients.append(client)
                client.start()
        typing = wait_for(lambda: all(c.acked_since(0) >= 2 for c in self.clients), 180, 0.2)
        if not typing:
            raise RuntimeError(f"the clients do not type: {self.client_states()}")

    def _identify(self, job: Job) -> None:
        """Who the job is: its supervisor and rank pids, or its Slurm job."""
        if self.cluster is not None:
            job.slurm_id = self.retrieve(job.id).get("providerGeneratedId")
            return
        record = json.loads((job.folder / "supervisor.json").read_text())
        job.supervisor = int(record["pid"])
        job.ranks = tuple(int(rank["pid"]) for rank in record["ranks"])

    def _note_embedded(self) -> None:
        info = read_info(self.data_dir)
        if info is not None and info.pid not in self.embedded_pids:
            self.embedded_pids.append(info.pid)

    def client_states(self) -> str:
        return ", ".join(
            f"{c.cid}: {'open' if c.connected else 'closed'}, {len(c.acked)} acked"
            + (f", last failure {c.opened[-1].failures[-1:]}" if c.opened else "")
            for c in self.clients
        )

    # --- after each kill ----------------------------------------------------------------------

    def wait_told(self, clients: list[Client], since: float, timeout: float) -> dict[str, Told]:
        wait_for(lambda: all(c.told_since(since) for c in clients), timeout)
        return {c.cid: c.told_since(since)[0] for c in clients if c.told_since(since)}

    def check_round(self, r: Round, since: float) -> None:
        """Everything that must hold once the clients have recovered from the kill."""
        typing = wait_for(
            lambda: all(c.connected and c.acked_since(since) >= 2 for c in self.clients), 90
        )
        r.checks.append(Check("typing", bool(typing), "" if typing else self.client_states()))
        time.sleep(0.5)  # a late disconnect of a client that should not have one shows now
        r.checks.append(self._check_told(r, since))
        r.checks.append(self._check_jobs())
        r.checks.append(self._check_identity(r, since))
        r.checks.append(self.check_files())
        r.checks.append(self.check_batch(final=False))
        r.checks.append(self._check_one_server())
        r.checks.append(self._check_stray_shells())
        stalls = [f"{c.cid}#{s.number}" for c in self.clients for s in c.stalls if s.at >= since]
        crashed = [f"{c.cid}: {c.crashed}" for c in self.clients if c.crashed]
        r.checks.append(Check("no stall", not stalls and not crashed, " ".join(stalls + crashed)))
        self._note_embedded()

    def _check_told(self, r: Round, since: float) -> Check:
        wrong = []
        summaries: dict[str, int] = {}
        for client in self.clients:
            events = client.told_since(since)
            for event in events[:1]:
                summaries[event.summary()] = summaries.get(event.summary(), 0) + 1
            test = r.expect.get(client.cid)
            if test is None and events:
                wrong.append(f"{client.cid} told {[e.summary() for e in events]} (expected none)")
            elif test is not None and not events:
                wrong.append(f"{client.cid} told nothing")
            elif test is not None and (
                not all(test(e) for e in events) or len(events) > r.told_at_most
            ):
                wrong.append(f"{client.cid} told {[(e.summary(), e.message) for e in events]}")
        told = ", ".join(f"{n}x {s}" for s, n in sorted(summaries.items())) or "none"
        r.told = f"{told} ({len(r.expect)} expected)" if r.expect else told
        return Check("told", not wrong, "; ".join(wrong))

    def _check_jobs(self) -> Check:
        try:
            states = self.states()
            page = self.call("GET", "ucloud/api/jobs/browse?itemsPerPage=250")
        except (ApiError, requests.RequestException) as err:
            return Check("jobs", False, str(err))
        listed = sorted(str(item["id"]) for item in page["items"])
        created = sorted(job.id for job in self.jobs)
        problems = [f"job {j} is {s}" for j, s in states.items() if s != "RUNNING"]
        if listed != created or page.get("next"):
            problems.append(f"browse lists {listed}, created {created}")
        return Check("jobs", not problems, "; ".join(problems))

    def _check_identity(self, r: Round, since: float) -> Check:
        """The same jobs run: same supervisors and rank processes (or Slurm jobs), adopted and
        not started again."""
        problems = []
        if self.cluster is not None:
            seen = self.cluster.jobs_under(self.data_dir)
            for job in self.jobs:
                mine = [(i, state) for i, name, state in seen if name == f"ucloud-{job.id}"]
                if mine != [(job.slurm_id, "RUNNING")]:
                    problems.append(f"job {job.id}: Slurm has {mine}, expected {job.slurm_id}")
        else:
            supervisors = procs.supervisors(procs.snapshot(), self.data_dir)
            if len(supervisors) != len(self.jobs):
                problems.append(f"{len(supervisors)} supervisors for {len(self.jobs)} jobs")
            for job in self.jobs:
                record = json.loads((job.folder / "supervisor.json").read_text())
                ranks = tuple(int(rank["pid"]) for rank in record["ranks"])
                alive = pid_alive(job.supervisor or 0) and all(pid_alive(p) for p in job.ranks)
                if record["pid"] != job.supervisor or ranks != job.ranks or not alive:
                    problems.append(f"job {job.id}: supervisor/ranks changed or gone: {record}")
        if r.embedded_killed and self.cluster is None:
            for job in self.jobs:
                updates = self.retrieve(job.id).get("updates") or []
                if not any(u.get("status") == READOPTED for u in updates[-3:]):
                    problems.append(f"job {job.id}: no re-adoption update")
        return Check("same jobs", not problems, "; ".join(problems))

    def check_files(self) -> Check:
        problems = []
        for client in self.clients:
            wrong = check_file(client)
            if wrong:
                problems.append(f"{client.cid}: {wrong}")
        return Check("files", not problems, "; ".join(problems))

    def batch_lines(self) -> list[str]:
        folder = self.batch.folder
        files = [folder / "rank-0.out", *sorted(folder.glob("slurm-*.out"))]
        text = "".join(f.read_text() for f in files if f.exists())
        lines = text.split("\n")
        return lines[:-1]  # the last one is partial (or empty)

    def check_batch(self, final: bool) -> Check:
        lines = self.batch_lines()
        body = lines[:-1] if final else lines
        expected = [f"batch-{i}" for i in range(1, len(body) + 1)]
        problems = []
        if body != expected:
            first = next(i for i, (a, b) in enumerate(zip(body, expected, strict=False)) if a != b)
            problems.append(f"line {first + 1} is {body[first]!r}, expected {expected[first]!r}")
        if final and (not lines or lines[-1] != f"batch-end-{len(body)}"):
            problems.append(f"last line {lines[-1:]!r}, expected 'batch-end-{len(body)}'")
        if not final and len(body) <= self.batch_seen:
            problems.append(f"no new line since the last round ({len(body)} lines)")
        self.batch_seen = len(body)
        return Check("batch output", not problems, "; ".join(problems) or f"{len(body)} lines")

    def _check_one_server(self) -> Check:
        found = procs.embedded_servers(procs.snapshot(), self.data_dir)
        info = read_info(self.data_dir)
        ok = len(found) == 1 and info is not None and found[0].pid == info.pid
        detail = f"processes {[p.pid for p in found]}, server.json {info.pid if info else None}"
        return Check("one server", ok, "" if ok else detail)

    def _check_stray_shells(self) -> Check:
        """Each job has exactly as many login shells (and, on Slurm, srun processes) as clients:
        the shells of lost connections have ended."""

        def problems() -> list[str]:
            snapshot = procs.snapshot()
            found = []
            for job in self.jobs:
                want = sum(1 for c in self.clients if c.job_id == job.id)
                shells = procs.login_shells(snapshot, self.data_dir, job.id)
                if len(shells) != want:
                    found.append(f"job {job.id}: {len(shells)} login shells for {want} clients")
            if self.cluster is not None:
                sruns = procs.sruns(snapshot, self.data_dir, pty=True)
                if len(sruns) != len(self.clients):
                    found.append(f"{len(sruns)} srun --pty for {len(self.clients)} clients")
            return found

        left = [] if wait_for(lambda: not problems(), 15, 0.2) else problems()
        return Check("no stray shell", not left, "; ".join(left))


def matches(
    what: str, reason: str = "", code: int | None = None, says: str = ""
) -> Callable[[Told], bool]:
    """A test of what a client was told: a frame or a bare close, its reason, its close code,
    words its message must hold."""

    def test(told: Told) -> bool:
        return (
            told.what == what
            and (not reason or told.reason == reason)
            and (code is None or told.code == code)
            and says in told.message
        )

    return test
