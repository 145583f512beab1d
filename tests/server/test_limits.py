"""The per-user limit on open shells."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api


@pytest.fixture
def ucloud_config(local_server: Any) -> dict[str, Any]:
    return {
        "host": local_server.url,
        "credentials_file": str(local_server.data_dir / "refresh_token"),
        "max_shells_per_user": 2,
    }


async def test_per_user_limit(api: Api) -> None:
    job_id = await api.start_job()
    first = await api.open_shell(job_id)
    await api.open_shell(job_id)
    status, error = await api.error("POST", "shells", body={"jobId": job_id, "rank": 0})
    assert status == 429
    assert "max_shells_per_user" in error["message"]
    await api.call("DELETE", "shells", first["name"])
    await api.open_shell(job_id)  # room again
    await api.terminate(job_id)
