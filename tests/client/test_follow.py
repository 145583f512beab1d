"""``uc.jobs.follow`` (sync and async, directly and through a real Jupyter server) and the
``JobHandle`` conveniences on it: ``logs``, ``follow``, ``wait_until``."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import threading
import time
from typing import Any

import pytest
from traitlets.config import Config

from jupyter_ucloud import AsyncUCloud, UCloud
from jupyter_ucloud.client import UCloudError
from jupyter_ucloud.client.follow import FollowRefused, JobFollower
from jupyter_ucloud.client.follow_protocol import (
    DirectFollowCodec,
    JupyterFollowCodec,
    LogLines,
    merge,
)
from jupyter_ucloud.protocol import Job, JobsFollowMessage, JobState, JobUpdate

TWO_RANKS = (
    'for i in 1 2; do echo "out-$UCLOUD_RANK-$i"; echo "err-$UCLOUD_RANK-$i" >&2; sleep 0.2; done'
)


def batch(make_spec: Any, command: str, replicas: int = 2, product: str = "compute-multi") -> Any:
    return make_spec(
        product=product,
        application="batch",
        replicas=replicas,
        parameters={"command": {"type": "text", "value": command}},
    )


def _text(messages: list[JobsFollowMessage], rank: int, stream: str = "stdout") -> str:
    return "".join(getattr(e, stream) or "" for m in messages for e in m.log if e.rank == rank)


def _check_two_ranks(messages: list[JobsFollowMessage], follower: Any) -> None:
    assert messages[0].initial_job is not None
    assert all(m.initial_job is None for m in messages[1:])
    for rank in (0, 1):
        assert _text(messages, rank) == f"out-{rank}-1\nout-{rank}-2\n"
        assert _text(messages, rank, "stderr") == f"err-{rank}-1\nerr-{rank}-2\n"
    assert follower.job is not None
    assert follower.job.state is JobState.SUCCESS
    assert follower.ended
    assert follower.closed
    assert follower.close_code == 1000


def test_sync_follow(uc: UCloud, make_spec: Any) -> None:
    job_id = uc.jobs.create(batch(make_spec, TWO_RANKS))
    with uc.jobs.follow(job_id) as follower:
        assert isinstance(follower, JobFollower)
        assert follower.job is not None  # the job is there as soon as follow() returns
        assert follower.job.id == job_id
        messages = list(follower)
    _check_two_ranks(messages, follower)
    # the job's updates as retrieve has them, none twice
    assert [u.timestamp for u in follower.job.updates] == [  # type: ignore[union-attr]
        u.timestamp for u in uc.jobs.retrieve(job_id).updates
    ]


async def test_async_follow(local_server: Any, make_spec: Any) -> None:
    uc = AsyncUCloud(host=local_server.url, refresh_token=local_server.refresh_token, timeout=15)
    job_id = await uc.jobs.create(batch(make_spec, TWO_RANKS))
    async with await uc.jobs.follow(job_id) as follower:
        messages = [message async for message in follower]
    _check_two_ranks(messages, follower)


def test_refused_follow_is_retried_once_with_a_new_token(uc: UCloud) -> None:
    uc.products()  # a token now
    auth = uc._exchange.auth
    before = auth.refresh_count  # type: ignore[attr-defined]
    with pytest.raises(FollowRefused) as caught:
        uc.jobs.follow("987654321")
    assert caught.value.job_id == "987654321"
    assert "does not exist" in caught.value.why
    assert auth.refresh_count == before + 1  # type: ignore[attr-defined]
    assert uc.secrets()[0] not in str(caught.value)


def test_read_times_out_without_losing_messages(uc: UCloud, make_spec: Any) -> None:
    job_id = uc.jobs.create(batch(make_spec, "sleep 1.5; echo late", replicas=1))
    with uc.jobs.follow(job_id) as follower:
        first = follower.read(timeout=5)
        assert first is not None
        assert first.initial_job is not None
        assert follower.read(timeout=0.05) is None  # nothing yet
        assert not follower.closed
        rest = list(follower)
    assert _text(rest, 0) == "late\n"


# --- conveniences -------------------------------------------------------------------------------


def test_logs_of_one_and_of_several_ranks(uc: UCloud, make_spec: Any) -> None:
    job = uc.job(uc.jobs.create(batch(make_spec, TWO_RANKS)))
    job.wait_until("SUCCESS", timeout=60, progress=False)
    everything = job.logs()
    lines = everything.splitlines()
    assert sorted(lines) == sorted(
        f"[rank {r}] {kind}-{r}-{i}" for r in (0, 1) for kind in ("out", "err") for i in (1, 2)
    )
    assert sorted(job.logs(rank=1).splitlines()) == ["err-1-1", "err-1-2", "out-1-1", "out-1-2"]
    assert job.logs(rank=1, stream="stdout") == "out-1-1\nout-1-2\n"
    assert job.logs(rank=0, stream="stderr") == "err-0-1\nerr-0-2\n"


def test_logs_of_a_running_job_return_once_quiet(uc: UCloud, make_spec: Any) -> None:
    job = uc.job(uc.jobs.create(batch(make_spec, "echo so-far; sleep 1000", replicas=1)))
    try:
        job.wait_until("RUNNING", timeout=60, progress=False)
        deadline = time.monotonic() + 30
        text = ""
        while "so-far" not in text and time.monotonic() < deadline:
            text = job.logs(quiet=0.3)
        assert text == "so-far\n"
    finally:
        job.terminate()


def test_follow_prints_each_rank_and_stream(uc: UCloud, make_spec: Any) -> None:
    job = uc.job(uc.jobs.create(batch(make_spec, TWO_RANKS)))
    out, err = io.StringIO(), io.StringIO()
    assert job.follow(stdout=out, stderr=err) is job
    printed = out.getvalue().splitlines()
    assert f"job {job.id}: SUCCESS (The job has completed)" in printed
    output = [line for line in printed if line.startswith("[rank")]
    assert sorted(output) == [f"[rank {r}] out-{r}-{i}" for r in (0, 1) for i in (1, 2)]
    assert sorted(err.getvalue().splitlines()) == [
        f"[rank {r}] err-{r}-{i}" for r in (0, 1) for i in (1, 2)
    ]
    assert job.job.state is JobState.SUCCESS


def test_follow_of_one_rank_passes_text_through(uc: UCloud, make_spec: Any) -> None:
    job = uc.job(uc.jobs.create(batch(make_spec, "printf 'no newline'; echo e >&2", 1)))
    out, err = io.StringIO(), io.StringIO()
    job.follow(stdout=out, stderr=err, progress=False)
    assert out.getvalue() == "no newline"
    assert err.getvalue() == "e\n"


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="needs the main thread"
)
def test_follow_stops_on_keyboard_interrupt(uc: UCloud, make_spec: Any) -> None:
    job = uc.job(uc.jobs.create(batch(make_spec, "echo started; sleep 1000", replicas=1)))
    try:
        job.wait_until("RUNNING", timeout=60, progress=False)
        out = io.StringIO()
        timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        job.follow(stdout=out, stderr=io.StringIO())
        timer.join()
        assert time.monotonic() - started < 30
        assert "started\n" in out.getvalue()
        assert f"[stopped following job {job.id}; the job goes on]" in out.getvalue()
        assert job.state is JobState.RUNNING
    finally:
        job.terminate()


def test_wait_until_follows_instead_of_polling(
    uc: UCloud, make_spec: Any, local_server: Any
) -> None:
    log_file = local_server.log_file
    spec = make_spec(name="wait by follow")
    job_id = uc.jobs.create(spec)
    before = log_file.read_text().count("GET /api/jobs/retrieve ")
    job = uc.job(job_id)
    job.wait_until("RUNNING", timeout=60, progress=False)
    assert job.job.state is JobState.RUNNING
    uc.jobs.terminate(job_id)
    seen: list[str] = []
    job.wait_until("SUCCESS", timeout=60, progress=lambda j: seen.append(j.state.value))
    assert seen[-1] == "SUCCESS"
    assert log_file.read_text().count("GET /api/jobs/retrieve ") == before  # no polling
    with pytest.raises(UCloudError, match="ended as SUCCESS while waiting for RUNNING"):
        job.wait_until("RUNNING", timeout=10, progress=False)


# --- through a real Jupyter server --------------------------------------------------------------


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
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}", jp_serverapp.identity_provider.token


async def test_follow_through_the_jupyter_server(
    jupyter: tuple[str, str], make_spec: Any, local_server: Any
) -> None:
    url, token = jupyter
    uc = AsyncUCloud(jupyter_url=url, jupyter_token=token, timeout=20)
    job_id = await uc.jobs.create(batch(make_spec, TWO_RANKS))
    async with await uc.jobs.follow(job_id) as follower:
        messages = [message async for message in follower]
    _check_two_ranks(messages, follower)

    def sync_side() -> tuple[str, str]:
        sync_uc = UCloud(jupyter_url=url, jupyter_token=token, timeout=20)
        job = sync_uc.job(job_id)
        with sync_uc.jobs.follow(job_id) as again:
            assert again.job is not None
            assert again.job.state is JobState.SUCCESS
        return job.logs(rank=0, stream="stdout"), job.logs(rank=1, stream="stderr")

    assert await asyncio.to_thread(sync_side) == ("out-0-1\nout-0-2\n", "err-1-1\nerr-1-2\n")
    with pytest.raises(UCloudError) as caught:
        await uc.jobs.follow("987654321")
    assert caught.value.status == 404
    assert "does not exist" in caught.value.why


async def test_start_and_wait_through_the_jupyter_server(
    jupyter: tuple[str, str], make_spec: Any
) -> None:
    url, token = jupyter

    def sync_side() -> str:
        sync_uc = UCloud(jupyter_url=url, jupyter_token=token, timeout=20)
        job = sync_uc.start("terminal", "1", product="compute-example", wait=True, progress=False)
        state = job.job.state.value
        job.terminate()
        job.wait_until("SUCCESS", timeout=60, progress=False)
        return state + " " + job.job.state.value

    assert await asyncio.to_thread(sync_side) == "RUNNING SUCCESS"


# --- without I/O --------------------------------------------------------------------------------


def test_codecs_drop_what_has_no_content(example_job: Job) -> None:
    direct = DirectFollowCodec("4242", "secret-token", None)
    (opening,) = direct.opening_frames()
    assert '"bearer": "secret-token"' in opening
    ping = (
        '{"type":"message","streamId":"0","payload":{"updates":[],"log":'
        '[{"rank":0,"stdout":null,"stderr":null,"channel":null}],"newStatus":null,'
        '"initialJob":null}}'
    )
    assert direct.decode(ping) is None
    assert direct.decode('{"type":"response","status":200}') is None
    mixed = ping.replace('"log":[', '"log":[{"rank":1,"stdout":"x","stderr":null,"channel":null},')
    decoded = direct.decode(mixed)
    assert decoded is not None
    assert [e.stdout for e in decoded.log] == ["x"]
    relay = JupyterFollowCodec("4242")
    with pytest.raises(UCloudError, match="upstream went away"):
        relay.decode('{"error": "upstream went away"}')


@pytest.fixture
def example_job() -> Job:
    from tests.protocol.conftest import load_example

    return Job.model_validate(load_example("core_job"))


def test_merge_applies_updates_status_and_extensions(example_job: Job) -> None:
    job = merge(None, JobsFollowMessage(initial_job=example_job))
    assert job is example_job
    started = job.status.started_at
    assert started is not None
    extended = merge(
        job,
        JobsFollowMessage(updates=[JobUpdate(new_time_allocation=7_200_000, timestamp=5)]),
    )
    assert extended is not None
    assert extended.specification.time_allocation is not None
    assert extended.specification.time_allocation.hours == 2
    assert extended.status.expires_at == started + 7_200_000
    assert job.status.expires_at != extended.status.expires_at  # a copy
    status = job.status.model_copy(update={"state": JobState.SUCCESS})
    ended = merge(
        extended,
        JobsFollowMessage(
            updates=[JobUpdate(state=JobState.SUCCESS, timestamp=6)], new_status=status
        ),
    )
    assert ended is not None
    assert ended.state is JobState.SUCCESS
    assert len(ended.updates) == len(job.updates) + 2


def test_log_lines_prefix_whole_lines() -> None:
    lines = LogLines(prefix=True)
    assert lines.feed(0, "stdout", "a\nb") == "[rank 0] a\n"
    assert lines.feed(1, "stdout", "c\n") == "[rank 1] c\n"
    assert lines.feed(0, "stdout", "c\nd") == "[rank 0] bc\n"
    assert lines.flush() == [("stdout", "[rank 0] d\n")]
    plain = LogLines(prefix=False)
    assert plain.feed(3, "stderr", "as it came") == "as it came"
