"""The client through a real Jupyter server: the extension's ``/ucloud`` proxy and terminado
bridge (the kernel's path, holding no UCloud token), and the stock Jupyter terminal socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from traitlets.config import Config

from jupyter_ucloud import AsyncUCloud, UCloud
from jupyter_ucloud.client import AsyncShell, Shell, UCloudError
from jupyter_ucloud.client.discovery import resolve
from jupyter_ucloud.client.shell_protocol import TerminadoShellCodec
from jupyter_ucloud.protocol import JobState


@pytest.fixture
def jp_server_config(local_server: Any) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"jupyter_ucloud": True}},
            "UCloud": {
                "host": local_server.url,
                "refresh_token": local_server.refresh_token,
                "freeze_startup_heap": False,  # in the test process: see tests/server/conftest
            },
        }
    )


@pytest.fixture
def jupyter(
    jp_serverapp: Any, jp_http_port: int, jp_base_url: str, jp_fetch: Any
) -> tuple[str, str]:
    """URL and token of a real Jupyter server with the extension (``jp_fetch`` makes
    pytest-jupyter serve its HTTP port)."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}", jp_serverapp.identity_provider.token


async def wait_running(uc: AsyncUCloud, job_id: str) -> None:
    for _ in range(150):
        if (await uc.jobs.retrieve(job_id)).state == JobState.RUNNING:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not start")


async def test_async_client_through_the_jupyter_proxy(
    jupyter: tuple[str, str], local_server: Any, make_spec: Any
) -> None:
    url, token = jupyter
    uc = AsyncUCloud(jupyter_url=url, jupyter_token=token, timeout=20)
    assert uc.via_jupyter
    assert repr(uc) == f"AsyncUCloud(jupyter={url.rstrip('/')!r})"
    assert uc.secrets() == [token]  # the only credential the kernel side holds
    products = await uc.jobs.retrieve_products()
    assert any(item.product.name == "compute-example" for item in products.all())
    job_id = await uc.jobs.create(make_spec(name="via jupyter"))
    try:
        await wait_running(uc, job_id)
        (local_server.data_dir / "jobs" / job_id / "rank-0" / "hello_world.txt").write_text("")
        with pytest.raises(UCloudError, match="not handed out through the Jupyter server"):
            await uc.jobs.open_interactive_session(job_id, 0, "SHELL")
        async with await uc.shells.open_job(job_id, 0, cols=80, rows=24) as shell:
            assert isinstance(shell, AsyncShell)
            result = await shell.run("ls -1; stty size")
            assert result.output == "hello_world.txt\n24 80\n"
            await shell.resize(90, 30)
            assert (await shell.run("stty size")).output == "30 90\n"
            assert (await shell.run("(exit 5)")).exit_status == 5
        # Closing the shell deleted it on the server.
        sync_uc = UCloud(jupyter_url=url, jupyter_token=token, timeout=20)

        def sync_side() -> tuple[str, int]:
            with sync_uc.shells.open_job(job_id, 0) as sync_shell:
                assert isinstance(sync_shell, Shell)
                done = sync_shell.run("echo $UCLOUD_JOB_ID")
            listed = sync_uc.jobs.list(state="RUNNING")
            assert job_id in [j.id for j in listed]
            return done.output, done.exit_status

        assert await asyncio.to_thread(sync_side) == (f"{job_id}\n", 0)
        with pytest.raises(UCloudError) as caught:
            await uc.shells.open_job(job_id, 9)
        assert caught.value.status == 400
        assert "Rank 9 is out of range" in caught.value.why
    finally:
        await uc.jobs.terminate(job_id)
    with pytest.raises(UCloudError) as caught:
        await AsyncUCloud(jupyter_url=url, jupyter_token="wrong", timeout=5).jobs.browse()
    assert caught.value.status == 403


async def test_kernel_discovery_finds_the_server_by_env(
    jupyter: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = jupyter
    for name in ("UCLOUD_HOST", "UCLOUD_REFRESH_TOKEN", "UCLOUD_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_UCLOUD_SERVER_URL", url)
    monkeypatch.setenv("JUPYTER_UCLOUD_SERVER_TOKEN", token)
    uc = AsyncUCloud()
    assert uc.via_jupyter
    status = await uc.call(_status())
    assert status["ok"] is True
    assert resolve().source == "JUPYTER_UCLOUD_SERVER_URL"


def _status() -> Any:
    from jupyter_ucloud.client.prepare import proxy_status

    return proxy_status()


async def test_shells_speak_the_stock_jupyter_terminal_protocol(
    jupyter: tuple[str, str], jp_fetch: Any
) -> None:
    """``TerminadoShellCodec`` with a stock ``jupyter_server_terminals`` terminal: real PTY."""
    url, token = jupyter
    created = await jp_fetch("api", "terminals", method="POST", body="{}")
    name = json.loads(created.body)["name"]
    ws_url = url.replace("http", "ws", 1).rstrip("/") + f"/terminals/websocket/{name}"
    shell = await AsyncShell.connect(
        ws_url,
        TerminadoShellCodec(),
        job_id="stock",
        rank=0,
        headers={"Authorization": f"token {token}"},
        timeout=10,
    )
    async with shell:
        result = await shell.run("printf '\\033[32mgreen\\033[0m\\n'; (exit 7)")
        assert (result.output, result.exit_status) == ("green\n", 7)
        await shell.send("exit\n")
        rest = [chunk async for chunk in shell]
        assert shell.closed
        assert shell.close_reason in ("1", "code 1000")
        assert isinstance(rest, list)
    await jp_fetch("api", "terminals", name, method="DELETE", raise_error=False)
