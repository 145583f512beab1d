"""A client that stops reading does not hold the other clients of its shell back: within about a
second it stops pacing the output and catches up from the replay buffer later (or is told it
fell behind)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from typing import Any

import pytest

from .conftest import Api


@pytest.fixture
def ucloud_config(ucloud_config: dict[str, Any]) -> dict[str, Any]:
    """The default pacing timeouts (the other tests shorten the lone client's to 1 s)."""
    return {**ucloud_config, "slow_client_timeout": 5.0, "stalled_client_timeout": 1.0}


async def stalled_websocket(host: str, port: int, path: str, token: str) -> socket.socket:
    """A terminal websocket that is opened and then never read (a tiny receive buffer, so the
    server's writes to it stop at once). Asynchronous: the server runs on this loop."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: token {token}\r\n\r\n"
        ).encode(),
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await asyncio.wait_for(loop.sock_recv(sock, 1), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_stalled_client_does_not_hold_the_others_back(
    api: Api, connect, jp_serverapp: Any, jp_http_port: int, jp_base_url: str
) -> None:
    job_id = await api.start_job()
    shell = await api.open_shell(job_id)
    reader = await connect(shell["name"])
    await reader.wait_ready()
    token = jp_serverapp.identity_provider.token
    path = f"{jp_base_url}ucloud/shells/{shell['name']}/websocket"
    stalled = await stalled_websocket("127.0.0.1", jp_http_port, path, token)
    try:
        await asyncio.sleep(0.5)  # the stalled client is attached and paces, as any new client
        # Longer than 8 s at any speed (20 million lines, 169 MB, took under 8 s here).
        await reader.run("seq 1 2000000000 | cat")
        longest_gap, last, seen = 0.0, time.monotonic(), 0
        deadline = last + 8
        while time.monotonic() < deadline:
            frame = await reader.next_frame(timeout=10)
            assert frame is not None
            assert frame[0] == "stdout", frame
            now = time.monotonic()
            longest_gap, last = max(longest_gap, now - last), now
            seen += len(frame[1])
        await reader.send("stdin", "\x03")
        print(
            f"stalled second client: reader got {seen / 1e6:.1f} MB in 8 s, longest gap "
            f"{longest_gap:.2f} s"
        )
        # Before: about 10 s without a frame. A stalled client gets 1 s; the bound leaves room
        # for a loaded machine.
        assert longest_gap < 3.0, longest_gap
        assert seen > 5_000_000, seen
    finally:
        stalled.close()
    reader.close()
