"""``PtyProcess.stream_output``: a real PTY's output pushed from the reader callback, paused
while the consumer pushes back, ended with one ``b""``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


def _seq_lines(data: bytes) -> list[int]:
    return [int(line) for line in data.replace(b"\r", b"").split(b"\n") if line.strip()]


def test_terminals_streaming_at_once_take_turns_and_lose_nothing(tmp_path: Path) -> None:
    """Several terminals stream bulk output from one loop (their reads share a budget per round
    of the loop, ``read_turns``): a quiet terminal's output still comes while they stream, and
    each stream arrives whole and in order, also with consumers that push back now and then."""

    async def main() -> tuple[list[list[int]], bool, int]:
        count = 60000
        bulk = [
            await _spawn(tmp_path, f"seq 1 {count}; sleep 0.5; yes > /dev/null") for _ in range(4)
        ]
        floods = [await _spawn(tmp_path, "yes flood") for _ in range(3)]
        quiet = await _spawn(tmp_path, "sleep 0.3; echo quiet-$((6*7)); sleep 5")
        loop = asyncio.get_running_loop()
        got: list[bytearray] = [bytearray() for _ in bulk]
        flooded = [0] * len(floods)
        heard = asyncio.Event()
        quiet_out = bytearray()

        def take(i: int) -> Callable[[bytes], asyncio.Future[None] | None]:
            calls = [0]

            def on_output(data: bytes) -> asyncio.Future[None] | None:
                got[i].extend(data)
                calls[0] += 1
                if calls[0] % 3:
                    return None
                later: asyncio.Future[None] = loop.create_future()
                loop.call_later(0.001, later.set_result, None)
                return later  # push back now and then

            return on_output

        def flood(i: int) -> Callable[[bytes], None]:
            def on_output(data: bytes) -> None:
                flooded[i] += len(data)

            return on_output

        def on_quiet(data: bytes) -> None:
            quiet_out.extend(data)
            if b"quiet-42" in quiet_out:
                heard.set()

        for i, shell in enumerate(bulk):
            shell.stream_output(take(i))
        for i, shell in enumerate(floods):
            shell.stream_output(flood(i))
        quiet.stream_output(on_quiet)
        await asyncio.wait_for(heard.wait(), 20)
        floods_at_echo = min(flooded)
        still_flooding = all(shell.returncode is None for shell in floods)
        deadline = loop.time() + 60
        while loop.time() < deadline and not all(
            _seq_lines(bytes(g))[-1:] == [count] for g in got if g
        ):
            await asyncio.sleep(0.1)
        for shell in [*bulk, *floods, quiet]:
            await shell.terminate()
        return [_seq_lines(bytes(g)) for g in got], still_flooding, floods_at_echo

    streams, still_flooding, floods_at_echo = asyncio.run(main())
    for lines in streams:
        assert lines == list(range(1, 60001))
    assert still_flooding  # the quiet terminal was heard while the floods went on
    assert floods_at_echo > 0  # and every flood was being read


def test_a_consumer_that_waits_is_not_read_while_other_terminals_stream(tmp_path: Path) -> None:
    """The rounds of the loop that other terminals' reads go by in never read a terminal whose
    consumer has not taken its last chunk."""

    async def main() -> tuple[int, int]:
        held_shell = await _spawn(tmp_path, "yes held")
        others = [await _spawn(tmp_path, "yes other") for _ in range(3)]
        hold: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        calls: list[int] = []
        read = [0]

        def on_held(data: bytes) -> asyncio.Future[None] | None:
            calls.append(len(data))
            return hold if not hold.done() else None

        def on_other(data: bytes) -> None:
            read[0] += len(data)

        held_shell.stream_output(on_held)
        for shell in others:
            shell.stream_output(on_other)
        await asyncio.sleep(1.0)
        held = len(calls)
        hold.set_result(None)
        await asyncio.sleep(0.3)
        resumed = len(calls)
        for shell in [held_shell, *others]:
            await shell.terminate()
        assert read[0] > 1_000_000  # the others streamed meanwhile
        return held, resumed

    held, resumed = asyncio.run(main())
    assert held == 1
    assert resumed > held
