"""Shells of one Jupyter server take turns (``shells.turns``, issue 14): while other shells
stream bulk output, a quiet shell still answers, and every stream arrives whole and in order."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from .conftest import Api, Term


def _seq_lines(term: Term, start: int) -> list[int]:
    # without control sequences (bash's bracketed paste mode ends with "\x1b[?2004l\r")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term.output[start:]).replace("\r", "")
    return [int(line) for line in text.split("\n") if line.strip().isdigit()]


async def _drain(term: Term, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await term.next_frame(0.2)
        except asyncio.TimeoutError:
            continue
        if term.closed:
            return


async def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_quiet_shell_answers_while_others_stream(api: Api, connect) -> None:
    job_id = await api.start_job()
    terms = [await connect((await api.open_shell(job_id))["name"]) for _ in range(4)]
    for term in terms:
        await term.wait_ready()
    *busy, quiet = terms
    for term in busy:
        await term.run("yes flood")
    stop = asyncio.Event()
    readers = [asyncio.ensure_future(_drain(term, stop)) for term in busy]
    try:
        # Each flood is running (its readers, not read_until, take the frames) ...
        await _until(lambda: all("flood\r\nflood\r\n" in term.output for term in busy))
        before = [len(term.frames) for term in busy]
        for i in range(5):
            await quiet.run(f"echo answer-$(({i}*7))")
            await quiet.wait_for_text(f"answer-{i * 7}\r", timeout=20)
        assert not any(term.closed for term in busy)
        # ... and goes on after the answers (not starved, not closed). How many frames came
        # during the answers depends on the machine: the answers can take a few ms.
        await _until(lambda: all(len(t.frames) > n + 10 for t, n in zip(busy, before, strict=True)))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    # The floods end; then every busy shell prints a long numbered sequence at the same time:
    # each arrives whole and in order.
    starts = []
    for term in busy:
        await term.send("stdin", "\x03")
        await term.run("echo stopped-$((6*7))")
        await term.wait_for_text("stopped-42", timeout=30)
        starts.append(len(term.output))
    for term in busy:
        await term.run("seq 1 40000; echo seq-$((1+1))-done")

    async def until_done(term: Term, start: int) -> None:
        await term.read_until(lambda t: "seq-2-done" in t.output[start:], timeout=60)

    await asyncio.gather(*(until_done(t, s) for t, s in zip(busy, starts, strict=True)))
    for term, start in zip(busy, starts, strict=True):
        assert _seq_lines(term, start) == list(range(1, 40001))
    for term in terms:
        term.close()
