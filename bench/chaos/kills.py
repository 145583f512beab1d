"""One round of chaos: kill -9 one part, bring it back as a user (or the product) would, and say
what every client must have been told. Each returns the moment of the kill."""

from __future__ import annotations

import time

from jupyter_ucloud.local.instance import pid_alive, read_info

from . import procs
from .scenario import ApiError, Check, Round, Scenario, matches, wait_for


def kill_jupyter(sc: Scenario, r: Round) -> float:
    """The Jupyter server: every terminal's socket drops (nobody is left to send a frame); a new
    Jupyter server is started on the same configuration and the clients open new shells."""
    assert sc.jupyter.proc is not None
    sc.up.clear()  # clients wait for the new server before they try again
    pid = sc.jupyter.proc.pid
    r.detail = f"pid {pid}"
    r.expect = {c.cid: matches("closed") for c in sc.clients}
    killed = time.monotonic()
    procs.kill9(pid)
    sc.jupyter.proc.wait(10)
    sc.wait_told(sc.clients, killed, 20)
    sc.jupyter.start()
    ready = time.monotonic()
    sc.up.set()
    r.timings["jupyter restart"] = [ready - killed]
    wait_for(lambda: all(c.opened_since(ready) for c in sc.clients), 60)
    r.timings["shell reopen"] = [
        c.opened_since(ready)[0].usable_at - ready for c in sc.clients if c.opened_since(ready)
    ]
    return killed


def kill_embedded(sc: Scenario, r: Round) -> float:
    """The embedded server: its shells end (it held their terminals); the extension starts a new
    one on the next request, which re-adopts the running jobs; clients are told provider-lost."""
    info = read_info(sc.data_dir)
    running = procs.embedded_servers(procs.snapshot(), sc.data_dir)
    if info is None or [p.pid for p in running] != [info.pid]:
        r.checks.append(Check("target", False, f"server.json {info}, processes {running}"))
        return time.monotonic()
    r.detail = f"pid {info.pid}"
    r.expect = {c.cid: matches("disconnect", "provider-lost", 4002) for c in sc.clients}
    killed = time.monotonic()
    procs.kill9(info.pid)

    def adopted() -> bool:
        try:  # the first request after the kill makes the extension start a new server
            states = sc.states()
        except (ApiError, OSError):
            return False
        new = read_info(sc.data_dir)
        fresh = new is not None and new.pid != info.pid and pid_alive(new.pid)
        return fresh and set(states.values()) == {"RUNNING"}

    if wait_for(adopted, 60, 0.02):
        r.timings["re-adoption"] = [time.monotonic() - killed]
    else:
        r.checks.append(Check("re-adopted", False, f"not within 60 s: {read_info(sc.data_dir)}"))
    told = sc.wait_told(sc.clients, killed, 30)
    r.timings["told"] = [t.at - killed for t in told.values()]
    wait_for(lambda: all(c.opened_since(killed) for c in sc.clients), 60)
    r.timings["shell usable"] = [
        c.opened_since(killed)[0].usable_at - killed for c in sc.clients if c.opened_since(killed)
    ]
    return killed


def kill_shell(sc: Scenario, r: Round) -> float:
    """A rank's shell (the login shell of one attached client): that client is told
    shell-exited and opens a new one; nobody else notices."""
    candidates = [c for c in sc.clients if c.connected]
    victim = sc.rng.choice(candidates)
    pid = victim.pid
    shells = procs.login_shells(procs.snapshot(), sc.data_dir, victim.job_id)
    r.detail = f"{victim.cid} (job {victim.job_id} rank {victim.rank}) pid {pid}"
    shell = next((p for p in shells if p.pid == pid), None)
    job = next(j for j in sc.jobs if j.id == victim.job_id)
    if shell is None or (sc.cluster is None and shell.ppid != job.supervisor):
        why = f"pid {pid} is not a login shell of the job's supervisor {job.supervisor}"
        r.checks.append(Check("target", False, f"{why}: {[p.describe() for p in shells]}"))
    r.expect = {victim.cid: matches("disconnect", "shell-exited", 1000)}
    killed = time.monotonic()
    procs.kill9(pid or 0)
    told = sc.wait_told([victim], killed, 20)
    if victim.cid in told:
        r.timings["told"] = [told[victim.cid].at - killed]
        wait_for(lambda: victim.opened_since(killed), 60)
        opened = victim.opened_since(killed)
        if opened:
            r.timings["shell reopen"] = [opened[0].usable_at - told[victim.cid].at]
    return killed


def kill_slurmd(sc: Scenario, r: Round) -> float:
    """A node's slurmd: the job steps (ranks, shells) run under slurmstepd and go on; it is
    started again after a moment, as `scripts/dev-slurm start` starts it. Nobody is told."""
    assert sc.cluster is not None
    node = sc.rng.choice(sc.cluster.nodes())
    pid = sc.cluster.slurmd_pid(node)
    r.detail = f"{node} pid {pid}"
    if pid is None:
        r.checks.append(Check("target", False, f"no slurmd runs for {node}"))
        return time.monotonic()
    down = sc.rng.uniform(0.5, 3.0)
    killed = time.monotonic()
    sc.down_slurmd = node
    procs.kill9(pid)
    wait_for(lambda: sc.cluster is not None and sc.cluster.slurmd_pid(node) is None, 10)
    time.sleep(down)
    sc.cluster.start_slurmd(node)
    sc.down_slurmd = None
    back = sc.cluster.wait_node_usable(node)
    r.timings["slurmd down"] = [down]
    r.timings["node usable again"] = [back]
    return killed


KILLS = {
    "jupyter": kill_jupyter,
    "embedded": kill_embedded,
    "shell": kill_shell,
    "slurmd": kill_slurmd,
}
