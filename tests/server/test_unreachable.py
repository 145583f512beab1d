"""An unreachable UCloud is a 503 with a clear message, never a 500 or a hang."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from .conftest import Api


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ucloud_config() -> dict[str, Any]:
    return {
        "host": f"http://127.0.0.1:{_free_port()}",
        "refresh_token": "0123456789abcdef" * 4,
        "request_timeout": 3.0,
    }


async def test_unreachable_ucloud(api: Api) -> None:
    status, error = await api.error("GET", "api", "jobs", "retrieveProducts")
    assert status == 503
    assert "unreachable" in error["message"]
    assert "0123456789abcdef" not in str(error)
    answer = await api.call("GET", "api", "status")
    assert answer["ok"] is False
    assert "unreachable" in answer["error"]
    status, error = await api.error("POST", "shells", body={"jobId": "1", "rank": 0})
    assert status == 503
