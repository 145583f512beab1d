"""A provider that stops answering (SIGSTOP) without closing anything: within seconds the
terminal is told it does not respond, and told again when it answers; what was typed meanwhile
reaches the shell when it answers, or the disconnect message says it did not."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from .conftest import Api, Term

#: The provider leg is dropped when a ping has gone unanswered this long.
PING_INTERVAL = 10.0


@pytest.fixture
def ucloud_config(fresh_local_server: Any) -> dict[str, Any]:
    return {
        "host": fresh_local_server.url,
        "credentials_file": str(fresh_local_server.data_dir / "refresh_token"),
        "request_timeout": 3.0,
        "ping_interval": PING_INTERVAL,
    }


def status_frames(term: Term) -> list[dict[str, Any]]:
    return [frame[1] for frame in term.frames if frame[0] == "status"]


async def test_a_frozen_provider_is_reported_and_typing_survives(
    api: Api, connect, fresh_local_server
) -> None:
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    term = await connect(shell["name"])
    await term.wait_ready()

    pid = fresh_local_server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        await term.run("echo typed-while-frozen-$((2+3))")
        await term.read_until(lambda t: bool(status_frames(t)), timeout=15)
        noticed = time.monotonic() - frozen_at
        (status,) = status_frames(term)
        assert status["provider"] == "unresponsive"
        assert "not responding" in status["message"]
        model = await api.call("GET", "shells", shell["name"])
        assert model["provider"] == "unresponsive"
        # A client that attaches now is told at once.
        late = await connect(shell["name"])
        await late.read_until(lambda t: bool(status_frames(t)), timeout=5)
        late.close()
    finally:
        os.kill(pid, signal.SIGCONT)
    print(f"frozen provider noticed after {noticed:.1f} s")
    assert noticed < 10, noticed

    await term.read_until(lambda t: len(status_frames(t)) == 2, timeout=10)
    assert status_frames(term)[1]["provider"] == "ok"
    await term.wait_for_text("typed-while-frozen-5")
    assert (await api.call("GET", "shells", shell["name"]))["provider"] == "ok"
    term.close()


async def test_input_that_never_arrived_is_reported(api: Api, connect, fresh_local_server) -> None:
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    term = await connect(shell["name"])
    await term.wait_ready()

    pid = fresh_local_server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        await term.run("echo lost")  # 10 characters with the carriage return
        await term.until_closed(timeout=PING_INTERVAL + 15)
    finally:
        os.kill(pid, signal.SIGCONT)
    reason, message = term.frames[-1][1:3]
    assert reason == "provider-lost"
    assert "10 characters you typed did not reach the shell" in message, message
    assert "could not be checked" in message, message  # the frozen server is UCloud too
