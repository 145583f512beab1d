"""No UCloud host configured: the extension finds or starts the embedded server, which outlives
the Jupyter server while it has jobs, and backs off (saying why) when it cannot start."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from jupyter_ucloud.server.shells import PROVIDER_LOST_MESSAGE, PROVIDER_LOST_UNKNOWN
from tests.conftest import local_cli

from .conftest import Api


@pytest.fixture
def embedded_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "embedded"
    yield path
    # The embedded server outlives the Jupyter server by design: end it and its jobs.
    subprocess.run(local_cli("stop", path), check=False, capture_output=True, timeout=60)


@pytest.fixture
def ucloud_config(embedded_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in ("UCLOUD_HOST", "UCLOUD_REFRESH_TOKEN", "UCLOUD_API_TOKEN", "UCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    return {"embedded_data_dir": str(embedded_dir)}


async def test_embedded_server_starts_on_demand_and_outlives_jupyter(
    api: Api, connect, jp_serverapp, embedded_dir: Path, caplog
) -> None:
    status = await api.call("GET", "api", "status")
    assert status["mode"] == "embedded"
    assert status["ok"] is True, status
    assert status["user"] == "user"
    assert (embedded_dir / "refresh_token").exists()

    apps = await api.call("GET", "api", "applications")
    assert any(item["name"] == "terminal" for item in apps["items"])

    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    term = await connect(shell["name"])
    await term.run("echo embedded-$((6*7))")
    await term.wait_for_text("embedded-42")

    upstream = jp_serverapp.web_app.settings["ucloud_upstream"]
    pid = upstream.embedded.info.pid
    assert psutil.pid_exists(pid)
    app = jp_serverapp.web_app.settings["jupyter_ucloud"]
    caplog.set_level(logging.INFO)
    await app.stop_extension()
    await term.until_closed(timeout=20)  # the shells end with the Jupyter server...
    # ... the embedded server and the job do not, and the log says how to end them.
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    said = caplog.text
    assert f"(pid {pid}) keeps running with 1 running job(s)" in said
    assert f"jupyter ucloud local stop --data-dir {embedded_dir}" in said
    status = subprocess.run(
        [*local_cli("status", embedded_dir), "--json"], capture_output=True, text=True, check=True
    )
    assert '"state": "RUNNING"' in status.stdout
    assert f'"pid": {pid}' in status.stdout


async def test_an_embedded_server_that_cannot_start_is_reported_and_not_respawned(
    api: Api, jp_serverapp, embedded_dir: Path
) -> None:
    embedded_dir.mkdir(parents=True)
    (embedded_dir / "jobs.sqlite").write_bytes(b"this is not a database" * 100)
    status = await api.call("GET", "api", "status")
    assert status["ok"] is False
    assert "jobs.sqlite" in status["error"], status
    upstream = jp_serverapp.web_app.settings["ucloud_upstream"]
    log_size = upstream.embedded.log_file.stat().st_size
    # Further requests within the back-off get the same answer at once, without a new start.
    for _ in range(3):
        again = await api.call("GET", "api", "status")
        assert again["ok"] is False
        assert "next attempt in" in again["error"]
    assert upstream.embedded.log_file.stat().st_size == log_size
    error = await api.error("GET", "api", "jobs", "browse")
    assert error[0] == 503
    assert "jobs.sqlite" in error[1]["message"]


async def test_a_crashed_embedded_server_is_told_truthfully_and_the_job_goes_on(
    api: Api, connect, jp_serverapp, embedded_dir: Path
) -> None:
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    term = await connect(shell["name"])
    await term.wait_ready()
    upstream = jp_serverapp.web_app.settings["ucloud_upstream"]
    crashed = upstream.embedded.info.pid
    psutil.Process(crashed).kill()

    await term.until_closed(timeout=30)
    reason, message = term.frames[-1][1:3]
    assert reason == "provider-lost"
    # Worded after asking for the job's state: the extension starts a new embedded server,
    # which re-adopts the job, so it still runs (or, if that took too long, it says so).
    assert message in (PROVIDER_LOST_MESSAGE, PROVIDER_LOST_UNKNOWN), message
    again = await api.open_shell(job_id)  # the reconnect it suggests works
    term2 = await connect(again["name"])
    await term2.run("echo adopted-$((3+4))")
    await term2.wait_for_text("adopted-7")
    assert upstream.embedded.info.pid != crashed
    assert (await api.call("GET", "api", "jobs", "retrieve", id=job_id))["status"][
        "state"
    ] == "RUNNING"
    term2.close()
