"""The extension in a real Jupyter server (pytest-jupyter), against the embedded UCloud server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from traitlets.config import Config


@pytest.fixture
def ucloud_config(local_server: Any) -> dict[str, Any]:
    """``c.UCloud`` for the test server: the shared embedded server, fast timeouts.

    The token is given as a file: Jupyter logs its config at debug level, secrets included.
    """
    return {
        "host": local_server.url,
        "credentials_file": str(local_server.data_dir / "refresh_token"),
        "slow_client_timeout": 1.0,
        "request_timeout": 10.0,
        # The Jupyter server runs in the test process: freezing the heap of a process that
        # starts hundreds of servers would keep each test's cyclic garbage (test_heap.py
        # checks the setting in a server process of its own).
        "freeze_startup_heap": False,
    }


@pytest.fixture
def jp_server_config(ucloud_config: dict[str, Any]) -> Config:
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_ucloud": True},
                "allow_unauthenticated_access": False,
            },
            "UCloud": ucloud_config,
        }
    )


Fetch = Callable[..., Awaitable[Any]]


@dataclass
class Api:
    """JSON calls to the extension through ``jp_fetch``."""

    fetch: Fetch

    async def call(self, method: str, *parts: str, body: Any = None, **params: Any) -> Any:
        kwargs: dict[str, Any] = {"method": method}
        if body is not None:
            kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        elif method in ("POST", "PUT"):
            kwargs["body"] = b""
        if params:
            kwargs["params"] = {k: str(v) for k, v in params.items()}
        if method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        response = await self.fetch("ucloud", *parts, **kwargs)
        return json.loads(response.body) if response.body else None

    async def error(
        self, method: str, *parts: str, body: Any = None, **params: Any
    ) -> tuple[int, dict[str, Any]]:
        with pytest.raises(HTTPClientError) as info:
            await self.call(method, *parts, body=body, **params)
        response = info.value.response
        assert response is not None
        try:
            data = json.loads(response.body)
        except ValueError:
            data = {"raw": response.body.decode(errors="replace")}
        return info.value.code, data

    async def product(self, name: str = "compute-example") -> dict[str, Any]:
        support = await self.call("GET", "api", "jobs", "retrieveProducts")
        for items in support["productsByProvider"].values():
            for item in items:
                if item["product"]["name"] == name:
                    return item["product"]
        raise AssertionError(f"no product {name}")

    async def start_job(
        self,
        product: str = "compute-example",
        replicas: int = 1,
        application: str = "terminal",
        parameters: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> str:
        found = await self.product(product)
        spec = {
            "application": {"name": application, "version": "1"},
            "product": {
                "id": found["name"],
                "category": found["category"]["name"],
                "provider": found["category"]["provider"],
            },
            "name": "test job",
            "replicas": replicas,
            "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
            "parameters": parameters or {},
            "resources": [],
        }
        answer = await self.call("POST", "api", "jobs", body={"items": [spec]})
        job_id = answer["responses"][0]["id"]
        if wait:
            await self.wait_state(job_id, "RUNNING")
        return job_id

    async def wait_state(self, job_id: str, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.call("GET", "api", "jobs", "retrieve", id=job_id)
            if job["status"]["state"] in states:
                return job
            assert time.monotonic() < deadline, f"job {job_id} stuck in {job['status']['state']}"
            await asyncio.sleep(0.1)

    async def terminate(self, job_id: str) -> None:
        await self.call("POST", "api", "jobs", "terminate", body={"items": [{"id": job_id}]})

    async def open_shell(self, job_id: str, rank: int = 0, **extra: Any) -> dict[str, Any]:
        return await self.call("POST", "shells", body={"jobId": job_id, "rank": rank, **extra})


@pytest.fixture
def api(jp_fetch: Fetch) -> Api:
    return Api(jp_fetch)


@dataclass
class Term:
    """A terminal websocket client that records every frame it got."""

    ws: Any
    frames: list[list[Any]] = field(default_factory=list)
    closed: bool = False

    async def next_frame(self, timeout: float = 10.0) -> list[Any] | None:
        message = await asyncio.wait_for(self.ws.read_message(), timeout)
        if message is None:
            self.closed = True
            return None
        frame = json.loads(message)
        self.frames.append(frame)
        return frame

    @property
    def output(self) -> str:
        return "".join(f[1] for f in self.frames if f[0] == "stdout")

    @property
    def last_offset(self) -> int:
        offsets = [f[2] for f in self.frames if f[0] == "stdout"]
        return offsets[-1] if offsets else self.frames[0][1]["offset"]

    async def read_until(self, predicate: Callable[[Term], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                raise AssertionError(
                    f"timed out; last output: {self.output[-500:]!r}; frames: {self.frames[-3:]}"
                )
            try:
                await self.next_frame(remaining)
            except asyncio.TimeoutError:
                continue

    async def wait_for_text(self, text: str, timeout: float = 15.0) -> None:
        await self.read_until(lambda t: text in t.output, timeout)

    async def send(self, *frame: Any) -> None:
        await self.ws.write_message(json.dumps(list(frame)))

    async def run(self, command: str) -> None:
        await self.send("stdin", command + "\r")

    async def wait_ready(self) -> None:
        """Make sure the shell reads commands: run an echo and wait for its computed output."""
        await self.run("echo ready-$((20+1))")
        await self.wait_for_text("ready-21")

    async def until_closed(self, timeout: float = 15.0) -> None:
        await self.read_until(lambda t: t.closed, timeout)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def connect(jp_ws_fetch: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Term]]:
    async def open_term(name: str, since: int | None = None, setup: bool = True) -> Term:
        params = {"since": str(since)} if since is not None else None
        ws = await jp_ws_fetch("ucloud", "shells", name, "websocket", params=params)
        term = Term(ws)
        if setup:
            frame = await term.next_frame()
            assert frame is not None
            assert frame[0] == "setup", frame
        return term

    return open_term


async def new_term(api: Api, connect: Callable[..., Awaitable[Term]]) -> Term:
    """A terminal on a shell into a new job, ready for commands."""
    job_id = await api.start_job()
    model = await api.open_shell(job_id)
    term = await connect(model["name"])
    await term.wait_ready()
    return term


@pytest.fixture
def open_tab(jp_ws_fetch: Callable[..., Awaitable[Any]]) -> Callable[[str], Awaitable[Any]]:
    """``await open_tab(job_id)``: a ``follow_tab.Tab`` on ``/ucloud/api/jobs/follow?id=``."""
    from .follow_tab import Tab

    async def open_(job_id: str) -> Tab:
        ws = await jp_ws_fetch("ucloud", "api", "jobs", "follow", params={"id": job_id})
        return Tab(ws)

    return open_
