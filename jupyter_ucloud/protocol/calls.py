"""The call table (name -> method, path, encoding, types) and UCloud's GET query encoding.

Paths follow UCloud's RPC conventions (reference section 1.1): ``/api/<ctx>`` for create,
``/api/<ctx>/<op>`` otherwise, ``/auth/...`` without the ``/api`` prefix, and the one exception
``jobs.openInteractiveSession`` -> ``/api/jobs/interactiveSession``. ``request`` and ``response``
are the types of the whole body (``BulkRequest[...]`` for bulk calls), or ``None`` when the call
has no body or query. Query-encoded calls (``encoding="query"``) go through ``encode_query`` and
``decode_query``.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from .auth import RefreshResponse
from .envelopes import BulkRequest, BulkResponse, FindByStringId, PageV2
from .jobs import (
    Job,
    JobsBrowseRequest,
    JobsExtendRequestItem,
    JobsOpenInteractiveSessionRequestItem,
    JobSpecification,
    JobsRetrieveRequest,
)
from .products import SupportByProvider
from .sessions import OpenSessionWithProvider

__all__ = ["CALLS", "Call", "decode_query", "encode_query", "find_call"]

Encoding = Literal["query", "body", "none"]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call:
    """One UCloud call: how it goes on the wire and what it carries."""

    name: str
    method: str
    path: str
    encoding: Encoding
    request: type[Any] | None
    response: type[Any] | None
    bulk: bool = False

    @property
    def request_item(self) -> type[Any] | None:
        """For a bulk call, the type of one request item (``T`` of ``BulkRequest[T]``)."""
        return _generic_arg(self.request) if self.bulk else None

    @property
    def response_item(self) -> type[Any] | None:
        """For a bulk call, the type of one response item (``T`` of ``BulkResponse[T]``)."""
        return _generic_arg(self.response) if self.bulk else None


def _generic_arg(model: type[Any] | None) -> type[Any] | None:
    if model is None:
        return None
    args = getattr(model, "__pydantic_generic_metadata__", {}).get("args", ())
    return args[0] if args else None


CALLS: dict[str, Call] = {
    call.name: call
    for call in (
        Call(
            "jobs.retrieveProducts",
            "GET",
            "/api/jobs/retrieveProducts",
            "none",
            None,
            SupportByProvider,
        ),
        Call("jobs.browse", "GET", "/api/jobs/browse", "query", JobsBrowseRequest, PageV2[Job]),
        Call("jobs.retrieve", "GET", "/api/jobs/retrieve", "query", JobsRetrieveRequest, Job),
        Call(
            "jobs.create",
            "POST",
            "/api/jobs",
            "body",
            BulkRequest[JobSpecification],
            BulkResponse[FindByStringId],
            bulk=True,
        ),
        Call(
            "jobs.terminate",
            "POST",
            "/api/jobs/terminate",
            "body",
            BulkRequest[FindByStringId],
            BulkResponse[dict[str, Any]],
            bulk=True,
        ),
        Call(
            "jobs.extend",
            "POST",
            "/api/jobs/extend",
            "body",
            BulkRequest[JobsExtendRequestItem],
            BulkResponse[dict[str, Any]],
            bulk=True,
        ),
        Call(
            "jobs.openInteractiveSession",
            "POST",
            "/api/jobs/interactiveSession",
            "body",
            BulkRequest[JobsOpenInteractiveSessionRequestItem],
            BulkResponse[OpenSessionWithProvider],
            bulk=True,
        ),
        Call("auth.refresh", "POST", "/auth/refresh", "none", None, RefreshResponse),
    )
}


def find_call(method: str, path: str) -> Call | None:
    """The call served at ``method path`` (a trailing ``/`` is ignored, as UCloud does)."""
    path = "/" + path.strip("/")
    for call in CALLS.values():
        if call.method == method.upper() and call.path == path:
            return call
    return None


# --- query encoding -----------------------------------------------------------------------------


def encode_query(model: BaseModel) -> dict[str, str]:
    """UCloud's GET encoding of ``model``: wire names, nested models flattened without a prefix,
    ``dict`` fields as ``name.key``, absent (``None``) fields omitted, bools ``true``/``false``."""
    params: dict[str, str] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        key = field.alias or name
        if isinstance(value, BaseModel):
            params.update(encode_query(value))
        elif isinstance(value, Mapping):
            params.update({f"{key}.{k}": _scalar(v) for k, v in value.items()})
        else:
            params[key] = _scalar(value)
    return params


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (int, float, str)):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a query string")


QueryValue = str | bytes | Sequence[str | bytes]

# strconv.ParseBool
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


def decode_query(model_type: type[M], params: Mapping[str, QueryValue]) -> M:
    """Parse query parameters into ``model_type`` as UCloud's server does.

    Values may be strings, bytes or lists of them (the first one counts, as Go's ``Get``). Empty
    values and unknown names are ignored. A value that does not parse raises ``ValueError``
    (pydantic's ``ValidationError`` is one): answer it with 400 ``Invalid request supplied``.
    """
    flat: dict[str, str] = {}
    for key, raw in params.items():
        value = _first(raw)
        if value != "":
            flat[key] = value
    return model_type.model_validate(_collect(model_type, flat))


def _first(raw: QueryValue) -> str:
    if isinstance(raw, (str, bytes)):
        value: str | bytes = raw
    else:
        value = raw[0] if raw else ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError("query parameter is not UTF-8") from err
    return value


@functools.cache
def _fields(model_type: type[BaseModel]) -> tuple[tuple[str, Any, str], ...]:
    """``(wire name, type, "model" | "dict" | "scalar")`` of each field (worked out once per
    model: the proxy decodes a query on every call)."""
    found = []
    for name, field in model_type.model_fields.items():
        kind = _strip_optional(field.annotation)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            shape = "model"
        elif typing.get_origin(kind) is dict or kind is dict:
            shape = "dict"
        else:
            shape = "scalar"
        found.append((field.alias or name, kind, shape))
    return tuple(found)


def _collect(model_type: type[BaseModel], flat: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, kind, shape in _fields(model_type):
        if shape == "model":
            nested = _collect(kind, flat)
            if nested:
                data[key] = nested
        elif shape == "dict":
            prefix = key + "."
            entries = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
            if entries:
                data[key] = entries
        elif key in flat:
            data[key] = _parse_scalar(key, flat[key], kind)
    return data


def _strip_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            annotation = args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


_INT = re.compile(r"[+-]?[0-9]+")


def _parse_scalar(key: str, value: str, kind: Any) -> Any:
    """Go's strconv rules for bools and ints; everything else is validated by the model."""
    if kind is bool:
        if value not in _BOOLS:
            raise ValueError(f"invalid boolean for {key!r}")
        return _BOOLS[value]
    if kind is int:
        if not _INT.fullmatch(value) or not -(2**63) <= int(value) < 2**63:
            raise ValueError(f"invalid integer for {key!r}")
        return int(value)
    return value
