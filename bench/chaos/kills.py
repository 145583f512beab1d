"""One round of chaos: kill -9 one part, bring it back as a user (or the product) would, and say
what every client must have been told. Each returns the moment of the kill."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from jupyter_ucloud.local.instance import pid_alive, read_info

from . import procs
from .scenario import ApiError, Check, Round, Scenario, matches, wait_for
from .terminal import probe_shell


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


def _kill_embedded_server(sc: Scenario, r: Round) -> int | None:
    """kill -9 the data dir's embedded server (the one server.json names, if it is the only
    one running); its pid, or ``None`` (a failed check) when it is not as expected."""
    info = read_info(sc.data_dir)
    running = procs.embedded_servers(procs.snapshot(), sc.data_dir)
    if info is None or [p.pid for p in running] != [info.pid]:
        r.checks.append(Check("target", False, f"server.json {info}, processes {running}"))
        return None
    if info.pid not in sc.embedded_pids:
        sc.embedded_pids.append(info.pid)
    procs.kill9(info.pid)
    r.embedded_killed += 1
    return info.pid


def _adopted(sc: Scenario, killed_pid: int) -> bool:
    """A new embedded server runs and the jobs, asked through the extension, are RUNNING (the
    request itself makes the extension start that server)."""
    try:
        states = sc.states()
    except (ApiError, OSError):
        return False
    new = read_info(sc.data_dir)
    fresh = new is not None and new.pid != killed_pid and pid_alive(new.pid)
    return fresh and set(states.values()) == {"RUNNING"}


def kill_embedded(sc: Scenario, r: Round, twice: bool = False) -> float:
    """The embedded server: its shells end (it held their terminals); the extension starts a new
    one on the next request, which re-adopts the running jobs; clients are told provider-lost.
    ``twice``: the new server is killed too as soon as it has announced itself (while it
    re-adopts), and a third one takes over."""
    r.expect = {
        c.cid: matches("disconnect", "provider-lost", 4002, "The job is still running")
        for c in sc.clients
    }
    killed = time.monotonic()
    pid = _kill_embedded_server(sc, r)
    if pid is None:
        return killed
    r.detail = f"pid {pid}"
    if twice:

        def announced() -> bool:
            new = read_info(sc.data_dir)
            if new is not None and new.pid != pid and pid_alive(new.pid):
                return True
            with contextlib.suppress(ApiError, OSError):  # makes the extension start one
                sc.call("GET", "ucloud/api/status", timeout=60)
            return False

        if not wait_for(announced, 60, 0.01):
            r.checks.append(Check("target", False, "no second embedded server within 60 s"))
            return killed
        second = time.monotonic()
        r.told_at_most = 2  # a client may have reopened its shell on the second server
        pid = _kill_embedded_server(sc, r)
        if pid is None:
            return killed
        r.detail += f", then pid {pid} after {second - killed:.2f}s"
    if wait_for(lambda: _adopted(sc, pid), 60, 0.02):
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


def kill_embedded_twice(sc: Scenario, r: Round) -> float:
    return kill_embedded(sc, r, twice=True)


def kill_both(sc: Scenario, r: Round) -> float:
    """The Jupyter server and the embedded server, one a moment (0-1 s) after the other, in
    either order (a crash of everything but the jobs; the embedded server first: the Jupyter
    server dies while it starts a new one). The next Jupyter server finds or starts one embedded
    server, which re-adopts the jobs."""
    assert sc.jupyter.proc is not None
    jupyter_pid = sc.jupyter.proc.pid
    delay = sc.rng.uniform(0.0, 1.0)
    killed = time.monotonic()
    if sc.rng.random() < 0.5:
        pid = _kill_embedded_server(sc, r)
        time.sleep(delay)
        sc.up.clear()
        procs.kill9(jupyter_pid)
        sc.jupyter.proc.wait(10)
        r.detail = f"embedded {pid}, Jupyter {jupyter_pid} {delay:.2f}s later"
        closed, lost = matches("closed"), matches("disconnect", "provider-lost", 4002)
        r.expect = {c.cid: lambda told: closed(told) or lost(told) for c in sc.clients}
        r.told_at_most = 2  # provider-lost, then the new shell's socket closed with Jupyter
    else:
        sc.up.clear()
        procs.kill9(jupyter_pid)
        sc.jupyter.proc.wait(10)
        time.sleep(delay)
        pid = _kill_embedded_server(sc, r)
        r.detail = f"Jupyter {jupyter_pid}, embedded {pid} {delay:.2f}s later"
        r.expect = {c.cid: matches("closed") for c in sc.clients}
    sc.wait_told(sc.clients, killed, 20)
    sc.jupyter.start()
    ready = time.monotonic()
    sc.up.set()
    r.timings["jupyter restart"] = [ready - killed]
    if wait_for(lambda: _adopted(sc, pid or 0), 60, 0.02):
        r.timings["re-adoption after up"] = [time.monotonic() - ready]
    else:
        r.checks.append(Check("re-adopted", False, f"not within 60 s: {read_info(sc.data_dir)}"))
    wait_for(lambda: all(c.opened_since(ready) for c in sc.clients), 60)
    r.timings["shell reopen"] = [
        c.opened_since(ready)[0].usable_at - ready for c in sc.clients if c.opened_since(ready)
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
    r.expect = {victim.cid: matches("disconnect", "shell-exited", 1000, "The shell has exited")}
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
    on_node = [
        (job, rank)
        for job in sc.jobs
        if not job.batch and job.slurm_id
        for rank, name in enumerate(sc.cluster.nodes_of(job.slurm_id))
        if name == node
    ]
    down = sc.rng.uniform(0.5, sc.slurmd_down)
    killed = time.monotonic()
    sc.down_slurmd = node
    procs.kill9(pid)
    wait_for(lambda: sc.cluster is not None and sc.cluster.slurmd_pid(node) is None, 10)
    # Meanwhile a user opens a new shell on a rank of that node.
    probe: dict[str, Any] = {}
    if on_node:
        job, rank = sc.rng.choice(on_node)
        probe["where"] = f"{job.key}{rank}"
        thread = threading.Thread(target=_probe, args=(sc, job.id, rank, probe), daemon=True)
        thread.start()
    time.sleep(down)
    sc.cluster.start_slurmd(node)
    sc.down_slurmd = None
    back = sc.cluster.wait_node_usable(node)
    r.timings["slurmd down"] = [down]
    r.timings["node usable again"] = [back]
    if on_node:
        thread.join(PROBE_TIMEOUT + 30)
        outcome = probe.get("outcome", "no outcome")
        r.detail += f", new shell {probe['where']}: {outcome[:40]}"
        if "seconds" in probe:
            r.timings["new shell"] = [probe["seconds"]]
        clear = outcome == "usable" or outcome.startswith(("HTTP 4", "HTTP 5", "told"))
        r.checks.append(Check("new shell", clear, "" if clear else outcome))
    return killed


PROBE_TIMEOUT = 60.0


def _probe(sc: Scenario, job_id: str, rank: int, into: dict[str, Any]) -> None:
    started = time.monotonic()
    try:
        into["outcome"] = probe_shell(sc.jupyter, job_id, rank, PROBE_TIMEOUT)
    except Exception as err:  # reported as the outcome
        into["outcome"] = f"{type(err).__name__}: {err}"
    into["seconds"] = time.monotonic() - started


KILLS = {
    "jupyter": kill_jupyter,
    "embedded": kill_embedded,
    "shell": kill_shell,
    "slurmd": kill_slurmd,
    # Beyond the four (--extra): two kills at once.
    "jupyter+embedded": kill_both,
    "embedded-twice": kill_embedded_twice,
}
