"""Live provider session identifiers (and tokens) never reach the Jupyter server's log, also when
the provider leg fails or tornado writes a request's whole URI into a warning."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jupyter_ucloud.logredact import MARKER

from ..conftest import LocalServerProcess
from .conftest import Api

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class FakeProvider:
    """A provider host that misbehaves in a given way per connection and records the session
    identifiers it was sent."""

    sock: socket.socket
    modes: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.modes.pop(0) if self.modes else "close"
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            found = re.search(r"[?&]session=([^& ]+)", head)
            if found:
                self.sessions.append(found.group(1))
            request_line = head.split("\r\n", 1)[0]
            key = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", head)
            if mode == "500":  # an error page that quotes the request
                body = f"cannot serve {request_line}".encode()
                writer.write(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            elif mode == "bad-upgrade":  # 101 without a valid accept key
                writer.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: nonsense\r\n\r\n"
                )
            elif mode == "garbage-frames" and key:  # a real upgrade, then bytes that are no frame
                accept = base64.b64encode(
                    hashlib.sha1((key.group(1) + WS_GUID).encode()).digest()
                ).decode()
                writer.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\n"
                    + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
                    + b"\xff\xff"
                    + request_line.encode()
                )
            elif mode == "garbage-http":
                writer.write(f"NOT HTTP {request_line}\r\n\r\n".encode())
            await writer.drain()
            await asyncio.sleep(0.1)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
def provider_socket() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def misrouted_server(tmp_path: Path, provider_socket: socket.socket) -> Iterator[Any]:
    """An embedded server whose provider domain is the fake provider's address."""
    port = provider_socket.getsockname()[1]
    config = tmp_path / "local.json"
    config.write_text(json.dumps({"public_url": f"http://127.0.0.1:{port}"}))
    server = LocalServerProcess(tmp_path / "ucloud-local", config_file=config).start()
    yield server
    server.stop()


@pytest.fixture
def ucloud_config(misrouted_server: Any) -> dict[str, Any]:
    return {
        "host": misrouted_server.url,
        "credentials_file": str(misrouted_server.data_dir / "refresh_token"),
        "request_timeout": 5.0,
    }


MODES = ["500", "bad-upgrade", "garbage-frames", "garbage-http", "close"]


async def test_failing_provider_leg_logs_no_session(
    api: Api, provider_socket: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that answers with an error page quoting the request, a broken upgrade,
    garbage frames, garbage instead of HTTP, or nothing: the shell fails with a clear error,
    and neither the answer nor any log line holds the session identifier it was sent."""
    caplog.set_level(logging.DEBUG)
    provider = FakeProvider(provider_socket, modes=list(MODES))
    server = await asyncio.start_server(provider.handle, sock=provider_socket)
    try:
        job_id = await api.start_job()
        answers = [
            await api.error("POST", "shells", body={"jobId": job_id, "rank": 0}) for _ in MODES
        ]
        await api.terminate(job_id)
    finally:
        server.close()
    assert all(status in (502, 503) for status, _ in answers), answers
    # one session per shell (a handshake the provider hung up on is tried once more, RFC 9112)
    assert len(set(provider.sessions)) == len(MODES)
    everything = caplog.text + json.dumps(answers)
    assert "ucloud/local/websocket" in everything  # the errors name the provider's URL...
    for session in provider.sessions:
        assert session not in everything  # ...without its query


async def request_logged_with(
    http_server_client: Any, base_url: str, headers: dict[str, str], path: str
) -> int:
    """GET ``path`` (query included, sent as is) from the Jupyter server; its status."""
    response = await http_server_client.fetch(base_url + path, headers=headers, raise_error=False)
    return int(response.code)


async def test_jupyter_token_in_tornado_warnings_is_redacted(
    api: Api,
    jp_serverapp: Any,
    http_server_client: Any,
    jp_base_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Jupyter's access log scrubs ``?token=``, tornado's warning about the same request does
    not: with the extension loaded, neither holds the token. The server's start-up banner
    still shows its login URL."""
    caplog.set_level(logging.DEBUG)
    token = jp_serverapp.identity_provider.token
    banner = [
        r for r in caplog.get_records("setup") if token in r.getMessage() and "?token=" in r.msg
    ]
    assert banner, "the start-up banner shows the login URL"
    for path in (
        f"api/contents/%ff?token={token}",  # authenticated by the query token, then a 400
        f"ucloud/shells/nowhere/websocket?token={token}&since=1",
        f"ucloud/api/jobs/browse?itemsPerPage=%ff&token={token}",
    ):
        status = await request_logged_with(http_server_client, jp_base_url, {}, path)
        assert 400 <= status < 500, (path, status)
    assert token not in caplog.text
    assert f"?token={MARKER}" in caplog.text
