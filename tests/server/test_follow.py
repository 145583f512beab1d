"""The job follow websocket of the extension (``/ucloud/api/jobs/follow?id=``) in a real Jupyter
server, relaying the embedded server's ``jobs.follow``: frames, history for late tabs, one
upstream per job, the end, upstream failures, slow tabs, and what never reaches the browser."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import psutil
import pytest
from tornado.httpclient import HTTPClientError

from jupyter_ucloud.protocol import JobState
from jupyter_ucloud.server.follow_hub import SKIPPED_NOTE, FollowHub

from .conftest import Api
from .follow_tab import Open, Tab

MB = 1024 * 1024


def hub_of(jp_serverapp: Any) -> FollowHub:
    return jp_serverapp.web_app.settings["ucloud_follow"]  # type: ignore[no-any-return]


def batch_params(command: str) -> dict[str, Any]:
    return {"command": {"type": "text", "value": command}}


TWO_RANKS = (
    'for i in 1 2 3; do echo "out-$UCLOUD_RANK-$i"; echo "err-$UCLOUD_RANK-$i" >&2; sleep 0.2; done'
)


async def test_a_batch_job_end_to_end(api: Api, open_tab: Open, local_server: Any) -> None:
    job_id = await api.start_job("compute-multi", 2, "batch", batch_params(TWO_RANKS), wait=False)
    tab = await open_tab(job_id)
    await tab.until_closed()
    assert tab.close_code == 1000
    assert tab.error is None
    first = tab.messages[0]
    assert first.initial_job is not None
    assert first.initial_job.id == job_id
    assert first.initial_job.status.resolved_support is not None
    assert [m for m in tab.messages if m.initial_job is not None] == [first]
    for rank in (0, 1):
        assert tab.text(rank) == "".join(f"out-{rank}-{i}\n" for i in (1, 2, 3))
        assert tab.text(rank, "stderr") == "".join(f"err-{rank}-{i}\n" for i in (1, 2, 3))
    last = tab.messages[-1]
    assert last.new_status is not None
    assert last.new_status.state is JobState.SUCCESS
    assert not last.log
    assert not last.updates
    # no envelope, and nothing of the server's credentials
    everything = "".join(tab.raw)
    assert '"streamId"' not in everything
    assert local_server.refresh_token not in everything
    assert "eyJ" not in everything  # no JWT
    assert "bearer" not in everything.lower()


async def test_tabs_share_one_upstream_and_late_tabs_get_the_history(
    api: Api, open_tab: Open, jp_serverapp: Any
) -> None:
    command = "echo early-1; echo early-2 >&2; sleep 1000"
    job_id = await api.start_job("batch-small", 1, "batch", batch_params(command))
    first = await open_tab(job_id)
    await first.until(lambda t: "early-1" in t.text(0) and "early-2" in t.text(0, "stderr"))
    second = await open_tab(job_id)
    await second.until(lambda t: "early-1" in t.text(0) and "early-2" in t.text(0, "stderr"))
    hub = hub_of(jp_serverapp)
    stream = hub.streams[job_id]
    assert len(stream.followers) == 2  # two tabs, one upstream stream
    initial = second.messages[0].initial_job
    assert initial is not None
    assert initial.state is JobState.RUNNING
    assert [u.state for u in initial.updates if u.state] == [JobState.IN_QUEUE, JobState.RUNNING]

    await api.terminate(job_id)
    for tab in (first, second):
        await tab.until_closed()
        assert tab.close_code == 1000
        assert tab.states()[-1] is JobState.SUCCESS
        assert tab.text(0) == "early-1\n"
    # The ending update came at once, as updates do; the last frame repeats the final status.
    for tab in (first, second):
        ending = [m for m in tab.messages if m.updates and m.updates[-1].state is JobState.SUCCESS]
        assert len(ending) == 1
        assert ending[0].new_status is not None
        last = tab.messages[-1]
        assert last.updates == []
        assert last.new_status is not None
        assert last.new_status.state is JobState.SUCCESS

    # A tab that comes after the end (the stream lingers) gets the history, then the end.
    late = await open_tab(job_id)
    await late.until_closed()
    assert late.close_code == 1000
    assert late.messages[0].initial_job is not None
    assert late.messages[0].initial_job.state is JobState.SUCCESS
    assert late.text(0) == "early-1\n"
    assert late.messages[-1].new_status is not None
    assert late.messages[-1].updates == []


async def test_a_status_only_tab_gets_the_states_and_no_output(
    api: Api, open_tab: Open, jp_ws_fetch: Any
) -> None:
    command = "echo status-1; echo status-2 >&2; sleep 1000"
    job_id = await api.start_job("batch-small", 1, "batch", batch_params(command))
    with_logs = await open_tab(job_id)
    await with_logs.until(lambda t: "status-1" in t.text(0) and "status-2" in t.text(0, "stderr"))
    ws = await jp_ws_fetch("ucloud", "api", "jobs", "follow", params={"id": job_id, "logs": "0"})
    status_only = Tab(ws)
    await status_only.until(lambda t: bool(t.messages))
    initial = status_only.messages[0].initial_job
    assert initial is not None
    assert initial.state is JobState.RUNNING
    await api.terminate(job_id)
    await status_only.until_closed()
    assert status_only.close_code == 1000
    assert status_only.states()[-1] is JobState.SUCCESS
    assert all(not m.log for m in status_only.messages)
    assert status_only.chars == 0
    await with_logs.until_closed()
    assert with_logs.text(0) == "status-1\n"

    with pytest.raises(HTTPClientError) as info:
        await jp_ws_fetch("ucloud", "api", "jobs", "follow", params={"id": job_id, "logs": "2"})
    assert info.value.code == 400


async def test_bad_and_unknown_jobs_are_refused_before_the_upgrade(open_tab: Open) -> None:
    for job_id, code in (("abc", 400), ("1" * 19, 400), ("", 400), ("999999999", 404)):
        with pytest.raises(HTTPClientError) as info:
            await open_tab(job_id)
        assert info.value.code == code, job_id
        assert info.value.response is not None
        message = json.loads(info.value.response.body)["message"]
        assert ("does not exist" if code == 404 else "must be a job id") in message


async def _read_output(ws: Any, size: int, timeout: float = 120.0) -> tuple[int, set[str]]:
    """Read log output until ``size`` characters came; how many, and which characters (the
    frames are not kept: the Jupyter server runs in this process, whose memory is measured)."""
    deadline = time.monotonic() + timeout
    count, seen = 0, set()
    while count < size:
        text = await asyncio.wait_for(ws.read_message(), deadline - time.monotonic())
        assert text is not None, "closed early"
        for entry in json.loads(text)["log"]:
            chunk = entry.get("stdout") or ""
            count += len(chunk)
            seen |= set(chunk)
    return count, seen


async def test_a_slow_tab_holds_nobody_back(api: Api, jp_ws_fetch: Any, local_server: Any) -> None:
    size = 24 * MB
    # Both tabs are there before the output starts; then one never reads.
    command = f"sleep 3; head -c {size} /dev/zero | tr '\\0' z; sleep 1000"
    job_id = await api.start_job("batch-small", 1, "batch", batch_params(command))
    stalled = await jp_ws_fetch("ucloud", "api", "jobs", "follow", params={"id": job_id})
    reader = await jp_ws_fetch("ucloud", "api", "jobs", "follow", params={"id": job_id})
    server = psutil.Process()  # the Jupyter server runs in the test process
    before = server.memory_info().rss
    # The stalled tab stops pacing (slow_client_timeout 1 s); the reader gets everything.
    count, seen = await _read_output(reader, size)
    assert count == size
    assert seen == {"z"}  # no note: nothing was skipped
    grown = server.memory_info().rss - before
    assert grown < 32 * MB, f"the Jupyter server grew by {grown / MB:.0f} MB"
    reader.close()
    # The stalled tab, reading at last, finds its gap marked.
    stalled_tab = Tab(stalled)
    await stalled_tab.until(lambda t: SKIPPED_NOTE in t.text(0), timeout=60)
    await api.terminate(job_id)
    await stalled_tab.until_closed()
    assert stalled_tab.close_code == 1000
