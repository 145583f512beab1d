"""``http11.ConnectionPool`` against real HTTP servers on loopback sockets: answers with a
length, chunked or ended by the connection, a kept-alive connection the server has closed
(the pool opens a new one), and a garbled answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from jupyter_ucloud.client.http11 import ConnectionPool, HttpProtocolError

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(answer: Answer) -> tuple[asyncio.Server, str, list[int]]:
    """A server whose every connection reads requests and lets ``answer`` reply; the list
    counts the connections it accepted."""
    accepted: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await answer(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", accepted


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return head + await reader.readexactly(int(line.split(b":")[1]))
    return head


def test_length_chunked_and_close_delimited_answers() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        assert b"Authorization: Bearer t\r\n" in request
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b'Content-Length: 7\r\n\r\n{"a":1}')
        request = await _read_request(reader)
        assert request.endswith(b"\r\n\r\n{}")
        assert b"Content-Length: 2\r\n" in request
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n")
        await _read_request(reader)
        writer.write(b"HTTP/1.0 500 Oops\r\n\r\nthe end")
        await writer.drain()

    async def main() -> None:
        server, base, accepted = await _serve(answer)
        pool = ConnectionPool()
        headers = {"Authorization": "Bearer t"}
        assert await pool.request("GET", f"{base}/x?y=1", headers, None) == (
            200,
            b'{"a":1}',
            "application/json",
        )
        assert await pool.request("POST", f"{base}/x", headers, b"{}") == (201, b"abcde", "")
        assert await pool.request("GET", f"{base}/x", headers, None) == (500, b"the end", "")
        assert len(accepted) == 1  # all three on one kept-alive connection
        await pool.aclose()
        server.close()

    asyncio.run(main())


def test_a_connection_the_server_closed_is_replaced() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()  # then close: the kept-alive connection ends on the server's side

    async def main() -> None:
        server, base, accepted = await _serve(answer)
        pool = ConnectionPool()
        for _ in range(3):
            assert await pool.request("GET", f"{base}/", {}, None) == (200, b"ok", "")
            await asyncio.sleep(0.05)
        assert len(accepted) == 3
        await pool.aclose()
        server.close()

    asyncio.run(main())


def test_garbled_answers_and_header_injection_are_refused() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        server, base, _ = await _serve(answer)
        pool = ConnectionPool()
        with pytest.raises(HttpProtocolError):
            await pool.request("GET", f"{base}/", {}, None)
        with pytest.raises(ValueError, match="invalid HTTP header"):
            await pool.request("GET", f"{base}/", {"X-Project": "p\r\nEvil: 1"}, None)
        with pytest.raises(ConnectionRefusedError):
            await pool.request("GET", "http://127.0.0.1:1/", {}, None)
        await pool.aclose()
        server.close()

    asyncio.run(main())
