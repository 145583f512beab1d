"""The embedded server's websockets with generated frames: the provider shell socket
(``ShellRequestEnvelope`` initialize/input/resize, garbage, binary, huge) and ``jobs.follow``
(first frames). Every answer frame must be well formed, every close code one the protocol
names, the server must still answer, and no shell or fd may be left behind."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import event, given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from jupyter_ucloud.protocol import ShellResponseEnvelope

from ..conftest import LocalServerProcess, access_token
from .conftest import LeakCheck, assert_no_traceback, log_size
from .strategies import field_values, interrupted_typing, json_values, mutated, texts, visible

#: Close codes the servers may use: normal, going away, policy (bad frame, bad session), too big.
ALLOWED_CLOSE = {1000, 1001, 1008, 1009}
MAX_FRAME = 1024 * 1024  # LocalConfig.max_frame_bytes' default
CALL = "jobs.control.browseSsh"  # any text: the provider does not check the call name


class Socks:
    """The fuzzed server, a running terminal job on it, and a token."""

    def __init__(self, server: LocalServerProcess, job_id: str) -> None:
        self.server = server
        self.job_id = job_id
        self.token = access_token(server)
        self.ws_url = server.url.replace("http", "ws", 1)

    def post(self, path: str, body: Any) -> Any:
        answer = requests.post(
            self.server.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def session(self) -> str:
        item = {"id": self.job_id, "rank": 0, "sessionType": "SHELL"}
        answer = self.post("/api/jobs/interactiveSession", {"items": [item]})
        return str(answer["responses"][0]["session"]["sessionIdentifier"])

    def assert_alive(self) -> None:
        answer = requests.get(
            self.server.url + f"/api/jobs/retrieve?id={self.job_id}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"]["state"] == "RUNNING", answer.text


@pytest.fixture(scope="module")
def running_job(fuzz_local: LocalServerProcess) -> Iterator[str]:
    token = access_token(fuzz_local)
    headers = {"Authorization": f"Bearer {token}"}
    spec = {
        "application": {"name": "terminal", "version": "1"},
        "product": {"id": "compute-example", "category": "compute-example", "provider": "local"},
        "replicas": 1,
        "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
    }
    answer = requests.post(
        fuzz_local.url + "/api/jobs", json={"items": [spec]}, headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["responses"][0]["id"]
    deadline = time.monotonic() + 30
    while True:
        state = requests.get(
            fuzz_local.url + f"/api/jobs/retrieve?id={job_id}", headers=headers, timeout=30
        ).json()["status"]["state"]
        if state == "RUNNING":
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    yield job_id
    requests.post(
        fuzz_local.url + "/api/jobs/terminate",
        json={"items": [{"id": job_id}]},
        headers=headers,
        timeout=30,
    )


@pytest.fixture
def socks(fuzz_local: LocalServerProcess, running_job: str, leaks: LeakCheck) -> Iterator[Socks]:
    assert fuzz_local.proc is not None
    socks = Socks(fuzz_local, running_job)
    socks.assert_alive()
    start = log_size(fuzz_local.log_file)
    leaks.watch(fuzz_local.proc.pid, "embedded server")
    yield socks
    socks.assert_alive()
    assert_no_traceback(fuzz_local.log_file, start)


def assert_close_code(closed: int | None, sent: list[Any], received: list[Any]) -> None:
    """Still open, or closed with a code of the protocol. A frame over the size limit is
    refused with 1009 and the connection dropped at once (tornado: the rest of the frame is
    never read), so the client may see the drop (1006) before the close frame."""
    if closed == 1006 and any(len(frame) > MAX_FRAME for frame in sent):
        return
    assert closed is None or closed in ALLOWED_CLOSE, (closed, str(received[-3:])[:2000])


def send_all(ws: ClientConnection, frames: list[Any]) -> int | None:
    """Send ``frames`` in order; the close code if the socket closed on the way (1006: no
    close frame), else ``None``."""
    for frame in frames:
        try:
            ws.send(frame)
        except ConnectionClosed as err:
            return err.rcvd.code if err.rcvd is not None else 1006
    return None


def drain(ws: ClientConnection, until: float, stop: Any = None) -> tuple[list[Any], int | None]:
    """Frames until the socket closes, ``stop(frame)`` is true, or ``until`` seconds pass;
    and the close code (``None``: still open)."""
    frames: list[Any] = []
    deadline = time.monotonic() + until
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return frames, None
        try:
            raw = ws.recv(timeout=remaining)
        except TimeoutError:
            return frames, None
        except ConnectionClosed as closed:
            return frames, closed.rcvd.code if closed.rcvd is not None else 1006
        frame = json.loads(raw)
        frames.append(frame)
        if stop is not None and stop(frame):
            return frames, None


# --- the provider shell socket ---------------------------------------------------------------

INPUT = {"type": "input", "data": "x"}
RESIZE = {"type": "resize", "cols": 80, "rows": 24}


def envelope(payload: Any, stream: Any = "1", **extra: Any) -> dict[str, Any]:
    return {"call": CALL, "streamId": stream, "payload": payload, **extra}


def _visible_strings(value: Any) -> Any:
    """Every string without control characters: generated input reaches a real bash, and must
    never run a command (no Enter, no Ctrl-O, no Ctrl-D)."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, list):
        return [_visible_strings(v) for v in value]
    if isinstance(value, dict):
        return {visible(k): _visible_strings(v) for k, v in value.items()}
    return value


interrupt_inputs = interrupted_typing.map(
    lambda data: json.dumps(envelope({"type": "input", "data": data}))
)

#: Well-formed envelopes with broken payloads: what an open shell must take without closing.
envelope_frames = st.one_of(
    interrupt_inputs,
    mutated(INPUT).map(lambda p: json.dumps(envelope(_visible_strings(p)))),
    mutated(RESIZE).map(lambda p: json.dumps(envelope(p))),
    mutated({"type": "initialize", "sessionIdentifier": "x", "cols": 80, "rows": 24}).map(
        lambda p: json.dumps(envelope(_visible_strings(p)))
    ),
    st.tuples(field_values, field_values).map(
        lambda ids: json.dumps(envelope(INPUT, stream=ids[0], project=ids[1]))
    ),
    st.just(json.dumps(envelope({"type": "input", "data": "\ud800\udfff\ud800"}))),
    st.just('{"call": "c", "streamId": "1", "payload": {"type": "input", "data": "\\ud800"}}'),
    st.just(json.dumps(envelope({"type": "input", "data": "y" * 200_000}))),
    st.binary(max_size=64),
)
#: Anything: frames that are not JSON, not envelopes, or too big close the socket.
shell_frames = st.one_of(
    envelope_frames,
    mutated(envelope(INPUT)).map(_visible_strings).map(json.dumps),
    json_values.map(_visible_strings).map(json.dumps),
    st.just("[" * 100_000 + "]" * 100_000),
    st.just(json.dumps(envelope({"type": "input", "data": "z" * (MAX_FRAME + 10)}))),
    texts.map(visible),
)


@given(data=st.data())
def test_shell_socket_frames(socks: Socks, data: st.DataObject) -> None:
    session = data.draw(
        st.sampled_from(["valid", "valid", "forged", "none"]), label="initialize with"
    )
    in_shell = session == "valid" and data.draw(st.booleans(), label="into a shell")
    user = base64.b64encode(b"user").decode()
    hint = data.draw(
        st.sampled_from([None, user])
        if in_shell
        else st.none()
        | st.just(user)
        | st.just(base64.b64encode(b"someone-else").decode())
        | texts.map(lambda t: t.encode().hex()),
        label="usernameHint",
    )
    size = data.draw(
        st.just((80, 24)) | st.tuples(field_values, field_values)
        if not in_shell
        else st.tuples(st.integers(1, 500), st.integers(1, 500)),
        label="initialize size",
    )
    frames = data.draw(
        st.lists(envelope_frames if in_shell else shell_frames, max_size=6), label="frames"
    )
    where = 0 if in_shell else data.draw(st.integers(0, len(frames)), label="initialize at")
    if session != "none":
        identifier = socks.session() if session == "valid" else data.draw(texts.map(visible))
        initialize = {
            "type": "initialize",
            "sessionIdentifier": identifier,
            "cols": size[0],
            "rows": size[1],
        }
        frames.insert(where, json.dumps(envelope(initialize, "init")))
    url = f"{socks.ws_url}/ucloud/local/websocket"
    if hint is not None:
        url += "?usernameHint=" + quote(hint, safe="")
    with connect(url, open_timeout=10, max_size=None, close_timeout=5) as ws:
        received: list[Any] = []
        closed = send_all(ws, frames)
        if closed is None:
            # The probe: a valid resize is acknowledged on its stream once the shell is open;
            # an uninitialized socket ignores it (and must not have crashed meanwhile).
            closed = send_all(ws, [json.dumps(envelope(RESIZE, "probe"))])
        if closed is None:
            received, closed = drain(
                ws,
                10.0 if session == "valid" else 0.5,
                stop=lambda f: f.get("streamId") == "probe",
            )
    acked = any(f.get("streamId") == "probe" for f in received)
    event(f"shell socket: {'probe acknowledged' if acked else f'closed {closed}'}")
    assert_close_code(closed, frames, received)
    for frame in received:
        ShellResponseEnvelope.model_validate(frame)
    socks.assert_alive()


# --- jobs.follow -----------------------------------------------------------------------------


@given(data=st.data())
def test_follow_first_frames(socks: Socks, data: st.DataObject) -> None:
    valid = {
        "call": "jobs.follow",
        "streamId": "0",
        "payload": {"id": socks.job_id},
        "bearer": socks.token,
        "project": None,
    }
    first = data.draw(
        st.one_of(
            mutated(valid).map(json.dumps),
            json_values.map(json.dumps),
            texts,
            st.binary(max_size=64),
            st.just(json.dumps({**valid, "payload": {"id": "\u0661"}})),
            st.just("[" * 100_000 + "]" * 100_000),
            st.just(json.dumps({**valid, "bearer": "x" * (MAX_FRAME + 10)})),
        ),
        label="first frame",
    )
    later = data.draw(st.lists(texts | st.binary(max_size=32), max_size=3), label="later frames")
    try:
        ws = connect(f"{socks.ws_url}/api/jobs", open_timeout=10, max_size=None, close_timeout=5)
    except InvalidStatus as err:  # pragma: no cover - the upgrade itself is not fuzzed here
        raise AssertionError(err.response.status_code) from err
    with ws:
        received: list[Any] = []
        closed = send_all(ws, [first, *later])
        if closed is None:
            received, closed = drain(ws, 1.0, stop=lambda f: f["payload"].get("initialJob"))
    started = any(f["payload"].get("initialJob") for f in received)
    event(f"follow: {'initialJob' if started else f'closed {closed}'}")
    assert_close_code(closed, [first, *later], received)
    for frame in received:
        assert frame["type"] == "message", frame
        assert set(frame["payload"]) == {"updates", "log", "newStatus", "initialJob"}, frame
    socks.assert_alive()
