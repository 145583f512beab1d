"""Every endpoint needs an authenticated and authorized user."""

from __future__ import annotations

import re
from typing import Any

from tornado.httpclient import HTTPClientError

from jupyter_ucloud.server.handlers import handlers

# (method, path under the base URL, body) for every route; the test checks all routes are here.
WALK: list[tuple[str, str, str | None]] = [
    ("GET", "ucloud/api/status", None),
    ("GET", "ucloud/api/applications", None),
    ("GET", "ucloud/api/jobs/retrieveProducts", None),
    ("GET", "ucloud/api/jobs/browse", None),
    ("GET", "ucloud/api/jobs/retrieve?id=1", None),
    ("POST", "ucloud/api/jobs", '{"items": []}'),
    ("POST", "ucloud/api/jobs/terminate", '{"items": []}'),
    ("POST", "ucloud/api/jobs/extend", '{"items": []}'),
    ("GET", "ucloud/shells", None),
    ("POST", "ucloud/shells", '{"jobId": "1", "rank": 0}'),
    ("GET", "ucloud/shells/ucloud-1-0-abcdef12", None),
    ("DELETE", "ucloud/shells/ucloud-1-0-abcdef12", None),
    ("WS", "ucloud/shells/ucloud-1-0-abcdef12/websocket", None),
    ("WS", "ucloud/api/jobs/follow?id=1", None),
    ("GET", "ucloud/api/nothing/here", None),
]


def test_the_walk_covers_every_route() -> None:
    for pattern, _ in handlers():
        regex = re.compile(pattern.lstrip("/") + "$")
        assert any(regex.match(path.split("?")[0]) for _, path, _ in WALK), pattern


async def _walk(
    jp_fetch: Any, jp_ws_fetch: Any, headers: dict[str, str]
) -> list[tuple[str, int, str]]:
    answers = []
    for method, path, body in WALK:
        parts = path.split("?")[0].split("/")
        params = dict([path.split("?")[1].split("=")]) if "?" in path else None
        try:
            if method == "WS":
                ws = await jp_ws_fetch(*parts, headers=dict(headers), params=params)
                ws.close()
                code, text = 101, ""
            else:
                kwargs: dict[str, Any] = {"method": method, "headers": dict(headers)}
                if body is not None:
                    kwargs["body"] = body
                if params:
                    kwargs["params"] = params
                if method == "DELETE":
                    kwargs["allow_nonstandard_methods"] = True
                response = await jp_fetch(*parts, **kwargs)
                code, text = response.code, response.body.decode()
        except HTTPClientError as err:
            code = err.code
            text = err.response.body.decode() if err.response is not None else ""
        answers.append((f"{method} {path}", code, text))
    return answers


async def test_no_endpoint_answers_without_authentication(jp_fetch, jp_ws_fetch) -> None:
    answers = await _walk(jp_fetch, jp_ws_fetch, {"Authorization": ""})
    assert all(code == 403 for _, code, _ in answers), answers


async def test_the_walk_reaches_the_handlers_when_authenticated(jp_fetch, jp_ws_fetch) -> None:
    """The control: with credentials nothing is refused, so the 403s above mean something."""
    answers = await _walk(jp_fetch, jp_ws_fetch, {})
    # UCloud itself answers 403 for a job id that is not yours; that 403 carries its `why`.
    refused = [a for a in answers if a[1] in (401, 403) and '"why"' not in a[2]]
    assert not refused, answers
