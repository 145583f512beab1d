"""The embedded UCloud-compatible server (``jupyter ucloud local``): auth, Jobs API, SQLite store,
backends (process, slurm) and the provider shell websocket. See docs/architecture.md section 3.

The names are imported lazily, so that the per-job supervisor
(``python -m jupyter_ucloud.local.supervisor``) starts without loading the server.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LocalConfig", "LocalServer", "load_config"]


def __getattr__(name: str) -> Any:
    if name in ("LocalConfig", "load_config"):
        from . import config

        return getattr(config, name)
    if name == "LocalServer":
        from .server import LocalServer

        return LocalServer
    raise AttributeError(name)
