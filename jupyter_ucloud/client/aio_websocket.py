"""One websocket client connection over aiohttp, for ``AsyncShell`` (the provider leg of the
Jupyter server's shells).

aiohttp parses frames in C and wakes its reader once per batch of frames; tornado's client
parses them in Python with a coroutine step per frame. Per keystroke (an input frame out, an ack
and an echo in) the client alone costs about a third less CPU, a relay process 40-50 us less
(``bench/bench_relay.py --acks``); the bridge's echo latency did not measurably change
(issue 14, docs/benchmarks.md).

The connections of one event loop share one ``aiohttp.ClientSession``: made for the first,
closed when the last has closed (so that nothing is left unclosed when the loop ends). Its
connections go through the environment's proxy, looked up once per host and session as
``AsyncUCloud`` does, and TLS is verified with the system's certificates; it keeps no cookies
(connections of different clients share it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import aiohttp
from yarl import URL

from .proxies import proxy_for

__all__ = ["WebSocket", "WebSocketClosed", "connect_websocket"]

log = logging.getLogger(__name__)

#: How long a close waits for the other end's close frame before the connection is dropped
#: (a provider that answers does in milliseconds; ``AsyncShell.close`` waits for it).
CLOSE_TIMEOUT = 1.0

_DATA = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


class WebSocketClosed(ConnectionError):
    """A frame could not be sent: the connection is closing or gone."""


class _Pool:
    """The ClientSession of one event loop and how many connections use it."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(
            # No limit on open websockets (aiohttp's default is 100 connections per session);
            # no connection kept for another handshake (a refused one is not reused).
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=True),
            timeout=aiohttp.ClientTimeout(total=None),  # the handshake is timed by the caller
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.users = 0
        self._proxies: dict[str, str | None] = {}

    def proxy_for(self, url: str) -> str | None:
        base = url.split("?", 1)[0]
        scheme, _, rest = base.partition("://")
        http = ("https" if scheme == "wss" else "http") + "://" + rest.split("/", 1)[0]
        if http not in self._proxies:
            self._proxies[http] = proxy_for(http)
        return self._proxies[http]


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()


def _take_pool() -> _Pool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None or pool.session.closed:
        pool = _pools[loop] = _Pool()
    pool.users += 1
    return pool


async def _release_pool(pool: _Pool) -> None:
    pool.users -= 1
    if pool.users <= 0:
        for loop, current in list(_pools.items()):
            if current is pool:
                del _pools[loop]
        await pool.session.close()


async def connect_websocket(
    url: str, *, headers: dict[str, str], timeout: float, max_size: int
) -> WebSocket:
    """Open a websocket to ``url`` within ``timeout`` seconds. Raises ``asyncio.TimeoutError``,
    ``aiohttp.ClientError`` (``WSServerHandshakeError``: refused with an HTTP status) or
    ``OSError``."""
    pool = _take_pool()
    try:
        ws = await asyncio.wait_for(
            pool.session.ws_connect(
                # already quoted: sent as it is; http(s) to a proxy, which may not know ws(s)
                URL("http" + url[2:] if url[:2].lower() == "ws" else url, encoded=True),
                headers=headers,
                max_msg_size=max_size,
                autoping=False,  # pings and pongs come to ``read``: see ``WebSocket.on_pong``
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT),
                proxy=pool.proxy_for(url),
            ),
            timeout,
        )
    except BaseException:
        await _release_pool(pool)
        raise
    return WebSocket(ws, pool)


class WebSocket:
    """An open connection: ``write`` frames (at once, in order), ``await read()`` them."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[bool], pool: _Pool) -> None:
        self._ws = ws
        self._pool: _Pool | None = pool
        #: The close code and reason of the other end's close frame (``None``, "": none came).
        self.close_code: int | None = None
        self.close_reason = ""
        #: Called when a pong arrives (while a ``read`` is waiting).
        self.on_pong: Callable[[], None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self.set_nodelay()

    @property
    def socket(self) -> Any:
        """The connection's socket (``asyncio``'s wrapper of it), ``None`` once it is gone."""
        return self._ws.get_extra_info("socket")

    def set_nodelay(self) -> None:
        """Small frames go at once, without waiting for Nagle and delayed ACKs (aiohttp sets
        this too; set here so that nothing depends on it)."""
        sock = self.socket
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def read(self) -> str | bytes | None:
        """The next data frame; ``None`` once the connection has ended (``close_code``,
        ``close_reason``: how). Pings are answered here."""
        ws = self._ws
        while True:
            message = await ws.receive()
            kind = message.type
            if kind in _DATA:
                return message.data  # type: ignore[no-any-return]
            if kind is aiohttp.WSMsgType.PING:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    _start(ws.pong(message.data))
                continue
            if kind is aiohttp.WSMsgType.PONG:
                if self.on_pong is not None:
                    self.on_pong()
                continue
            if kind is aiohttp.WSMsgType.CLOSE:
                self.close_code, self.close_reason = message.data, message.extra or ""
            return None  # CLOSE (answered already), CLOSING, CLOSED, ERROR

    def write(self, text: str) -> asyncio.Future[None]:
        """Send a text frame: it is in the transport's buffer when this returns. The future
        is done when the transport has room again (at once unless its buffer is full).
        Raises ``WebSocketClosed``."""
        try:
            return _start(self._ws.send_str(text))
        except (ConnectionError, aiohttp.ClientError) as err:
            raise WebSocketClosed(str(err)) from None

    async def send(self, text: str) -> None:
        """Send a text frame; return when the transport has room again."""
        await self.write(text)

    def ping(self) -> bool:
        """Send a ping; ``False`` when the connection is closing or gone."""
        try:
            _start(self._ws.ping())
        except (ConnectionError, aiohttp.ClientError):
            return False
        return True

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake (the other end does not
        answer): reads end with ``None``."""
        sock = self.socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.close()

    def close(self) -> None:
        """Start the closing handshake (in a task, for at most ``CLOSE_TIMEOUT`` s, then the
        connection is dropped); the session is let go when it is over."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        try:
            # aiohttp waits ``CLOSE_TIMEOUT`` for the close frame, but not for a full buffer
            await asyncio.wait_for(self._ws.close(), CLOSE_TIMEOUT)
        except Exception as err:  # gone already, or the other end does not answer: dropped
            log.debug("websocket closed without a handshake (%s)", type(err).__name__)
        finally:
            pool, self._pool = self._pool, None
            if pool is not None:
                await _release_pool(pool)

    async def wait_closed(self) -> None:
        """Close, and wait until the connection and (when this was its last) the session
        are closed."""
        self.close()
        assert self._closing is not None
        await asyncio.shield(self._closing)


def _start(coroutine: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    """Run ``coroutine`` up to its first wait here and now, the rest (if any) in a task.

    aiohttp writes a frame before it waits for anything (it waits only when the transport's
    buffer is full), so a frame is on its way, in order, when this returns: no task and no turn
    of the loop per keystroke. (Python 3.12's eager tasks do the same.)"""
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done
    return asyncio.ensure_future(_finish(_Resumed(coroutine, waiting)))


class _Resumed:
    """Awaits the rest of a coroutine that has already run to its first wait (on
    ``waiting``): what a task would have done with it."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._coroutine = coroutine
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting = self._coroutine, self._waiting
        while True:
            try:
                value = yield waiting
            except BaseException as err:  # cancelled: the coroutine is told
                try:
                    waiting = coroutine.throw(err)
                except StopIteration:
                    return
            else:
                try:
                    waiting = coroutine.send(value)
                except StopIteration:
                    return


async def _finish(rest: _Resumed) -> None:
    await rest
