"""What runs: one snapshot of /proc, and the processes of ours in it."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    argv: tuple[str, ...]
    cwd: str
    env: frozenset[str]  # "NAME=value" entries
    zombie: bool

    @property
    def command(self) -> str:
        return " ".join(self.argv)

    def under(self, folder: Path) -> bool:
        root = str(folder)
        return self.cwd == root or self.cwd.startswith(root + os.sep)

    def describe(self) -> str:
        return f"pid {self.pid} (ppid {self.ppid}, cwd {self.cwd}): {self.command[:160]}"


def snapshot() -> list[Proc]:
    """Every process but this one (environ and cwd need root for other users' processes)."""
    found = []
    me = os.getpid()
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        try:
            with process.oneshot():
                argv = tuple(process.cmdline())
                status = process.status()
                ppid = process.ppid()
                try:
                    cwd = process.cwd()
                    env = frozenset(f"{k}={v}" for k, v in process.environ().items())
                except (psutil.AccessDenied, psutil.ZombieProcess):
                    cwd, env = "", frozenset()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        found.append(Proc(process.pid, ppid, argv, cwd, env, status == psutil.STATUS_ZOMBIE))
    return found


def live(procs: list[Proc]) -> list[Proc]:
    return [p for p in procs if not p.zombie]


def embedded_servers(procs: list[Proc], data_dir: Path) -> list[Proc]:
    """`jupyter ucloud local` serving ``data_dir`` (not `local stop|status`)."""
    return [
        p
        for p in live(procs)
        if "jupyter_ucloud" in p.command
        and "local" in p.argv
        and str(data_dir) in p.argv
        and not {"stop", "status"} & set(p.argv)
    ]


def supervisors(procs: list[Proc], data_dir: Path) -> list[Proc]:
    return [
        p
        for p in live(procs)
        if "jupyter_ucloud.local.supervisor" in p.argv and str(data_dir) in p.command
    ]


def job_processes(procs: list[Proc], data_dir: Path, job_id: str) -> list[Proc]:
    """Processes of job ``job_id``: its id in their environment, their cwd in ``data_dir``."""
    mark = f"UCLOUD_JOB_ID={job_id}"
    return [p for p in live(procs) if mark in p.env and p.under(data_dir)]


def is_srun(proc: Proc) -> bool:
    return bool(proc.argv) and os.path.basename(proc.argv[0]) == "srun"


def login_shells(procs: list[Proc], data_dir: Path, job_id: str) -> list[Proc]:
    """The job's login shells (``bash --login`` started for a shell session)."""
    return [
        p for p in job_processes(procs, data_dir, job_id) if not is_srun(p) and "--login" in p.argv
    ]


def sruns(procs: list[Proc], data_dir: Path, pty: bool = False) -> list[Proc]:
    """srun processes started in ``data_dir`` (with ``pty``: only the shells' ``srun --pty``),
    without the helper each srun forks (a child with the same command)."""
    found = [p for p in live(procs) if is_srun(p) and p.under(data_dir)]
    if pty:
        found = [p for p in found if "--pty" in p.argv]
    pids = {p.pid for p in found}
    return [p for p in found if p.ppid not in pids]


def leftovers(procs: list[Proc], root: Path) -> list[Proc]:
    """Anything of this run still alive: its cwd or its argv in ``root`` (job processes and
    shells run in their job's folder, servers and supervisors name the data dir)."""
    return [p for p in live(procs) if p.under(root) or str(root) in p.command]


def kill9(pid: int) -> bool:
    """SIGKILL ``pid``; ``False`` if it was gone already."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
