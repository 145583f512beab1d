"""``jobs.follow`` on the embedded server, over a real websocket: the first frame, initialJob,
pushed updates and status, each rank's captured stdout/stderr (live and for late followers),
the close at the end, refusals without a message, UTF-8 chunks, and flow control."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psutil
import pytest
import requests
from websockets.sync.client import connect

from jupyter_ucloud.protocol import JobState

from ..conftest import LocalServerProcess
from .conftest import Api, api_for, assert_log_clean, product
from .follow_wire import Follow, follow_url

MB = 1024 * 1024


def batch(command: str, replicas: int = 1, product_name: str = "compute-multi") -> dict[str, Any]:
    return {
        "application": {"name": "batch", "version": "1"},
        "product": product(product_name),
        "replicas": replicas,
        "parameters": {"command": {"type": "text", "value": command}},
    }


TWO_RANKS = (
    'for i in 1 2 3; do echo "out-$UCLOUD_RANK-$i"; echo "err-$UCLOUD_RANK-$i" >&2; sleep 0.2; done'
)


def expected(kind: str, rank: int) -> str:
    return "".join(f"{kind}-{rank}-{i}\n" for i in (1, 2, 3))


def test_follow_a_batch_job_on_two_ranks(api: Api, local_server: LocalServerProcess) -> None:
    (job_id,) = api.create(batch(TWO_RANKS, replicas=2))
    follow = Follow.open(local_server.url, job_id, api.token, stream_id="s-7")
    follow.until_closed()
    assert follow.close_code == 1000

    first = follow.messages[0]
    assert first.initial_job is not None
    assert [m for m in follow.messages if m.initial_job is not None] == [first]
    job = first.initial_job
    assert job.id == job_id
    assert job.status.resolved_product is not None
    assert job.status.resolved_product.name == "compute-multi"
    assert job.status.resolved_support is not None
    assert job.status.resolved_support.supports_logs
    assert job.updates
    assert job.updates[0].state is JobState.IN_QUEUE

    for rank in (0, 1):
        assert follow.text(rank, "stdout") == expected("out", rank)
        assert follow.text(rank, "stderr") == expected("err", rank)
    for message in follow.messages[1:]:
        for entry in message.log:
            assert entry.channel is None
            assert (entry.stdout is None) != (entry.stderr is None)
    # Every state the job went through after initialJob, pushed with its update.
    states = follow.states()
    assert states[-1] is JobState.SUCCESS
    assert JobState.RUNNING in states or job.state is JobState.RUNNING
    status_messages = [m for m in follow.messages if m.new_status is not None]
    for message in status_messages:
        assert len(message.updates) == 1
        assert message.updates[0].state == message.new_status.state  # type: ignore[union-attr]
        assert message.new_status.resolved_support is not None  # type: ignore[union-attr]
    # The updates seen (initialJob's and pushed ones) are the job's updates, each once.
    seen = [u.timestamp for u in job.updates] + [
        u.timestamp for m in follow.messages[1:] for u in m.updates
    ]
    assert seen == [u.timestamp for u in api.retrieve(job_id).updates]

    # A follower that comes after the end gets the same output, then the close.
    late = Follow.open(local_server.url, job_id, api.token).until_closed()
    assert late.close_code == 1000
    assert late.messages[0].initial_job is not None
    assert late.messages[0].initial_job.state is JobState.SUCCESS
    assert late.states() == []
    for rank in (0, 1):
        assert late.text(rank, "stdout") == expected("out", rank)
        assert late.text(rank, "stderr") == expected("err", rank)


def test_output_arrives_while_the_job_runs(api: Api, local_server: LocalServerProcess) -> None:
    (job_id,) = api.create(batch("echo first; sleep 2; echo second", product_name="batch-small"))
    follow = Follow.open(local_server.url, job_id, api.token)
    follow.until(lambda m: any(e.stdout and "first" in e.stdout for e in m.log))
    assert JobState.SUCCESS not in follow.states()
    assert "second" not in follow.text(0)
    follow.until_closed()
    assert follow.text(0) == "first\nsecond\n"
    assert follow.states()[-1] is JobState.SUCCESS


def test_updates_are_pushed(api: Api, local_server: LocalServerProcess) -> None:
    spec = {
        "application": {"name": "terminal", "version": "1"},
        "product": product("compute-multi"),
        "replicas": 1,
    }
    (job_id,) = api.create(spec)
    api.wait_for_state(job_id, "RUNNING")
    follow = Follow.open(local_server.url, job_id, api.token)
    first = follow.next()
    assert first is not None
    assert first.initial_job is not None
    assert first.initial_job.state is JobState.RUNNING

    api.ok(
        "jobs.extend",
        {"items": [{"jobId": job_id, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}}]},
    )
    extended = follow.until(lambda m: bool(m.updates))
    assert extended.new_status is None  # the state did not change
    assert extended.updates[0].new_time_allocation == 2 * 3600 * 1000
    assert extended.updates[0].status is not None
    assert "extended" in extended.updates[0].status

    api.terminate(job_id)
    ended = follow.until(lambda m: m.new_status is not None)
    assert ended.new_status is not None
    assert ended.new_status.state is JobState.SUCCESS
    assert ended.updates[0].state is JobState.SUCCESS
    follow.until_closed()
    assert follow.close_code == 1000


def _refused(url: str, job_id: str, bearer: str | None, **kwargs: Any) -> None:
    """The socket closes without a single message."""
    follow = Follow.open(url, job_id, bearer, **kwargs)
    assert follow.next(timeout=15) is None, follow.messages
    assert follow.closed


def test_refusals_close_without_a_message(api: Api, local_server: LocalServerProcess) -> None:
    (job_id,) = api.create(batch("true", product_name="batch-small"))
    url = local_server.url
    _refused(url, job_id, None)
    _refused(url, job_id, "not-a-token")
    _refused(url, job_id, local_server.refresh_token)  # a refresh token is no access token
    _refused(url, "999999", api.token)  # unknown job
    _refused(url, "4x", api.token)
    _refused(url, job_id, api.token, project="not-mine")
    _refused(url, job_id, api.token, first_frame="not json")
    _refused(url, job_id, api.token, first_frame={"call": "jobs.follow", "payload": {}})
    _refused(url, job_id, api.token, first_frame=b"\x00binary")
    # another user's job: a valid token of someone else
    secret = (local_server.data_dir / "secret").read_text().strip()
    now = int(time.time())
    claims = {
        "sub": "mallory",
        "iat": now,
        "exp": now + 600,
        "aud": ["all:write"],
        "iss": "cloud.sdu.dk",
        "role": "USER",
    }
    _refused(url, job_id, jwt.encode(claims, secret, algorithm="HS512"))


def test_jobs_create_and_unknown_methods_stay(api: Api, local_server: LocalServerProcess) -> None:
    # POST /api/jobs is still jobs.create (covered everywhere); a GET without Upgrade is Go's 404.
    plain = requests.get(local_server.url + "/api/jobs", timeout=10)
    assert plain.status_code == 404
    assert plain.text == "404 page not found\n"


def test_output_is_utf8_split_at_character_boundaries(
    api: Api, local_server: LocalServerProcess
) -> None:
    # 4-, 3- and 2-byte characters across many 64 KiB reads, then a byte that is not UTF-8.
    command = (
        "python3 -c \"import sys; sys.stdout.write('a😀€ø' * 40000); sys.stdout.flush()\";"
        " printf '\\377\\n'"
    )
    (job_id,) = api.create(batch(command, product_name="batch-small"))
    follow = Follow.open(local_server.url, job_id, api.token).until_closed()
    assert follow.text(0) == "a😀€ø" * 40000 + "\ufffd\n"
    entries = [e for m in follow.messages for e in m.log]
    assert len(entries) > 5
    # a chunk is at most 64 KiB read, plus the end of a character the read before cut
    assert all(len(e.stdout.encode()) <= 65536 + 3 for e in entries if e.stdout)


@pytest.fixture(scope="module")
def small_log_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    tmp_path = tmp_path_factory.mktemp("small-logs")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"log_limit_bytes": 1000}))
    server = LocalServerProcess(tmp_path / "ucloud-local", config_file=config).start()
    yield server
    assert_log_clean(server)
    server.stop()


def test_output_past_the_limit_ends_with_a_note(small_log_server: LocalServerProcess) -> None:
    api = api_for(small_log_server)
    (job_id,) = api.create(batch("head -c 5000 /dev/zero | tr '\\0' x", product_name="batch-small"))
    follow = Follow.open(small_log_server.url, job_id, api.token).until_closed()
    assert follow.text(0) == "x" * 1000 + (
        "\n[jupyter-ucloud: rank 0's stdout passed the limit of 1000 bytes;"
        " the rest was not kept]\n"
    )


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def test_followers_that_do_not_read_hold_no_memory(
    api: Api, local_server: LocalServerProcess
) -> None:
    size = 48 * MB
    (job_id,) = api.create(
        batch(f"head -c {size} /dev/zero | tr '\\0' y", product_name="batch-small")
    )
    api.wait_for_state(job_id, "SUCCESS")
    assert local_server.proc is not None
    pid = local_server.proc.pid
    before = _rss(pid)
    stalled = []
    for _ in range(4):
        ws = connect(
            follow_url(local_server.url),
            open_timeout=10,
            max_size=None,
            max_queue=1,
            close_timeout=0.5,  # the closing handshake waits behind unread frames
        )
        first = {"call": "jobs.follow", "streamId": "0", "payload": {"id": job_id}}
        ws.send(json.dumps({**first, "bearer": api.token}))
        stalled.append(ws)
    time.sleep(3)  # the server would read all of it meanwhile without flow control
    grown = _rss(pid) - before
    # Each holds a frame or two, and the kernel's socket buffers hold the rest.
    assert grown < 24 * MB, f"the server grew by {grown / MB:.1f} MB"

    reader = Follow.open(local_server.url, job_id, api.token).until_closed(timeout=120)
    assert len(reader.text(0)) == size
    for ws in stalled:
        ws.close()


def test_follow_socket_is_private_to_the_first_frame(
    api: Api, local_server: LocalServerProcess
) -> None:
    """Frames after the first are ignored (the core reads only the first)."""
    (job_id,) = api.create(batch("echo once", product_name="batch-small"))
    follow = Follow.open(local_server.url, job_id, api.token)
    follow.ws.send(json.dumps({"call": "jobs.follow", "streamId": "x", "payload": {"id": "1"}}))
    follow.until_closed()
    assert follow.text(0) == "once\n"


def test_no_output_files_yet(api: Api, local_server: LocalServerProcess, tmp_path: Path) -> None:
    """A job whose rank has printed nothing: initialJob, status, close; no log entry."""
    (job_id,) = api.create(batch("true", product_name="batch-small"))
    follow = Follow.open(local_server.url, job_id, api.token).until_closed()
    assert not [e for m in follow.messages for e in m.log]
    assert follow.close_code == 1000
