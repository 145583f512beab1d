"""The seed's flow (jobs-terminal-example.md) step by step against the embedded server."""

from __future__ import annotations

import re

from jupyter_ucloud.protocol import OpenSessionShell, SupportByProvider

from .conftest import Api, ShellSocket, strip_terminal_codes, terminal_spec, wait_no_processes


def test_seed_flow_terminal_session(api: Api, local_server, shells: list[ShellSocket]) -> None:
    # Jobs.retrieveProducts: the machine has support for the 'terminal' feature.
    products = SupportByProvider.model_validate(api.ok("jobs.retrieveProducts"))
    example = next(
        s for s in products.products_by_provider["local"] if s.product.name == "compute-example"
    )
    assert example.supports_terminal
    assert example.support.docker is not None
    assert example.support.docker.terminal is True

    # A running job (the seed's pre-condition), with hello_world.txt in its working directory.
    (job_id,) = api.create(terminal_spec())
    job = api.wait_for_state(job_id, "RUNNING")
    assert job.status.started_at is not None
    rank_dir = local_server.data_dir / "jobs" / job_id / "rank-0"
    (rank_dir / "hello_world.txt").write_text("hello\n")

    # Jobs.openInteractiveSession with a SHELL on rank 0.
    session = api.open_shell_session(job_id, rank=0)
    assert session.provider_id == "local"
    assert isinstance(session.session, OpenSessionShell)
    assert session.session.job_id == job_id
    assert session.session.rank == 0
    assert session.provider_domain.startswith("ws://127.0.0.1:")
    assert session.session.domain_override == session.provider_domain
    identifier = session.session.session_identifier
    assert re.fullmatch(r"\d+[0-9a-f]{64}", identifier)

    # Shells.open.subscribe(Initialize(cols=80, rows=24)) -> a prompt arrives as data.
    shell = ShellSocket(session)
    shells.append(shell)
    init_stream = shell.initialize(cols=80, rows=24, wait_for_prompt=False)
    prompt = shell.wait_for_prompt()  # ShellResponse.Data("user@machine:~$ ")
    assert prompt.rstrip().endswith(("$", "#"))
    shell.output = ""

    # Input "ls -1\n": the echo, then hello_world.txt, then the prompt again; all on the
    # initialize streamId, and an ack on the input's own streamId.
    input_stream = shell.send({"type": "input", "data": "ls -1\n"})
    acked = False
    while "hello_world.txt" not in shell.output or not acked:
        try:
            frame = shell.recv()
        except TimeoutError:
            raise AssertionError((acked, shell.output)) from None
        if frame.payload.type == "ack":
            assert frame.stream_id == input_stream
            acked = True
        else:
            assert frame.payload.type == "data"
            assert frame.stream_id == init_stream
            shell.output += frame.payload.data
    assert "ls -1" in shell.output
    lines = strip_terminal_codes(shell.output).splitlines()
    assert "hello_world.txt" in lines

    # The shell runs where the job's rank runs, with the job's identity in its environment.
    shell.input('echo "[$UCLOUD_JOB_ID/$UCLOUD_RANK/$TERM]"; pwd\n')
    shell.read_until(f"[{job_id}/0/xterm-256color]")
    shell.read_until(str(rank_dir.resolve()))

    api.terminate(job_id)
    assert api.wait_for_state(job_id, "SUCCESS").state.value == "SUCCESS"
    shell.wait_closed()
    wait_no_processes(local_server.data_dir, job_id)
    # Neither the session identifier nor the access token ever reaches the log.
    log = local_server.log_file.read_text()
    assert identifier not in log
    assert api.token not in log
