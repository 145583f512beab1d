"""The keystroke path of the embedded provider: acks and echoes, the PTY on either event loop."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jupyter_ucloud.local.pty import PtyProcess

from .conftest import Api, ShellSocket, terminal_spec


@pytest.fixture
def running_job(api: Api, local_server) -> Iterator[str]:
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    yield job_id
    api.terminate(job_id)


def _drain(shell: ShellSocket) -> None:
    """Read frames until none comes for 0.3 s."""
    while True:
        try:
            shell.recv(0.3)
        except TimeoutError:
            return


def test_each_keystroke_is_acked_right_after_its_echo(api: Api, running_job: str, shells) -> None:
    """The ack follows the echo, in the same write (``local.shell_acks``): a client takes both
    in one read, and a crash cannot fall between them."""
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.initialize()
    shell.input("cat\n")
    shell.read_until("cat\r\n")
    _drain(shell)  # the rest of the command line's output
    for key in "abcdefghij":
        stream_id = shell.input(key)
        frame = shell.recv()
        assert frame.payload.type == "data", frame
        assert frame.payload.data == key  # type: ignore[union-attr]
        frame = shell.recv()
        assert frame.payload.type == "ack", frame
        assert frame.stream_id == stream_id
    shell.input("\x03")


def test_acks_keep_their_order_around_an_interrupt(api: Api, running_job: str, shells) -> None:
    """Keystrokes whose acks wait for their echo, then Ctrl-C (acked where the terminal acts
    on it), then more: every input is acked once, in the order sent."""
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.initialize()
    shell.input("stty -echo; cat > /dev/null\n")  # typing prints nothing: acks wait ACK_DELAY
    time.sleep(0.5)
    _drain(shell)
    sent = [shell.input(key) for key in "abc"]
    sent.append(shell.input("\x03"))
    sent += [shell.input(key) for key in "stty echo\n"]
    acked: list[str] = []
    deadline = time.monotonic() + 10
    while len(acked) < len(sent) and time.monotonic() < deadline:
        frame = shell.recv(2)
        if frame.payload.type == "ack":
            acked.append(frame.stream_id)
    assert acked == sent


def test_an_interrupt_in_raw_mode_is_acked_before_the_answer_to_it(
    api: Api, running_job: str, shells
) -> None:
    """In raw mode ``^C`` is a byte for the program, whose answer follows. The bridge shows
    everything after the ack of an interrupt, so that ack must come first, not with the echo."""
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.initialize()
    shell.input("stty raw echo; cat > /dev/null\n")
    time.sleep(0.5)
    _drain(shell)
    shell.input("a")  # a plain keystroke: echo, then ack
    assert [shell.recv().payload.type for _ in range(2)] == ["data", "ack"]
    stream_id = shell.input("\x03")
    frame = shell.recv()
    assert frame.payload.type == "ack", frame
    assert frame.stream_id == stream_id
    shell.read_until("^C")  # the terminal's echo of the byte


def test_input_without_output_is_acked_promptly(api: Api, running_job: str, shells) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.initialize()
    shell.input("stty -echo; cat > /dev/null\n")
    time.sleep(0.5)  # cat is reading, the terminal no longer echoes
    _drain(shell)  # what the command line printed
    for key in "xyz":
        started = time.monotonic()
        stream_id = shell.input(key)
        frame = shell.recv(2)
        assert frame.payload.type == "ack", frame
        assert frame.stream_id == stream_id
        assert time.monotonic() - started < 0.5
    shell.input("\n\x04")  # cat ends at an end-of-file at the start of a line
    shell.input("stty echo; echo done\n")
    shell.read_until("done")


def _event_loops() -> list[tuple[str, Callable[..., object]]]:
    loops: list[tuple[str, Callable[..., object]]] = [("asyncio", asyncio.run)]
    try:
        import uvloop
    except ImportError:
        return loops
    return [*loops, ("uvloop", uvloop.run)]


@pytest.mark.parametrize(("name", "run"), _event_loops(), ids=[n for n, _ in _event_loops()])
def test_pty_shell_owns_its_terminal_on_each_event_loop(
    name: str, run: Callable[..., object], tmp_path: Path
) -> None:
    """The shell leads its own session with the PTY as controlling terminal (job control,
    SIGWINCH), whichever loop runs the server (uvloop runs ``preexec_fn`` before ``setsid``)."""

    async def main() -> str:
        shell = await PtyProcess.spawn(
            ["bash", "--norc", "--noprofile", "-i"],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "TERM": "xterm", "PS1": "$ "},
            cols=91,
            rows=27,
        )
        try:
            shell.write(
                b"printf 'sid=%s pid=%s tty=%s\\n' $(ps -o sid= -p $$) $$ $(tty); stty size\n"
            )
            await shell.drain()
            output = ""
            deadline = asyncio.get_running_loop().time() + 10
            while "27 91" not in output.split("stty size", 1)[-1]:
                remaining = deadline - asyncio.get_running_loop().time()
                assert remaining > 0, output
                output += (await asyncio.wait_for(shell.read(), remaining)).decode()
            return output
        finally:
            await shell.terminate()

    output = run(main())
    assert isinstance(output, str)
    found = re.search(r"sid=(\d+) pid=(\d+) tty=(\S+)", output)
    assert found is not None, output
    session, pid, tty = found.groups()
    assert session == pid, output  # the shell leads its own session
    assert tty.startswith("/dev/pts/"), output  # ... whose controlling terminal is the PTY
