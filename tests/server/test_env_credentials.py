"""Tokens given by environment (UCLOUD_REFRESH_TOKEN, UCLOUD_API_TOKEN) are used by the extension
and taken out of the server's environment: no kernel or terminal it starts inherits them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_ucloud.server.app import CREDENTIAL_ENV

from .conftest import Api

COMMAND = [sys.executable, "-m", "jupyter_ucloud", "local"]


def _create_api_token(data_dir: Path) -> str:
    created = subprocess.run(
        [*COMMAND, "--data-dir", str(data_dir), "--create-api-token", "env test"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return created.stdout.strip()


@pytest.fixture(params=CREDENTIAL_ENV)
def env_token(
    request: pytest.FixtureRequest, local_server: Any, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A real token of the shared embedded server in one of the variables, set before the
    Jupyter server is made (monkeypatch restores the environment afterwards)."""
    if request.param == "UCLOUD_REFRESH_TOKEN":
        token = local_server.refresh_token
    else:
        token = _create_api_token(local_server.data_dir)
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(request.param, token)
    monkeypatch.setenv("UCLOUD_HOST", local_server.url)
    return token


@pytest.fixture
def ucloud_config(env_token: str) -> dict[str, Any]:
    """Nothing but timeouts: host and token come from the environment."""
    return {"request_timeout": 10.0}


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


async def _terminal_output(jp_ws_fetch: Any, name: str, command: str, until: str) -> str:
    ws = await jp_ws_fetch("terminals", "websocket", name)
    output = ""
    try:
        await ws.write_message(json.dumps(["stdin", command + "\r"]))
        deadline = time.monotonic() + 30
        while until not in output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, output[-2000:]
            message = await asyncio.wait_for(ws.read_message(), remaining)
            assert message is not None, output[-2000:]
            frame = json.loads(message)
            if frame[0] == "stdout":
                output += frame[1]
    finally:
        ws.close()
    return output


KERNEL_CODE = """
import os
from jupyter_ucloud import UCloud
uc = UCloud()
print(uc.via_jupyter, len(uc.products()), sorted(k for k in os.environ if k.startswith("UCLOUD_")))
"""


async def _kernel_output(km: Any, code: str) -> str:
    client = km.client()
    client.start_channels()
    out: list[str] = []
    try:
        await client.wait_for_ready(timeout=60)
        reply = await client.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda msg: out.append(msg["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
    return "".join(out)


async def test_env_token_is_used_and_not_inherited(
    env_token: str, api: Api, jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any
) -> None:
    # The extension took the token out of the server's environment, and still uses it.
    # (Assertions compare booleans: a failure must not print the token.)
    assert [name for name in CREDENTIAL_ENV if name in os.environ] == []
    assert not any(env_token in value for value in os.environ.values())
    assert os.environ["UCLOUD_HOST"]  # not a secret: it stays
    status = await api.call("GET", "api", "status")
    assert (status["mode"], status["ok"], status["error"]) == ("remote", True, None)
    assert await api.product("compute-example")

    canary = env_token.encode()
    kernel = json.loads(
        (await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))).body
    )
    terminal = json.loads((await jp_fetch("api", "terminals", method="POST", body="{}")).body)
    try:
        km = jp_serverapp.kernel_manager.get_kernel(kernel["id"])
        kernel_pid = km.provisioner.process.pid
        terminal_pid = (
            jp_serverapp.web_app.settings["terminal_manager"]
            .get_terminal(terminal["name"])
            .ptyproc.pid
        )
        for what, pid in (("kernel", kernel_pid), ("terminal", terminal_pid)):
            environ = _environ(pid)
            assert b"JUPYTER_RUNTIME_DIR=" in environ  # it is the environment we think it is
            assert (canary in environ) is False, f"the {what}'s environment holds the token"
            for name in CREDENTIAL_ENV:
                assert f"{name}=".encode() not in environ, what

        # The kernel finds its server (UCLOUD_HOST is still set, the token is not) and works
        # through its proxy.
        output = await _kernel_output(km, KERNEL_CODE)
        assert "True 3 ['UCLOUD_HOST']" in output, output
        assert (env_token in output) is False

        output = await _terminal_output(
            jp_ws_fetch, terminal["name"], "env; echo env-$((20+22))-done", "env-42-done"
        )
        assert "JUPYTER_RUNTIME_DIR=" in output
        assert (env_token in output) is False, "`env` in the terminal printed the token"
        assert [name for name in CREDENTIAL_ENV if f"{name}=" in output] == []
    finally:
        await jp_fetch("api", "kernels", kernel["id"], method="DELETE")
        await jp_fetch("api", "terminals", terminal["name"], method="DELETE")
