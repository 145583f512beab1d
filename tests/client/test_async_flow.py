"""The same flow with ``AsyncUCloud`` (tornado), as the server extension uses it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jupyter_ucloud import AsyncUCloud, UCloudError
from jupyter_ucloud.client import AsyncShell, ShellClosedError
from jupyter_ucloud.protocol import JobState


async def test_async_seed_flow(local_server: Any, make_spec: Any) -> None:
    uc = AsyncUCloud(host=local_server.url, refresh_token=local_server.refresh_token, timeout=15)
    products = await uc.jobs.retrieve_products()
    assert any(item.supports_terminal for item in products.all())
    job_id = await uc.jobs.create(make_spec(name="async flow"))
    try:
        for _ in range(150):
            job = await uc.jobs.retrieve(job_id)
            if job.state == JobState.RUNNING:
                break
            await asyncio.sleep(0.2)
        assert job.state == JobState.RUNNING
        workdir = local_server.data_dir / "jobs" / job_id / "rank-0"
        (workdir / "hello_world.txt").write_text("hi\n")
        session = await uc.jobs.open_interactive_session(job_id, 0, "SHELL")
        async with await uc.shells.open(session, cols=80, rows=24) as shell:
            assert isinstance(shell, AsyncShell)
            result = await shell.run("ls -1; stty size")
            assert result.output == "hello_world.txt\n24 80\n"
            await shell.resize(100, 30)
            assert (await shell.run("stty size")).output == "30 100\n"
            failed = await shell.run(
                "printf '\\033[1;31mred\\033[0m\\n'; exit_code() { return 4; }; exit_code"
            )
            assert (failed.output, failed.exit_status) == ("red\n", 4)
            await shell.send("exit\n")
            chunks = [chunk async for chunk in shell]  # ends when the shell closes
            assert shell.closed
            assert "exit" in "".join(chunks)
            with pytest.raises(ShellClosedError):
                await shell.send("ls\n")
        # open_job = openInteractiveSession + open
        async with await uc.shells.open_job(job_id, 0) as shell:
            assert (await shell.run("echo $UCLOUD_JOB_ID")).output == f"{job_id}\n"
        pages = [job async for job in uc.jobs.browse_all(items_per_page=1)]
        assert job_id in [job.id for job in pages]
    finally:
        await uc.jobs.terminate(job_id)
    with pytest.raises(UCloudError) as caught:
        await uc.jobs.terminate("999999999")
    assert caught.value.status == 404
    assert caught.value.call == "jobs.terminate"


async def test_async_connection_refused_is_clear() -> None:
    uc = AsyncUCloud(host="http://127.0.0.1:9", api_token="uc1-notreal", timeout=5)
    with pytest.raises(UCloudError) as caught:
        await uc.jobs.retrieve_products()
    assert type(caught.value).__name__ == "UCloudConnectionError"
    assert "cannot reach UCloud at http://127.0.0.1:9" in str(caught.value)
    assert "notreal" not in str(caught.value)
