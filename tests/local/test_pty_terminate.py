"""Closing a shell ends it also when it is closed right after it was started, before it made a
session of its own (found by the long fuzz run: such login shells were left running)."""

from __future__ import annotations

import asyncio
import os
import pty
import sys

from jupyter_ucloud.local.pty import PtyProcess

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
