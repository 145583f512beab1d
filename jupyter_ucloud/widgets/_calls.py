"""The few calls the widgets make beyond ``uc.jobs``: Jupyter-server shells and applications."""

from __future__ import annotations

from typing import Any

from ..client import prepare
from ..client.errors import UCloudError
from ..client.transport import Prepared
from ..protocol import ApplicationMetadata, Call

__all__ = ["close_server_shell", "list_applications", "open_server_shell"]

#: The Jupyter server's list for the start-job dialog (docs/architecture.md section 4).
_PROXY_APPLICATIONS = Call("applications.browse", "GET", "/api/applications", "none", None, None)
#: The embedded UCloud server's catalogue (docs/architecture.md section 3).
_LOCAL_APPLICATIONS = Call("hpc.apps.browse", "GET", "/api/hpc/apps/browse", "none", None, None)


def open_server_shell(uc: Any, job_id: str, rank: int, *, cols: int, rows: int) -> dict[str, Any]:
    """``POST /ucloud/shells``: a shell on the Jupyter server's bridge; its model."""
    if not getattr(uc, "via_jupyter", False):
        raise UCloudError(
            f"an inline terminal needs the Jupyter server's jupyter-ucloud extension, but this "
            f"client talks to UCloud directly ({uc!r}); use UCloud() inside JupyterLab, or "
            "UCloud(jupyter_url=..., jupyter_token=...)",
            call="shells.create",
            job_id=job_id,
            rank=rank,
        )
    try:
        shell: dict[str, Any] = uc.call(prepare.proxy_shell_create(job_id, rank, cols, rows))
    except UCloudError as err:
        raise err.about(job_id, rank) from None
    return shell


def close_server_shell(uc: Any, name: str) -> None:
    """``DELETE /ucloud/shells/<name>`` (the job keeps running)."""
    uc.call(prepare.proxy_shell_delete(name))


def _parse_applications(value: Any) -> list[ApplicationMetadata]:
    items = value.get("items") if isinstance(value, dict) else None
    if not isinstance(items, list):
        raise ValueError("the answer has no list of items")
    # The proxy answers flat {name, version, ...}; the embedded server {metadata: {...}}.
    return [
        ApplicationMetadata.model_validate(item.get("metadata", item))
        for item in items
        if isinstance(item, dict)
    ]


def list_applications(uc: Any) -> list[ApplicationMetadata]:
    """The applications one can start: from the Jupyter server, or the embedded server."""
    call = _PROXY_APPLICATIONS if getattr(uc, "via_jupyter", False) else _LOCAL_APPLICATIONS
    return uc.call(Prepared(call, parse=_parse_applications))  # type: ignore[no-any-return]
