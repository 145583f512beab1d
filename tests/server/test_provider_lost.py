"""The provider vanishes while the job runs: the client is told, and can open a new shell."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from .conftest import Api

PING_INTERVAL = 0.5


@pytest.fixture
def ucloud_config(fresh_local_server: Any) -> dict[str, Any]:
    return {
        "host": fresh_local_server.url,
        "credentials_file": str(fresh_local_server.data_dir / "refresh_token"),
        "request_timeout": 3.0,
        "ping_interval": PING_INTERVAL,
    }


async def test_provider_gone_says_provider_lost(api: Api, connect, fresh_local_server) -> None:
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    term = await connect(shell["name"])
    await term.run("echo up-$((3+4))")
    await term.wait_for_text("up-7")
    fresh_local_server.stop(signal.SIGKILL)
    await term.until_closed(timeout=20)
    assert term.frames[-1][:2] == ["disconnect", "provider-lost"]
    assert "open a new shell" in term.frames[-1][2]
    assert term.ws.close_code == 4002
    model = await api.call("GET", "shells", shell["name"])
    assert model["state"] == "ended"
    assert model["reason"] == "provider-lost"
    status, error = await api.error("POST", "shells", body={"jobId": job_id, "rank": 0})
    assert status == 503
    assert "unreachable" in error["message"]
    # The job runs on under its supervisor; the restarted server re-adopts it.
    await asyncio.to_thread(fresh_local_server.start)


async def test_provider_that_stops_answering_pings_is_lost(
    api: Api, connect, fresh_local_server
) -> None:
    """A frozen provider keeps its TCP connection open; only the pings notice it is gone."""
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    term = await connect(shell["name"])
    # A live provider answers the pings: several intervals pass and the shell is still open.
    await asyncio.sleep(4 * PING_INTERVAL)
    await term.run("echo alive-$((5+6))")
    await term.wait_for_text("alive-11")
    assert (await api.call("GET", "shells", shell["name"]))["state"] == "open"

    pid = fresh_local_server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        # a ping interval and its timeout (2 x 0.5 s), then a job-state check that times out
        # (2 s: the frozen server is UCloud too)
        await term.until_closed(timeout=20)
        took = time.monotonic() - frozen_at
    finally:
        os.kill(pid, signal.SIGCONT)
    assert term.frames[-1][:2] == ["disconnect", "provider-lost"], term.frames[-3:]
    assert term.ws.close_code == 4002
    assert took < 8, f"a frozen provider took {took:.1f} s to be noticed"

    # The provider is back and the job never stopped: a replacement shell works.
    await api.wait_state(job_id, "RUNNING")
    again = await api.open_shell(job_id, replaces=shell["name"])
    assert again["replaces"] == shell["name"]
    term2 = await connect(again["name"])
    await term2.run("echo back-$((6+7))")
    await term2.wait_for_text("back-13")
    term2.close()


async def test_abnormal_close_while_the_job_runs_is_provider_lost(
    api: Api, connect, fresh_local_server
) -> None:
    """The provider leg ends without a normal close (a ping went unanswered) while UCloud still
    answers and the job still runs: provider-lost, not shell-exited."""
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    term = await connect(shell["name"])
    await term.run("echo ok-$((1+8))")
    await term.wait_for_text("ok-9")
    pid = fresh_local_server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(3.0)  # long enough for a ping to go unanswered (<= 1.5 s)
    finally:
        os.kill(pid, signal.SIGCONT)
    await term.until_closed(timeout=20)
    assert term.frames[-1][:2] == ["disconnect", "provider-lost"], term.frames[-3:]
    assert term.ws.close_code == 4002
    model = await api.call("GET", "shells", shell["name"])
    assert (model["reason"], model["jobState"]) == ("provider-lost", "RUNNING")
