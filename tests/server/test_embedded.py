"""No UCloud host configured: the extension starts the embedded server itself, and stops it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from .conftest import Api


@pytest.fixture
def ucloud_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in ("UCLOUD_HOST", "UCLOUD_REFRESH_TOKEN", "UCLOUD_API_TOKEN", "UCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    return {"embedded_data_dir": str(tmp_path / "embedded")}


async def test_embedded_server_starts_on_demand_and_stops(
    api: Api, connect, jp_serverapp, tmp_path: Path
) -> None:
    status = await api.call("GET", "api", "status")
    assert status["mode"] == "embedded"
    assert status["ok"] is True, status
    assert status["user"] == "user"
    assert (tmp_path / "embedded" / "refresh_token").exists()

    apps = await api.call("GET", "api", "applications")
    assert {"name": "terminal", "version": "1"}.items() <= apps["items"][0].items() or any(
        item["name"] == "terminal" for item in apps["items"]
    )

    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    term = await connect(shell["name"])
    await term.run("echo embedded-$((6*7))")
    await term.wait_for_text("embedded-42")

    upstream = jp_serverapp.web_app.settings["ucloud_upstream"]
    pid = upstream.embedded.info.pid
    assert psutil.pid_exists(pid)
    app = jp_serverapp.web_app.settings["jupyter_ucloud"]
    await app.stop_extension()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    await term.until_closed(timeout=20)
