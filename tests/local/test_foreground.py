"""The terminal being typed into goes first (``local/foreground.py``), with real shells on a real
embedded server: a job terminal streaming ``yes`` while another one is typed into gets a lower
CPU priority for its session (the nice value of its autogroup) and is still read, and gets its
priority back when nobody types, or at once when it is typed into itself; a terminal streaming
alone keeps its own."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from jupyter_ucloud.local.foreground import FOREGROUND_SECONDS

from ..conftest import LocalServerProcess
from .conftest import ShellSocket, api_for, assert_log_clean, job_processes, open_shells

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists()
    or Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() != "1",
    reason="the kernel groups no processes by session here (sched_autogroup): no priority to set",
)


def autogroup_nice(pid: int) -> int:
    """The nice value of the autogroup of ``pid``'s session ("/autogroup-123 nice 10")."""
    return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])


def shell_pid(shell: ShellSocket) -> int:
    start = len(shell.output)
    shell.input("echo pid-$$-$((40+2))\n")  # the echo of the command line has no "-42"
    found = re.search(r"pid-(\d+)-42\r\n", shell.read_until("-42\r\n")[start:])
    assert found is not None
    return int(found.group(1))


@contextmanager
def streaming(shell: ShellSocket) -> Iterator[list[int]]:
    """``yes`` in ``shell``, its output read as fast as it comes by a thread (as a browser
    would); yields the count of frames read so far."""
    shell.input("yes\n")
    frames = [0]
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                shell.ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:
                return
            frames[0] += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield frames
    finally:
        stop.set()
        reader.join(5)


def type_until(typed: ShellSocket, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Type into ``typed`` every 50 ms until ``condition()`` holds (``False`` at the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        typed.input("x")
        if condition():
            return True
        time.sleep(0.05)
    return False


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_terminal_streaming_while_another_is_typed_into_yields_the_cpu(
    fresh_local_server: LocalServerProcess,
) -> None:
    (busy, typed), job_id = open_shells(api_for(fresh_local_server), 2)
    try:
        busy_pid, typed_pid = shell_pid(busy), shell_pid(typed)
        with streaming(busy) as frames:
            assert type_until(typed, lambda: autogroup_nice(busy_pid) == 10), (
                "the streaming terminal kept its priority while another was typed into"
            )
            assert frames[0] > 0
            # The whole session: `yes` too (what fills the terminal), not only its shell.
            processes = job_processes(fresh_local_server.data_dir, job_id)
            (yes,) = [p for p in processes if p.name() == "yes"]
            assert autogroup_nice(yes.pid) == 10
            assert autogroup_nice(typed_pid) == 0, "the terminal typed into was lowered"
            # Slower, not stopped: a background terminal is still read (every 5 ms).
            seen = frames[0]
            assert type_until(typed, lambda: frames[0] > seen + 5, timeout=5)

            # Nobody types: the priority comes back after FOREGROUND_SECONDS, not before.
            last_keystroke = time.monotonic()
            assert autogroup_nice(busy_pid) == 10
            assert wait_until(lambda: autogroup_nice(busy_pid) == 0, FOREGROUND_SECONDS + 5)
            assert time.monotonic() - last_keystroke >= FOREGROUND_SECONDS - 0.1
            seen = frames[0]
            assert wait_until(lambda: frames[0] > seen, 5), "the terminal stopped streaming"

            # Lowered again, then typed into itself: its priority comes back at once.
            assert type_until(typed, lambda: autogroup_nice(busy_pid) == 10)
            busy.input("\x03")
            assert wait_until(lambda: autogroup_nice(busy_pid) == 0, FOREGROUND_SECONDS / 2)
    finally:
        for shell in (busy, typed):
            shell.close()
    assert_log_clean(fresh_local_server)


def test_a_terminal_streaming_alone_keeps_its_priority(
    fresh_local_server: LocalServerProcess,
) -> None:
    """Its own keystrokes, and another terminal nobody types in, change nothing."""
    (busy, idle), _ = open_shells(api_for(fresh_local_server), 2)
    try:
        busy_pid = shell_pid(busy)
        with streaming(busy) as frames:
            seen = []
            for i in range(40):
                if i % 10 == 0:
                    busy.input("z")  # typed into while it streams: still the foreground
                seen.append(autogroup_nice(busy_pid))
                time.sleep(0.05)
            assert frames[0] > 0
        assert set(seen) == {0}, seen
    finally:
        for shell in (busy, idle):
            shell.close()


def test_background_nice_0_keeps_every_priority(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"background_nice": 0}))
    server = LocalServerProcess(tmp_path / "data", config_file=config).start()
    try:
        (busy, typed), _ = open_shells(api_for(server), 2)
        try:
            busy_pid = shell_pid(busy)
            with streaming(busy) as frames:
                lowered = type_until(typed, lambda: autogroup_nice(busy_pid) != 0, timeout=3)
                assert frames[0] > 0
            assert not lowered
        finally:
            for shell in (busy, typed):
                shell.close()
    finally:
        server.stop()


def test_a_killed_server_leaves_no_session_lowered(
    fresh_local_server: LocalServerProcess,
) -> None:
    """kill -9 of the embedded server while a terminal is in the background: its shell hangs
    up with the terminal, and what outlives the shell in its session (``nohup``) runs at the
    job's priority again, not at ``background_nice`` for the rest of the job."""
    server = fresh_local_server
    (busy, typed), job_id = open_shells(api_for(server), 2)
    busy_pid = shell_pid(busy)
    busy.input("nohup sleep 300 >/dev/null 2>&1 & echo started-$((6*7))\n")
    busy.read_until("started-42")
    (sleeper,) = [
        p for p in job_processes(server.data_dir, job_id) if p.cmdline() == ["sleep", "300"]
    ]
    with streaming(busy):
        assert type_until(typed, lambda: autogroup_nice(sleeper.pid) == 10)
        server.proc.send_signal(signal.SIGKILL)  # no chance to give the priority back
        server.proc.wait(10)
    assert wait_until(lambda: not psutil.pid_exists(busy_pid), 10), "the shell outlived its PTY"
    assert sleeper.is_running()
    assert wait_until(lambda: autogroup_nice(sleeper.pid) == 0, 5), (
        "the session stayed lowered after its terminal was gone"
    )
