"""Token responses of ``/auth/refresh`` and ``/auth/loginServer``. Tokens never appear in repr."""

from __future__ import annotations

from pydantic import Field, StrictInt

from .base import UCloudModel

__all__ = ["AuthenticationTokens", "RefreshResponse"]


class RefreshResponse(UCloudModel):
    """``POST /auth/refresh`` (Bearer refresh token) -> ``{"accessToken", "csrfToken"}``."""

    wire_always = ("access_token", "csrf_token")

    access_token: str = Field(repr=False)
    csrf_token: str | None = Field(default=None, repr=False)


class AuthenticationTokens(UCloudModel):
    """``POST /auth/loginServer`` -> tokens of a new session (``expiresAt`` in Unix ms)."""

    username: str | None = None
    refresh_token: str | None = Field(default=None, repr=False)
    access_token: str = Field(repr=False)
    csrf_token: str | None = Field(default=None, repr=False)
    expires_at: StrictInt | None = None
