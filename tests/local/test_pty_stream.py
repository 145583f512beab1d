"""``PtyProcess.stream_output``: a real PTY's output pushed from the reader callback, paused
while the consumer pushes back, ended with one ``b""``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil

from jupyter_ucloud.local.pty import PtyProcess


async def _spawn(tmp_path: Path, command: str) -> PtyProcess:
    return await PtyProcess.spawn(
        ["bash", "--norc", "--noprofile", "-c", command],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TERM": "xterm"},
        cols=80,
        rows=24,
    )


def test_output_then_one_end_marker(tmp_path: Path) -> None:
    async def main() -> list[bytes]:
        shell = await _spawn(tmp_path, "printf 'one\\n'; sleep 0.1; printf 'two\\n'")
        got: list[bytes] = []
        ended = asyncio.Event()

        def on_output(data: bytes) -> None:
            got.append(data)
            if not data:
                ended.set()

        shell.stream_output(on_output)
        await asyncio.wait_for(ended.wait(), 10)
        await asyncio.sleep(0.2)  # nothing after the end
        await shell.terminate()
        return got

    got = asyncio.run(main())
    assert got[-1] == b""
    assert got.count(b"") == 1
    assert b"".join(got).replace(b"\r", b"") == b"one\ntwo\n"


def test_a_consumer_that_waits_stops_the_reading_and_the_writer(tmp_path: Path) -> None:
    async def main() -> tuple[int, int, str, int]:
        shell = await _spawn(tmp_path, "yes 0123456789")
        hold = asyncio.get_running_loop().create_future()
        sizes: list[int] = []

        def on_output(data: bytes) -> asyncio.Future[None] | None:
            sizes.append(len(data))
            return hold if not hold.done() else None

        shell.stream_output(on_output)
        await asyncio.sleep(1.0)
        held = len(sizes)  # one call, then nothing while the consumer waits
        writer = psutil.Process(shell.pid)
        status = writer.status()  # `yes` blocks on the full terminal
        hold.set_result(None)
        await asyncio.sleep(0.3)
        resumed = len(sizes)
        shell.stop_output()
        await asyncio.sleep(0.1)
        stopped = len(sizes)
        await asyncio.sleep(0.3)
        after_stop = len(sizes) - stopped
        await shell.terminate()
        return held, resumed, status, after_stop

    held, resumed, status, after_stop = asyncio.run(main())
    assert held == 1
    assert status in (psutil.STATUS_SLEEPING, psutil.STATUS_DISK_SLEEP)
    assert resumed > held + 10  # reading went on once the consumer was done
    assert after_stop == 0  # stop_output: no more calls
