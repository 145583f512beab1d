"""``AsyncUCloud``: the asynchronous client, for the Jupyter server extension and other asyncio
code. Same calls as ``UCloud``, awaited; the wire is shared (``transport``).

HTTP calls go over one ``aiohttp.ClientSession`` per client and event loop, which keeps its
connections alive: a call costs no TCP (or TLS) handshake and no client set-up, where tornado's
simple HTTP client opened a connection for every call (issue 14: ``jobs.browse`` through the
extension cost 2.5-6 ms more than a direct call). aiohttp costs about 0.2 ms of CPU per call here,
httpx about 1.7 ms. The proxy comes from the environment (``HTTPS_PROXY``, ``NO_PROXY``), as for
the sync client's requests. To a server on the loopback (the embedded server) no compression is
asked for. Shells use aiohttp's websocket client too (``aio_websocket``); ``jobs.follow`` stays on
tornado's."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Generator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from ..protocol import (
    JOBS_FOLLOW_PATH,
    InteractiveSessionType,
    Job,
    JobSpecification,
    JobState,
    OpenSessionWithProvider,
    PageV2,
    SimpleDuration,
    SupportByProvider,
    provider_websocket_url,
)
from . import prepare
from .async_follow import AsyncJobFollower
from .async_shell import AsyncShell
from .base import ClientBase
from .errors import UCloudError
from .follow import FollowRefused
from .follow_protocol import DirectFollowCodec, JupyterFollowCodec
from .proxies import proxy_for
from .shell_protocol import ProviderShellCodec, TerminadoShellCodec
from .transport import (
    HttpRequest,
    HttpResponse,
    Prepared,
    connection_error,
    timeout_error,
)

__all__ = ["AsyncJobs", "AsyncShells", "AsyncUCloud"]

log = logging.getLogger("jupyter_ucloud.client")
T = TypeVar("T")


class AsyncUCloud(ClientBase):
    """As ``UCloud`` (same arguments and discovery), with every call awaited."""

    def _setup(self) -> None:
        self.jobs = AsyncJobs(self)
        self.shells = AsyncShells(self)
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._proxy: str | None = None

    def _http_client(self) -> aiohttp.ClientSession:
        """The connection pool of the running loop (a pool's connections belong to the loop
        that opened them; a client used from a new loop gets a new pool)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=60.0),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # Compression on the loopback (the embedded server, a Jupyter server on this
                # machine) only costs CPU on both sides: the embedded server gzips any JSON
                # answer over 1 KB that may be. A compressed answer is still read.
                skip_auto_headers=("Accept-Encoding",) if _is_loopback(self.host) else None,
            )
            self._http_loop = loop
            self._proxy = proxy_for(self.host)
        return self._http

    async def call(self, prepared: Prepared[T]) -> T:
        return await self._drive(self._exchange.run(prepared))

    async def _drive(self, calls: Generator[HttpRequest, HttpResponse, T]) -> T:
        try:
            request = next(calls)
            while True:
                request = calls.send(await self._send(request))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _send(self, request: HttpRequest) -> HttpResponse:
        log.debug("%s %s", request.call, request.url.split("?")[0])
        http = self._http_client()
        try:
            async with http.request(
                request.method,
                URL(request.url, encoded=True),  # already quoted: send it as it is
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                proxy=self._proxy,
            ) as response:
                body = await response.read()
                status, content_type = response.status, response.headers.get("Content-Type", "")
        except asyncio.TimeoutError:  # before OSError: on 3.11 it is one
            raise timeout_error(request, self.timeout) from None
        except (OSError, aiohttp.ClientError, ValueError) as err:
            cause = err.os_error if isinstance(err, aiohttp.ClientConnectorError) else err
            detail = (
                # asyncio's OSErrors say "Connect call failed (address)": say what errno says
                (os.strerror(cause.errno) if isinstance(cause, OSError) and cause.errno else None)
                or str(err)
                or type(err).__name__
            )
            raise connection_error(request, detail, self._exchange.secrets()) from None
        log.debug("%s -> %s", request.call, status)
        return HttpResponse(status, body, content_type)

    def secrets(self) -> list[str]:
        return self._exchange.secrets()

    async def close(self) -> None:
        """Close the kept-alive connections (a later call opens new ones)."""
        http, self._http = self._http, None
        if http is not None and self._http_loop is asyncio.get_running_loop():
            await http.close()

    async def __aenter__(self) -> AsyncUCloud:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _is_loopback(host: str) -> bool:
    """Whether the URL ``host`` names the loopback (``localhost``, ``127.x``, ``::1``)."""
    name = (urlsplit(host).hostname or "").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class AsyncJobs:
    """``uc.jobs`` of ``AsyncUCloud``; see ``Jobs``."""

    def __init__(self, client: AsyncUCloud) -> None:
        self._client = client

    async def retrieve_products(self) -> SupportByProvider:
        return await self._client.call(prepare.retrieve_products())

    async def browse(
        self,
        *,
        filter_state: JobState | str | None = None,
        items_per_page: int | None = None,
        next: str | None = None,
        **flags: Any,
    ) -> PageV2[Job]:
        return await self._client.call(
            prepare.browse(
                filter_state=filter_state, items_per_page=items_per_page, next=next, **flags
            )
        )

    async def browse_all(self, **flags: Any) -> AsyncIterator[Job]:
        next_token: str | None = None
        while True:
            page = await self.browse(next=next_token, **flags)
            for job in page.items:
                yield job
            if not page.next or not page.items:
                return
            next_token = page.next

    async def retrieve(self, id: str, **flags: Any) -> Job:
        return await self._client.call(prepare.retrieve(id, **flags))

    async def create(self, spec: JobSpecification | dict[str, Any]) -> str:
        return (await self.create_bulk([spec]))[0]

    async def create_bulk(self, specs: list[JobSpecification | dict[str, Any]]) -> list[str]:
        return await self._client.call(prepare.create(specs))

    async def terminate(self, id: str | list[str]) -> None:
        await self._client.call(prepare.terminate([id] if isinstance(id, str) else list(id)))

    async def extend(
        self,
        id: str,
        requested_time: SimpleDuration | None = None,
        *,
        hours: int = 0,
        minutes: int = 0,
        seconds: int = 0,
    ) -> None:
        duration = requested_time or SimpleDuration(hours=hours, minutes=minutes, seconds=seconds)
        await self._client.call(prepare.extend(id, duration))

    async def open_interactive_session(
        self,
        id: str,
        rank: int = 0,
        session_type: InteractiveSessionType | str = "SHELL",
        target: str | None = None,
    ) -> OpenSessionWithProvider:
        if self._client.via_jupyter:
            raise UCloudError(
                "provider sessions are not handed out through the Jupyter server: use "
                "uc.shells.open_job(job_id, rank) for a shell",
                call="jobs.openInteractiveSession",
                job_id=str(id),
                rank=rank,
            )
        return await self._client.call(
            prepare.open_interactive_session(id, rank, session_type, target)
        )

    async def follow(self, id: str) -> AsyncJobFollower:
        """``jobs.follow`` (see ``Jobs.follow``): ``async for message in follower``."""
        client = self._client
        exchange = client._exchange
        job_id = str(id)
        if client.via_jupyter:
            return await AsyncJobFollower.connect(
                exchange.websocket_url(f"/ucloud/api/jobs/follow?id={quote(job_id, safe='')}"),
                JupyterFollowCodec(job_id),
                job_id=job_id,
                headers=exchange.websocket_headers(),
                timeout=client.timeout,
                secrets=client.secrets(),
            )
        for attempt in (0, 1):
            bearer = await client._drive(exchange.bearer(force=attempt > 0))
            try:
                return await AsyncJobFollower.connect(
                    exchange.websocket_url(JOBS_FOLLOW_PATH),
                    DirectFollowCodec(job_id, bearer, client.project),
                    job_id=job_id,
                    timeout=client.timeout,
                    secrets=client.secrets(),
                )
            except FollowRefused:
                if attempt or not exchange.auth.refreshable:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


class AsyncShells:
    """``uc.shells`` of ``AsyncUCloud``; see ``Shells``."""

    def __init__(self, client: AsyncUCloud) -> None:
        self._client = client

    async def open(
        self,
        session: OpenSessionWithProvider,
        cols: int = 80,
        rows: int = 24,
        *,
        ping_interval: float | None = None,
    ) -> AsyncShell:
        """Connect to the provider's shell websocket. ``ping_interval`` (s): see
        ``AsyncShell.connect`` (a provider that stops answering pings is taken as gone)."""
        shell_session = session.session
        identifier = getattr(shell_session, "session_identifier", None)
        if getattr(shell_session, "type", None) != "shell" or not identifier:
            raise UCloudError(
                f"not a shell session (type {getattr(shell_session, 'type', None)!r})",
                call="shells.open",
            )
        client = self._client
        url = provider_websocket_url(
            session.provider_domain, session.provider_id, identifier, client.user or ""
        )
        return await AsyncShell.connect(
            url,
            ProviderShellCodec(session.provider_id, identifier, client.project),
            job_id=shell_session.job_id,
            rank=shell_session.rank,
            cols=cols,
            rows=rows,
            timeout=client.timeout,
            secrets=[identifier, *client.secrets()],
            ping_interval=ping_interval,
        )

    async def open_job(
        self, job_id: str, rank: int = 0, cols: int = 80, rows: int = 24
    ) -> AsyncShell:
        client = self._client
        if not client.via_jupyter:
            session = await client.jobs.open_interactive_session(job_id, rank, "SHELL")
            return await self.open(session, cols, rows)
        model = await client.call(prepare.proxy_shell_create(job_id, rank, cols, rows))
        name = model["name"]

        async def delete() -> None:
            try:
                await client.call(prepare.proxy_shell_delete(name))
            except UCloudError as err:
                log.debug("could not delete shell %s: %s", name, err)

        base = client.host.replace("http", "ws", 1)
        try:
            return await AsyncShell.connect(
                f"{base}/ucloud/shells/{quote(name, safe='')}/websocket",
                TerminadoShellCodec(),
                job_id=str(job_id),
                rank=rank,
                cols=cols,
                rows=rows,
                headers=client._exchange.websocket_headers(),
                timeout=client.timeout,
                secrets=client.secrets(),
                on_close=delete,
            )
        except UCloudError:
            await delete()
            raise
