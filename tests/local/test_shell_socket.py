"""The provider shell websocket: protocol details, bad input, lifecycle, flow control."""

from __future__ import annotations

import contextlib
import json
import time

import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from jupyter_ucloud.local.shell_socket import close_reason
from jupyter_ucloud.protocol import OpenSessionWithProvider, provider_websocket_url

from .conftest import (
    Api,
    ShellSocket,
    api_for,
    job_processes,
    strip_terminal_codes,
    terminal_spec,
    wait_no_processes,
)


@pytest.fixture
def running_job(api: Api, local_server) -> str:
    (job_id,) = api.create(terminal_spec("compute-multi", replicas=2))
    api.wait_for_state(job_id, "RUNNING")
    yield job_id
    api.terminate(job_id)


def test_resize_reaches_the_shell(api: Api, running_job: str, shells) -> None:
    shell = ShellSocket(api.open_shell_session(running_job, rank=1))
    shells.append(shell)
    shell.initialize(cols=80, rows=24)
    shell.input("stty size\n")
    shell.read_until("24 80")
    shell.send({"type": "resize", "cols": 132, "rows": 43})
    shell.input('stty size; echo "rank=$UCLOUD_RANK"\n')
    shell.read_until("43 132")
    shell.read_until("rank=1")
    # A second initialize after start is a resize too.
    shell.send({"type": "initialize", "sessionIdentifier": "whatever", "cols": 100, "rows": 30})
    shell.input("stty size\n")
    shell.read_until("30 100")


def test_ack_for_every_input_and_resize(api: Api, running_job: str, shells) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    init = shell.initialize()
    sent = [shell.send({"type": "resize", "cols": 90, "rows": 20}), shell.input("true\n")]
    acks = []
    while len(acks) < 2:
        frame = shell.recv()
        if frame.payload.type == "ack":
            acks.append(frame.stream_id)
        else:
            assert frame.stream_id == init
    assert acks == sent


def test_multibyte_output_and_input(api: Api, running_job: str, shells) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.initialize()
    # 20000 three-byte characters: PTY reads split them at arbitrary byte offsets.
    shell.input("python3 -c \"print('\u00e6\u20ac' * 10000 + '|' + 'END')\"\n")
    output = shell.read_until("|END", timeout=20)
    assert "\ufffd" not in output
    assert "\u00e6\u20ac" * 10000 in strip_terminal_codes(output).replace("\n", "")
    shell.input("echo 'gr\u00fc\u00df dich \U0001f600'\n")
    assert "gr\u00fc\u00df dich \U0001f600" in shell.read_until("dich \U0001f600\r\n")


def test_flood_is_coalesced_and_ctrl_c_gets_through(api: Api, running_job: str, shells) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.initialize()
    shell.input("yes 0123456789012345678901234567890123456789\n")
    sizes = []
    for _ in range(50):
        frame = shell.recv()
        if frame.payload.type == "data":
            sizes.append(len(frame.payload.data))
    assert max(sizes) > 4096  # reads are coalesced, not 4 KiB
    assert max(sizes) <= 65536
    shell.input("\x03")
    shell.input("echo stopped-$((6*7))\n")
    shell.read_until("stopped-42", timeout=30)


def test_shell_exit_closes_socket(api: Api, running_job: str, shells, local_server) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.initialize()
    shell.input("exit\n")
    shell.wait_closed()
    # A normal close: clients tell "the shell exited" from "the provider was lost" by it.
    assert (shell.ws.close_code, shell.ws.close_reason) == (1000, "shell exited")
    # The job itself goes on.
    assert api.retrieve(running_job).state.value == "RUNNING"


def test_frames_before_initialize_are_ignored(api: Api, running_job: str, shells) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.input("echo should-not-run\n")
    shell.send({"type": "resize", "cols": 10, "rows": 10})
    shell.send({"type": "bogus"})
    shell.ws.send(b"\x00\x01binary")  # non-text frames are ignored
    shell.send({"type": "input"})  # a malformed non-initialize frame is ignored too
    shell.initialize()
    shell.input("echo first-$((1+1))\n")
    output = shell.read_until("first-2")
    assert "should-not-run" not in output
    shell.input("stty size\n")
    shell.read_until("24 80")


def test_non_json_frame_closes(api: Api, running_job: str) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shell.ws.send("this is not json")
    shell.wait_closed()


def test_malformed_initialize_closes(api: Api, running_job: str) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shell.send({"type": "initialize", "sessionIdentifier": 42, "cols": "wide", "rows": None})
    shell.wait_closed()


def test_unknown_session_closes(api: Api, running_job: str) -> None:
    real = api.open_shell_session(running_job)
    forged = OpenSessionWithProvider.model_validate(
        {**real.to_wire(), "session": {**real.session.to_wire(), "sessionIdentifier": "1" * 80}}
    )
    shell = ShellSocket(forged)
    shell.send({"type": "initialize", "sessionIdentifier": "1" * 80, "cols": 80, "rows": 24})
    shell.wait_closed()


def test_session_used_twice_is_refused(api: Api, running_job: str, shells) -> None:
    session = api.open_shell_session(running_job)
    first = ShellSocket(session)
    shells.append(first)
    first.initialize()
    second = ShellSocket(session)
    second.send(
        {
            "type": "initialize",
            "sessionIdentifier": session.session.session_identifier,
            "cols": 80,
            "rows": 24,
        }
    )
    second.wait_closed()
    # The first connection is unaffected, and the identifier stays dead after it closes.
    first.input("echo still-$((2+3))\n")
    first.read_until("still-5")
    first.close()
    third = ShellSocket(session)
    third.send(
        {
            "type": "initialize",
            "sessionIdentifier": session.session.session_identifier,
            "cols": 80,
            "rows": 24,
        }
    )
    third.wait_closed()


def test_session_of_another_user_is_refused(api: Api, running_job: str) -> None:
    session = api.open_shell_session(running_job)
    intruder = ShellSocket(session, username="mallory")
    intruder.send(
        {
            "type": "initialize",
            "sessionIdentifier": session.session.session_identifier,
            "cols": 80,
            "rows": 24,
        }
    )
    intruder.wait_closed()
    # The refused attempt burnt the identifier: the session was bound to its user.
    owner = ShellSocket(session)
    owner.send(
        {
            "type": "initialize",
            "sessionIdentifier": session.session.session_identifier,
            "cols": 80,
            "rows": 24,
        }
    )
    owner.wait_closed()


def test_oversized_frame_closes(api: Api, running_job: str) -> None:
    session = api.open_shell_session(running_job)
    shell = ShellSocket(session)
    shell.initialize()
    frame = json.dumps(
        {
            "call": "x",
            "streamId": "9",
            "payload": {"type": "input", "data": "x" * (2 * 1024 * 1024)},
        }
    )
    # The server refuses the frame from its header on: tornado writes a 1009 close and closes
    # the connection at once. With the rest of the frame still unread on the server, Linux
    # resets the connection, which may overtake the close frame (the client then sees 1006).
    with contextlib.suppress(ConnectionClosed):
        shell.ws.send(frame)
        shell.wait_closed()
    assert shell.ws.close_code in (1009, 1006)
    assert api.retrieve(running_job).state.value == "RUNNING"  # one bad socket, not the job


def test_initialize_timeout_and_unused_session_expiry(fresh_local_server) -> None:
    fresh_local_server.stop()
    config = fresh_local_server.data_dir / "fast.json"
    config.write_text(json.dumps({"session_init_timeout": 1.0, "session_unused_ttl": 1.0}))
    fresh_local_server.config_file = config
    fresh_local_server.start()
    url = fresh_local_server.url.replace("http", "ws") + "/ucloud/local/websocket"
    with connect(url, open_timeout=10) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert 0.5 < time.monotonic() - started < 5

    api = api_for(fresh_local_server)
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    session = api.open_shell_session(job_id)
    time.sleep(1.5)  # never claimed: the identifier expires
    late = ShellSocket(session)
    late.send(
        {
            "type": "initialize",
            "sessionIdentifier": session.session.session_identifier,
            "cols": 80,
            "rows": 24,
        }
    )
    late.wait_closed()
    fresh = ShellSocket(api.open_shell_session(job_id))
    fresh.initialize()
    fresh.close()
    api.terminate(job_id)


def test_backpressure_stops_reading_the_pty(api: Api, running_job: str, local_server) -> None:
    session = api.open_shell_session(running_job)
    # A client that reads nothing: websockets stops reading the socket once 2 frames queue up.
    url = provider_websocket_url(
        session.provider_domain, "local", session.session.session_identifier, "user"
    )
    slow = connect(url, open_timeout=10, close_timeout=1, max_queue=2, max_size=None)
    try:
        slow.send(
            json.dumps(
                {
                    "call": "x",
                    "streamId": "0",
                    "payload": {
                        "type": "initialize",
                        "sessionIdentifier": session.session.session_identifier,
                        "cols": 80,
                        "rows": 24,
                    },
                }
            )
        )
        slow.send(
            json.dumps(
                {
                    "call": "x",
                    "streamId": "1",
                    "payload": {
                        "type": "input",
                        "data": "yes 0123456789abcdefghijklmnopqrstuvwxyz\n",
                    },
                }
            )
        )
        server = psutil.Process(local_server.proc.pid)
        deadline = time.monotonic() + 10
        flood = []
        while not flood and time.monotonic() < deadline:
            flood = [
                p for p in job_processes(local_server.data_dir, running_job) if p.name() == "yes"
            ]
            time.sleep(0.05)
        assert flood, "yes did not start"
        time.sleep(1.0)  # let every buffer on the way fill up
        rss_before = server.memory_info().rss
        cpu_before = sum(flood[0].cpu_times()[:2])
        time.sleep(2.0)
        cpu_used = sum(flood[0].cpu_times()[:2]) - cpu_before
        rss_growth = server.memory_info().rss - rss_before
        # Blocked on a full terminal, yes burns (almost) no CPU, and the server holds no backlog.
        assert cpu_used < 0.3, cpu_used
        assert rss_growth < 8 * 1024 * 1024, rss_growth
        assert flood[0].status() in (psutil.STATUS_SLEEPING, psutil.STATUS_DISK_SLEEP)
    finally:
        slow.close()
    # Closing the socket ends the shell and its flood.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _named(
        job_processes(local_server.data_dir, running_job), "yes"
    ):
        time.sleep(0.05)
    assert not _named(job_processes(local_server.data_dir, running_job), "yes")


def test_client_leaving_while_input_waits_ends_the_shell(
    api: Api, running_job: str, local_server
) -> None:
    """A shell that neither reads its input nor prints: the input the terminal cannot take
    holds the reading of frames, so the client's close is not read; the client leaving must
    still end the shell (the long fuzz run found such shells left running)."""
    shell = ShellSocket(api.open_shell_session(running_job))
    shell.initialize()
    shell.input("stty -echo -icanon; sleep 601\n")
    deadline = time.monotonic() + 10
    while not _sleeping(local_server, running_job) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sleeping(local_server, running_job), "sleep did not start"
    shell.input("y" * 200_000)  # far more than the terminal's buffers take
    time.sleep(0.5)
    shell.ws.close_timeout = 1  # the provider does not read the close frame: give up soon
    shell.close()
    deadline = time.monotonic() + 15
    while _sleeping(local_server, running_job) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sleeping(local_server, running_job), "the shell outlived its client"
    assert api.retrieve(running_job).state.value == "RUNNING"


def _sleeping(local_server, job_id: str) -> list[psutil.Process]:
    found = []
    for process in _named(job_processes(local_server.data_dir, job_id), "sleep"):
        with contextlib.suppress(psutil.Error):
            if process.cmdline()[-1:] == ["601"]:
                found.append(process)
    return found


def _named(processes: list[psutil.Process], name: str) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            if process.name() == name:
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_job_end_closes_socket_and_kills_shell(api: Api, local_server, shells) -> None:
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    shell = ShellSocket(api.open_shell_session(job_id))
    shells.append(shell)
    shell.initialize()
    shell.input("sleep 1000 & echo started-$((40+2))\n")
    shell.read_until("started-42")
    assert len(job_processes(local_server.data_dir, job_id)) >= 3  # rank, shell, sleep
    api.terminate(job_id)
    shell.wait_closed()
    wait_no_processes(local_server.data_dir, job_id)


def test_shell_refused_for_ended_job_and_other_session_types(api: Api, local_server) -> None:
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    session = api.open_shell_session(job_id)
    api.terminate(job_id)
    api.wait_for_state(job_id, "SUCCESS")
    # A session opened while it ran cannot start a shell any more.
    shell = ShellSocket(session)
    shell.send(
        {
            "type": "initialize",
            "sessionIdentifier": session.session.session_identifier,
            "cols": 80,
            "rows": 24,
        }
    )
    shell.wait_closed()
    response = api.call(
        "jobs.openInteractiveSession",
        {"items": [{"id": job_id, "rank": 0, "sessionType": "SHELL"}]},
    )
    assert response.status_code == 400
    assert "ended" in response.json()["why"]


def test_keystroke_echo_is_immediate(api: Api, running_job: str, shells) -> None:
    shell = ShellSocket(api.open_shell_session(running_job))
    shells.append(shell)
    shell.initialize()
    shell.input("cat\n")
    shell.read_until("cat\r\n")
    latencies = []
    for _ in range(21):
        started = time.monotonic()
        shell.input("k")
        while shell.recv().payload.type != "data":
            pass
        latencies.append(time.monotonic() - started)
    # Small frames are not held back by Nagle's algorithm (40 ms with delayed ACKs).
    assert sorted(latencies)[10] < 0.02, latencies
    shell.input("\x03")


def test_shell_that_cannot_be_opened_says_why(api: Api, running_job: str, local_server) -> None:
    """The backend fails to start the shell: the reason comes as output and as the close reason."""
    rank_dir = local_server.data_dir / "jobs" / running_job / "rank-0"
    moved = rank_dir.with_name("rank-0.moved")
    rank_dir.rename(moved)
    rank_dir.write_text("not a directory\n")  # the shell's working directory cannot be made
    try:
        shell = ShellSocket(api.open_shell_session(running_job))
        shell.send(
            {
                "type": "initialize",
                "sessionIdentifier": shell.session.session.session_identifier,
                "cols": 80,
                "rows": 24,
            }
        )
        frame = shell.recv()
        assert frame.payload.type == "data", frame
        assert "Cannot open a shell: File exists" in frame.payload.data
        shell.wait_closed()
        assert shell.ws.close_code == 1011
        assert shell.ws.close_reason.startswith("Cannot open a shell: File exists (")
    finally:
        rank_dir.unlink()
        moved.rename(rank_dir)
    # Nothing broke: the next shell opens.
    again = ShellSocket(api.open_shell_session(running_job))
    again.initialize()
    again.input("echo fine-$((2+3))\n")
    again.read_until("fine-5")
    again.close()


def test_close_reasons_fit_a_close_frame() -> None:
    why = "The job is still waiting in the Slurm queue (Resources); a shell can be opened " + (
        "\u00e6" * 100
    )
    cut = close_reason(why)
    assert len(cut.encode()) <= 120
    assert why.startswith(cut)
    assert cut.endswith("\u00e6")  # a two-byte character is never split
    assert close_reason("short") == "short"
