"""Answers of ``jobs.openInteractiveSession``: a session of type shell, web or vnc, and the
provider to reach it at. Session identifiers and VNC passwords are credentials: not in repr."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt

from .base import UCloudModel

__all__ = [
    "OpenSession",
    "OpenSessionShell",
    "OpenSessionVnc",
    "OpenSessionWeb",
    "OpenSessionWithProvider",
]


class OpenSessionShell(UCloudModel):
    wire_always = ("type",)

    type: Literal["shell"] = "shell"
    job_id: str
    rank: StrictInt = 0
    session_identifier: str = Field(repr=False)
    domain_override: str | None = None


class OpenSessionWeb(UCloudModel):
    wire_always = ("type",)

    type: Literal["web"] = "web"
    job_id: str
    rank: StrictInt = 0
    redirect_client_to: str | None = None
    domain_override: str | None = None


class OpenSessionVnc(UCloudModel):
    wire_always = ("type",)

    type: Literal["vnc"] = "vnc"
    job_id: str
    rank: StrictInt = 0
    url: str | None = None
    password: str | None = Field(default=None, repr=False)
    domain_override: str | None = None


OpenSession = Annotated[
    OpenSessionShell | OpenSessionWeb | OpenSessionVnc, Field(discriminator="type")
]


class OpenSessionWithProvider(UCloudModel):
    """``providerDomain`` is the provider's base URL (``http(s)://`` or, for shells, ``ws(s)://``);
    the core has already replaced it by a non-empty ``session.domainOverride``."""

    wire_always = ("provider_domain", "provider_id", "session")

    provider_domain: str
    provider_id: str
    session: OpenSession
