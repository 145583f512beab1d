"""What outlives what: jobs outlive the embedded server (clean stop, kill -9) under their
supervisors, nothing a job starts outlives the job, one server per data dir, idle exit,
``jupyter ucloud local status|stop``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.conftest import LocalServerProcess, local_cli

from .conftest import (
    ShellSocket,
    api_for,
    batch_spec,
    job_processes,
    open_shells,
    terminal_spec,
    wait_no_processes,
)


def supervisor_of(server: LocalServerProcess, job_id: str) -> psutil.Process:
    record = json.loads((server.data_dir / "jobs" / job_id / "supervisor.json").read_text())
    return psutil.Process(record["pid"])


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if marker in " ".join(process.cmdline()) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_clean_restart_keeps_jobs_running(fresh_local_server: LocalServerProcess) -> None:
    server = fresh_local_server
    api = api_for(server)
    token_before = server.refresh_token
    (finished,) = api.create(batch_spec("exit 0"))
    api.wait_for_state(finished, "SUCCESS")
    (running,) = api.create(terminal_spec("compute-multi", replicas=2))
    api.wait_for_state(running, "RUNNING")
    ranks = {p.pid for p in job_processes(server.data_dir, running)}
    assert len(ranks) == 2
    shell = ShellSocket(api.open_shell_session(running, rank=1))
    shell.initialize()
    shell.input("echo kept > kept.txt\n")
    wait_until(lambda: (server.data_dir / "jobs" / running / "rank-1" / "kept.txt").exists())

    server.restart()  # SIGTERM, then a new server on the same data dir
    shell.wait_closed()  # the server held the shell's terminal: the shell ends with it

    assert server.refresh_token == token_before
    api = api_for(server)
    assert [j["id"] for j in api.ok("jobs.browse")["items"]] == [running, finished]
    assert api.retrieve(finished).state.value == "SUCCESS"
    job = api.retrieve(running)
    assert job.state.value == "RUNNING"
    assert job.updates[-1].status == "The embedded server restarted and re-adopted the job"
    assert {p.pid for p in job_processes(server.data_dir, running)} >= ranks
    again = ShellSocket(api.open_shell_session(running, rank=1))
    again.initialize()
    again.input("cat kept.txt; echo shell-$((40+2))\n")
    assert "kept" in again.read_until("shell-42")
    again.close()
    (new,) = api.create(batch_spec("exit 0"))
    assert int(new) > int(running)


def test_killed_server_loses_no_job(fresh_local_server: LocalServerProcess) -> None:
    """kill -9 of the embedded server: running jobs go on, a batch job's output is complete,
    and a time limit set before the crash still ends its job."""
    server = fresh_local_server
    api = api_for(server)
    (interactive,) = api.create(terminal_spec("compute-multi", replicas=2))
    (batch,) = api.create(
        batch_spec('for i in $(seq 1 40); do echo "line-$i"; echo "err-$i" >&2; sleep 0.05; done')
    )
    (limited,) = api.create(terminal_spec(timeAllocation={"hours": 0, "minutes": 0, "seconds": 4}))
    for job_id in (interactive, batch, limited):
        api.wait_for_state(job_id, "RUNNING", "SUCCESS")
    supervisors = {job_id: supervisor_of(server, job_id) for job_id in (interactive, limited)}

    server.proc.send_signal(signal.SIGKILL)  # no chance to clean up
    server.proc.wait(10)
    assert all(s.is_running() for s in supervisors.values())

    server.start()
    api = api_for(server)
    assert api.retrieve(interactive).state.value == "RUNNING"
    for rank in (0, 1):
        shell = ShellSocket(api.open_shell_session(interactive, rank=rank))
        shell.initialize()
        shell.input("echo rank-$UCLOUD_RANK-ok\n")
        shell.read_until(f"rank-{rank}-ok")
        shell.close()
    done = api.wait_for_state(batch, "SUCCESS", "FAILURE", timeout=30)
    assert done.state.value == "SUCCESS"
    folder = server.data_dir / "jobs" / batch
    assert (folder / "rank-0.out").read_text().split() == [f"line-{i}" for i in range(1, 41)]
    assert (folder / "rank-0.err").read_text().split() == [f"err-{i}" for i in range(1, 41)]
    expired = api.wait_for_state(limited, "EXPIRED", "SUCCESS", "FAILURE", timeout=30)
    assert expired.state.value == "EXPIRED"
    wait_no_processes(server.data_dir, limited)
    wait_until(lambda: not supervisors[limited].is_running(), what="the supervisor to exit")


def test_a_job_that_ended_while_no_server_ran_is_told_as_it_ended(
    fresh_local_server: LocalServerProcess,
) -> None:
    server = fresh_local_server
    api = api_for(server)
    (job_id,) = api.create(batch_spec("sleep 1; exit 7"))
    api.wait_for_state(job_id, "RUNNING")
    server.stop(signal.SIGTERM)
    supervisor = supervisor_of(server, job_id)
    wait_until(lambda: not supervisor.is_running(), what="the job to end")
    server.start()
    job = api_for(server).retrieve(job_id)
    assert job.state.value == "FAILURE"
    assert job.updates[-1].status == (
        "Rank 0 exited with status 7 (while the embedded server was not running)"
    )


def test_a_job_whose_supervisor_is_killed_fails_and_leaves_nothing(
    fresh_local_server: LocalServerProcess,
) -> None:
    server = fresh_local_server
    api = api_for(server)
    (job_id,) = api.create(terminal_spec("compute-multi", replicas=2))
    api.wait_for_state(job_id, "RUNNING")
    assert len(job_processes(server.data_dir, job_id)) == 2
    supervisor = supervisor_of(server, job_id)
    supervisor.kill()
    job = api.wait_for_state(job_id, "FAILURE", timeout=15)
    why = job.updates[-1].status
    assert f"supervisor (pid {supervisor.pid}) is gone" in why
    assert "ended 2 process(es)" in why
    wait_no_processes(server.data_dir, job_id)


ESCAPES = (
    "setsid bash -c 'exec -a {m}-setsid sleep 1000' < /dev/null > /dev/null 2>&1 &\n"
    "nohup bash -c 'exec -a {m}-nohup sleep 1001' > /dev/null 2>&1 & disown\n"
    "( ( exec -a {m}-double sleep 1002 < /dev/null > /dev/null 2>&1 & ) & )\n"
)


def start_escapees(api, job_id: str, marker: str) -> ShellSocket:
    shell = ShellSocket(api.open_shell_session(job_id))
    shell.initialize()
    shell.input(ESCAPES.format(m=marker))
    wait_until(lambda: len(processes_with(marker)) == 3, what="three escapees")
    # None of them is in the shell's session or process group any more.
    assert len({p.pid for p in processes_with(marker)}) == 3
    return shell


@pytest.mark.parametrize("how", ["terminate", "time limit", "local stop"])
def test_nothing_escapes_a_job(fresh_local_server: LocalServerProcess, how: str) -> None:
    server = fresh_local_server
    api = api_for(server)
    marker = f"ucloud-escape-{uuid.uuid4().hex[:8]}"
    spec = terminal_spec()
    if how == "time limit":
        spec["timeAllocation"] = {"hours": 0, "minutes": 0, "seconds": 6}
    (job_id,) = api.create(spec)
    api.wait_for_state(job_id, "RUNNING")
    supervisor = supervisor_of(server, job_id)
    shell = start_escapees(api, job_id, marker)
    escapees = processes_with(marker)
    # They were re-parented to the job's supervisor, not to init.
    assert all(supervisor.pid in {a.pid for a in p.parents()} for p in escapees)

    if how == "terminate":
        api.terminate(job_id)
        assert api.retrieve(job_id).state.value == "SUCCESS"
    elif how == "time limit":
        assert api.wait_for_state(job_id, "EXPIRED", timeout=30).state.value == "EXPIRED"
    else:
        done = subprocess.run(
            local_cli("stop", server.data_dir), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert server.proc.wait(10) == 0
    shell.wait_closed()
    wait_until(lambda: not processes_with(marker), timeout=10, what="the escapees to end")
    wait_until(lambda: not supervisor.is_running(), what="the supervisor to exit")
    wait_no_processes(server.data_dir, job_id)
    if how == "local stop":
        server.start()
        job = api_for(server).retrieve(job_id)
        assert job.state.value == "SUCCESS"
        assert "jupyter ucloud local stop" in job.updates[-1].status


def test_one_server_per_data_dir(fresh_local_server: LocalServerProcess, tmp_path: Path) -> None:
    server = fresh_local_server
    api = api_for(server)
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    ranks = {p.pid for p in job_processes(server.data_dir, job_id)}
    info = json.loads((server.data_dir / "server.json").read_text())
    assert info["pid"] == server.proc.pid
    assert info["url"] == server.url

    ready = tmp_path / "second-ready.json"
    second = subprocess.run(
        [
            *local_cli("serve", server.data_dir),
            "--port",
            "0",
            "--ready-file",
            str(ready),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    assert f"already running for {server.data_dir} (pid {server.proc.pid}" in second.stderr
    assert json.loads(ready.read_text())["url"] == server.url  # pointed at the live one
    assert server.proc.poll() is None
    assert {p.pid for p in job_processes(server.data_dir, job_id)} == ranks
    assert api.retrieve(job_id).state.value == "RUNNING"


def test_a_dead_servers_data_dir_is_taken_over(fresh_local_server: LocalServerProcess) -> None:
    server = fresh_local_server
    old_pid = server.proc.pid
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    assert json.loads((server.data_dir / "server.json").read_text())["pid"] == old_pid
    server.start()
    assert f"the server that ran there (pid {old_pid}) is gone" in server.log_file.read_text()
    assert json.loads((server.data_dir / "server.json").read_text())["pid"] == server.proc.pid


def test_status_and_stop(fresh_local_server: LocalServerProcess) -> None:
    server = fresh_local_server
    api = api_for(server)
    (job_id,) = api.create(terminal_spec("compute-multi", replicas=2, name="analysis"))
    api.wait_for_state(job_id, "RUNNING")

    text = subprocess.run(
        local_cli("status", server.data_dir), capture_output=True, text=True, check=True
    ).stdout
    assert f"pid {server.proc.pid}, {server.url}" in text
    assert f"job {job_id} 'analysis': RUNNING, terminal on compute-multi, 2 rank(s)" in text
    status = json.loads(
        subprocess.run(
            [*local_cli("status", server.data_dir), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert status["server"]["pid"] == server.proc.pid
    assert [(j["id"], j["supervisorAlive"]) for j in status["jobs"]] == [(job_id, True)]

    stopped = subprocess.run(
        local_cli("stop", server.data_dir), capture_output=True, text=True, timeout=60
    )
    assert stopped.returncode == 0, stopped.stderr
    assert server.proc.wait(10) == 0
    wait_no_processes(server.data_dir, job_id)
    after = subprocess.run(
        local_cli("status", server.data_dir), capture_output=True, text=True, check=True
    ).stdout
    assert "No embedded server is running" in after
    assert "No job is running." in after


def test_stop_without_a_server_ends_the_jobs_it_left(
    fresh_local_server: LocalServerProcess,
) -> None:
    server = fresh_local_server
    api = api_for(server)
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    assert job_processes(server.data_dir, job_id)
    stopped = subprocess.run(
        local_cli("stop", server.data_dir), capture_output=True, text=True, timeout=60
    )
    assert "terminated 1 job(s) it had left" in stopped.stdout, stopped
    wait_no_processes(server.data_dir, job_id)
    server.start()
    job = api_for(server).retrieve(job_id)
    assert job.state.value == "SUCCESS"
    assert "while the embedded server was not running" in job.updates[-1].status


def test_idle_server_exits_by_itself(tmp_path: Path) -> None:
    server = LocalServerProcess(tmp_path / "data", extra_args=["--idle-timeout", "1.5"]).start()
    try:
        api = api_for(server)
        (job_id,) = api.create(terminal_spec())
        api.wait_for_state(job_id, "RUNNING")
        time.sleep(4)  # a running job keeps it up, however quiet
        assert server.proc.poll() is None
        api.terminate(job_id)
        assert server.proc.wait(20) == 0
        assert "No job and no client for 1.5 s: stopping" in server.log_file.read_text()
        assert not (server.data_dir / "server.json").exists()
    finally:
        server.stop()


def test_job_environment_is_built_from_the_allow_list(tmp_path: Path) -> None:
    """Nothing of the server's environment reaches a job but the allow-list and what the
    config asks for."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "applications": [
                    {
                        "name": "terminal",
                        "version": "1",
                        "kind": "interactive",
                        "environment": {"APP_SETTING": "from-config"},
                        "pass_environment": ["PASSED_ON"],
                    }
                ]
            }
        )
    )
    canaries = {
        "JUPYTER_TOKEN": "canary-jupyter-token",
        "MY_SECRET": "canary-secret",
        "CLOUD_API_KEY": "canary-api-key",
        "UCLOUD_REFRESH_TOKEN": "canary-refresh",
        "RANDOM_THING": "canary-random",
        "PASSED_ON": "passed-value",
    }
    server = LocalServerProcess(tmp_path / "data", config_file=config)
    old = {name: os.environ.get(name) for name in canaries}
    os.environ.update(canaries)
    try:
        server.start()
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        (shell,), job_id = open_shells(api_for(server))
        shell.input("env; echo env-$((1+1))-done\n")
        output = shell.read_until("env-2-done")
        for value in canaries.values():
            if value != "passed-value":
                assert value not in output
        assert "PASSED_ON=passed-value" in output
        assert "APP_SETTING=from-config" in output
        assert f"UCLOUD_JOB_ID={job_id}" in output
        assert "TERM=xterm-256color" in output
        shell.close()
        for process in job_processes(server.data_dir, job_id):
            environ = process.environ()
            assert not set(environ) & (set(canaries) - {"PASSED_ON"}), environ
    finally:
        server.stop()


def test_closing_a_shell_gives_its_programs_time_to_clean_up(
    fresh_local_server: LocalServerProcess,
) -> None:
    """SIGHUP, then a few seconds before TERM and KILL (a program that removes its lock file on
    HUP gets to do it); terminating the job does not wait for that."""
    server = fresh_local_server
    api = api_for(server)
    (shell,), job_id = open_shells(api)
    folder = server.data_dir / "jobs" / job_id / "rank-0"
    shell.input(
        'bash -c \'trap "sleep 1; echo cleaned > cleaned.txt; exit" HUP; echo armed-$((1+1));'
        " while true; do sleep 0.1; done'\n"
    )
    shell.read_until("armed-2")
    shell.close()  # the server ends the shell's session, as closing a terminal window does
    wait_until(lambda: (folder / "cleaned.txt").exists(), timeout=10, what="the clean-up")

    stubborn = ShellSocket(api.open_shell_session(job_id))
    stubborn.initialize()
    stubborn.input("trap '' HUP TERM; echo stubborn-$((2+2)); sleep 1000\n")
    stubborn.read_until("stubborn-4")
    started = time.monotonic()
    api.terminate(job_id)
    took = time.monotonic() - started
    assert took < 3 + 5, took  # the supervisor's grace (3 s), then SIGKILL: nothing waits longer
    wait_no_processes(server.data_dir, job_id)


@pytest.mark.parametrize("job_nice", [None, 10])
def test_jobs_run_at_a_lower_cpu_priority(tmp_path: Path, job_nice: int | None) -> None:
    """A job's ranks and shells (and what they start) run ``job_nice`` (0 by default) above
    the server's nice value, so that a busy job yields the CPU to JupyterLab; the supervisor
    itself does not."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({} if job_nice is None else {"job_nice": job_nice}))
    server = LocalServerProcess(tmp_path / "data", config_file=config).start()
    try:
        assert server.proc is not None
        base = psutil.Process(server.proc.pid).nice()
        expected = min(base + (job_nice or 0), 19)
        (shell,), job_id = open_shells(api_for(server))
        shell.input("sleep 77 & echo nice-$(nice)-done\n")
        shell.read_until(f"nice-{expected}-done")
        processes = job_processes(server.data_dir, job_id)
        assert {p.name() for p in processes} >= {"bash", "sleep"}, processes
        assert {p.nice() for p in processes} == {expected}, [(p, p.nice()) for p in processes]
        if Path("/proc/self/autogroup").exists():  # the session's group counts across sessions
            for process in processes:
                group = Path(f"/proc/{process.pid}/autogroup").read_text()
                assert group.split()[-1] == str(expected - base), (process, group)
        supervisors = [p for p in psutil.Process(server.proc.pid).children() if p.pid != 0]
        assert all(p.nice() == base for p in supervisors), supervisors
        shell.close()
    finally:
        server.stop()
