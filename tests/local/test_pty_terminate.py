"""Closing a shell ends it also when it is closed right after it was started, before it made a
session of its own (found by the long fuzz run: such login shells were left running)."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from jupyter_ucloud.local import pty as pty_module
from jupyter_ucloud.local.pty import PtyProcess
from jupyter_ucloud.local.supervisor.processes import live_processes

T = TypeVar("T")

#: A shell that takes a moment to make its session (as a forked child does before ``exec``),
#: then lives on. Before the fix ``terminate`` found no process of its session and sent nothing.
LATE_SESSION = "import os, time; time.sleep(0.5); os.setsid(); time.sleep(60)"


def test_a_shell_closed_before_it_made_its_session_is_ended() -> None:
    async def scenario() -> int | None:
        master, slave = pty.openpty()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LATE_SESSION, stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        os.set_blocking(master, False)
        shell = PtyProcess(process, master)
        try:
            await shell.terminate(grace=1.0)
            return process.returncode
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    assert asyncio.run(scenario()) is not None, "the shell outlived its terminate()"


def test_closing_a_shell_ends_its_jobs_without_reading_proc_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interactive shell with job control puts each job in a process group of its own: one
    stopped (``kill -STOP``), one that ignores SIGHUP. ``terminate`` ends all of them (SIGCONT
    with each signal, SIGTERM after the grace), and every scan of /proc for the session's
    processes runs in a worker thread: the event loop carries other terminals' keystrokes."""
    scans: list[bool] = []
    loop_thread = threading.get_ident()

    def recorded(scan: Callable[[int], T]) -> Callable[[int], T]:
        def scanning(session: int) -> T:
            scans.append(threading.get_ident() == loop_thread)
            return scan(session)

        return scanning

    monkeypatch.setattr(pty_module, "_session_groups", recorded(pty_module._session_groups))
    monkeypatch.setattr(pty_module, "_anyone_in_session", recorded(pty_module._anyone_in_session))

    async def scenario() -> tuple[list[int], list[int]]:
        shell = await PtyProcess.spawn(
            ["bash", "--norc", "--noprofile", "-i"],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "TERM": "dumb", "PS1": "$ "},
        )
        shell.write(
            b"sleep 600 & echo STOPPED=$!; kill -STOP $!\n"
            b"(trap '' HUP; exec sleep 600) & echo DEAF=$!\n"
            b"echo DONE$((40+2))\n"  # the echo of what was typed shows DONE$((40+2))
        )
        got = b""
        async with asyncio.timeout(10):
            while b"DONE42" not in got:
                chunk = await shell.read()
                assert chunk, got
                got += chunk
        jobs = [int(m) for m in re.findall(rb"(?:STOPPED|DEAF)=(\d+)", got)]
        assert len(jobs) == 2, got
        groups = [os.getpgid(pid) for pid in jobs]
        await shell.terminate(grace=0.5)
        return jobs, groups

    jobs, groups = asyncio.run(scenario())
    assert len(set(groups)) == 2, "each job has a process group of its own"
    live = {process.pid for process in live_processes()}
    alive = [pid for pid in jobs if pid in live]
    for pid in alive:  # not left behind by a failing run
        os.kill(pid, signal.SIGKILL)
    assert alive == [], f"jobs outlived the shell: {alive}"
    assert scans, "terminate() looked for the session's processes"
    assert not any(scans), "a /proc scan ran on the event loop's thread"
