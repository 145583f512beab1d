"""The wire module: requests built from the call table, errors parsed, tokens read."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from jupyter_ucloud.client import prepare
from jupyter_ucloud.client.errors import UCloudError, redact
from jupyter_ucloud.client.transport import (
    Endpoint,
    Exchange,
    HttpResponse,
    RefreshTokenAuth,
    build_request,
    error_from_response,
    parse_response,
    token_expiry,
)
from jupyter_ucloud.protocol import JobState

UCLOUD = Endpoint("https://cloud.example.org")
PROXY = Endpoint("http://127.0.0.1:8888/lab-base", "/ucloud")


def test_browse_is_a_get_with_ucloud_query_encoding_and_web_client_headers() -> None:
    request = build_request(
        UCLOUD,
        prepare.browse(filter_state=JobState.RUNNING, items_per_page=10, include_product=True),
        "Bearer jwt",
        "project-1",
    )
    assert request.method == "GET"
    assert request.url == (
        "https://cloud.example.org/api/jobs/browse"
        "?filterState=RUNNING&includeProduct=true&itemsPerPage=10"
    )
    assert request.headers == {
        "Accept": "application/json",
        "Authorization": "Bearer jwt",
        "Project": "project-1",
    }
    assert request.body is None
    assert "jwt" not in repr(request)


def test_interactive_session_is_a_bulk_post_to_the_odd_path() -> None:
    request = build_request(
        UCLOUD, prepare.open_interactive_session("123", 1, "SHELL"), "Bearer t", None
    )
    assert (request.method, request.url) == (
        "POST",
        "https://cloud.example.org/api/jobs/interactiveSession",
    )
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Project" not in request.headers
    assert json.loads(request.body or b"") == {
        "items": [{"id": "123", "rank": 1, "sessionType": "SHELL"}]
    }


def test_proxy_prefixes_paths_and_sends_no_project_header() -> None:
    request = build_request(PROXY, prepare.create([_spec()]), "token abc", "project-1")
    assert request.url == "http://127.0.0.1:8888/lab-base/ucloud/api/jobs"
    assert request.headers["Authorization"] == "token abc"
    assert "Project" not in request.headers
    assert json.loads(request.body or b"")["items"][0]["application"] == {
        "name": "terminal",
        "version": "1",
    }
    shell = build_request(PROXY, prepare.proxy_shell_create("7", 2, 80, 24), None, None)
    assert shell.url == "http://127.0.0.1:8888/lab-base/ucloud/shells"
    assert json.loads(shell.body or b"") == {"jobId": "7", "rank": 2, "cols": 80, "rows": 24}
    delete = build_request(PROXY, prepare.proxy_shell_delete("ucloud-7-2-abcd/x"), None, None)
    assert (delete.method, delete.url.rsplit("/", 1)[1]) == ("DELETE", "ucloud-7-2-abcd%2Fx")


def _spec() -> dict[str, object]:
    return {
        "application": {"name": "terminal", "version": "1"},
        "product": {"id": "compute-example", "category": "compute-example", "provider": "local"},
        "replicas": 1,
    }


@pytest.mark.parametrize(
    ("status", "body", "why", "code"),
    [
        (
            404,
            b'{"statusCode":404,"why":"Permission denied or job not found (42)",'
            b'"errorCode":"","detailedCode":0}',
            "Permission denied or job not found (42)",
            None,
        ),
        (
            400,
            b'{"why":"Nope","errorCode":"FEATURE_NOT_SUPPORTED_BY_PROVIDER"}',
            "Nope",
            "FEATURE_NOT_SUPPORTED_BY_PROVIDER",
        ),
        (404, b"404 page not found\n", "404 page not found", None),
        (403, b'{"message": "Forbidden by Jupyter", "reason": null}', "Forbidden by Jupyter", None),
        (502, b"<html><body>Bad Gateway</body></html>", "Bad gateway", None),
        (500, b"", "Internal server error", None),
        (400, b"x" * 5000, "x" * 500 + "...", None),
    ],
)
def test_errors_carry_status_why_code_and_call(
    status: int, body: bytes, why: str, code: str | None
) -> None:
    request = build_request(UCLOUD, prepare.retrieve("42"), None, None)
    error = error_from_response(HttpResponse(status, body), request)
    assert (error.status, error.why, error.error_code, error.call) == (
        status,
        why,
        code,
        "jobs.retrieve",
    )
    assert str(error).startswith(f"jobs.retrieve: {status} ")


def test_a_2xx_that_does_not_parse_is_a_clear_error() -> None:
    prepared = prepare.retrieve("42")
    request = build_request(UCLOUD, prepared, None, None)
    with pytest.raises(UCloudError, match="unexpected answer from UCloud at"):
        parse_response(prepared, HttpResponse(200, b'{"id": 5}'), request)
    with pytest.raises(UCloudError, match="unexpected answer"):
        parse_response(prepared, HttpResponse(200, b"<html>"), request)


def _jwt(lifetime: float, sub: str = "user") -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + int(lifetime)}, "k" * 64, "HS512")


def test_refresh_token_auth_refreshes_when_under_three_minutes_left() -> None:
    clock = [1000.0]
    auth = RefreshTokenAuth("refresh-secret", clock=lambda: clock[0])
    exchange = Exchange(UCLOUD, auth)
    token = _jwt(600)
    calls = exchange.run(prepare.retrieve_products())
    refresh = next(calls)
    assert (refresh.url, refresh.headers["Authorization"]) == (
        "https://cloud.example.org/auth/refresh",
        "Bearer refresh-secret",
    )
    body = json.dumps({"accessToken": token, "csrfToken": "c"}).encode()
    real = calls.send(HttpResponse(200, body))
    assert real.headers["Authorization"] == f"Bearer {token}"
    assert auth.username == "user"
    expiry = token_expiry(token)
    assert expiry is not None
    clock[0] = expiry - 181  # still more than 3 minutes: no refresh
    assert not auth.needs_refresh()
    clock[0] = expiry - 179
    assert auth.needs_refresh()


def test_a_403_triggers_exactly_one_refresh_and_retry() -> None:
    auth = RefreshTokenAuth("r")
    calls = Exchange(UCLOUD, auth).run(prepare.retrieve_products())
    next(calls)
    tokens = json.dumps({"accessToken": _jwt(600), "csrfToken": "c"}).encode()
    calls.send(HttpResponse(200, tokens))  # -> the call
    again = calls.send(HttpResponse(403, b'{"why":"Forbidden"}'))  # -> a forced refresh
    assert again.url.endswith("/auth/refresh")
    retry = calls.send(HttpResponse(200, tokens))
    assert retry.url.endswith("/api/jobs/retrieveProducts")
    with pytest.raises(UCloudError) as caught:
        calls.send(HttpResponse(403, b'{"why":"Forbidden"}'))  # no second retry
    assert caught.value.status == 403
    assert auth.refresh_count == 2


def test_a_refused_refresh_token_says_so() -> None:
    calls = Exchange(UCLOUD, RefreshTokenAuth("r")).run(prepare.retrieve_products())
    next(calls)
    with pytest.raises(UCloudError, match="refresh token was refused") as caught:
        calls.send(HttpResponse(401, b'{"why":"Unauthorized"}'))
    assert (caught.value.status, caught.value.call) == (401, "auth.refresh")


def test_redact() -> None:
    assert redact("a secret-token b", ["secret-token", None, ""]) == "a *** b"
