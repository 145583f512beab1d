"""The end of a chaos run: stop everything as a user would and check that nothing of it is
left; and the clean-up that runs whatever happened."""

from __future__ import annotations

import json
import sqlite3
import subprocess

from . import procs
from .scenario import Check, Scenario, local_cli, wait_for


def finish(sc: Scenario, embedded_kills: int) -> list[Check]:
    """Stop the clients and the batch job, the Jupyter server, then `jupyter ucloud local stop`;
    check the output, the final states and that nothing of the run is left."""
    checks = []
    sc.stop.set()
    for client in sc.clients:
        client.join(40)
    crashed = [f"{c.cid}: {c.crashed}" for c in sc.clients if c.crashed]
    checks.append(Check("clients ended cleanly", not crashed, "; ".join(crashed)))
    checks.append(sc.check_files())
    (sc.batch.folder / "stop-chaos").touch()
    done = wait_for(lambda: sc.retrieve(sc.batch.id)["status"]["state"] != "RUNNING", 120)
    state = sc.retrieve(sc.batch.id)["status"]["state"]
    checks.append(Check("batch job SUCCESS", bool(done) and state == "SUCCESS", state))
    checks.append(sc.check_batch(final=True))
    sc.jupyter.stop()
    stopped = sc.jupyter.proc is not None and sc.jupyter.proc.poll() is not None
    checks.append(Check("Jupyter stopped", stopped))
    alive = procs.embedded_servers(procs.snapshot(), sc.data_dir)
    pids = [p.pid for p in alive]
    checks.append(Check("embedded server outlives Jupyter", len(alive) == 1, f"pids {pids}"))
    stop = subprocess.run(
        local_cli("stop", sc.data_dir), capture_output=True, text=True, timeout=180
    )
    checks.append(Check("local stop", stop.returncode == 0, (stop.stdout + stop.stderr)[-300:]))
    checks.append(_check_final_states(sc))
    left = wait_for(lambda: not procs.leftovers(procs.snapshot(), sc.root), 60, 0.5)
    rest = [] if left else procs.leftovers(procs.snapshot(), sc.root)
    checks.append(Check("no orphan", not rest, "; ".join(p.describe() for p in rest)))
    if sc.cluster is not None:
        cluster = sc.cluster
        slurm_left = wait_for(lambda: not cluster.jobs_under(sc.data_dir), 60, 0.5)
        rest_jobs = cluster.jobs_under(sc.data_dir)
        checks.append(Check("no Slurm job left", bool(slurm_left), f"{rest_jobs}"))
    started = len(sc.embedded_pids)
    checks.append(
        Check(
            "one embedded server per life",
            started == 1 + embedded_kills,
            f"{started} started ({', '.join(map(str, sc.embedded_pids))}), {embedded_kills} killed",
        )
    )
    return checks


def _check_final_states(sc: Scenario) -> Check:
    status = subprocess.run(
        [*local_cli("status", sc.data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = []
    try:
        answer = json.loads(status.stdout)
    except ValueError:
        return Check("all jobs ended", False, status.stderr[-300:])
    if answer.get("server") or answer.get("jobs"):
        problems.append(f"status says {answer.get('server')}, {answer.get('jobs')}")
    db = sqlite3.connect(f"file:{sc.data_dir / 'jobs.sqlite'}?mode=ro", uri=True)
    try:
        rows = dict(db.execute("SELECT id, state FROM jobs").fetchall())
    finally:
        db.close()
    states = {str(k): v for k, v in rows.items()}
    for job in sc.jobs:
        if states.get(job.id) != "SUCCESS":
            problems.append(f"job {job.id} ended {states.get(job.id)}")
    if set(states) != {job.id for job in sc.jobs}:
        problems.append(f"the store holds jobs {sorted(states)}")
    return Check("all jobs ended", not problems, "; ".join(problems))


def cleanup(sc: Scenario) -> list[str]:
    """Whatever happened: nothing of ours keeps running. Returns what had to be ended."""
    notes = []
    sc.stop.set()
    sc.up.set()
    if sc.down_slurmd is not None and sc.cluster is not None:
        sc.cluster.start_slurmd(sc.down_slurmd)
        notes.append(f"started slurmd {sc.down_slurmd} again")
    sc.jupyter.stop()
    if sc.data_dir.exists():
        subprocess.run(local_cli("stop", sc.data_dir), capture_output=True, timeout=180)
    if sc.cluster is not None:
        sc.cluster.cancel_under(sc.root)
    for proc in procs.leftovers(procs.snapshot(), sc.root):
        if procs.kill9(proc.pid):
            notes.append(f"killed leftover {proc.describe()}")
    return notes
