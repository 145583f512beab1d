"""``all_on_socket`` and ``write_text_frames``: a real tornado websocket server and a raw client
that reads or does not."""

from __future__ import annotations

import asyncio
import base64
import os
import socket

import pytest
import tornado.httpserver
import tornado.web
import tornado.websocket
from tornado.websocket import WebSocketClosedError

from jupyter_ucloud.tornado_ws import all_on_socket, write_text_frames

FRAME = b"x" * 65536


class Handler(tornado.websocket.WebSocketHandler):
    opened: asyncio.Queue[Handler]

    def open(self) -> None:
        self.opened.put_nowait(self)


async def _serve() -> tuple[tornado.httpserver.HTTPServer, int, asyncio.Queue[Handler]]:
    opened: asyncio.Queue[Handler] = asyncio.Queue()
    handler = type("H", (Handler,), {"opened": opened})
    app = tornado.web.Application([(r"/ws", handler)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    return server, sock.getsockname()[1], opened


async def _raw_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket client that reads nothing unless told to."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


def test_true_once_the_socket_took_the_frame_false_when_it_pushes_back() -> None:
    async def main() -> None:
        server, port, opened = await _serve()
        reader, writer = await _raw_client(port)
        handler = await asyncio.wait_for(opened.get(), 10)
        assert all_on_socket(handler)

        handler.write_message(b"hello")
        assert all_on_socket(handler)  # at once, while write_message's future is not done

        # The client reads nothing: the kernel's buffers fill, then frames stay in tornado's.
        written = 0
        while all_on_socket(handler):
            handler.write_message(FRAME)
            written += len(FRAME)
            assert written < 256 * 2**20, "the socket never pushed back"
        assert not all_on_socket(handler)

        # The client reads: everything reaches the socket again.
        async def read_all() -> None:
            while True:
                await reader.read(2**20)

        reading = asyncio.ensure_future(read_all())
        for _ in range(500):
            if all_on_socket(handler):
                break
            await asyncio.sleep(0.01)
        assert all_on_socket(handler)

        handler.close()
        await asyncio.sleep(0.1)
        assert not all_on_socket(handler)
        reading.cancel()
        writer.close()
        server.stop()

    asyncio.run(main())


async def _read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(size), 10)


def test_frames_written_together_are_the_bytes_write_message_writes() -> None:
    """Across the three header sizes (7-bit, 16-bit and 64-bit lengths); all of them arrive,
    in order, from one write."""
    payloads = [b"", b"a", "\u00e6\u00f8\u00e5 \u2713".encode(), b"y" * 125, b"y" * 126]
    payloads += [b"z" * 65535, b"z" * 65536, b'{"type":"message"}']

    async def main() -> None:
        server, port, opened = await _serve()
        reader, writer = await _raw_client(port)
        handler = await asyncio.wait_for(opened.get(), 10)
        expected = b""
        for payload in payloads:
            await handler.write_message(payload)
            expected += await _read_exactly(reader, len(payload) + _header_size(payload))
        await write_text_frames(handler, payloads)
        assert await _read_exactly(reader, len(expected)) == expected

        handler.close()
        await asyncio.sleep(0.1)
        with pytest.raises(WebSocketClosedError):
            write_text_frames(handler, [b"late"])
        writer.close()
        server.stop()

    asyncio.run(main())


def _header_size(payload: bytes) -> int:
    return 2 if len(payload) < 126 else 4 if len(payload) <= 0xFFFF else 10
