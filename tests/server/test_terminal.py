"""The terminal websocket end to end: real PTYs through the embedded provider."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time

import psutil
import pytest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from .conftest import Api, Term


async def new_shell(api: Api) -> dict:
    job_id = await api.start_job()
    model = await api.open_shell(job_id)
    return {"job": job_id, **model}


async def test_stdin_to_stdout_with_offsets(api: Api, connect) -> None:
    shell = await new_shell(api)
    term = await connect(shell["name"])
    setup = term.frames[0][1]
    assert setup["name"] == shell["name"]
    assert setup["jobId"] == shell["job"]
    assert setup["rank"] == 0
    assert isinstance(setup["offset"], int)
    await term.run("echo $((6*7))x")
    await term.wait_for_text("42x")
    offsets = [f[2] for f in term.frames if f[0] == "stdout"]
    assert offsets == sorted(offsets)
    assert offsets[-1] - setup["offset"] == len(term.output)  # offsets count characters
    await term.send("set_size", 40, 132, 600, 800)
    await term.run("stty size")
    await term.wait_for_text("40 132")
    term.close()


async def test_reattach_with_and_without_since_duplicates_nothing(api: Api, connect) -> None:
    shell = await new_shell(api)
    first = await connect(shell["name"])
    await first.run("echo one-$((1+1))")
    await first.wait_for_text("one-2")
    seen = first.last_offset
    first.close()
    await asyncio.sleep(0.2)

    # Output produced while nobody is attached is kept for the next client.
    other = await connect(shell["name"])
    await other.run("echo two-$((2+1))")
    await other.wait_for_text("two-3")
    other.close()
    await asyncio.sleep(0.2)

    resumed = await connect(shell["name"], since=seen)
    assert resumed.frames[0][1]["offset"] == seen
    await resumed.wait_for_text("two-3")
    assert "one-2" not in resumed.output  # nothing the client already had
    resumed.close()

    full = await connect(shell["name"])
    assert full.frames[0][1]["offset"] == 0
    await full.wait_for_text("two-3")
    assert full.output.count("one-2") == 1
    assert full.output.count("two-3") == 1
    full.close()


async def test_two_clients_both_see_output(api: Api, connect) -> None:
    shell = await new_shell(api)
    one = await connect(shell["name"])
    two = await connect(shell["name"])
    await one.run("echo shared-$((3*3))")
    await one.wait_for_text("shared-9")
    await two.wait_for_text("shared-9")
    await two.run("echo back-$((4*4))")
    await one.wait_for_text("back-16")
    one.close()
    two.close()


async def test_terminal_queries_are_not_replayed(api: Api, connect) -> None:
    shell = await new_shell(api)
    live = await connect(shell["name"])
    await live.run(r"printf 'Q\033[6nR\033]11;?\007S\n'")
    await live.wait_for_text("R\x1b]11;?\x07S")
    assert "Q\x1b[6nR" in live.output  # live output is untouched
    live.close()
    replay = await connect(shell["name"])
    await replay.wait_for_text("QRS")
    assert "\x1b[6n" not in replay.output
    assert "\x1b]11;?" not in replay.output
    replay.close()


async def test_bad_frames_get_clear_errors_and_the_shell_goes_on(api: Api, connect) -> None:
    shell = await new_shell(api)
    term = await connect(shell["name"])
    for bad in [
        "not json",
        "{}",
        "[]",
        "[1, 2]",
        '["stdin"]',
        '["stdin", 5]',
        '["set_size", "a", 3]',
        '["set_size", 0, 80]',
        '["set_size", true, 80]',
    ]:
        await term.ws.write_message(bad)
        await term.read_until(lambda t: t.frames[-1][0] == "error", timeout=5)
    await term.send("some-future-frame", 1)  # unknown types are ignored, as terminado does
    await term.run("echo still-$((5+5))")
    await term.wait_for_text("still-10")
    errors = [f for f in term.frames if f[0] == "error"]
    assert len(errors) == 9
    assert all(isinstance(f[1], str) and f[1] for f in errors)
    term.close()


async def test_huge_frame_closes_that_connection_only(api: Api, connect) -> None:
    shell = await new_shell(api)
    term = await connect(shell["name"])
    with contextlib.suppress(WebSocketClosedError, StreamClosedError):
        await term.ws.write_message(json.dumps(["stdin", "x" * (5 * 1024 * 1024)]))
    await term.until_closed()
    # 1009 from tornado, or none when the reset that follows it overtook it (see
    # tests/local/test_shell_socket.py::test_oversized_frame_closes).
    assert term.ws.close_code in (1009, None)
    again = await connect(shell["name"])
    await again.run("echo alive-$((7+1))")
    await again.wait_for_text("alive-8")
    again.close()


async def test_large_paste_is_delivered_whole(api: Api, connect) -> None:
    shell = await new_shell(api)
    term = await connect(shell["name"])
    await term.run("stty -echo; wc -c; stty echo")
    await asyncio.sleep(0.3)
    paste = ("y" * 999 + "\n") * 300
    started = time.monotonic()
    await term.send("stdin", paste)
    await term.send("stdin", "\x04")
    await term.wait_for_text("300000", timeout=20)
    assert time.monotonic() - started < 15
    term.close()


async def test_keystrokes_right_after_a_paste_arrive_after_it(api: Api, connect) -> None:
    """A paste goes in awaited pieces, a keystroke at once: the keystroke must still wait."""
    shell = await new_shell(api)
    term = await connect(shell["name"])
    await term.run("stty -echo; cat > order.txt; stty echo")
    await asyncio.sleep(0.3)
    await term.send("stdin", ("A" * 99 + "\n") * 90)  # three pieces
    for key in "BC\n":
        await term.send("stdin", key)
    await term.send("stdin", "\x04")
    await term.run("wc -c < order.txt; grep -n B order.txt")
    await term.wait_for_text("9003\r\n91:BC\r\n", timeout=20)
    term.close()


async def test_job_end_says_so_and_closes_with_4001(api: Api, connect) -> None:
    shell = await new_shell(api)
    term = await connect(shell["name"])
    await term.wait_ready()
    await api.terminate(shell["job"])
    await term.until_closed(timeout=20)
    assert term.frames[-1] == ["disconnect", "job-ended", "The job has completed."]
    assert term.ws.close_code == 4001
    model = await api.call("GET", "shells", shell["name"])
    assert model["state"] == "ended"
    assert model["reason"] == "job-ended"
    # Reattaching to an ended shell says the same thing at once: no reconnect loop.
    late = await connect(shell["name"])
    await late.until_closed()
    assert late.frames[-1] == ["disconnect", "job-ended", "The job has completed."]


async def test_exit_says_shell_exited_and_the_job_goes_on(api: Api, connect) -> None:
    shell = await new_shell(api)
    term = await connect(shell["name"])
    await term.run("echo before-exit-$((4*4))")
    await term.wait_for_text("before-exit-16")
    await term.run("exit")
    await term.until_closed(timeout=20)
    assert term.frames[-1] == ["disconnect", "shell-exited", "The shell has exited."]
    assert term.ws.close_code == 1000
    model = await api.call("GET", "shells", shell["name"])
    assert (model["state"], model["reason"]) == ("ended", "shell-exited")
    job = await api.call("GET", "api", "jobs", "retrieve", id=shell["job"])
    assert job["status"]["state"] == "RUNNING"
    # A new shell into the same job works.
    again = await api.open_shell(shell["job"])
    term2 = await connect(again["name"])
    await term2.run("echo after-exit-$((5*5))")
    await term2.wait_for_text("after-exit-25")
    term2.close()
    await api.terminate(shell["job"])


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def test_flood_with_a_client_that_does_not_read(api: Api, connect, local_server) -> None:
    """`yes` with a stalled browser: memory stays bounded and Ctrl-C stops it promptly."""
    shell = await new_shell(api)
    term = await connect(shell["name"])
    await term.run("echo go-$((1+1))")
    await term.wait_for_text("go-2")
    own_before = _rss_mb(os.getpid())
    provider_before = _rss_mb(local_server.proc.pid)
    await term.run("yes")
    peak_own = peak_provider = 0.0
    for _ in range(8):  # 4 s of flood; the client reads nothing
        await asyncio.sleep(0.5)
        peak_own = max(peak_own, _rss_mb(os.getpid()))
        peak_provider = max(peak_provider, _rss_mb(local_server.proc.pid))
    assert peak_own - own_before < 50, (own_before, peak_own)
    assert peak_provider - provider_before < 50, (provider_before, peak_provider)

    started = time.monotonic()
    await term.send("stdin", "\x03")
    await term.run("echo stop-$((6*7))")
    await term.wait_for_text("stop-42", timeout=15)
    elapsed = time.monotonic() - started
    print(
        f"flood, stalled client: Jupyter RSS +{peak_own - own_before:.1f} MB, provider RSS "
        f"+{peak_provider - provider_before:.1f} MB, Ctrl-C to prompt {elapsed:.2f} s"
    )
    assert elapsed < 5, elapsed
    # And the flood is over: a quiet moment follows.
    before = len(term.output)
    with pytest.raises(AssertionError):
        await term.read_until(lambda t: len(t.output) > before + 10000, timeout=1.5)
    term.close()


async def test_flood_with_a_reading_client_stops_on_ctrl_c(api: Api, connect) -> None:
    shell = await new_shell(api)
    term = await connect(shell["name"])
    await term.run("yes flood")
    await term.read_until(lambda t: t.output.count("flood") > 20000, timeout=15)
    started = time.monotonic()
    await term.send("stdin", "\x03")
    await term.run("echo halt-$((6*7))")
    await term.wait_for_text("halt-42", timeout=10)
    elapsed = time.monotonic() - started
    print(f"flood, reading client: Ctrl-C to prompt {elapsed:.2f} s")
    assert elapsed < 2.5
    term.close()


async def test_frames_are_terminado_arrays(api: Api, connect) -> None:
    shell = await new_shell(api)
    term = await connect(shell["name"])
    await term.run("echo shape-$((2+2))")
    await term.wait_for_text("shape-4")
    for frame in term.frames[1:]:
        assert frame[0] == "stdout"
        assert isinstance(frame[1], str)
        assert isinstance(frame[2], int)
    term.close()


_ = Term
