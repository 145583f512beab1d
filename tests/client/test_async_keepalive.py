"""``AsyncUCloud`` keeps its HTTP connections alive: calls after the first reuse a connection
(no handshake, no client set-up per call), and a client used from a new event loop still
works (a pool belongs to the loop that opened it)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import psutil

from jupyter_ucloud import AsyncUCloud


def _connections_to(port: int) -> set[tuple[str, int]]:
    """Local addresses of this process's TCP connections to ``port`` that are open."""
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    }


def test_calls_reuse_one_connection(local_server: Any) -> None:
    port = urlsplit(local_server.url).port
    assert port is not None

    async def main() -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
        others = _connections_to(port)  # the fixtures' own
        uc = AsyncUCloud(host=local_server.url, refresh_token=local_server.refresh_token)
        await uc.jobs.browse()  # the token refresh and the first call
        first = _connections_to(port) - others
        for _ in range(10):
            await uc.jobs.browse()
            await uc.jobs.retrieve_products()
        later = _connections_to(port) - others
        await uc.close()
        return first, later

    first, later = asyncio.run(main())
    assert len(first) == 1
    assert later == first  # the same connection, kept alive


def test_a_client_works_from_a_new_event_loop(local_server: Any) -> None:
    uc = AsyncUCloud(host=local_server.url, refresh_token=local_server.refresh_token)
    for _ in range(2):  # the second loop cannot use the first one's connections
        page = asyncio.run(uc.jobs.browse())
        assert page.items is not None
