"""jupyter-ucloud: UCloud jobs and job shells inside JupyterLab."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["AsyncUCloud", "UCloud", "UCloudError", "__version__"]


def __getattr__(name: str) -> Any:
    # The client is imported lazily so that `import jupyter_ucloud` (done by Jupyter Server when
    # it discovers extensions) stays cheap.
    if name in {"UCloud", "AsyncUCloud", "UCloudError"}:
        from . import client

        return getattr(client, name)
    raise AttributeError(name)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-ucloud"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import UCloud as UCloudExtension

    return [{"module": "jupyter_ucloud.server.app", "app": UCloudExtension}]
