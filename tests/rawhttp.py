"""A raw HTTP/1.1 client on a plain socket, for what HTTP libraries will not do: send headers
that promise a body and then stop, send a request line halfway, or stream a chunked body and
watch when the server answers."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["RawResponse", "connect", "read_response", "request_head", "wait_closed"]


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(url: str, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to the host and port of ``url``."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout)
    sock.settimeout(timeout)
    return sock


def request_head(method: str, url: str, headers: dict[str, str]) -> bytes:
    """The request line and headers of a request to ``url`` (path and query as given)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_response(sock: socket.socket, timeout: float = 10.0) -> RawResponse:
    """Read one response (headers and a ``Content-Length`` body). A reset after the response is
    complete is fine: a server that did not read a whole request body closes the connection
    with unread data, which makes the kernel send a reset."""
    deadline = time.monotonic() + timeout
    data = b""
    head: bytes | None = None
    length = 0
    while True:
        if head is None and b"\r\n\r\n" in data:
            head, data = data.split(b"\r\n\r\n", 1)
            fields = head.decode("latin-1").split("\r\n")
            status = int(fields[0].split(" ")[1])
            headers = {}
            for line in fields[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
        if head is not None and len(data) >= length:
            return RawResponse(status, headers, data[:length])
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no complete response in {timeout} s: {head!r} {data[:200]!r}"
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a complete response: {head!r} {data[:200]!r}"
        data += chunk


def wait_closed(sock: socket.socket, timeout: float) -> float:
    """Seconds until the server closes ``sock`` (reading and dropping what it sends)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the server kept the connection open for {timeout} s"
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except ConnectionResetError:
            return time.monotonic() - start
