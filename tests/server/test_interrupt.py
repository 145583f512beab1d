"""Ctrl-C through the bridge: stale output is skipped, nothing typed afterwards is lost."""

from __future__ import annotations

import asyncio
import time

from jupyter_ucloud.client.shell_protocol import strip_ansi
from jupyter_ucloud.local.pty_packets import UNFLUSHED_CHARS
from jupyter_ucloud.server.shells import INTERRUPT_TAIL_CHARS

from .conftest import Api, Term, new_term

READ_RATE = 1_000_000  # characters per second, as a slow browser
# What a 1 MB/s reader may still see of the flood after Ctrl-C: only what the bridge had already
# handed to the kernel (its send buffer, capped, and the reader's receive buffer, which the
# reader's kernel sizes: 0.3-0.6 MB here), so well under a second of reading. Counted in
# characters, not seconds: a loaded machine makes the reader slower, not the bridge worse.
FLOOD_IN_FLIGHT_CHARS = 1_500_000
# What is shown of the flood after the skip: the last screenful before the ack, and what the
# terminal still held when it acted on Ctrl-C (the embedded provider acks after that).
FLOOD_AFTER_SKIP_CHARS = INTERRUPT_TAIL_CHARS + UNFLUSHED_CHARS


async def read_slowly(
    term: Term, seconds: float, rate: float = READ_RATE
) -> list[tuple[float, str, int]]:
    """Read for ``seconds`` at most ``rate`` chars/s; (arrival time, text, end offset) of each
    stdout frame."""
    got: list[tuple[float, str, int]] = []
    start = time.monotonic()
    received = 0
    while (now := time.monotonic()) - start < seconds:
        ahead = received / rate - (now - start)
        if ahead > 0:
            await asyncio.sleep(min(ahead, 0.02))
            continue
        try:
            frame = await term.next_frame(timeout=0.05)
        except asyncio.TimeoutError:
            continue
        if frame is None:
            break
        if frame[0] == "stdout":
            received += len(frame[1])
            got.append((time.monotonic(), frame[1], frame[2]))
    return got


def after_the_skip(frames: list[tuple[float, str, int]], since: int) -> str:
    """What came after the first gap in the offsets (the bridge skipping stale output); before
    it is what was already in flight when Ctrl-C was sent."""
    position = since
    for index, (_, text, end) in enumerate(frames):
        if end - len(text) > position:
            return "".join(t for _, t, _ in frames[index:])
        position = end
    raise AssertionError("no output was skipped after Ctrl-C")


def numbers_between(output: str, command: str, end_marker: str) -> list[str]:
    """The lines a command printed: after the echo of its command line, before ``end_marker``."""
    output = strip_ansi(output)
    tail = output[output.rindex(command) + len(command) :]
    body = tail[: tail.index(end_marker)]
    return [line for line in body.replace("\r", "").split("\n") if line.strip()]


async def run_after_ctrl_c(term: Term, command: str, marker: str, timeout: float = 20.0) -> None:
    """Ctrl-C, then ``command`` at once; the tty may drop the command with its input queue when
    the interrupt is processed after it arrived, so it is typed again if nothing came."""
    await term.send("stdin", "\x03")
    await term.send("stdin", command + "\r")
    deadline = time.monotonic() + timeout
    while True:
        try:
            await term.read_until(lambda t: marker in t.output, timeout=4)
            return
        except AssertionError:
            assert time.monotonic() < deadline, f"{marker} never came"
            await term.send("stdin", command + "\r")


async def test_output_typed_right_after_ctrl_c_arrives_in_full(api: Api, connect) -> None:
    term = await new_term(api, connect)
    await term.run("yes")
    await read_slowly(term, 2.0)  # the pipeline fills up behind a 1 MB/s reader
    command = "seq 1 20000; echo END$((6*7))"
    await run_after_ctrl_c(term, command, "END42")
    lines = numbers_between(term.output, command, "END42")
    assert lines == [str(n) for n in range(1, 20001)], (len(lines), lines[:3], lines[-3:])
    term.close()


async def test_ctrl_c_stops_the_flood_for_a_slow_reader_within_a_second(api: Api, connect) -> None:
    term = await new_term(api, connect)
    await term.run("yes")
    read = await read_slowly(term, 3.0)
    sent = time.monotonic()
    await term.send("stdin", "\x03")
    frames = await read_slowly(term, 2.5)
    flood = [at - sent for at, text, _ in frames if "y\r\ny\r\n" in text]
    in_flight = sum(len(text) for _, text, _ in frames) - len(after_the_skip(frames, read[-1][2]))
    print(
        f"Ctrl-C, 1 MB/s reader: flood seen until +{max(flood, default=0):.2f} s; "
        f"{in_flight} chars were in flight"
    )
    # Megabytes were pending; the bridge sent no more than a few screenfuls of them after Ctrl-C.
    assert after_the_skip(frames, read[-1][2]).count("y\r\n") * 3 <= FLOOD_AFTER_SKIP_CHARS
    assert in_flight < FLOOD_IN_FLIGHT_CHARS, (in_flight, flood[-5:])
    await term.run("echo back-$((3*3))")
    await term.wait_for_text("back-9")
    term.close()


async def test_typing_right_after_ctrl_c_skips_the_stale_flood_not_the_new_output(
    api: Api, connect
) -> None:
    """The skip ends where the provider acknowledged the interrupt, not at the next keystroke:
    the stale backlog still goes, the new command's output still arrives whole."""
    term = await new_term(api, connect)
    await term.run("yes")
    read = await read_slowly(term, 3.0)
    sent = time.monotonic()
    command = "seq 1 3000; echo FIN$((5*5))"
    await term.send("stdin", "\x03")
    await term.send("stdin", command + "\r")
    frames = await read_slowly(term, 2.5)
    flood = [at - sent for at, text, _ in frames if "y\r\ny\r\n" in text]
    if "FIN25" not in term.output:  # the tty dropped the typeahead with the interrupt
        await term.send("stdin", command + "\r")
    await term.wait_for_text("FIN25")
    lines = numbers_between(term.output, command, "FIN25")
    assert lines == [str(n) for n in range(1, 3001)], (len(lines), lines[:3], lines[-3:])
    in_flight = sum(len(text) for _, text, _ in frames) - len(after_the_skip(frames, read[-1][2]))
    print(f"Ctrl-C + command, 1 MB/s reader: flood until +{max(flood, default=0):.2f} s")
    assert after_the_skip(frames, read[-1][2]).count("y\r\n") * 3 <= FLOOD_AFTER_SKIP_CHARS
    assert in_flight < FLOOD_IN_FLIGHT_CHARS, (in_flight, flood[-5:])
    term.close()
