"""``AsyncShell.stream_output`` / ``send_nowait``: the relay mode the Jupyter server uses, against
the real embedded server and real PTYs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import psutil
import pytest

from jupyter_ucloud import AsyncUCloud
from jupyter_ucloud.client import AsyncShell, ShellClosedError


@contextlib.asynccontextmanager
async def open_shell(local_server: Any, job_id: str) -> AsyncIterator[AsyncShell]:
    async with AsyncUCloud(
        host=local_server.url, refresh_token=local_server.refresh_token, timeout=15
    ) as uc:
        shell = await uc.shells.open_job(job_id, 0)
        try:
            yield shell
        finally:
            await shell.close()


class Collector:
    """An output handler that keeps what it gets; ``hold`` makes it push back, from the chunk
    in which ``hold_after`` shows up on (from the first chunk if not given).

    A flood brings megabytes: the output is kept as chunks and ``wait_for`` searches only what
    is new, so that the test's own copying and searching do not slow the shell it watches."""

    def __init__(self, hold_after: str | None = None) -> None:
        self.chunks: list[str] = []
        self.size = 0
        self.calls = 0
        self.closed = 0
        self.hold: asyncio.Future[None] | None = None
        self.hold_after = hold_after
        self._tail = ""

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def on_output(self, text: str) -> asyncio.Future[None] | None:
        assert isinstance(text, str)
        assert text
        self.chunks.append(text)
        self.size += len(text)
        self.calls += 1
        if self.hold_after is not None:
            window = self._tail + text
            if self.hold_after not in window:
                self._tail = window[len(window) - len(self.hold_after) + 1 :]
                return None
            self.hold_after = None
        return self.hold

    def on_closed(self) -> None:
        self.closed += 1

    async def wait_for(self, marker: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        searched, tail = 0, ""
        while True:
            new = self.chunks[searched:]
            searched += len(new)
            window = tail + "".join(new)
            if marker in window:
                return
            tail = window[len(window) - len(marker) + 1 :]
            assert time.monotonic() < deadline, f"no {marker!r} in {self.text[-300:]!r}"
            await asyncio.sleep(0.01)


async def test_output_is_pushed_keystrokes_go_without_waiting_and_the_end_is_told_once(
    local_server: Any, terminal_job: str
) -> None:
    async with open_shell(local_server, terminal_job) as shell:
        got = Collector()
        # Output that arrived before streaming started (the prompt, typically) is not lost.
        await shell.send("echo before-$((2+2))\n")
        await asyncio.sleep(0.3)
        shell.stream_output(got.on_output, got.on_closed)
        await got.wait_for("before-4")
        with pytest.raises(RuntimeError, match="streams its output"):
            await shell.read(0.1)
        with pytest.raises(RuntimeError, match="already streams"):
            shell.stream_output(got.on_output, got.on_closed)

        chars_before = shell.output_chars
        for char in "echo typed-$((6*7))\n":
            sent = shell.send_nowait(char)
            assert isinstance(sent, asyncio.Future)
        await sent
        await got.wait_for("typed-42")
        assert shell.output_chars - chars_before > 0
        assert shell.acks_seen  # UCloud providers acknowledge every input; still tracked

        shell.send_nowait("exit\n")
        deadline = time.monotonic() + 10
        while not got.closed:
            assert time.monotonic() < deadline, "on_closed was not called"
            await asyncio.sleep(0.01)
        assert shell.closed
        assert (
            shell.close_code == 1000
        )  # the embedded provider closes normally when the shell exits
        await asyncio.sleep(0.1)
        assert got.closed == 1
        with pytest.raises(ShellClosedError):
            shell.send_nowait("ls\n")
        await shell.close()
        assert got.closed == 1  # not again for our own close


async def test_a_handler_that_pushes_back_stops_the_reading_and_the_producer(
    local_server: Any, terminal_job: str
) -> None:
    async with open_shell(local_server, terminal_job) as shell:
        # Readline echoes what is typed a character at a time, so the first chunk may be a
        # lone "y": the handler holds from the chunk with the marker on.
        got = Collector(hold_after="flood-line")
        got.hold = asyncio.get_running_loop().create_future()
        shell.stream_output(got.on_output, got.on_closed)
        await shell.send("yes flood-line\n")
        await got.wait_for("flood-line")
        await asyncio.sleep(1.0)
        # While the handler holds, nothing else is read: one more frame at most, not megabytes.
        calls, size = got.calls, got.size
        await asyncio.sleep(0.5)
        assert (got.calls, got.size) == (calls, size)
        # The producer is blocked on its terminal, not spinning: `yes` sleeps.
        flooders = [
            p
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] == ["yes", "flood-line"]
        ]
        assert flooders
        assert all(
            p.status() in (psutil.STATUS_SLEEPING, psutil.STATUS_DISK_SLEEP) for p in flooders
        )

        got.hold.set_result(None)
        got.hold = None
        await asyncio.sleep(0.3)
        assert got.size > size  # reading resumed
        await shell.send("\x03")
        await shell.send("echo after-$((1+1))\n")
        await got.wait_for("after-2")
        await shell.close()
        assert got.closed == 0


async def test_a_failing_handler_is_logged_and_the_shell_goes_on(
    local_server: Any, terminal_job: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_shell(local_server, terminal_job) as shell:
        seen: list[str] = []

        def flaky(text: str) -> None:
            seen.append(text)
            if len(seen) == 1:
                raise ValueError("handler bug")

        shell.stream_output(flaky, lambda: None)
        await shell.send("echo still-$((8+1))\n")
        deadline = time.monotonic() + 10
        while "still-9" not in "".join(seen):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert "handler bug" in caplog.text
        assert not shell.closed
        await shell.close()
