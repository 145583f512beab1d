"""The provider vanishes while the job runs: the client is told, and can open a new shell."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from .conftest import Api


@pytest.fixture
def ucloud_config(fresh_local_server: Any) -> dict[str, Any]:
    return {
        "host": fresh_local_server.url,
        "credentials_file": str(fresh_local_server.data_dir / "refresh_token"),
        "request_timeout": 3.0,
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
