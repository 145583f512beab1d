"""Where the client's calls go, found in this order:

1. explicit arguments (``host`` + a token, or ``jupyter_url``);
2. the environment: ``UCLOUD_HOST`` + ``UCLOUD_REFRESH_TOKEN`` or ``UCLOUD_API_TOKEN``
   (+ ``UCLOUD_PROJECT``); ``UCLOUD_HOST`` without a token in a process of a running Jupyter
   server (whose extension took the token out of its environment) goes to that server; then
   ``JUPYTER_UCLOUD_SERVER_URL`` (+ ``JUPYTER_UCLOUD_SERVER_TOKEN``);
3. the Jupyter server this process (a kernel) belongs to, through its ``/ucloud`` proxy: the
   running server whose pid is an ancestor of this process, else the only running server.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UCloudConfigError
from .transport import (
    ApiTokenAuth,
    Auth,
    Endpoint,
    JupyterTokenAuth,
    RefreshTokenAuth,
)

__all__ = ["Target", "ancestor_jupyter_server", "ancestor_pids", "find_jupyter_server", "resolve"]

HOW_TO_CONFIGURE = (
    "pass UCloud(host=..., refresh_token=...) or api_token=..., or set UCLOUD_HOST and "
    "UCLOUD_REFRESH_TOKEN (or UCLOUD_API_TOKEN), or run inside JupyterLab with the jupyter-ucloud "
    "server extension (or set JUPYTER_UCLOUD_SERVER_URL and JUPYTER_UCLOUD_SERVER_TOKEN)"
)


@dataclass(frozen=True)
class Target:
    endpoint: Endpoint
    auth: Auth
    project: str | None
    source: str  #: how it was found, for messages and repr

    @property
    def via_jupyter(self) -> bool:
        return self.endpoint.is_proxy


def resolve(
    host: str | None = None,
    refresh_token: str | None = None,
    api_token: str | None = None,
    project: str | None = None,
    jupyter_url: str | None = None,
    jupyter_token: str | None = None,
    environ: Mapping[str, str] | None = None,
    servers: Iterable[dict[str, Any]] | None = None,
) -> Target:
    """The target for these arguments; ``UCloudConfigError`` saying what to set if none."""
    env = os.environ if environ is None else environ
    if host:
        return _direct(host, refresh_token, api_token, project, "arguments")
    if refresh_token or api_token:
        raise UCloudConfigError(
            "a token was given without a host: pass host='https://cloud.sdu.dk' (or the "
            "embedded server's URL) too"
        )
    if jupyter_url:
        return _proxy(jupyter_url, jupyter_token, "arguments")
    if env.get("UCLOUD_HOST"):
        if not (env.get("UCLOUD_REFRESH_TOKEN") or env.get("UCLOUD_API_TOKEN")):
            # A kernel or terminal of a Jupyter server configured by environment: the
            # extension took the token out of the server's environment and holds it.
            server = ancestor_jupyter_server(servers)
            if server is not None:
                return _proxy(
                    server["url"], server.get("token"), f"Jupyter server pid {server['pid']}"
                )
        return _direct(
            env["UCLOUD_HOST"],
            env.get("UCLOUD_REFRESH_TOKEN"),
            env.get("UCLOUD_API_TOKEN"),
            project or env.get("UCLOUD_PROJECT") or None,
            "environment",
        )
    if env.get("JUPYTER_UCLOUD_SERVER_URL"):
        return _proxy(
            env["JUPYTER_UCLOUD_SERVER_URL"],
            env.get("JUPYTER_UCLOUD_SERVER_TOKEN"),
            "JUPYTER_UCLOUD_SERVER_URL",
        )
    server = find_jupyter_server(servers)
    if server is not None:
        return _proxy(server["url"], server.get("token"), f"Jupyter server pid {server['pid']}")
    raise UCloudConfigError(f"no UCloud configured: {HOW_TO_CONFIGURE}")


def _direct(
    host: str,
    refresh_token: str | None,
    api_token: str | None,
    project: str | None,
    source: str,
) -> Target:
    if not host.startswith(("http://", "https://")):
        raise UCloudConfigError(f"the UCloud host must be an http(s) URL, not {host!r}")
    auth: Auth
    if api_token:
        auth = ApiTokenAuth(api_token.strip())
    elif refresh_token:
        auth = RefreshTokenAuth(refresh_token.strip())
    else:
        names = (
            "UCLOUD_REFRESH_TOKEN or UCLOUD_API_TOKEN"
            if source == "environment"
            else ("refresh_token=... or api_token=...")
        )
        raise UCloudConfigError(f"UCloud host {host} has no credentials: set {names}")
    return Target(Endpoint(host.rstrip("/")), auth, project, source)


def _proxy(url: str, token: str | None, source: str) -> Target:
    if not url.startswith(("http://", "https://")):
        raise UCloudConfigError(f"the Jupyter server URL must be an http(s) URL, not {url!r}")
    return Target(Endpoint(url.rstrip("/"), "/ucloud"), JupyterTokenAuth(token), None, source)


def ancestor_pids(pid: int | None = None) -> list[int]:
    """The parent, grandparent, ... of ``pid`` (this process by default), read from ``/proc``
    (or just ``os.getppid()`` where there is no ``/proc``)."""
    pid = os.getpid() if pid is None else pid
    found: list[int] = []
    while pid > 1 and len(found) < 64:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
                fields = stat.read().rsplit(")", 1)[1].split()
            pid = int(fields[1])
        except (OSError, IndexError, ValueError):
            if not found and pid == os.getpid():
                found.append(os.getppid())
            break
        found.append(pid)
    return found


def _running_servers(servers: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if servers is None:
        try:
            from jupyter_server.serverapp import list_running_servers
        except ImportError:
            return []
        servers = list_running_servers()
    return [s for s in servers if isinstance(s, dict) and s.get("url") and s.get("pid")]


def ancestor_jupyter_server(
    servers: Iterable[dict[str, Any]] | None = None, pid: int | None = None
) -> dict[str, Any] | None:
    """The running Jupyter server whose process is an ancestor of ``pid``, if any."""
    ancestors = ancestor_pids(pid)
    for server in _running_servers(servers):
        if server["pid"] in ancestors:
            return server
    return None


def find_jupyter_server(
    servers: Iterable[dict[str, Any]] | None = None, pid: int | None = None
) -> dict[str, Any] | None:
    """The running Jupyter server that is an ancestor of ``pid``, else the only one running."""
    running = _running_servers(servers)
    mine = ancestor_jupyter_server(running, pid)
    if mine is not None:
        return mine
    if len(running) == 1:
        return running[0]
    if len(running) > 1:
        urls = ", ".join(str(s["url"]) for s in running)
        raise UCloudConfigError(
            f"{len(running)} Jupyter servers are running ({urls}) and this process belongs to "
            "none of them: set JUPYTER_UCLOUD_SERVER_URL and JUPYTER_UCLOUD_SERVER_TOKEN, or "
            f"{HOW_TO_CONFIGURE.split(', or run inside')[0]}"
        )
    return None
