"""Every REST endpoint of the embedded server, with generated bad input: no 5xx, every error in
UCloud's shape, the server still answers, nothing left behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..conftest import LocalServerProcess, access_token
from .conftest import LeakCheck, assert_no_traceback, log_size
from .strategies import bodies, forged_tokens, header_texts, query_strings, texts
from .wire import Answer, Client, assert_ucloud_answer

GET_CALLS = {
    "jobs.retrieveProducts": "/api/jobs/retrieveProducts",
    "jobs.browse": "/api/jobs/browse",
    "jobs.retrieve": "/api/jobs/retrieve",
    "products.v2.browse": "/api/products/v2/browse",
    "products.v2.retrieve": "/api/products/v2/retrieve",
    "hpc.apps.browse": "/api/hpc/apps/browse",
}
POST_CALLS = {
    "jobs.create": "/api/jobs",
    "jobs.terminate": "/api/jobs/terminate",
    "jobs.extend": "/api/jobs/extend",
    "jobs.openInteractiveSession": "/api/jobs/interactiveSession",
    "auth.refresh": "/auth/refresh",
    "auth.refreshWeb": "/auth/refresh/web",
}
#: Answered without a bearer, as in UCloud's core.
PUBLIC = {"/api/products/v2/browse", "/api/products/v2/retrieve"}
CONTENT_TYPES = [
    None,
    "application/json; charset=utf-8",
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
]
ENDED = {"SUCCESS", "FAILURE", "EXPIRED"}


class Target:
    """The fuzzed server: a raw client, a valid access token, and the liveness probe."""

    def __init__(self, server: LocalServerProcess) -> None:
        self.server = server
        self.client = Client(server.url)
        self.token = access_token(server)
        self.secret = (server.data_dir / "secret").read_text().strip().encode()

    def send(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        bearer: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> Answer:
        all_headers: dict[str, Any] = dict(headers or {})
        if bearer is not None:
            all_headers["Authorization"] = b"Bearer " + bearer.encode("utf-8", "surrogatepass")
        return self.client.request(method, path, query=query, body=body, headers=all_headers)

    def assert_alive(self) -> None:
        answer = self.send("GET", "/api/jobs/retrieveProducts", bearer=self.token)
        assert answer.status == 200, answer.describe()

    def end_jobs(self) -> None:
        """Terminate the jobs that valid generated requests started."""
        answer = self.send("GET", "/api/jobs/browse", query="itemsPerPage=1000", bearer=self.token)
        assert answer.status == 200, answer.describe()
        running = [j["id"] for j in json.loads(answer.body)["items"]]
        running = [
            job_id
            for job_id in running
            if json.loads(
                self.send("GET", "/api/jobs/retrieve", query=f"id={job_id}", bearer=self.token).body
            )["status"]["state"]
            not in ENDED
        ]
        if running:
            body = json.dumps({"items": [{"id": i} for i in running]}).encode()
            answer = self.send("POST", "/api/jobs/terminate", body=body, bearer=self.token)
            assert answer.status == 200, answer.describe()


@pytest.fixture
def target(fuzz_local: LocalServerProcess, leaks: LeakCheck) -> Iterator[Target]:
    assert fuzz_local.proc is not None
    target = Target(fuzz_local)
    target.assert_alive()
    start = log_size(fuzz_local.log_file)
    leaks.watch(fuzz_local.proc.pid, "embedded server")
    try:
        yield target
        target.assert_alive()
        assert_no_traceback(fuzz_local.log_file, start)
    finally:
        target.end_jobs()
        target.client.close()


def _bearer(target: Target, data: st.DataObject) -> str | None:
    """Mostly the valid token (to get past authentication), else a bad one."""
    if data.draw(st.integers(0, 3), label="bad token?") == 0:
        return data.draw(forged_tokens(target.secret), label="bearer")
    return target.token


@given(data=st.data())
def test_queries(target: Target, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(GET_CALLS.values())), label="path")
    query = data.draw(query_strings(), label="query")
    answer = target.send("GET", path, query=query, bearer=_bearer(target, data))
    assert_ucloud_answer(answer)
    target.assert_alive()


@given(data=st.data())
def test_bodies(target: Target, data: st.DataObject) -> None:
    call = data.draw(st.sampled_from(sorted(POST_CALLS)), label="call")
    body = data.draw(bodies(call), label="body")
    content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
    headers = {"Content-Type": content_type} if content_type else {}
    bearer = _bearer(target, data) if not call.startswith("auth.") else target.token
    answer = target.send("POST", POST_CALLS[call], body=body, bearer=bearer, headers=headers)
    assert_ucloud_answer(answer)
    if call.startswith("auth."):
        assert answer.status != 200 or call == "auth.refresh", answer.describe()
    target.assert_alive()


@given(data=st.data())
def test_bad_tokens_are_refused(target: Target, data: st.DataObject) -> None:
    method, path = data.draw(
        st.sampled_from(
            [("GET", p) for p in GET_CALLS.values()] + [("POST", p) for p in POST_CALLS.values()]
        ),
        label="call",
    )
    bearer = data.draw(forged_tokens(target.secret), label="bearer")
    body = b'{"items": [{"id": "1"}]}' if method == "POST" else None
    answer = target.send(method, path, body=body, bearer=bearer)
    assert_ucloud_answer(answer)
    if path not in PUBLIC:
        assert answer.status in (400, 401, 403), answer.describe()
    target.assert_alive()


@given(
    refresh=st.none() | header_texts,
    cookie=st.none() | header_texts,
    csrf=st.none() | header_texts,
    origin=st.none()
    | st.sampled_from(["http://localhost:9000", "null", "http://evil"])
    | header_texts,
)
def test_refresh_with_bad_tokens(
    target: Target, refresh: str | None, cookie: str | None, csrf: str | None, origin: str | None
) -> None:
    answer = target.send("POST", "/auth/refresh", bearer=refresh)
    assert_ucloud_answer(answer)
    assert answer.status in (401, 403), answer.describe()
    headers: dict[str, Any] = {}
    for name, value in (("Cookie", cookie), ("X-CSRFToken", csrf), ("Origin", origin)):
        if value is not None:
            headers[name] = value.encode("utf-8", "surrogatepass")
    if cookie is not None:
        headers["Cookie"] = b"refreshToken=" + headers["Cookie"]
    answer = target.send("POST", "/auth/refresh/web", headers=headers)
    assert_ucloud_answer(answer)
    assert answer.status in (400, 401, 403), answer.describe()
    target.assert_alive()


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND", "BREW"]


@given(data=st.data())
def test_methods_and_paths(target: Target, data: st.DataObject) -> None:
    known = sorted({*GET_CALLS.values(), *POST_CALLS.values(), "/ucloud/local/websocket"})
    base = data.draw(st.sampled_from(known), label="path")
    suffix = data.draw(
        st.sampled_from(["", "/", "//", "/x", "/..", "%2F", "/%C2%B2", "/%ff", ";a", "/%00"])
        | texts.map(lambda t: "/" + "".join(f"%{b:02X}" for b in t.encode())),
        label="suffix",
    )
    method = data.draw(st.sampled_from(METHODS), label="method")
    body = data.draw(st.none() | st.binary(max_size=32), label="body")
    answer = target.send(method, base + suffix, body=body, bearer=target.token)
    assert_ucloud_answer(answer, method)
    target.assert_alive()
