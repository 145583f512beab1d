"""Helpers for testing the embedded server over real HTTP and websockets (raw clients on purpose:
these tests pin the wire format, independently of jupyter_ucloud.client)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from jupyter_ucloud.protocol import (
    CALLS,
    Job,
    OpenSessionWithProvider,
    ShellResponseEnvelope,
    encode_query,
    provider_websocket_url,
    shell_call_name,
)

from ..conftest import access_token

TERMINAL = {"name": "terminal", "version": "1"}
BATCH = {"name": "batch", "version": "1"}


def product(name: str = "compute-example", provider: str = "local") -> dict[str, str]:
    return {"id": name, "category": name, "provider": provider}


def terminal_spec(product_name: str = "compute-example", **extra: Any) -> dict[str, Any]:
    return {"application": TERMINAL, "product": product(product_name), "replicas": 1, **extra}


def batch_spec(command: str, **extra: Any) -> dict[str, Any]:
    return {
        "application": BATCH,
        "product": product("batch-small"),
        "replicas": 1,
        "parameters": {"command": {"type": "text", "value": command}},
        **extra,
    }


@dataclass
class Api:
    """A raw UCloud HTTP client: an access token and the call table, nothing more."""

    url: str
    token: str | None
    session: requests.Session = field(default_factory=requests.Session)

    def call(
        self,
        name: str,
        body: Any = None,
        *,
        query: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = "default",
    ) -> requests.Response:
        spec = CALLS[name]
        all_headers = dict(headers or {})
        bearer = self.token if token == "default" else token
        if bearer is not None:
            all_headers["Authorization"] = f"Bearer {bearer}"
        params = encode_query(query) if hasattr(query, "model_fields") else query
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        return self.session.request(
            spec.method,
            self.url + spec.path,
            params=params,
            data=data,
            headers=all_headers,
            timeout=30,
        )

    def ok(self, name: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.call(name, body, **kwargs)
        assert response.status_code == 200, (name, response.status_code, response.text)
        return response.json()

    def create(self, *specs: dict[str, Any]) -> list[str]:
        answer = self.ok("jobs.create", {"items": list(specs)})
        return [item["id"] for item in answer["responses"]]

    def retrieve(self, job_id: str, **flags: str) -> Job:
        return Job.model_validate(self.ok("jobs.retrieve", query={"id": job_id, **flags}))

    def wait_for_state(self, job_id: str, *states: str, timeout: float = 20.0) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job = self.retrieve(job_id)
            if job.state.value in states:
                return job
            assert time.monotonic() < deadline, f"job {job_id} stuck in {job.state}"
            time.sleep(0.05)

    def terminate(self, *job_ids: str) -> None:
        self.ok("jobs.terminate", {"items": [{"id": i} for i in job_ids]})

    def open_shell_session(self, job_id: str, rank: int = 0) -> OpenSessionWithProvider:
        answer = self.ok(
            "jobs.openInteractiveSession",
            {"items": [{"id": job_id, "rank": rank, "sessionType": "SHELL"}]},
        )
        return OpenSessionWithProvider.model_validate(answer["responses"][0])


def api_for(server: Any) -> Api:
    return Api(server.url, access_token(server))


def assert_log_clean(server: Any) -> None:
    """No traceback and no 500 answer in the server's log."""
    log = server.log_file.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "] 500 " not in log, log[-3000:]


@pytest.fixture
def api(local_server: Any) -> Iterator[Api]:
    yield api_for(local_server)
    assert_log_clean(local_server)


class ShellSocket:
    """The provider's shell websocket, spoken as UCloud's web client does."""

    def __init__(self, session: OpenSessionWithProvider, username: str = "user") -> None:
        self.session = session
        url = provider_websocket_url(
            session.provider_domain,
            session.provider_id,
            session.session.session_identifier,  # type: ignore[union-attr]
            username,
        )
        self.ws: ClientConnection = connect(url, open_timeout=10, max_size=None)
        self.stream = 0
        self.output = ""

    def send(self, payload: dict[str, Any], **envelope: Any) -> str:
        stream_id = str(self.stream)
        self.stream += 1
        frame = {
            "call": shell_call_name(self.session.provider_id),
            "streamId": stream_id,
            "payload": payload,
            **envelope,
        }
        self.ws.send(json.dumps(frame))
        return stream_id

    def initialize(self, cols: int = 80, rows: int = 24, wait_for_prompt: bool = True) -> str:
        identifier = self.session.session.session_identifier  # type: ignore[union-attr]
        stream_id = self.send(
            {"type": "initialize", "sessionIdentifier": identifier, "cols": cols, "rows": rows}
        )
        frame = self.recv(10)
        assert frame.payload.type == "initialize", frame
        assert frame.stream_id == stream_id
        if wait_for_prompt:
            self.wait_for_prompt()
        return stream_id

    def wait_for_prompt(self, timeout: float = 20) -> str:
        """Read until the shell shows a prompt (as a user would before typing)."""
        return self._collect_until(
            lambda: re.search(r"[$#] $", strip_terminal_codes(self.output)) is not None,
            "no prompt",
            timeout,
        )

    def recv(self, timeout: float = 10) -> ShellResponseEnvelope:
        return ShellResponseEnvelope.model_validate_json(self.ws.recv(timeout=timeout))

    def read_until(self, needle: str, timeout: float = 15) -> str:
        """Collect ``data`` output until ``needle`` appears; returns everything collected."""
        return self._collect_until(
            lambda: needle in self.output, f"{needle!r} not in output", timeout
        )

    def _collect_until(self, done: Callable[[], bool], failure: str, timeout: float) -> str:
        """Add ``data`` frames to ``output`` until ``done()``. Past ``timeout``, also when the
        socket stayed silent until then, fail with ``failure`` and the output collected."""
        deadline = time.monotonic() + timeout
        while not done():
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                frame = self.recv(remaining)
            except TimeoutError:
                raise AssertionError(
                    f"{failure} within {timeout} s: {self.output[-2000:]!r}"
                ) from None
            if frame.payload.type == "data":
                self.output += frame.payload.data  # type: ignore[union-attr]
        return self.output

    def input(self, text: str) -> str:
        return self.send({"type": "input", "data": text})

    def wait_closed(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with pytest.raises(ConnectionClosed):  # noqa: PT012 - drain until the close
            while True:
                remaining = deadline - time.monotonic()
                assert remaining > 0, "socket still open"
                self.ws.recv(timeout=remaining)

    def close(self) -> None:
        self.ws.close()


def open_shells(api: Api, count: int = 1) -> tuple[list[ShellSocket], str]:
    """A running terminal job with ``count`` initialized shells into it: the shells, the job."""
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    opened = []
    for _ in range(count):
        shell = ShellSocket(api.open_shell_session(job_id))
        shell.initialize()
        opened.append(shell)
    return opened, job_id


_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def strip_terminal_codes(text: str) -> str:
    """Output without CSI/OSC escape sequences and carriage returns."""
    return _TERMINAL_CODES.sub("", text)


def job_processes(data_dir: Path, job_id: str) -> list[psutil.Process]:
    """Live processes of a job (ranks and shells) of the server whose data dir is given."""
    found = []
    root = str(data_dir.resolve() / "jobs" / job_id)
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get("UCLOUD_JOB_ID") == job_id and process.cwd().startswith(root):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def wait_no_processes(data_dir: Path, job_id: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (left := job_processes(data_dir, job_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, [p.cmdline() for p in left]


@pytest.fixture
def shells() -> Iterator[list[ShellSocket]]:
    """Shell sockets opened by a test, closed at its end."""
    opened: list[ShellSocket] = []
    yield opened
    for shell in opened:
        shell.close()
