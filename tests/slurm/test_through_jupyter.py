"""Slurm jobs through the Jupyter server extension: the terminal websocket into a rank's node.

A real Jupyter server (pytest-jupyter) with ``c.UCloud.host`` pointing at the embedded server on
its Slurm backend, as a remote UCloud would be configured.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from traitlets.config import Config
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.server.conftest import Api as JupyterApi
from tests.server.conftest import Term
from tests.slurm.conftest import SlurmLocalServer, terminal_spec

pytestmark = pytest.mark.slurm


@pytest.fixture
def jp_server_config(slurm_local_server: SlurmLocalServer) -> Config:
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_ucloud": True},
                "allow_unauthenticated_access": False,
            },
            "UCloud": {
                "host": slurm_local_server.url,
                # As a file: Jupyter logs its config at debug level.
                "credentials_file": str(slurm_local_server.data_dir / "refresh_token"),
                "request_timeout": 10.0,
            },
        }
    )


@pytest.fixture
def japi(jp_fetch: Callable[..., Awaitable[Any]]) -> JupyterApi:
    return JupyterApi(jp_fetch)


@pytest.fixture
def terminal(jp_ws_fetch: Callable[..., Awaitable[Any]]) -> Callable[[str], Awaitable[Term]]:
    async def open_term(name: str) -> Term:
        term = Term(await jp_ws_fetch("ucloud", "shells", name, "websocket"))
        frame = await term.next_frame()
        assert frame is not None
        assert frame[0] == "setup", frame
        return term

    return open_term


async def _stty_size(term: Term, expected: str, attempts: int = 5) -> None:
    """``stty size`` until it says ``expected`` (srun passes a resize on asynchronously)."""
    for attempt in range(attempts):
        marker = f"size{attempt}-{time.monotonic_ns()}"
        await term.run(f"echo {marker}=$(stty size)=")
        await term.wait_for_text(f"{marker}=")
        await term.read_until(lambda t, m=marker: t.output.count(f"{m}=") >= 2, timeout=15)
        if f"{marker}={expected}=" in term.output:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"stty size never said {expected!r}: {term.output[-500:]!r}")


async def test_shell_on_rank_1_lands_on_n2_resizes_and_scancel_ends_it(
    japi: JupyterApi, terminal
) -> None:
    job_id = await japi.start_job(product="compute-multi", replicas=2, wait=False)
    job = await japi.wait_state(job_id, "RUNNING", timeout=30)
    slurm_id = job["providerGeneratedId"]
    assert str(slurm_id).isdigit(), job

    model = await japi.open_shell(job_id, 1, cols=100, rows=30)
    assert (model["jobId"], model["rank"], model["state"]) == (job_id, 1, "open")
    term = await terminal(model["name"])
    await term.run("echo node=$SLURMD_NODENAME.")
    await term.wait_for_text("node=n2.", timeout=20)
    await _stty_size(term, "30 100")
    await term.send("set_size", 41, 123, 800, 1200)
    await _stty_size(term, "41 123")

    cancel = await asyncio.create_subprocess_exec(
        "scancel", slurm_id, stdout=asyncio.subprocess.DEVNULL
    )
    assert await cancel.wait() == 0
    cancelled = time.monotonic()
    await term.until_closed(timeout=20)
    took = time.monotonic() - cancelled
    assert term.frames[-1] == ["disconnect", "job-ended", "The job has completed."], term.frames[
        -3:
    ]
    assert term.ws.close_code == 4001
    assert took < 8, f"the terminal heard of the scancel only after {took:.1f} s"
    ended = await japi.call("GET", "shells", model["name"])
    assert (ended["state"], ended["reason"], ended["jobState"]) == ("ended", "job-ended", "SUCCESS")


async def test_queued_job_is_refused_with_its_state(
    japi: JupyterApi, slurm_local_server: SlurmLocalServer
) -> None:
    # 120 minutes on partition `short` (MaxTime 30 min): Slurm keeps it pending for good.
    job_id = await japi.start_job(product="short-queue", wait=False)
    try:
        await japi.wait_state(job_id, "IN_QUEUE")
        status, error = await japi.error("POST", "shells", body={"jobId": job_id, "rank": 0})
        assert status == 409
        assert "is not running (it is IN_QUEUE)" in error["message"]
    finally:
        await japi.terminate(job_id)


def test_provider_socket_waits_for_a_queued_job_and_says_so(
    slurm_local_server: SlurmLocalServer,
) -> None:
    """The embedded provider answers initialize for a queued job at once, prints why it waits,
    and says so when the job ends before it ever ran."""
    api = slurm_local_server.api
    job_id = api.create(terminal_spec(replicas=1, minutes=120, product="short-queue"))
    try:
        api.wait_for_state(job_id, "IN_QUEUE")
        deadline = time.monotonic() + 15
        while not any(
            "PartitionTimeLimit" in (u.get("status") or "") for u in api.retrieve(job_id)["updates"]
        ):
            assert time.monotonic() < deadline, "Slurm never said why the job waits"
            time.sleep(0.2)
        item = {"id": job_id, "rank": 0, "sessionType": "SHELL"}
        opened = api.call("POST", "/api/jobs/interactiveSession", {"items": [item]})
        session = opened["responses"][0]
        hint = base64.b64encode(b"user").decode()
        url = f"{session['providerDomain']}/ucloud/{session['providerId']}/websocket"
        with ws_connect(f"{url}?usernameHint={hint}", open_timeout=10) as ws:
            call = f"jobs.compute.{session['providerId']}.shell.open"
            ident = session["session"]["sessionIdentifier"]
            payload = {"type": "initialize", "sessionIdentifier": ident, "cols": 80, "rows": 24}
            ws.send(json.dumps({"call": call, "streamId": "0", "payload": payload}))
            first = json.loads(ws.recv(timeout=5))
            assert first["payload"] == {"type": "initialize"}
            waiting = json.loads(ws.recv(timeout=5))["payload"]["data"]
            assert waiting.startswith(f"Waiting for job {job_id} to start: it is IN_QUEUE (")
            assert "PartitionTimeLimit" in waiting
            # Typed while waiting: acknowledged, kept for the shell.
            typed = {"type": "input", "data": "x"}
            ws.send(json.dumps({"call": call, "streamId": "1", "payload": typed}))
            assert json.loads(ws.recv(timeout=5)) == {
                "type": "message",
                "payload": {"type": "ack"},
                "streamId": "1",
            }
            api.terminate(job_id)
            ended = json.loads(ws.recv(timeout=10))["payload"]["data"]
            assert "The job ended before it started (SUCCESS)." in ended
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 1000
            assert ws.close_reason == "The job ended before it started (SUCCESS)."
    finally:
        api.terminate(job_id)
