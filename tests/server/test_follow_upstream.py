"""The job follow websocket when its upstream fails: the tabs are told, then closed (1011)."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from .conftest import Api
from .follow_tab import Open
from .test_follow import batch_params


@pytest.fixture
def ucloud_config(fresh_local_server: Any) -> dict[str, Any]:
    """An embedded server of this module's own: the test stops it."""
    return {
        "host": fresh_local_server.url,
        "credentials_file": str(fresh_local_server.data_dir / "refresh_token"),
        "slow_client_timeout": 1.0,
        "request_timeout": 10.0,
    }


async def test_upstream_failure_reaches_the_tabs(
    api: Api, open_tab: Open, fresh_local_server: Any
) -> None:
    job_id = await api.start_job("batch-small", 1, "batch", batch_params("sleep 1000"))
    tab = await open_tab(job_id)
    await tab.until(lambda t: bool(t.messages))
    fresh_local_server.stop(signal.SIGTERM)  # the embedded server goes; the job keeps running
    await tab.until_closed()
    assert tab.close_code == 1011
    assert tab.error is not None
    assert job_id in tab.error
    assert "ended before the job did" in tab.error
    fresh_local_server.start()
