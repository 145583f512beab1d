"""Where the extension's UCloud calls go: a configured UCloud, or the embedded server.

Holds the credentials (they never leave this process), opens shells after checking the
provider host against the allow-list, and turns client errors into HTTP answers.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from ..client import AsyncUCloud
from ..client.errors import ShellClosedError, UCloudError, redact
from ..client.transport import Prepared
from ..local.instance import pid_alive
from ..protocol import CALLS, Call, Job, JobState, provider_websocket_url
from .embedded import EmbeddedServer, EmbeddedServerError
from .errors import ProxyError, proxy_error
from .shells import JOB_ENDED_MESSAGES, ShellError

if TYPE_CHECKING:
    from ..client.async_follow import AsyncJobFollower
    from ..client.async_shell import AsyncShell

__all__ = ["Upstream", "host_allowed"]

log = logging.getLogger(__name__)

APPS_BROWSE = Call("hpc.apps.browse", "GET", "/api/hpc/apps/browse", "query", None, None)


def _raw(value: Any) -> Any:
    return value


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@functools.cache
def public_suffixes() -> PublicSuffixList:
    """The Public Suffix List (bundled with ``publicsuffixlist``; about 60 ms to load, so the
    extension loads it at start-up)."""
    return PublicSuffixList()


def host_allowed(host: str, ucloud_host: str, allowed: list[str]) -> bool:
    """Whether a provider ``host`` may be connected to.

    Allowed: the UCloud host itself; for a named UCloud host, its parent domain and that
    domain's subdomains (``cloud.sdu.dk`` -> ``*.sdu.dk``), or only the host's own subdomains
    when that parent is a public suffix (``x.co.uk`` -> ``*.x.co.uk``, never ``*.co.uk``; the
    same for ``me.github.io``); and the ``allowed`` entries, exact host names or ``*.domain``
    patterns.
    """
    host = host.lower().rstrip(".")
    home = ucloud_host.lower().rstrip(".")
    if host == home:
        return True
    if home and not _is_ip(home):
        labels = home.split(".")
        domain = ".".join(labels[1:]) if len(labels) >= 3 else home
        if public_suffixes().privatesuffix(domain) is None:
            domain = home  # its parent is a public suffix: only the host's own subdomains
        if public_suffixes().privatesuffix(domain) is not None and (
            host == domain or host.endswith("." + domain)
        ):
            return True
    for entry in allowed:
        entry = entry.lower().strip().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


class Upstream:
    """The UCloud the extension talks to (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str = "",
        refresh_token: str = "",
        api_token: str = "",
        project: str = "",
        allowed_provider_hosts: list[str] | None = None,
        applications: list[dict[str, Any]] | None = None,
        embedded: EmbeddedServer | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host = host.rstrip("/")
        self._refresh_token = refresh_token
        self._api_token = api_token
        self.project = project or None
        self.allowed_provider_hosts = list(allowed_provider_hosts or [])
        self._applications = list(applications or [])
        self.embedded = embedded
        self.timeout = timeout
        public_suffixes()  # now, at start-up, rather than inside the first shell request
        self._client: AsyncUCloud | None = None
        self._client_host = ""
        self._background: asyncio.Task[Any] | None = None

    @property
    def remote(self) -> bool:
        return self.embedded is None

    def start_in_background(self) -> None:
        """Start the embedded server now (if there is one) without waiting for it."""
        if self.embedded is not None and self._background is None:
            self._background = asyncio.ensure_future(self._start_quietly())

    async def _start_quietly(self) -> None:
        try:
            await self.client()
        except ProxyError as err:
            log.error("%s", err.message)

    async def close(self) -> None:
        """Stop talking to UCloud. The embedded server is left running: its jobs outlive this
        Jupyter server, and it exits by itself once idle (see ``embedded``)."""
        if self._background is not None and not self._background.done():
            self._background.cancel()
        if self._client is not None:
            await self._client.close()

    async def running_jobs(self, timeout: float = 3.0) -> int | None:
        """How many jobs have not ended (``None`` if that cannot be known quickly)."""
        try:
            client = await asyncio.wait_for(self.client(), timeout)
            count = 0
            for state in ("IN_QUEUE", "RUNNING", "SUSPENDED"):
                page = await asyncio.wait_for(
                    client.call(
                        Prepared(
                            CALLS["jobs.browse"],
                            query={"filterState": state, "itemsPerPage": "1000"},
                            parse=_raw,
                        )
                    ),
                    timeout,
                )
                count += len(page.get("items") or [])
        except (ProxyError, UCloudError, asyncio.TimeoutError):
            return None
        return count

    def secrets(self) -> list[str]:
        found = [self._refresh_token, self._api_token]
        if self._client is not None:
            found += self._client.secrets()
        return [s for s in found if s]

    async def client(self) -> AsyncUCloud:
        """The client, once UCloud (or the embedded server) can be called."""
        if self.embedded is None:
            if self._client is None:
                if not (self._refresh_token or self._api_token):
                    raise ProxyError(
                        503,
                        "No UCloud credentials are configured: set c.UCloud.refresh_token, "
                        "c.UCloud.api_token or c.UCloud.credentials_file (or UCLOUD_REFRESH_TOKEN"
                        " / UCLOUD_API_TOKEN).",
                    )
                self._client = self._make_client(self.host, self._refresh_token, self._api_token)
            return self._client
        info = self.embedded.info
        if (
            self._client is not None
            and info is not None
            and info.url == self._client_host
            and pid_alive(info.pid)
        ):
            # The server is known and alive: ``ensure_started`` would say so at once. Without
            # ``wait_for``, a call costs no extra task and no extra turns of the event loop.
            return self._client
        try:
            info = await asyncio.wait_for(
                self.embedded.ensure_started(), self.embedded.start_timeout + 5
            )
        except (EmbeddedServerError, asyncio.TimeoutError) as err:
            raise ProxyError(503, f"The embedded UCloud server is not available: {err}") from None
        if self._client is None or self._client_host != info.url:
            token = await asyncio.to_thread(info.read_refresh_token)
            if self._client is not None:
                await self._client.close()  # the embedded server moved: its connections are dead
            self._client = self._make_client(info.url, token, "")
            self._client_host = info.url
        return self._client

    def _make_client(self, host: str, refresh_token: str, api_token: str) -> AsyncUCloud:
        try:
            return AsyncUCloud(
                host=host,
                refresh_token=refresh_token or None,
                api_token=api_token or None,
                project=self.project,
                timeout=self.timeout,
            )
        except UCloudError as err:
            raise ProxyError(503, f"UCloud is not configured correctly: {err.why}") from None

    def _describe(self) -> str:
        return "the embedded UCloud server" if self.embedded is not None else "UCloud"

    # --- calls --------------------------------------------------------------------------------

    async def call(self, call: Call, query: dict[str, str] | None = None, body: Any = None) -> Any:
        """Make ``call`` and return UCloud's JSON answer, parsed (errors as ProxyError)."""
        client = await self.client()
        try:
            return await client.call(Prepared(call, query=query, body=body, parse=_raw))
        except UCloudError as err:
            raise self._error(err) from None

    async def relay(
        self, call: Call, query: dict[str, str] | None = None, body: Any = None
    ) -> bytes:
        """Make ``call`` and return UCloud's JSON answer as the bytes that came, for a handler
        that passes it on unchanged: an answer in UTF-8 JSON is not parsed and dumped again
        (``Prepared.relay``); any other 2xx answer is parsed (an error if it is not JSON) and
        dumped. Errors as ProxyError, as ``call``'s."""
        client = await self.client()
        try:
            return await client.call(
                Prepared(call, query=query, body=body, parse=_dump, relay=True)
            )
        except UCloudError as err:
            raise self._error(err) from None

    def _error(self, err: UCloudError) -> ProxyError:
        converted = proxy_error(err, self._describe())
        converted.message = redact(converted.message, self.secrets())
        if converted.why:
            converted.why = redact(converted.why, self.secrets())
        return converted

    async def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "mode": "remote" if self.remote else "embedded",
            "host": self.host or None,
            "user": None,
            "project": self.project,
            "ok": False,
            "error": None,
        }
        try:
            client = await self.client()
            answer["host"] = client.host
            await client.call(Prepared(CALLS["jobs.retrieveProducts"], parse=_raw))
            answer["ok"] = True
            answer["user"] = client.user
        except ProxyError as err:
            answer["error"] = err.message
        except UCloudError as err:
            answer["error"] = self._error(err).message
        return answer

    async def applications(self) -> list[dict[str, Any]]:
        """The start-job dialog's applications with their parameters (see ``_app_item``)."""
        if self.remote:
            items = self._applications
        else:
            page = await self.call(APPS_BROWSE, query={"itemsPerPage": "250"})
            items = page.get("items", []) if isinstance(page, dict) else []
        return [_app_item(item) for item in items if isinstance(item, dict)]

    async def job_state(self, job_id: str) -> str | None:
        client = await self.client()
        job = await client.call(
            Prepared(CALLS["jobs.retrieve"], query={"id": job_id}, parse=Job.model_validate)
        )
        return str(job.status.state) if job.status is not None else None

    # --- jobs.follow ----------------------------------------------------------------------------

    async def follow_job(self, job_id: str) -> AsyncJobFollower:
        """Open ``jobs.follow`` of ``job_id`` with this server's credentials (for the follow
        hub); ``ProxyError`` (its message redacted) when it cannot be opened."""
        client = await self.client()
        try:
            return await client.jobs.follow(job_id)
        except UCloudError as err:
            raise self._error(err) from None

    # --- shells ---------------------------------------------------------------------------------

    async def open_shell(
        self,
        job_id: str,
        rank: int,
        *,
        cols: int,
        rows: int,
        ping_interval: float,
        timeout: float,
    ) -> AsyncShell:
        """Check the job, open an interactive SHELL session and connect to the provider.

        The provider connection is pinged every ``ping_interval`` seconds (0: never); one that
        stops answering ends with a close that is not clean, which the shell reports as
        ``provider-lost`` while the job runs.
        """
        client = await self.client()
        try:
            job = await client.jobs.retrieve(job_id)
        except UCloudError as err:
            raise self._error(err) from None
        state = job.status.state if job.status is not None else None
        if state != JobState.RUNNING:
            if state is not None and state.value in JOB_ENDED_MESSAGES:
                raise ShellError(409, f"Job {job_id} has ended. {JOB_ENDED_MESSAGES[state.value]}")
            raise ShellError(
                409, f"Job {job_id} is not running (it is {state or 'in an unknown state'})."
            )
        replicas = job.specification.replicas if job.specification is not None else 1
        if rank >= replicas:
            raise ShellError(
                400,
                f"Rank {rank} is out of range: job {job_id} has {replicas} "
                f"rank{'s' if replicas != 1 else ''} (0-{replicas - 1}).",
            )
        try:
            session = await client.jobs.open_interactive_session(job_id, rank, "SHELL")
        except UCloudError as err:
            raise self._error(err) from None
        identifier = getattr(session.session, "session_identifier", None)
        if getattr(session.session, "type", None) != "shell" or not identifier:
            raise ShellError(502, f"{self._describe()} did not answer with a shell session.")
        url = provider_websocket_url(
            session.provider_domain, session.provider_id, identifier, client.user or ""
        )
        provider_host = urlsplit(url).hostname or ""
        home = urlsplit(client.host).hostname or ""
        if not host_allowed(provider_host, home, self.allowed_provider_hosts):
            raise ShellError(
                502,
                f"Refusing to connect to provider host {provider_host!r} for job {job_id}: it is "
                f"not {home!r} or one of c.UCloud.allowed_provider_hosts.",
            )
        try:
            shell = await asyncio.wait_for(
                client.shells.open(session, cols=cols, rows=rows, ping_interval=ping_interval),
                timeout + 5,
            )
        except asyncio.TimeoutError:
            raise ShellError(
                504, f"The provider did not open the shell within {timeout:g} s."
            ) from None
        except ShellClosedError as err:
            prefix = "the shell closed before it was ready: "
            why = redact(err.why.removeprefix(prefix), self.secrets())
            raise ShellError(
                502, f"The provider closed the shell before it was ready: {why}"
            ) from None
        except UCloudError as err:
            raise self._error(err) from None
        return shell


_PARAMETER_KEYS = ("type", "name", "optional", "defaultValue", "title", "description", "options")


def _app_item(app: dict[str, Any]) -> dict[str, Any]:
    """``{name, version, title, description, applicationType, parameters}`` of an application
    in UCloud's shape (``{metadata, invocation}``) or flat (``c.UCloud.applications``)."""
    metadata: dict[str, Any] = app["metadata"] if isinstance(app.get("metadata"), dict) else app
    invocation: dict[str, Any] = (
        app["invocation"] if isinstance(app.get("invocation"), dict) else app
    )
    parameters = invocation.get("parameters")
    return {
        **{key: metadata.get(key) for key in ("name", "version", "title", "description")},
        "applicationType": invocation.get("applicationType"),
        "parameters": [
            {key: parameter[key] for key in _PARAMETER_KEYS if key in parameter}
            for parameter in (parameters if isinstance(parameters, list) else [])
            if isinstance(parameter, dict) and isinstance(parameter.get("name"), str)
        ],
    }
