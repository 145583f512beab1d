"""Which proxy the environment sets for a host (``HTTPS_PROXY``, ``NO_PROXY``, ...), for the
aiohttp connections of ``AsyncUCloud`` and of shells (``aio_websocket``). Looked up once per
connection pool: aiohttp's ``trust_env`` looks it up on every call (1 ms of CPU here)."""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

__all__ = ["proxy_for"]


def proxy_for(url: str) -> str | None:
    """The proxy for ``url``'s host (``http``/``https`` URL), or ``None`` (none set, or the
    host is in ``NO_PROXY``)."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all") or None
