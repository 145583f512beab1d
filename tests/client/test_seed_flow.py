"""The seed's flow (shared/seed/jobs-terminal-example.md) step by step, with the sync client."""

from __future__ import annotations

import time
from typing import Any

from jupyter_ucloud import UCloud
from jupyter_ucloud.protocol import JobState, OpenSessionShell, ProductReference


def read_until(shell: Any, text: str, timeout: float = 15.0) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, f"{text!r} not in {seen!r}"
        seen += shell.read(0.5)
    return seen


def test_seed_flow_step_by_step(local_server: Any, make_spec: Any) -> None:
    uc = UCloud(host=local_server.url, refresh_token=local_server.refresh_token)

    # Jobs.retrieveProducts: compute-example supports the terminal.
    products = uc.jobs.retrieve_products()
    reference = ProductReference(
        id="compute-example", category="compute-example", provider=local_server.provider_id
    )
    support = products.find(reference)
    assert support is not None
    assert support.supports_terminal
    assert (support.product.cpu, support.product.memory_in_gigs) == (1, 2)

    # A running job of app terminal v1 whose rank 0 holds hello_world.txt.
    job_id = uc.jobs.create(make_spec(name="seed flow"))
    uc.job(job_id).wait_until(JobState.RUNNING, timeout=30, progress=False)
    workdir = local_server.data_dir / "jobs" / job_id / "rank-0"
    (workdir / "hello_world.txt").write_text("hello\n")
    assert uc.user == "user"

    # Jobs.openInteractiveSession(SHELL) -> a session at the provider.
    session = uc.jobs.open_interactive_session(job_id, 0, "SHELL")
    assert session.provider_id == local_server.provider_id
    assert isinstance(session.session, OpenSessionShell)
    assert (session.session.job_id, session.session.rank) == (job_id, 0)
    assert len(session.session.session_identifier) >= 22

    # Shells.open with initialize(80x24); input "ls -1\n"; "hello_world.txt" comes back.
    try:
        with uc.shells.open(session, cols=80, rows=24) as shell:
            shell.send("stty size\n")
            read_until(shell, "24 80")
            shell.send("ls -1\n")
            output = read_until(shell, "hello_world.txt")
            assert "ls -1" in output  # the echo, as in the seed
            result = shell.run("ls -1")
            assert result.output == "hello_world.txt\n"
            assert result.exit_status == 0
        assert shell.closed
    finally:
        uc.jobs.terminate(job_id)
    handle = uc.job(job_id)
    deadline = time.monotonic() + 20
    while not handle.state.is_final:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert handle.job.state == JobState.SUCCESS  # terminated jobs end as SUCCESS
