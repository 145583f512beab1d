"""The embedded UCloud-compatible server (``jupyter ucloud local``): auth, Jobs API, SQLite store,
backends (process, slurm) and the provider shell websocket. See docs/architecture.md section 3."""

from __future__ import annotations

from .config import LocalConfig, load_config
from .server import LocalServer

__all__ = ["LocalConfig", "LocalServer", "load_config"]
