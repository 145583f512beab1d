"""``UCloud``: the synchronous client (``requests``), for notebooks and scripts.

Calls are named after UCloud's (``uc.jobs.retrieve_products()``, ``uc.jobs.browse(...)``,
``uc.jobs.open_interactive_session(...)``, ``uc.shells.open(session)``); the wire is in
``transport`` and ``prepare``, shared with ``AsyncUCloud``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import requests

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
from .base import ClientBase
from .errors import UCloudError
from .follow import FollowRefused, JobFollower
from .follow_protocol import DirectFollowCodec, JupyterFollowCodec
from .handle import JobHandle, start_job
from .shell import Shell
from .shell_protocol import ProviderShellCodec, TerminadoShellCodec
from .tables import JobTable, ProductTable
from .transport import (
    HttpRequest,
    HttpResponse,
    Prepared,
    connection_error,
    timeout_error,
)

__all__ = ["Jobs", "Shells", "UCloud"]

log = logging.getLogger("jupyter_ucloud.client")
T = TypeVar("T")


def drive(calls: Generator[HttpRequest, HttpResponse, T], send: Any) -> T:
    """Run a transport generator, answering each request it yields with ``send(request)``."""
    try:
        request = next(calls)
        while True:
            request = calls.send(send(request))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class UCloud(ClientBase):
    """A UCloud client. ``UCloud()`` finds its configuration (see ``discovery``);
    ``UCloud(host=..., refresh_token=...)`` or ``api_token=...`` talk to UCloud directly,
    ``UCloud(jupyter_url=..., jupyter_token=...)`` through a Jupyter server's ``/ucloud`` proxy.
    ``timeout`` (seconds) bounds every HTTP call and websocket handshake."""

    def _setup(self) -> None:
        self._session = requests.Session()
        self.jobs = Jobs(self)
        self.shells = Shells(self)

    # --- calls ------------------------------------------------------------------------------

    def call(self, prepared: Prepared[T]) -> T:
        """Send one prepared call (see ``prepare``) and return its typed result."""
        return drive(self._exchange.run(prepared), self._send)

    def _send(self, request: HttpRequest) -> HttpResponse:
        log.debug("%s %s", request.call, request.url.split("?")[0])
        try:
            response = self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise timeout_error(request, self.timeout) from None
        except requests.RequestException as err:
            raise connection_error(request, _reason(err), self._exchange.secrets()) from None
        log.debug("%s -> %s", request.call, response.status_code)
        return HttpResponse(
            response.status_code, response.content, response.headers.get("Content-Type", "")
        )

    def secrets(self) -> list[str]:
        return self._exchange.secrets()

    # --- conveniences (see handle.py and tables.py) -------------------------------------------

    def products(self) -> ProductTable:
        """Products and what each supports, as a table (rich HTML in notebooks)."""
        return ProductTable.of(self.jobs.retrieve_products())

    def job(self, job_id: str | Job) -> JobHandle:
        """A handle on one job: ``state``, ``wait_until``, ``run``, ``shell``, ``terminate``."""
        return JobHandle(self, job_id)

    def start(
        self,
        application: str,
        version: str | None = None,
        *,
        product: str | None = None,
        replicas: int = 1,
        hours: int | None = None,
        minutes: int | None = None,
        name: str | None = None,
        parameters: dict[str, Any] | None = None,
        wait: bool = False,
        timeout: float = 300.0,
        progress: Any = True,
    ) -> JobHandle:
        """Create a job (``jobs.create``) and return its handle (after it is RUNNING if
        ``wait``). ``product`` is a product name; ``None`` takes the first with a terminal.
        The time allocation is ``hours`` + ``minutes``; one hour when neither is given."""
        return start_job(
            self,
            application,
            version,
            product=product,
            replicas=replicas,
            hours=hours,
            minutes=minutes,
            name=name,
            parameters=parameters,
            wait=wait,
            timeout=timeout,
            progress=progress,
        )

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> UCloud:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _reason(err: Exception) -> str:
    """A short reason for a requests error ("Connection refused"), without its URL noise."""
    text = str(err)
    for known in (
        "Connection refused",
        "Name or service not known",
        "Connection reset",
        "No route to host",
        "Remote end closed connection",
    ):
        if known in text:
            return known
    return type(err).__name__


class Jobs:
    """``uc.jobs``: UCloud's ``jobs.*`` calls."""

    def __init__(self, client: UCloud) -> None:
        self._client = client

    def retrieve_products(self) -> SupportByProvider:
        """``jobs.retrieveProducts``: products by provider, with what each supports."""
        return self._client.call(prepare.retrieve_products())

    def browse(
        self,
        *,
        filter_state: JobState | str | None = None,
        items_per_page: int | None = None,
        next: str | None = None,
        **flags: Any,
    ) -> PageV2[Job]:
        """``jobs.browse``: one page of jobs, newest first. ``flags`` are UCloud's
        (``include_product=True``, ``filter_application=...``, ``sort_by=...``)."""
        return self._client.call(
            prepare.browse(
                filter_state=filter_state, items_per_page=items_per_page, next=next, **flags
            )
        )

    def browse_all(self, **flags: Any) -> Iterator[Job]:
        """Every job matching ``flags``, page after page."""
        next_token: str | None = None
        while True:
            page = self.browse(next=next_token, **flags)
            yield from page.items
            if not page.next or not page.items:
                return
            next_token = page.next

    def retrieve(self, id: str, **flags: Any) -> Job:
        """``jobs.retrieve`` (``include_product=True``, ``include_support=True``, ...)."""
        return self._client.call(prepare.retrieve(id, **flags))

    def create(self, spec: JobSpecification | dict[str, Any]) -> str:
        """``jobs.create`` of one job; its id."""
        return self.create_bulk([spec])[0]

    def create_bulk(self, specs: list[JobSpecification | dict[str, Any]]) -> list[str]:
        return self._client.call(prepare.create(specs))

    def terminate(self, id: str | list[str]) -> None:
        """``jobs.terminate`` (the job ends as SUCCESS once the provider has stopped it)."""
        self._client.call(prepare.terminate([id] if isinstance(id, str) else list(id)))

    def extend(
        self,
        id: str,
        requested_time: SimpleDuration | None = None,
        *,
        hours: int = 0,
        minutes: int = 0,
        seconds: int = 0,
    ) -> None:
        """``jobs.extend`` by ``requested_time`` (or ``hours=``/``minutes=``/``seconds=``)."""
        duration = requested_time or SimpleDuration(hours=hours, minutes=minutes, seconds=seconds)
        self._client.call(prepare.extend(id, duration))

    def open_interactive_session(
        self,
        id: str,
        rank: int = 0,
        session_type: InteractiveSessionType | str = "SHELL",
        target: str | None = None,
    ) -> OpenSessionWithProvider:
        """``jobs.openInteractiveSession``: a session at the job's provider."""
        if self._client.via_jupyter:
            raise UCloudError(
                "provider sessions are not handed out through the Jupyter server: use "
                "uc.shells.open_job(job_id, rank) for a shell",
                call="jobs.openInteractiveSession",
                job_id=str(id),
                rank=rank,
            )
        return self._client.call(prepare.open_interactive_session(id, rank, session_type, target))

    def follow(self, id: str) -> JobFollower:
        """``jobs.follow``: the job's stream of changes and output, as typed
        ``JobsFollowMessage``s (the first with ``initial_job``; then ``updates`` and
        ``new_status``, and per-rank ``log`` entries). Iterate it (until the stream ends) or
        ``read(timeout)``; close it, or use it as a context manager.

        Directly: UCloud's websocket at ``/api/jobs`` with the access token (refreshed first if
        due, and once more if the stream is refused). Through the Jupyter server: its relay
        ``/ucloud/api/jobs/follow``."""
        client = self._client
        exchange = client._exchange
        job_id = str(id)
        if client.via_jupyter:
            return JobFollower.connect(
                exchange.websocket_url(f"/ucloud/api/jobs/follow?id={quote(job_id, safe='')}"),
                JupyterFollowCodec(job_id),
                job_id=job_id,
                headers=exchange.websocket_headers(),
                timeout=client.timeout,
                secrets=client.secrets(),
            )
        for attempt in (0, 1):
            bearer = drive(exchange.bearer(force=attempt > 0), client._send)
            try:
                return JobFollower.connect(
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

    def list(self, state: JobState | str | None = None, **flags: Any) -> JobTable:
        """Every job (of ``state``, if given) as a table (rich HTML in notebooks)."""
        return JobTable(list(self.browse_all(filter_state=state, **flags)))


class Shells:
    """``uc.shells``: shells into job ranks."""

    def __init__(self, client: UCloud) -> None:
        self._client = client

    def open(self, session: OpenSessionWithProvider, cols: int = 80, rows: int = 24) -> Shell:
        """Connect to the provider's shell websocket for ``session`` (from
        ``jobs.open_interactive_session(id, rank, "SHELL")``) and initialise it at
        ``cols`` x ``rows``; returns once the provider has answered ``initialize``."""
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
        codec = ProviderShellCodec(session.provider_id, identifier, client.project)
        return Shell.connect(
            url,
            codec,
            job_id=shell_session.job_id,
            rank=shell_session.rank,
            cols=cols,
            rows=rows,
            timeout=client.timeout,
            secrets=[identifier, *client.secrets()],
        )

    def open_job(self, job_id: str, rank: int = 0, cols: int = 80, rows: int = 24) -> Shell:
        """A shell on ``rank`` of job ``job_id``, directly or through the Jupyter server."""
        client = self._client
        if not client.via_jupyter:
            session = client.jobs.open_interactive_session(job_id, rank, "SHELL")
            return self.open(session, cols, rows)
        model = client.call(prepare.proxy_shell_create(job_id, rank, cols, rows))
        name = model["name"]
        base = client.host.replace("http", "ws", 1)
        headers = client._exchange.websocket_headers()

        def delete() -> None:
            try:
                client.call(prepare.proxy_shell_delete(name))
            except UCloudError as err:
                log.debug("could not delete shell %s: %s", name, err)

        try:
            return Shell.connect(
                f"{base}/ucloud/shells/{quote(name, safe='')}/websocket",
                TerminadoShellCodec(),
                job_id=str(job_id),
                rank=rank,
                cols=cols,
                rows=rows,
                headers=headers,
                timeout=client.timeout,
                secrets=client.secrets(),
                on_close=delete,
            )
        except UCloudError:
            delete()  # harmless if the failed shell already deleted itself
            raise
