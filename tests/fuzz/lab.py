"""The fuzzed Jupyter server as the extension tests see it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..conftest import LocalServerProcess
from ..notebooks.jupyter_server_process import JupyterServerProcess
from .conftest import LeakCheck, assert_no_traceback, log_size
from .wire import Answer, Client

ENDED = {"SUCCESS", "FAILURE", "EXPIRED"}


class Lab:
    """The Jupyter server, a raw client with its token, and helpers to clean up after a test."""

    def __init__(self, jupyter: JupyterServerProcess) -> None:
        self.jupyter = jupyter
        self.client = Client(jupyter.url)
        self.auth = {"Authorization": f"token {jupyter.token}"}

    def send(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> Answer:
        all_headers = {**(self.auth if auth else {}), **(headers or {})}
        return self.client.request(method, path, query=query, body=body, headers=all_headers)

    def ok(self, method: str, path: str, body: Any = None, query: str = "") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        answer = self.send(method, path, body=data, query=query)
        assert answer.status in (200, 201, 204), answer.describe()
        return json.loads(answer.body) if answer.body else None

    def assert_alive(self) -> None:
        status = self.ok("GET", "/ucloud/api/status")
        assert status, status

    def clean_up(self, keep_jobs: set[str], keep_shells: set[str]) -> None:
        """Close the shells and end the jobs that valid generated requests opened."""
        for shell in self.ok("GET", "/ucloud/shells"):
            if shell["name"] not in keep_shells:
                self.send("DELETE", f"/ucloud/shells/{shell['name']}")
        page = self.ok("GET", "/ucloud/api/jobs/browse", query="itemsPerPage=250")
        running = [
            j["id"]
            for j in page["items"]
            if j["status"]["state"] not in ENDED and j["id"] not in keep_jobs
        ]
        if running:
            self.ok("POST", "/ucloud/api/jobs/terminate", {"items": [{"id": i} for i in running]})


@contextmanager
def watched_lab(
    jupyter: JupyterServerProcess,
    local: LocalServerProcess,
    leaks: LeakCheck,
    *,
    keep_jobs: frozenset[str] = frozenset(),
    keep_shells: frozenset[str] = frozenset(),
) -> Iterator[Lab]:
    """A ``Lab`` on the fuzzed servers, whose fds and child processes ``leaks`` watches; after
    the test both servers still answer and logged no traceback, and the shells and jobs the test
    opened (all but ``keep_*``) are closed and ended."""
    assert jupyter.proc is not None
    assert local.proc is not None
    lab = Lab(jupyter)
    lab.assert_alive()
    lab.client.close()  # the check counts the fds without this test's connection
    starts = (log_size(jupyter.log_file), log_size(local.log_file))
    leaks.watch(jupyter.proc.pid, "jupyter server")
    leaks.watch(local.proc.pid, "embedded server")
    try:
        yield lab
        lab.assert_alive()
        assert_no_traceback(jupyter.log_file, starts[0])
        assert_no_traceback(local.log_file, starts[1])
    finally:
        lab.clean_up(set(keep_jobs), set(keep_shells))
        lab.client.close()
