"""Envelopes shared by every call: bulk requests and responses, pages, ids, error bodies."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import StrictInt

from .base import UCloudModel

__all__ = ["BulkRequest", "BulkResponse", "ErrorBody", "FindByStringId", "PageV2"]

T = TypeVar("T")


class BulkRequest(UCloudModel, Generic[T]):
    """``{"items": [...]}``. The web client also sends ``"type": "bulk"``, which servers ignore."""

    items: list[T]
    type: str | None = None


class BulkResponse(UCloudModel, Generic[T]):
    """``{"responses": [...]}``, in request order. Go omits an empty list, so ``{}`` parses too."""

    responses: list[T] = []


class PageV2(UCloudModel, Generic[T]):
    """A page of a browse call. ``next`` is ``null`` on the last page."""

    wire_always = ("items", "items_per_page", "next")

    items: list[T] = []
    items_per_page: StrictInt = 50
    next: str | None = None


class FindByStringId(UCloudModel):
    id: str


class ErrorBody(UCloudModel):
    """UCloud's error body (``util.HttpError``). The IM's own errors carry only why/errorCode."""

    wire_always = ("status_code", "why", "error_code", "detailed_code")

    status_code: StrictInt = 0
    why: str = ""
    error_code: str | None = ""
    detailed_code: StrictInt | None = 0
