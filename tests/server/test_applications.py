"""``GET /ucloud/api/applications``: the start-job dialog's applications with their parameters."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_ucloud.server.upstream import _app_item

SHELL = {
    "type": "enumeration",
    "name": "shell",
    "optional": True,
    "defaultValue": {"type": "text", "value": "/bin/bash"},
    "title": "Shell",
    "description": "The shell that runs the command.",
    "options": [{"name": "bash", "value": "/bin/bash"}, {"name": "sh", "value": "/bin/sh"}],
}
COMMAND = {
    "type": "text",
    "name": "command",
    "optional": False,
    "defaultValue": None,
    "title": "Command to run",
    "description": "",
}


@pytest.fixture
def ucloud_config(local_server: Any) -> dict[str, Any]:
    return {
        "host": local_server.url,
        "credentials_file": str(local_server.data_dir / "refresh_token"),
        "applications": [
            # Flat, as one writes it in jupyter_server_config.py ...
            {
                "name": "batch",
                "version": "1",
                "title": "Batch command",
                "parameters": [COMMAND, {**SHELL, "unknown": 1}, {"type": "text"}],
            },
            # ... or as UCloud's apps/browse lists it.
            {
                "metadata": {"name": "terminal", "version": "1", "title": "Terminal"},
                "invocation": {"applicationType": "BATCH", "parameters": [], "tool": {}},
            },
        ],
    }


async def test_remote_applications_carry_their_parameters(api: Any) -> None:
    items = (await api.call("GET", "api", "applications"))["items"]
    assert items == [
        {
            "name": "batch",
            "version": "1",
            "title": "Batch command",
            "description": None,
            "applicationType": None,
            "parameters": [COMMAND, SHELL],  # unknown keys and nameless parameters left out
        },
        {
            "name": "terminal",
            "version": "1",
            "title": "Terminal",
            "description": None,
            "applicationType": "BATCH",
            "parameters": [],
        },
    ]


def test_the_embedded_servers_listing_is_flattened() -> None:
    item = {
        "metadata": {"name": "batch", "version": "1", "title": "Batch", "description": "d"},
        "invocation": {"applicationType": "BATCH", "parameters": [COMMAND, SHELL], "tool": {}},
    }
    assert _app_item(item) == {
        "name": "batch",
        "version": "1",
        "title": "Batch",
        "description": "d",
        "applicationType": "BATCH",
        "parameters": [COMMAND, SHELL],
    }
