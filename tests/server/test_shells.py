"""Shell sessions over REST: open, list, inspect, close, and every way to ask wrongly."""

from __future__ import annotations

from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from .conftest import Api


async def test_open_list_get_delete_keeps_the_job_running(api: Api, connect) -> None:
    job_id = await api.start_job()
    shell = await api.open_shell(job_id, cols=100, rows=30)
    assert shell["name"].startswith(f"ucloud-{job_id}-0-")
    assert shell["jobId"] == job_id
    assert shell["rank"] == 0
    assert shell["state"] == "open"
    assert shell["clients"] == 0
    assert set(shell) >= {"reason", "message", "createdAt", "lastActivity", "jobState"}

    listed = await api.call("GET", "shells")
    assert shell["name"] in [s["name"] for s in listed]
    term = await connect(shell["name"])
    await term.run("echo $((6*7))x")
    await term.wait_for_text("42x")
    one = await api.call("GET", "shells", shell["name"])
    assert one["clients"] == 1

    assert await api.call("DELETE", "shells", shell["name"]) is None
    await term.until_closed()
    assert term.frames[-1][:2] == ["disconnect", "closed"]
    assert term.ws.close_code == 1000
    status, _ = await api.error("GET", "shells", shell["name"])
    assert status == 404
    job = await api.call("GET", "api", "jobs", "retrieve", id=job_id)
    assert job["status"]["state"] == "RUNNING"  # closing a shell never stops the job
    await api.terminate(job_id)


async def test_rank_out_of_range_and_other_ranks(api: Api, connect) -> None:
    job_id = await api.start_job(product="compute-multi", replicas=2)
    status, error = await api.error("POST", "shells", body={"jobId": job_id, "rank": 2})
    assert status == 400
    assert "out of range" in error["message"]
    assert "2 ranks" in error["message"]
    shell = await api.open_shell(job_id, rank=1)
    term = await connect(shell["name"])
    await term.run("echo rank-$((1+1))-ok")
    await term.wait_for_text("rank-2-ok")
    term.close()
    await api.terminate(job_id)


async def test_job_not_running_or_ended(api: Api) -> None:
    job_id = await api.start_job()
    await api.terminate(job_id)
    await api.wait_state(job_id, "SUCCESS")
    status, error = await api.error("POST", "shells", body={"jobId": job_id, "rank": 0})
    assert status == 409
    assert "The job has completed." in error["message"]


async def test_product_without_terminal_passes_ucloud_why(api: Api) -> None:
    job_id = await api.start_job(product="batch-small")
    status, error = await api.error("POST", "shells", body={"jobId": job_id, "rank": 0})
    assert status == 400
    assert "terminal" in error["why"].lower()
    await api.terminate(job_id)


async def test_unknown_job(api: Api) -> None:
    status, error = await api.error("POST", "shells", body={"jobId": "987654", "rank": 0})
    assert status in (403, 404)
    assert error["why"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ({"rank": 0}, "jobId"),
        ({"jobId": 12, "rank": 0}, "jobId"),
        ({"jobId": "1", "rank": "0"}, "rank"),
        ({"jobId": "1", "rank": True}, "rank"),
        ({"jobId": "1", "rank": -1}, "rank"),
        ({"jobId": "1", "rank": 0, "cols": 0}, "cols"),
        ({"jobId": "1", "rank": 0, "rows": 10**6}, "rows"),
        ({"jobId": "", "rank": 0}, "jobId"),
        ({"jobId": "1", "rank": 0, "surprise": 1}, "surprise"),
    ],
)
async def test_bad_shell_requests(api: Api, body: Any, needle: str) -> None:
    status, error = await api.error("POST", "shells", body=body)
    assert status == 400, error
    assert needle.lower() in error["message"].lower()


async def test_huge_body_is_413(api: Api) -> None:
    status, _error = await api.error("POST", "shells", body='{"jobId": "' + "1" * 2_000_000 + '"}')
    assert status == 413


async def test_unknown_shell_names(api: Api, connect) -> None:
    for method in ("GET", "DELETE"):
        status, error = await api.error(method, "shells", "ucloud-nope-0-00000000")
        assert status == 404
        assert "No shell named" in error["message"]
    with pytest.raises(HTTPClientError) as info:
        await connect("ucloud-nope-0-00000000")
    assert info.value.code == 404


async def test_bad_since(api: Api, connect) -> None:
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    for since in ("abc", "-1", "999999999"):
        with pytest.raises(HTTPClientError) as info:
            await connect(shell["name"], since=since)  # type: ignore[arg-type]
        assert info.value.code == 400
    await api.call("DELETE", "shells", shell["name"])
    await api.terminate(job_id)


async def test_a_new_shell_can_replace_an_old_one(api: Api, connect) -> None:
    job_id = await api.start_job()
    old = await api.open_shell(job_id)
    term = await connect(old["name"])
    new = await api.open_shell(job_id, replaces=old["name"])
    assert new["replaces"] == old["name"]
    assert new["name"] != old["name"]
    await term.until_closed()
    assert term.frames[-1][:2] == ["disconnect", "closed"]
    assert new["name"] in term.frames[-1][2]
    status, _ = await api.error("GET", "shells", old["name"])
    assert status == 404
    status, _error = await api.error(
        "POST", "shells", body={"jobId": job_id, "rank": 0, "replaces": "ucloud-x-0-00000000"}
    )
    assert status == 404
    await api.terminate(job_id)


async def test_provider_refusal_reaches_the_caller(api: Api, local_server) -> None:
    """The provider cannot start the shell: POST answers 502 with the provider's reason."""
    job_id = await api.start_job()
    rank_dir = local_server.data_dir / "jobs" / job_id / "rank-0"
    moved = rank_dir.with_name("rank-0.moved")
    rank_dir.rename(moved)
    rank_dir.write_text("not a directory\n")
    try:
        status, error = await api.error("POST", "shells", body={"jobId": job_id, "rank": 0})
    finally:
        rank_dir.unlink()
        moved.rename(rank_dir)
    assert status == 502
    assert error["message"].startswith(
        "The provider closed the shell before it was ready: Cannot open a shell: File exists ("
    )
    await api.terminate(job_id)
