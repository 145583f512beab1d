"""The UCloud calls the client makes, prepared without I/O (shared by both flavours)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..protocol import (
    BulkRequest,
    BulkResponse,
    Call,
    FindByStringId,
    InteractiveSessionType,
    Job,
    JobsBrowseRequest,
    JobsExtendRequestItem,
    JobsOpenInteractiveSessionRequestItem,
    JobSpecification,
    JobsRetrieveRequest,
    OpenSessionWithProvider,
    PageV2,
    SimpleDuration,
    SupportByProvider,
)
from .transport import Prepared

__all__ = [
    "browse",
    "create",
    "extend",
    "open_interactive_session",
    "proxy_shell_create",
    "proxy_shell_delete",
    "proxy_status",
    "retrieve",
    "retrieve_products",
    "terminate",
]


def retrieve_products() -> Prepared[SupportByProvider]:
    return Prepared.of("jobs.retrieveProducts")


def browse(**flags: Any) -> Prepared[PageV2[Job]]:
    """``jobs.browse`` with UCloud's flags as snake_case keywords (``filter_state=...``)."""
    return Prepared.of("jobs.browse", JobsBrowseRequest(**_present(flags)))


def retrieve(job_id: str, **flags: Any) -> Prepared[Job]:
    return Prepared.of("jobs.retrieve", JobsRetrieveRequest(id=str(job_id), **_present(flags)))


def create(specs: list[JobSpecification | dict[str, Any]]) -> Prepared[list[str]]:
    items = [
        spec if isinstance(spec, JobSpecification) else JobSpecification.model_validate(spec)
        for spec in specs
    ]

    def ids(value: Any) -> list[str]:
        return [item.id for item in BulkResponse[FindByStringId].model_validate(value).responses]

    return Prepared.of("jobs.create", BulkRequest[JobSpecification](items=items), ids)


def terminate(job_ids: list[str]) -> Prepared[None]:
    request = BulkRequest[FindByStringId](items=[FindByStringId(id=str(i)) for i in job_ids])
    return Prepared.of("jobs.terminate", request, _ignore)


def extend(job_id: str, requested_time: SimpleDuration) -> Prepared[None]:
    item = JobsExtendRequestItem(job_id=str(job_id), requested_time=requested_time)
    return Prepared.of("jobs.extend", BulkRequest[JobsExtendRequestItem](items=[item]), _ignore)


def open_interactive_session(
    job_id: str, rank: int, session_type: InteractiveSessionType | str, target: str | None = None
) -> Prepared[OpenSessionWithProvider]:
    fields: dict[str, Any] = {"target": target} if target is not None else {}
    item = JobsOpenInteractiveSessionRequestItem(
        id=str(job_id), rank=rank, session_type=InteractiveSessionType(session_type), **fields
    )

    def first(value: Any) -> OpenSessionWithProvider:
        responses = BulkResponse[OpenSessionWithProvider].model_validate(value).responses
        if len(responses) != 1:
            raise ValueError(f"expected one session, got {len(responses)}")
        return responses[0]

    return Prepared.of(
        "jobs.openInteractiveSession",
        BulkRequest[JobsOpenInteractiveSessionRequestItem](items=[item]),
        first,
    )


# --- the Jupyter server extension's own routes (docs/architecture.md section 4) ---------------

_SHELLS = Call("shells.create", "POST", "/shells", "body", None, None)
_STATUS = Call("status", "GET", "/api/status", "none", None, None)


def proxy_shell_create(job_id: str, rank: int, cols: int, rows: int) -> Prepared[dict[str, Any]]:
    """``POST <base>/ucloud/shells {jobId, rank, cols, rows}`` -> the shell model."""

    def model(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise ValueError("the shell model has no name")
        return value

    body = {"jobId": str(job_id), "rank": rank, "cols": cols, "rows": rows}
    return Prepared(_SHELLS, body=body, parse=model)


def proxy_shell_delete(name: str) -> Prepared[None]:
    call = Call("shells.delete", "DELETE", f"/shells/{quote(name, safe='')}", "none", None, None)
    return Prepared(call, parse=_ignore)


def proxy_status() -> Prepared[dict[str, Any]]:
    return Prepared(_STATUS, parse=lambda value: value if isinstance(value, dict) else {})


def _present(flags: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in flags.items() if value is not None}


def _ignore(value: Any) -> None:
    return None
