"""``AsyncUCloud`` asks a server on the loopback for no compression (it would only cost CPU on
both sides), and still reads an answer that comes compressed. Real HTTP servers: the embedded
server, and one in a thread of the test that gzips whatever it answers."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jupyter_ucloud import AsyncUCloud
from jupyter_ucloud.client.aio import _is_loopback

PAGE = {"items": [], "next": None, "padding": "x" * 4000}


class _Gzipping(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: GzipServer = self.server  # type: ignore[assignment]
        server.seen.append(dict(self.headers.items()))
        body = gzip.compress(json.dumps(PAGE).encode())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class GzipServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Gzipping)
        self.seen: list[dict[str, str]] = []


@pytest.fixture
def gzip_server() -> Iterator[GzipServer]:
    server = GzipServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_no_compression_is_asked_of_the_loopback(gzip_server: GzipServer) -> None:
    async def main() -> Any:
        async with AsyncUCloud(
            host=f"http://127.0.0.1:{gzip_server.server_address[1]}", api_token="uc1-secret"
        ) as uc:
            return await uc.jobs.browse()

    page = asyncio.run(main())  # compressed all the same: read
    assert page.items == []
    headers = {name.lower(): value for name, value in gzip_server.seen[-1].items()}
    assert "accept-encoding" not in headers
    assert headers["authorization"] == "Bearer uc1-secret"


def test_the_embedded_server_answers_uncompressed(local_server: Any) -> None:
    """A page over 1 KB, which the embedded server gzips when asked."""

    async def main() -> tuple[int, int]:
        async with AsyncUCloud(
            host=local_server.url, refresh_token=local_server.refresh_token
        ) as uc:
            http = uc._http_client()
            await uc.jobs.retrieve_products()  # a token
            bearer = uc._exchange.auth.secrets()[-1]
            async with http.get(
                f"{local_server.url}/api/products/v2/browse?itemsPerPage=250",
                headers={"Authorization": f"Bearer {bearer}"},
            ) as response:
                assert response.headers.get("Content-Encoding") is None
                assert response.request_info.headers.get("Accept-Encoding") is None
                return response.status, len(await response.read())

    status, size = asyncio.run(main())
    assert status == 200
    assert size > 1024


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.3.4.5", True),
        ("http://[::1]:8888", True),
        ("http://localhost:8000", True),
        ("http://LocalHost.", True),
        ("https://cloud.sdu.dk", False),
        ("http://10.0.0.1:8000", False),
        ("http://localhost.example.com", False),
    ],
)
def test_what_counts_as_the_loopback(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback
