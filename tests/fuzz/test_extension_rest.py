"""The Jupyter server extension's REST endpoints with generated bad input, through a real Jupyter
server: ``/ucloud/api/...`` and ``/ucloud/shells...`` with broken bodies, queries, paths, methods
and tokens. No 5xx, the extension's errors are JSON, the server still answers, and neither the
Jupyter server nor the embedded server is left with a process or an fd it did not have."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..conftest import LocalServerProcess
from ..notebooks.jupyter_server_process import JupyterServerProcess
from .conftest import LeakCheck
from .lab import Lab, watched_lab
from .strategies import (
    bodies,
    header_texts,
    ids,
    mutated,
    query_strings,
)
from .wire import assert_jupyter_answer

MAX_MESSAGE = 4 * 1024 * 1024  # the terminal socket's limit
ALLOWED_CLOSE = {1000, 1001, 1008, 1009, 4001, 4002}


@pytest.fixture
def lab(
    fuzz_jupyter: JupyterServerProcess,
    fuzz_local: LocalServerProcess,
    leaks: LeakCheck,
) -> Iterator[Lab]:
    with watched_lab(fuzz_jupyter, fuzz_local, leaks) as lab:
        yield lab


# --- REST -------------------------------------------------------------------------------------

GET_PATHS = [
    "/ucloud/api/status",
    "/ucloud/api/applications",
    "/ucloud/api/jobs/retrieveProducts",
    "/ucloud/api/jobs/browse",
    "/ucloud/api/jobs/retrieve",
    "/ucloud/shells",
]
POST_PATHS = {
    "/ucloud/api/jobs": "jobs.create",
    "/ucloud/api/jobs/terminate": "jobs.terminate",
    "/ucloud/api/jobs/extend": "jobs.extend",
    "/ucloud/shells": "shells.open",
}
SHELL_OPEN = {"jobId": "424242", "rank": 0, "cols": 80, "rows": 24}


@given(data=st.data())
def test_extension_queries(lab: Lab, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(GET_PATHS), label="path")
    answer = lab.send("GET", path, query=data.draw(query_strings(), label="query"))
    assert_jupyter_answer(answer)
    lab.assert_alive()


@given(data=st.data())
def test_extension_bodies(lab: Lab, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(POST_PATHS)), label="path")
    call = POST_PATHS[path]
    strategy = (
        st.one_of(mutated(SHELL_OPEN).map(lambda v: json.dumps(v).encode()), bodies(call))
        if call == "shells.open"
        else bodies(call)
    )
    body = data.draw(strategy, label="body")
    answer = lab.send("POST", path, body=body, headers={"Content-Type": "application/json"})
    assert_jupyter_answer(answer)
    lab.assert_alive()


@given(data=st.data())
def test_extension_paths_methods_and_tokens(lab: Lab, data: st.DataObject) -> None:
    base = data.draw(
        st.sampled_from([*GET_PATHS, *POST_PATHS, "/ucloud/shells/x", "/ucloud/api/jobs/nope"]),
        label="path",
    )
    suffix = data.draw(
        st.sampled_from(["", "/", "/x", "/%C2%B2", "/%ff", "/..", "/" + "a" * 130])
        | ids.map(lambda t: "/" + quote(t, safe="")),
        label="suffix",
    )
    method = data.draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]))
    token = data.draw(st.sampled_from(["valid", "valid", "none", "bad"]), label="token")
    headers: dict[str, Any] = {}
    if token == "bad":
        headers["Authorization"] = ("token " + data.draw(header_texts)).encode()
    body = data.draw(st.none() | st.binary(max_size=32), label="body")
    answer = lab.send(method, base + suffix, body=body, headers=headers, auth=token == "valid")
    assert_jupyter_answer(answer, method)
    if token != "valid":
        assert answer.status in (302, 401, 403, 404, 405), answer.describe()
    lab.assert_alive()
