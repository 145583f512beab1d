"""The jobs proxy passes UCloud's JSON answers on as they came, without parsing and dumping them
again; an answer that is not UTF-8 JSON is read as before (parsed, or a 502).

The UCloud here is a real HTTP server in a thread of the test, which answers what each test
tells it to (a broken UCloud is what these tests are about; the embedded server never is one).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .conftest import Api, Fetch

API_TOKEN = "uc1-relaytestsecret0123456789"


class _Answers(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as UCloud

    def do_GET(self) -> None:
        server: FakeUCloud = self.server  # type: ignore[assignment]
        server.requests.append((self.path, self.headers.get("Authorization", "")))
        status, content_type, body = server.answer
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeUCloud(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Answers)
        self.answer: tuple[int, str, bytes] = (200, "application/json", b"{}")
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def fake_ucloud() -> Iterator[FakeUCloud]:
    server = FakeUCloud()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def ucloud_config(fake_ucloud: FakeUCloud) -> dict[str, Any]:
    return {"host": fake_ucloud.url, "api_token": API_TOKEN, "request_timeout": 5.0}


async def _raw(fetch: Fetch, *parts: str, **params: str) -> tuple[int, str, bytes]:
    response = await fetch("ucloud", *parts, method="GET", params=params, raise_error=False)
    return response.code, response.headers.get("Content-Type", ""), response.body


async def test_json_answers_are_passed_on_byte_for_byte(
    jp_fetch: Fetch, fake_ucloud: FakeUCloud
) -> None:
    # Spacing, key order, escapes and non-ASCII as UCloud wrote them: json.dumps would change
    # every one of them, so this fails if the proxy parses and dumps the answer again.
    body = '{"next":null,  "items":[{"id":"7","title":"caf\u00e9 \\u00e9 <\\/x>"}],"a":1.50}'
    for content_type in ("application/json", "application/json; charset=utf-8"):
        fake_ucloud.answer = (200, content_type, body.encode())
        status, sent_type, sent = await _raw(jp_fetch, "api", "jobs", "browse")
        assert (status, sent_type, sent) == (200, "application/json", body.encode())
        status, _, sent = await _raw(jp_fetch, "api", "jobs", "retrieve", id="7")
        assert (status, sent) == (200, body.encode())
    # The query went upstream checked and encoded; the API token never came back.
    assert fake_ucloud.requests[-1] == ("/api/jobs/retrieve?id=7", f"Bearer {API_TOKEN}")
    assert API_TOKEN not in sent.decode()


async def test_answers_that_are_not_utf8_json_are_read_as_before(
    jp_fetch: Fetch, fake_ucloud: FakeUCloud
) -> None:
    # JSON under another name or in another charset: parsed and sent as JSON.
    fake_ucloud.answer = (200, "text/plain", b'{"items": [], "next": null}')
    status, sent_type, sent = await _raw(jp_fetch, "api", "jobs", "browse")
    assert (status, sent_type) == (200, "application/json")
    assert json.loads(sent) == {"items": [], "next": None}
    utf16 = '{"items": [], "title": "caf\u00e9"}'.encode("utf-16")
    fake_ucloud.answer = (200, "application/json; charset=utf-16", utf16)
    status, _, sent = await _raw(jp_fetch, "api", "jobs", "browse")
    assert status == 200
    assert json.loads(sent) == {"items": [], "title": "caf\u00e9"}
    # An empty answer is JSON null, as it always was.
    fake_ucloud.answer = (200, "application/json", b"")
    assert await _raw(jp_fetch, "api", "jobs", "browse") == (200, "application/json", b"null")
    # Not JSON at all: a 502 that says so, never the page itself.
    fake_ucloud.answer = (200, "text/html", b"<html>a proxy's login page</html>")
    status, _, sent = await _raw(jp_fetch, "api", "jobs", "browse")
    assert status == 502
    assert "could not be read" in json.loads(sent)["message"]
    assert b"<html>" not in sent


async def test_upstream_errors_keep_their_shape(api: Api, fake_ucloud: FakeUCloud) -> None:
    why = {"statusCode": 404, "why": "No such job", "errorCode": "NOT_FOUND"}
    fake_ucloud.answer = (404, "application/json", json.dumps(why).encode())
    status, error = await api.error("GET", "api", "jobs", "retrieve", id="5")
    assert status == 404
    assert (error["why"], error["errorCode"]) == ("No such job", "NOT_FOUND")
    fake_ucloud.answer = (500, "text/plain", b"boom")
    status, error = await api.error("GET", "api", "jobs", "retrieve", id="5")
    assert status == 502
    assert "boom" in error["message"]


async def test_repeated_queries_are_checked_every_time(api: Api, fake_ucloud: FakeUCloud) -> None:
    """The checked form of a query string is remembered; a bad one is refused every time, and
    each good one goes upstream as its own."""
    fake_ucloud.answer = (200, "application/json", b'{"items":[],"next":null}')
    for _ in range(3):
        status, error = await api.error("GET", "api", "jobs", "browse", itemsPerPage="ten")
        assert status == 400
        assert "itemsPerPage" in error["message"]
    before = len(fake_ucloud.requests)
    for size in ("10", "25", "10", "25"):
        assert await api.call("GET", "api", "jobs", "browse", itemsPerPage=size) == {
            "items": [],
            "next": None,
        }
    paths = [path for path, _ in fake_ucloud.requests[before:]]
    assert paths == [f"/api/jobs/browse?itemsPerPage={n}" for n in ("10", "25", "10", "25")]
    # Names the call does not know are not passed on.
    await api.call("GET", "api", "jobs", "browse", itemsPerPage="5", color="red")
    assert fake_ucloud.requests[-1][0] == "/api/jobs/browse?itemsPerPage=5"
