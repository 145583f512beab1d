"""Bad bodies and ids at the extension: a clear 4xx, never a 500 or a 502, and a body is never
buffered before authentication, or beyond ``MAX_BODY_BYTES``.

The raw-socket tests run their blocking client in a thread: the Jupyter server runs on this
test's event loop (pytest-jupyter), in this very process, so its RSS is this process's RSS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import psutil
import pytest
import requests
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from jupyter_ucloud.server.handlers.base import MAX_BODY_BYTES

from ..rawhttp import RawResponse, connect, read_response, request_head
from .conftest import Api

TOO_LARGE = f"The request body is larger than {MAX_BODY_BYTES} bytes."
POST_PATHS = [("api", "jobs"), ("api", "jobs", "terminate"), ("api", "jobs", "extend"), ("shells",)]


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 50_000, b"[" * 2_000 + b"]" * 2_000])
async def test_deeply_nested_json_is_a_400(api: Api, path: tuple[str, ...], body: bytes) -> None:
    status, error = await api.error("POST", *path, body=body)
    assert status == 400, error
    assert error["message"] == "The request body is not valid JSON: it is nested too deeply."


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _spec(**extra: Any) -> dict[str, Any]:
    spec = {
        "application": {"name": "batch", "version": "1"},
        "product": {"id": "batch-small", "category": "batch-small", "provider": "local"},
        "replicas": 1,
        "parameters": {"command": {"type": "text", "value": "true"}},
    }
    return {**spec, **extra}


def _deep_but_parseable(depth: int) -> list[tuple[tuple[str, ...], str]]:
    """Bodies nested as deep as the JSON parser takes, deep inside fields of every kind."""
    deep = _deep(depth)
    create = json.dumps({"items": [_spec(parameters={"command": {"type": "text", "value": 0}})]})
    return [
        (("api", "jobs"), create.replace('"value": 0', f'"value": {deep}')),
        (("api", "jobs"), json.dumps({"items": [_spec(resources=[0])]}).replace("[0]", deep)),
        (("api", "jobs"), json.dumps({"items": [_spec(name=0)]}).replace(": 0", f": {deep}")),
        (("api", "jobs", "terminate"), '{"items": [{"id": DEEP}]}'.replace("DEEP", deep)),
        (("api", "jobs", "terminate"), '{"items": DEEP}'.replace("DEEP", deep)),
        (
            ("api", "jobs", "extend"),
            '{"items": [{"jobId": "1", "requestedTime": DEEP}]}'.replace("DEEP", deep),
        ),
        (("shells",), '{"jobId": DEEP}'.replace("DEEP", deep)),
        (("shells",), '{"jobId": "1", "replaces": DEEP}'.replace("DEEP", deep)),
    ]


@pytest.mark.parametrize("depth", [100, 900, 960])
async def test_deep_but_parseable_bodies_are_4xx(api: Api, local_server: Any, depth: int) -> None:
    for path, body in _deep_but_parseable(depth):
        status, error = await api.error("POST", *path, body=body)
        assert status == 400, (path, depth, error)
        # the same bodies at the embedded server
        if path[0] == "api":
            url = local_server.url + "/" + "/".join(path)
            token = requests.post(
                local_server.url + "/auth/refresh",
                headers={"Authorization": f"Bearer {local_server.refresh_token}"},
                timeout=10,
            ).json()["accessToken"]
            answer = await asyncio.to_thread(
                requests.post,
                url,
                data=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert answer.status_code == 400, (path, depth, answer.text)
    assert (await api.call("GET", "api", "status"))["ok"] is True


async def test_look_alike_ids_get_ucloud_answers_through_the_proxy(api: Api) -> None:
    for bad in ("²", "\u0661", "\uff11"):
        status, error = await api.error("GET", "api", "jobs", "retrieve", id=bad)
        assert (status, error["why"]) == (403, "Write permission is required"), error
        for path, item in (
            ("terminate", {"id": bad}),
            ("extend", {"jobId": bad, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}}),
        ):
            status, error = await api.error("POST", "api", "jobs", path, body={"items": [item]})
            assert status == 404, error
            assert error["why"] == f"Permission denied or job not found ({bad})", error
        status, error = await api.error("GET", "api", "jobs", "browse", next=bad)
        assert (status, error["why"]) == (400, "Invalid request supplied"), error
        page = await api.call("GET", "api", "jobs", "browse", filterIds=bad)
        assert page["items"] == []


# --- bodies over the limit, and before authentication: a raw socket ---------------------------


@pytest.fixture
def raw_url(jp_fetch: object, jp_http_port: int, jp_base_url: str) -> Callable[..., str]:
    """URLs of the extension on the server's real port (``jp_fetch`` starts the listener)."""

    def url(*parts: str) -> str:
        return f"http://127.0.0.1:{jp_http_port}{jp_base_url}ucloud/" + "/".join(parts)

    return url


def _announce_and_read(
    url: str, headers: dict[str, str], start: bytes = b'{"items": [', method: str = "POST"
) -> RawResponse:
    """Promise a 100 MB body, send only its first bytes, and read the answer."""
    with connect(url) as sock:
        head = request_head(method, url, {**headers, "Content-Length": str(100 * 1024 * 1024)})
        sock.sendall(head + start)
        return read_response(sock, timeout=15)


def _auth(jp_auth_header: dict[str, str]) -> dict[str, str]:
    return {**jp_auth_header, "Content-Type": "application/json"}


@pytest.mark.parametrize("path", POST_PATHS)
async def test_content_length_over_the_limit_is_refused_before_the_body(
    api: Api, raw_url: Callable[..., str], jp_auth_header: dict[str, str], path: tuple[str, ...]
) -> None:
    response = await asyncio.to_thread(_announce_and_read, raw_url(*path), _auth(jp_auth_header))
    assert response.status == 413, response
    assert response.json()["message"] == TOO_LARGE
    assert (await api.call("GET", "api", "status"))["ok"] is True


def _chunked_upload(url: str, headers: dict[str, str]) -> tuple[RawResponse, int]:
    chunk = b" " * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with connect(url) as sock:
        sock.sendall(request_head("POST", url, {**headers, "Transfer-Encoding": "chunked"}))
        try:
            while sent < 100 * 1024 * 1024:
                sock.sendall(frame)
                sent += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return read_response(sock, timeout=15), sent


@pytest.mark.parametrize("path", [("api", "jobs", "terminate"), ("shells",)])
async def test_chunked_body_is_refused_once_it_passes_the_limit(
    api: Api, raw_url: Callable[..., str], jp_auth_header: dict[str, str], path: tuple[str, ...]
) -> None:
    response, sent = await asyncio.to_thread(_chunked_upload, raw_url(*path), _auth(jp_auth_header))
    assert response.status == 413, response
    assert response.json()["message"] == TOO_LARGE
    assert sent < 50 * 1024 * 1024, sent
    assert (await api.call("GET", "api", "status"))["ok"] is True


async def test_a_body_at_the_limit_is_read(api: Api) -> None:
    body = b'{"items": [{"id": "424242"}]}'
    padded = body + b" " * (MAX_BODY_BYTES - len(body))
    status, error = await api.error("POST", "api", "jobs", "terminate", body=padded)
    assert status == 404, error  # read, parsed and sent on: UCloud does not know the job
    status, error = await api.error("POST", "api", "jobs", "terminate", body=padded + b" ")
    assert status == 413, error
    assert error["message"] == TOO_LARGE


def _send_100_mb(url: str, headers: dict[str, str]) -> tuple[int, int]:
    """Try to send a 100 MB body; the bytes the server took, and the answer's status."""
    sent = 0
    block = b" " * (1024 * 1024)
    with connect(url) as sock:
        sock.sendall(
            request_head("POST", url, {**headers, "Content-Length": str(100 * len(block))})
        )
        try:
            while sent < 100 * len(block):
                sock.sendall(block)
                sent += len(block)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return sent, read_response(sock, timeout=30).status


async def test_a_100_mb_body_does_not_grow_the_server(
    raw_url: Callable[..., str], jp_auth_header: dict[str, str]
) -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    sent, status = await asyncio.to_thread(
        _send_100_mb, raw_url("api", "jobs"), _auth(jp_auth_header)
    )
    grown = process.memory_info().rss - before
    assert status == 413
    assert grown < 20 * 1024 * 1024, f"RSS grew by {grown / 1e6:.0f} MB ({sent / 1e6:.0f} MB sent)"
    assert sent < 50 * 1024 * 1024, sent


@pytest.mark.parametrize("path", [*POST_PATHS, ("api", "status")])
async def test_anonymous_huge_body_is_403_before_the_body(
    raw_url: Callable[..., str], path: tuple[str, ...]
) -> None:
    response = await asyncio.to_thread(_announce_and_read, raw_url(*path), {})
    assert response.status == 403, response


class TestUnauthenticatedAccessAllowed:
    """Jupyter's default lets a handler decide about anonymous requests: ours refuse them in
    ``prepare``, before a byte of the body is read."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config: Config) -> Config:
        jp_server_config.ServerApp.allow_unauthenticated_access = True
        return jp_server_config

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", ("api", "status")),
            ("GET", ("api", "jobs", "browse")),
            ("GET", ("shells",)),
            ("DELETE", ("shells", "nope")),
        ],
    )
    async def test_anonymous_huge_body_is_403_before_the_body(
        self, raw_url: Callable[..., str], method: str, path: tuple[str, ...]
    ) -> None:
        response = await asyncio.to_thread(
            _announce_and_read, raw_url(*path), {}, b"x" * 100, method
        )
        assert response.status == 403, response


class DenyUCloud(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "ucloud"


class TestUnauthorized:
    """A user the authorizer refuses gets 403 before the body is read, too."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config: Config) -> Config:
        jp_server_config.ServerApp.authorizer_class = DenyUCloud
        return jp_server_config

    @pytest.mark.parametrize("path", [*POST_PATHS, ("api", "status")])
    async def test_unauthorized_huge_body_is_403_before_the_body(
        self, raw_url: Callable[..., str], jp_auth_header: dict[str, str], path: tuple[str, ...]
    ) -> None:
        response = await asyncio.to_thread(_announce_and_read, raw_url(*path), jp_auth_header)
        assert response.status == 403, response
        assert "not authorized" in response.json()["message"]


async def test_since_takes_only_ascii_digits(api: Api, connect: Any) -> None:
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    (await connect(shell["name"], since=0)).close()
    for since in ("+0", "\u0660", "0_0", "0" * 19 + "1"):
        with pytest.raises(HTTPClientError) as info:
            await connect(shell["name"], since=since)
        assert info.value.code == 400, since
    await api.call("DELETE", "shells", shell["name"])
    await api.terminate(job_id)


def _get(url: str, headers: dict[str, str]) -> RawResponse:
    with connect(url) as sock:
        sock.sendall(request_head("GET", url, headers))
        return read_response(sock, timeout=15)


async def test_unknown_paths_under_ucloud_are_json_404s(
    raw_url: Callable[..., str], jp_auth_header: dict[str, str], caplog: Any
) -> None:
    """Found by tests/fuzz: a path that is not UTF-8 reached Jupyter's own 404 page, which
    logged a traceback (its write_error failed) while it answered."""
    for parts in (("api", "jobs", "nope", "%ff"), ("shells", "%C2%B2"), ("api", "x"), ("nope",)):
        response = await asyncio.to_thread(_get, raw_url(*parts), jp_auth_header)
        assert response.status == 404, (parts, response)
        assert "No ucloud endpoint" in response.json()["message"], response
        anonymous = await asyncio.to_thread(_get, raw_url(*parts), {})
        assert anonymous.status == 403, (parts, anonymous)
    assert "Traceback" not in caplog.text
    assert "Uncaught exception" not in caplog.text
