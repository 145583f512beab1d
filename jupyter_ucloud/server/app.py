"""The extension app: configuration (``c.UCloud.*``), start-up and shut-down."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Integer, List, Unicode, default

from .. import logredact
from ..heap import freeze_startup_heap
from .embedded import EmbeddedServer
from .follow_hub import FollowHub
from .handlers import handlers
from .shells import ShellManager
from .upstream import Upstream

__all__ = ["CREDENTIAL_ENV", "UCloud"]

#: Environment variables that hold credentials. The extension reads them and takes them out of
#: the server's environment when it is linked, before any kernel or terminal can start, so no
#: process the server starts afterwards inherits them. (UCLOUD_HOST and UCLOUD_PROJECT stay.)
CREDENTIAL_ENV = ("UCLOUD_REFRESH_TOKEN", "UCLOUD_API_TOKEN")

#: Where the Jupyter server logs "copy and paste one of these URLs: ...?token=...".
SERVER_BANNER_SOURCE = "jupyter_server/serverapp.py"


class UCloud(ExtensionApp):
    """UCloud jobs and job shells in Jupyter (config section ``c.UCloud``)."""

    name = "jupyter_ucloud"
    load_other_extensions = True

    host = Unicode(
        "",
        help="Base URL of UCloud (e.g. https://cloud.sdu.dk). Empty: run the embedded "
        "UCloud-compatible server with the Jupyter server. Env: UCLOUD_HOST.",
    ).tag(config=True)
    refresh_token = Unicode(
        "", help="UCloud refresh token. Env: UCLOUD_REFRESH_TOKEN. Never sent to the browser."
    ).tag(config=True)
    api_token = Unicode(
        "", help="UCloud API token (uc...-...). Env: UCLOUD_API_TOKEN. Never sent to the browser."
    ).tag(config=True)
    credentials_file = Unicode(
        "",
        help="File holding the refresh token or API token (an API token starts with 'uc'). "
        "Read when neither token is set.",
    ).tag(config=True)
    project = Unicode("", help="UCloud project to work in. Env: UCLOUD_PROJECT.").tag(config=True)
    allowed_provider_hosts = List(
        Unicode(),
        help="Provider hosts the server may open shell websockets to, besides the UCloud host's "
        "own domain and its subdomains. Entries are host names; '*.example.org' allows subdomains.",
    ).tag(config=True)
    applications: List[dict[str, Any]] = List(
        help="In remote mode, the applications offered by the start-job dialog: "
        "[{name, version, title, description, applicationType, parameters}] (or UCloud's "
        "{metadata, invocation}); parameters as UCloud's [{type, name, optional, defaultValue, "
        "title, description, options}]. The embedded server lists its own."
    ).tag(config=True)
    replay_bytes = Integer(
        262144, help="Bytes of each shell's recent output kept for reattaching clients."
    ).tag(config=True)
    ping_interval = Float(
        30.0, help="Seconds between websocket pings, on the browser and the provider leg."
    ).tag(config=True)
    shell_idle_timeout = Float(
        3600.0,
        help="Close a shell that has had no client attached for this many seconds (0: never).",
    ).tag(config=True)
    max_shells_per_user = Integer(16, help="Open shells allowed per Jupyter user.").tag(config=True)
    slow_client_timeout = Float(
        5.0,
        help="A terminal client, alone on its shell, that has not taken a frame for this many "
        "seconds stops pacing the shell; it catches up from the replay buffer instead.",
    ).tag(config=True)
    stalled_client_timeout = Float(
        1.0,
        help="A terminal client that holds the other clients of its shell back for this many "
        "seconds stops pacing the shell; it catches up from the replay buffer instead.",
    ).tag(config=True)
    request_timeout = Float(30.0, help="Seconds to wait for UCloud or the provider.").tag(
        config=True
    )
    follow_history_bytes = Integer(
        1024 * 1024,
        help="Bytes of each rank's recent stdout, and of its stderr, kept per followed job for "
        "browser tabs that join later or fall behind (/ucloud/api/jobs/follow).",
    ).tag(config=True)
    follow_linger = Float(
        30.0,
        help="Seconds a job's upstream follow stream stays open after its last tab left (a "
        "reload finds it with its history).",
    ).tag(config=True)
    embedded_data_dir = Unicode(
        help="Data directory of the embedded UCloud server "
        "(default: jupyter_data_dir()/ucloud-local)."
    ).tag(config=True)
    embedded_config_file = Unicode(
        "", help="Config file passed to the embedded UCloud server (--config)."
    ).tag(config=True)
    embedded_start_timeout = Float(60.0, help="Seconds the embedded server may take to start.").tag(
        config=True
    )
    embedded_idle_timeout = Float(
        600.0,
        help="The embedded server the extension starts exits by itself after this many seconds "
        "without jobs, shells or requests (0: never). It outlives the Jupyter server while it has "
        "jobs; `jupyter ucloud local stop` ends it and its jobs.",
    ).tag(config=True)

    freeze_startup_heap = Bool(
        True,
        help="Once the Jupyter server has started, exempt the objects of its start-up from the "
        "garbage collector's later full collections (gc.freeze), which otherwise stop the "
        "server, and every terminal's echo, for 85-190 ms every minute or two.",
    ).tag(config=True)

    @default("host")
    def _host_default(self) -> str:
        return os.environ.get("UCLOUD_HOST", "")

    @default("refresh_token")
    def _refresh_token_default(self) -> str:
        return os.environ.get("UCLOUD_REFRESH_TOKEN", "")

    @default("api_token")
    def _api_token_default(self) -> str:
        return os.environ.get("UCLOUD_API_TOKEN", "")

    @default("project")
    def _project_default(self) -> str:
        return os.environ.get("UCLOUD_PROJECT", "")

    @default("embedded_data_dir")
    def _embedded_data_dir_default(self) -> str:
        return str(Path(jupyter_data_dir()) / "ucloud-local")

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        # Linking is the extension's first step, before any kernel or terminal can start.
        # Every log record of this process is redacted from now on, the Jupyter server's and
        # tornado's included, except the server's banner: it shows the login URL on purpose.
        logredact.install(keep_from=[SERVER_BANNER_SOURCE])
        super()._link_jupyter_server_extension(serverapp)
        self._take_credentials_from_environment()

    def _take_credentials_from_environment(self) -> None:
        """Read the token settings (their defaults come from ``CREDENTIAL_ENV``), then remove
        those variables from ``os.environ``."""
        self.refresh_token, self.api_token  # noqa: B018 - evaluates the defaults now
        for name in CREDENTIAL_ENV:
            os.environ.pop(name, None)

    def initialize_settings(self) -> None:
        self.upstream = self._make_upstream()
        self.shell_manager = ShellManager(
            self.upstream,
            replay_bytes=self.replay_bytes,
            ping_interval=self.ping_interval,
            idle_timeout=self.shell_idle_timeout,
            max_shells_per_user=self.max_shells_per_user,
            slow_client_timeout=self.slow_client_timeout,
            stalled_client_timeout=self.stalled_client_timeout,
            connect_timeout=self.request_timeout,
            log=self.log,
        )
        self.follow_hub = FollowHub(
            self.upstream,
            history_bytes=self.follow_history_bytes,
            linger=self.follow_linger,
            slow_client_timeout=self.slow_client_timeout,
        )
        self.settings.update(
            {
                "ucloud_upstream": self.upstream,
                "ucloud_shells": self.shell_manager,
                "ucloud_follow": self.follow_hub,
            }
        )
        if not self.upstream.remote:
            # Hints for kernels (e.g. the notebook client): where the proxy is; nothing secret.
            os.environ.setdefault("JUPYTER_UCLOUD_MODE", "embedded")

    def _make_upstream(self) -> Upstream:
        """The UCloud to talk to, from this configuration (the embedded server if no host)."""
        refresh_token, api_token = self.refresh_token, self.api_token
        if self.host and not (refresh_token or api_token) and self.credentials_file:
            token = Path(self.credentials_file).expanduser().read_text().strip()
            if token.startswith("uc") and "-" in token:
                api_token = token
            else:
                refresh_token = token
        embedded = None
        if not self.host:
            embedded = EmbeddedServer(
                Path(self.embedded_data_dir),
                config_file=self.embedded_config_file,
                start_timeout=self.embedded_start_timeout,
                idle_timeout=self.embedded_idle_timeout,
                log=self.log,
            )
        return Upstream(
            host=self.host,
            refresh_token=refresh_token,
            api_token=api_token,
            project=self.project,
            allowed_provider_hosts=self.allowed_provider_hosts,
            applications=self.applications,
            embedded=embedded,
            timeout=self.request_timeout,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # Start the embedded server in the background as soon as the loop runs; requests that
        # arrive before it listens wait for it (Upstream.client()).
        self.upstream.start_in_background()
        self.shell_manager.start()
        if self.freeze_startup_heap:
            # After the other extensions' start-up, which runs alongside this one.
            asyncio.get_running_loop().call_soon(self._freeze_startup_heap)

    def _freeze_startup_heap(self) -> None:
        frozen = freeze_startup_heap()
        self.log.info(
            "%d objects of the Jupyter server's start-up exempted from full garbage "
            "collections (c.UCloud.freeze_startup_heap)",
            frozen,
        )

    async def stop_extension(self) -> None:
        await self.follow_hub.close_all()
        await self.shell_manager.close_all()
        embedded = self.upstream.embedded
        if embedded is not None and embedded.info is not None:
            running = await self.upstream.running_jobs()
            jobs = "an unknown number of" if running is None else str(running)
            self.log.info(
                "The embedded UCloud server (pid %d) keeps running with %s running job(s);"
                " the next Jupyter server uses it again. To end it and its jobs: jupyter ucloud"
                " local stop --data-dir %s",
                embedded.info.pid,
                jobs,
                embedded.data_dir,
            )
        await self.upstream.close()

    def current_activity(self) -> list[dict[str, Any]] | None:
        shells = self.shell_manager.shells()
        return [{"shell": shell.name, "clients": len(shell.clients)} for shell in shells] or None
