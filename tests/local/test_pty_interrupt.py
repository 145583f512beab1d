"""``PtyProcess`` in packet mode: which input is an interrupt that discards the terminal's
output, and ``on_interrupt_taken`` called once the terminal acted on it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jupyter_ucloud.local.pty import PtyProcess
from jupyter_ucloud.local.pty_packets import UNFLUSHED_CHARS


async def _spawn(tmp_path: Path, command: str) -> PtyProcess:
    return await PtyProcess.spawn(
        ["bash", "--norc", "--noprofile", "-c", command],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TERM": "xterm"},
    )


async def _read_until(shell: PtyProcess, marker: bytes, timeout: float = 10) -> bytes:
    got = b""
    async with asyncio.timeout(timeout):
        while marker not in got:
            chunk = await shell.read()
            assert chunk, got[-200:]
            got += chunk
    return got


async def _flood_after_ctrl_c(tmp_path: Path) -> int:
    """Run ``yes``, write ``^C``: characters of ``yes`` output read after the terminal acted."""
    shell = await _spawn(tmp_path, "yes")
    taken = False
    after = 0
    ended = asyncio.Event()

    def on_output(data: bytes) -> None:
        nonlocal after
        if taken:
            after += data.count(b"y\r\n") * 3
        if not data:
            ended.set()

    shell.stream_output(on_output)
    await asyncio.sleep(0.2)
    assert not shell.interrupting
    shell.write(b"\x03")
    assert shell.interrupting
    acted = asyncio.Event()
    shell.on_interrupt_taken(acted.set)
    await asyncio.wait_for(acted.wait(), 5)
    taken = True
    assert not shell.interrupting
    await asyncio.wait_for(ended.wait(), 10)  # yes died of the SIGINT
    await shell.terminate()
    return after


def test_ctrl_c_is_taken_once_the_terminal_discarded_the_flood(tmp_path: Path) -> None:
    async def main() -> list[int]:
        return [await _flood_after_ctrl_c(tmp_path) for _ in range(5)]

    assert max(asyncio.run(main())) <= UNFLUSHED_CHARS


def test_without_isig_or_with_noflsh_ctrl_c_is_no_interrupt(tmp_path: Path) -> None:
    async def main() -> None:
        for mode in ("raw -echo", "-isig -echo", "noflsh -echo"):
            shell = await _spawn(tmp_path, f"stty {mode}; echo READY; exec cat -v")
            await _read_until(shell, b"READY")
            shell.write(b"\x1a\x03\n")  # a whole line: "-isig" keeps canonical mode
            assert not shell.interrupting, mode
            if mode != "noflsh -echo":  # no signals: cat got the bytes
                await _read_until(shell, b"^Z^C")
            await shell.terminate()

    asyncio.run(main())


def test_closing_the_pty_ends_the_wait(tmp_path: Path) -> None:
    async def main() -> None:
        shell = await _spawn(tmp_path, "trap '' INT; sleep 30")
        await asyncio.sleep(0.2)
        shell.write(b"\x03")  # nobody reads: the terminal's discard is never seen
        taken: list[bool] = []
        shell.on_interrupt_taken(lambda: taken.append(shell.interrupting))
        assert taken == []
        shell.close()
        assert taken == [False]
        await shell.signal_session(9)

    asyncio.run(main())
