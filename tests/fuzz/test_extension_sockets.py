"""The Jupyter server extension's websockets with generated frames, through a real Jupyter server:
the terminal socket (terminado frames) and the job follow socket. Its own module: the REST fuzz
terminates jobs by guessed ids, and the shell here needs its job running."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ..conftest import LocalServerProcess
from ..notebooks.jupyter_server_process import JupyterServerProcess
from .conftest import LeakCheck
from .lab import Lab, watched_lab
from .strategies import (
    field_values,
    ids,
    interrupted_typing,
    json_values,
    texts,
    visible,
)

MAX_MESSAGE = 4 * 1024 * 1024  # the terminal socket's limit
ALLOWED_CLOSE = {1000, 1001, 1008, 1009, 4001, 4002}


@pytest.fixture(scope="module")
def shell(fuzz_jupyter: JupyterServerProcess) -> Iterator[dict[str, Any]]:
    """A running job and a shell into it, for the websockets."""
    lab = Lab(fuzz_jupyter)
    spec = {
        "application": {"name": "terminal", "version": "1"},
        "product": {"id": "compute-example", "category": "compute-example", "provider": "local"},
        "replicas": 1,
        "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
    }
    job_id = lab.ok("POST", "/ucloud/api/jobs", {"items": [spec]})["responses"][0]["id"]
    deadline = time.monotonic() + 30
    while (
        lab.ok("GET", "/ucloud/api/jobs/retrieve", query=f"id={job_id}")["status"]["state"]
        != "RUNNING"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    model = lab.ok("POST", "/ucloud/shells", {"jobId": job_id, "rank": 0})
    yield model
    lab.send("DELETE", f"/ucloud/shells/{model['name']}")
    lab.ok("POST", "/ucloud/api/jobs/terminate", {"items": [{"id": job_id}]})
    lab.client.close()


@pytest.fixture
def lab(
    fuzz_jupyter: JupyterServerProcess,
    fuzz_local: LocalServerProcess,
    shell: dict[str, Any],
    leaks: LeakCheck,
) -> Iterator[Lab]:
    with watched_lab(
        fuzz_jupyter,
        fuzz_local,
        leaks,
        keep_jobs=frozenset({shell["jobId"]}),
        keep_shells=frozenset({shell["name"]}),
    ) as lab:
        yield lab
        job = lab.ok("GET", "/ucloud/api/jobs/retrieve", query=f"id={shell['jobId']}")
        assert job["status"]["state"] == "RUNNING", "the fuzzed shell's job must still run"


# --- websockets -------------------------------------------------------------------------------


def _ws_url(lab: Lab, path: str) -> str:
    return lab.jupyter.url.replace("http", "ws", 1).rstrip("/") + path


def _run_socket(lab: Lab, url: str, frames: list[Any], wait: float) -> tuple[int | None, list[str]]:
    """Open ``url``, send ``frames``, read for ``wait`` seconds; the close code (``None``: still
    open, -1: the upgrade was refused without a 5xx) and what came."""
    try:
        ws = connect(
            url,
            additional_headers=lab.auth,
            open_timeout=10,
            close_timeout=5,
            max_size=None,
        )
    except InvalidStatus as refused:
        ws, response = None, refused.response
    if ws is None:
        assert response.status_code < 500, (response.status_code, response.body[:300])
        return -1, []
    received: list[str] = []
    with ws:
        for frame in frames:
            try:
                ws.send(frame)
            except ConnectionClosed as err:
                return (err.rcvd.code if err.rcvd else 1006), received
        deadline = time.monotonic() + wait
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                received.append(str(ws.recv(timeout=remaining)))
            except TimeoutError:
                break
            except ConnectionClosed as err:
                return (err.rcvd.code if err.rcvd else 1006), received
    return None, received


def _stdin_text(text: str) -> str:
    """Typed text that a real bash takes without running anything (no control characters)."""
    return visible(text)


terminal_frames = st.one_of(
    st.tuples(st.just("stdin"), texts.map(_stdin_text)).map(lambda f: json.dumps(list(f))),
    interrupted_typing.map(lambda text: json.dumps(["stdin", text])),
    st.lists(field_values, max_size=5).map(lambda a: json.dumps(["set_size", *a])),
    st.tuples(st.integers(1, 300), st.integers(1, 300)).map(
        lambda s: json.dumps(["set_size", s[0], s[1], 0, 0])
    ),
    st.lists(
        field_values.map(lambda v: v if not isinstance(v, str) else visible(v)), max_size=4
    ).map(lambda a: json.dumps(["stdin", *a])),
    json_values.map(lambda v: json.dumps(v if not isinstance(v, str) else visible(v))),
    st.sampled_from(["stdout", "disconnect", "setup", "error", ""]).map(
        lambda kind: json.dumps([kind, "x"])
    ),
    st.just('["stdin", "\\ud800"]'),
    st.just("[" * 100_000 + "]" * 100_000),
    st.just(json.dumps(["stdin", "q" * 300_000])),
    st.just(json.dumps(["stdin", "q" * (MAX_MESSAGE + 10)])),
    texts.map(visible),
    st.binary(max_size=64),
)


@given(data=st.data())
def test_terminal_socket_frames(lab: Lab, shell: dict[str, Any], data: st.DataObject) -> None:
    refused = data.draw(st.integers(0, 3), label="bad name or since?") == 0
    name = data.draw(
        texts.map(lambda t: quote(t, safe="")) if refused else st.just(shell["name"]),
        label="shell name",
    )
    since = data.draw(ids | st.integers(0, 100).map(str) if refused else st.none(), label="since")
    frames = data.draw(st.lists(terminal_frames, max_size=5), label="frames")
    query = f"?since={quote(since, safe='')}" if since is not None else ""
    closed, received = _run_socket(
        lab, _ws_url(lab, f"/ucloud/shells/{name}/websocket{query}"), frames, 0.3
    )
    event(f"terminal: {'refused' if closed == -1 else f'closed {closed}'}")
    if closed not in (None, -1):
        too_big = closed == 1006 and any(len(f) > MAX_MESSAGE for f in frames)
        assert too_big or closed in ALLOWED_CLOSE, (closed, received[-3:])
    for raw in received:
        frame = json.loads(raw)
        assert frame[0] in ("setup", "stdout", "error", "disconnect"), frame
    lab.assert_alive()


@given(data=st.data())
def test_follow_socket(lab: Lab, shell: dict[str, Any], data: st.DataObject) -> None:
    job_id = data.draw(st.just(shell["jobId"]) | ids, label="id")
    extra = data.draw(st.sampled_from(["", "&id=1", "&id=", "&x=%ff"]), label="more query")
    frames = data.draw(st.lists(texts | st.binary(max_size=32), max_size=3), label="frames")
    closed, received = _run_socket(
        lab,
        _ws_url(lab, f"/ucloud/api/jobs/follow?id={quote(job_id, safe='')}{extra}"),
        frames,
        0.3,
    )
    event(f"follow: {'refused' if closed == -1 else f'closed {closed}'}")
    assert closed in (None, -1) or closed in ALLOWED_CLOSE, (closed, received[-3:])
    for raw in received:
        assert isinstance(json.loads(raw), dict), raw[:300]
    lab.assert_alive()
