"""Jobs survive a restart of the embedded server; jobs whose processes were lost end FAILURE."""

from __future__ import annotations

import signal
import time

from .conftest import (
    ShellSocket,
    api_for,
    batch_spec,
    job_processes,
    terminal_spec,
    wait_no_processes,
)


def test_clean_stop_and_restart(fresh_local_server) -> None:
    server = fresh_local_server
    api = api_for(server)
    token_before = server.refresh_token
    (finished,) = api.create(batch_spec("exit 0"))
    api.wait_for_state(finished, "SUCCESS")
    (running,) = api.create(terminal_spec("compute-multi", replicas=2))
    api.wait_for_state(running, "RUNNING")
    shell = ShellSocket(api.open_shell_session(running, rank=1))
    shell.initialize()
    shell.input("sleep 600 &\n")
    deadline = time.monotonic() + 10
    while len(job_processes(server.data_dir, running)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(job_processes(server.data_dir, running)) == 4  # 2 ranks, a shell, its sleep

    server.restart()
    shell.wait_closed()  # SIGTERM: the server ends its process groups before exiting
    assert server.proc.returncode is None
    wait_no_processes(server.data_dir, running, timeout=2)

    assert server.refresh_token == token_before
    api = api_for(server)
    ids = [j["id"] for j in api.ok("jobs.browse")["items"]]
    assert ids == [running, finished]
    assert api.retrieve(finished).state.value == "SUCCESS"
    lost = api.retrieve(running)
    assert lost.state.value == "FAILURE"
    assert lost.updates[-1].state.value == "FAILURE"
    assert "stopped" in lost.updates[-1].status
    # New jobs get new ids.
    (new,) = api.create(batch_spec("exit 0"))
    assert int(new) > int(running)


def test_killed_server_orphans_are_reaped_on_restart(fresh_local_server) -> None:
    server = fresh_local_server
    api = api_for(server)
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    orphans = job_processes(server.data_dir, job_id)
    assert len(orphans) == 1

    server.proc.send_signal(signal.SIGKILL)  # no chance to clean up
    server.proc.wait(10)
    assert all(p.is_running() for p in orphans)

    server.start()
    wait_no_processes(server.data_dir, job_id, timeout=5)
    job = api_for(server).retrieve(job_id)
    assert job.state.value == "FAILURE"
    why = job.updates[-1].status
    assert "lost when the embedded server restarted" in why
    assert "orphaned" in why
