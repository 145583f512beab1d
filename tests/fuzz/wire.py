"""A raw HTTP client (``http.client``: it sends a query and headers as given) and the checks every
fuzzed answer must pass."""

from __future__ import annotations

import gzip
import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def describe(self) -> str:
        return f"{self.status} {self.headers.get('content-type')} {self.body[:300]!r}"


class Client:
    """One keep-alive connection to a server, reopened when the server closes it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.connection: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: dict[str, Any] | None = None,
    ) -> Answer:
        target = self.prefix + path + (f"?{query}" if query else "")
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.connection.request(method, target, body=body, headers=headers or {})
                response = self.connection.getresponse()
                data = response.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # The server may close a connection after refusing a body it did not read.
                self.close()
                if attempt:
                    raise
                continue
            except BaseException:
                self.close()
                raise
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                self.close()
            if answer_headers.get("content-encoding") == "gzip":
                data = gzip.decompress(data)
            return Answer(response.status, answer_headers, data)
        raise AssertionError("not reached")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def assert_ucloud_answer(answer: Answer, method: str = "GET") -> None:
    """No 5xx, and every error in UCloud's shape: ``{statusCode, why, errorCode, detailedCode}``
    JSON, or Go's plain-text ``404 page not found`` for an unknown path or method."""
    assert answer.status < 500, answer.describe()
    if answer.status < 400:
        return
    if method == "HEAD":
        assert answer.body == b"", answer.describe()
        return
    if answer.headers.get("content-type", "").startswith("text/plain"):
        assert answer.status == 404, answer.describe()
        assert answer.body == b"404 page not found\n", answer.describe()
        return
    assert answer.headers.get("content-type") == "application/json; charset=utf-8", (
        answer.describe()
    )
    body = json.loads(answer.body)
    assert isinstance(body, dict), answer.describe()
    assert set(body) == {"statusCode", "why", "errorCode", "detailedCode"}, answer.describe()
    assert body["statusCode"] == answer.status, answer.describe()
    assert isinstance(body["why"], str), answer.describe()
    assert body["why"], answer.describe()
    assert body["why"][0] == body["why"][0].upper(), answer.describe()


def assert_jupyter_answer(answer: Answer, method: str = "GET") -> None:
    """No 5xx; an error from the extension's API is JSON with a ``message``."""
    assert answer.status < 500, answer.describe()
    if method == "HEAD":
        assert answer.body == b"", answer.describe()
    elif answer.status >= 400 and answer.headers.get("content-type", "").startswith(
        "application/json"
    ):
        body = json.loads(answer.body)
        assert isinstance(body, dict), answer.describe()
        assert isinstance(body.get("message"), str), answer.describe()
