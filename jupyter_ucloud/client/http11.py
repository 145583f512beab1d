"""A small HTTP/1.1 client with kept-alive connections, on asyncio streams, for ``AsyncUCloud``.

Why not httpx for every call: on this project's calls (small JSON requests and answers) httpx
costs about 1.7 ms of CPU per request in the calling process (its transport layers, anyio,
h11, URL and header models), more than the UCloud server spends answering. The extension's
proxy pays that on every browser call (issue 14: the API at most 2 ms over a direct call). This
client writes the request line and headers itself and reads the answer with the stream's own
buffer: about 0.1 ms per request.

It speaks only what UCloud's REST API needs: one request at a time per connection, bodies with
``Content-Length`` or chunked, answers ending with the connection; no redirects (not followed,
as before), no proxies (``AsyncUCloud`` uses httpx when a proxy is configured for the host), TLS
with the same certificate store as httpx (certifi, ``SSL_CERT_FILE``/``SSL_CERT_DIR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["ConnectionPool", "HttpProtocolError"]

#: Largest header block and chunk-size line accepted from a server.
MAX_HEAD = 64 * 1024


class HttpProtocolError(ValueError):
    """The server's answer is not HTTP/1.x as this client reads it."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def usable(self, expiry: float) -> bool:
        """Still open, nothing unasked-for buffered, not idle too long (the server closes an
        idle connection on its side; the loop has then seen the end of the stream)."""
        reader = self.reader
        return (
            not reader.at_eof()
            and not self.writer.is_closing()
            and not reader._buffer  # type: ignore[attr-defined]  # a stray byte: not reusable
            and reader.exception() is None
            and time.monotonic() - self.idle_since < expiry
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


_ssl_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """The certificate store httpx uses (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``)."""
    global _ssl_context
    if _ssl_context is None:
        import httpx

        make = getattr(httpx, "create_ssl_context", None)
        _ssl_context = make() if make is not None else ssl.create_default_context()
    return _ssl_context


def _header_line(name: str, value: str) -> str:
    if any(c in name or c in value for c in "\r\n\0") or not name:
        raise ValueError(f"invalid HTTP header {name!r}")
    return f"{name}: {value}\r\n"


class ConnectionPool:
    """Kept-alive connections per (scheme, host, port); ``request`` is safe to call from many
    tasks at once (each takes a connection of its own)."""

    def __init__(self, *, max_idle: int = 20, idle_expiry: float = 60.0) -> None:
        self.max_idle = max_idle
        self.idle_expiry = idle_expiry
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self.is_closed = False

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes, str]:
        """``(status, body, content type)`` of one request. Raises ``OSError`` when the server
        cannot be reached or drops the connection, ``HttpProtocolError`` on a garbled answer
        (callers put their own time limit around this)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url.split('?')[0]}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc.rpartition('@')[2]}\r\n"
        for name, value in headers.items():
            head += _header_line(name, value)
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Length: {len(body or b'')}\r\n"
        data = head.encode("latin-1") + b"\r\n" + (body or b"")
        while True:
            conn, reused = await self._connection(key, parts.hostname)
            try:
                conn.writer.write(data)
                status, answer, content_type, keep = await self._read_answer(conn.reader, method)
            except (OSError, asyncio.IncompleteReadError) as err:
                conn.close()
                received = isinstance(err, asyncio.IncompleteReadError) and bool(err.partial)
                if reused and not received:
                    continue  # the server closed the kept-alive connection: once more, anew
                if isinstance(err, asyncio.IncompleteReadError):
                    raise ConnectionResetError("the server closed the connection") from None
                raise
            except BaseException:
                conn.close()  # cancelled or garbled: the connection's state is unknown
                raise
            if keep and not self.is_closed:
                self._release(key, conn)
            else:
                conn.close()
            return status, answer, content_type

    async def _connection(self, key: tuple[str, str, int], host: str) -> tuple[_Connection, bool]:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable(self.idle_expiry):
                return conn, True
            conn.close()
        scheme, _, port = key
        tls = _tls() if scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls else None, limit=MAX_HEAD
        )
        return _Connection(reader, writer), False

    def _release(self, key: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    @staticmethod
    async def _read_answer(
        reader: asyncio.StreamReader, method: str
    ) -> tuple[int, bytes, str, bool]:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise HttpProtocolError("the answer's headers are too large") from None
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise HttpProtocolError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
            status = int(code)
            if status >= 200 or status == 101:
                break  # 1xx (100 Continue, 103 Early Hints): the answer follows
        fields: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        connection = fields.get("connection", "").lower()
        keep = version == "HTTP/1.1" and "close" not in connection
        if method == "HEAD" or status in (204, 304) or status < 200:
            body = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in fields:
            length = fields["content-length"]
            if not length.isdigit():
                raise HttpProtocolError(f"bad Content-Length {length[:20]!r}")
            body = await reader.readexactly(int(length))
        else:
            body = await reader.read()  # until the server closes
            keep = False
        return status, body, fields.get("content-type", ""), keep

    def _drop_idle(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their answer is read."""
        self.is_closed = True
        self._drop_idle()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HttpProtocolError("a chunk does not end with CRLF")
