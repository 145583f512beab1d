"""Errors the extension answers with, and how client errors map onto HTTP statuses."""

from __future__ import annotations

from typing import Any

from tornado import web

from ..client.errors import UCloudConnectionError, UCloudError, UCloudTimeoutError

__all__ = ["ProxyError", "proxy_error"]


class ProxyError(web.HTTPError):
    """An HTTP error with UCloud's ``why``/``errorCode`` when they came from UCloud.

    The body is Jupyter's ``{"message", "reason"}`` plus ``why`` and ``errorCode``. Messages are
    built from UCloud's answers and the client's errors, which never hold a credential.
    """

    def __init__(
        self, status: int, message: str, why: str | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(status, "%s", message, reason=None)
        self.message = message
        self.why = why
        self.error_code = error_code

    def body(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "reason": self.reason,
            "why": self.why if self.why is not None else self.message,
            "errorCode": self.error_code,
        }


def proxy_error(err: UCloudError, what: str = "UCloud") -> ProxyError:
    """The answer for a failed upstream call: UCloud's 4xx as they are, the rest as 502/503/504."""
    if isinstance(err, UCloudTimeoutError):
        return ProxyError(504, f"{what} did not answer in time: {err.why}")
    if isinstance(err, UCloudConnectionError):
        return ProxyError(503, f"{what} is unreachable: {err.why}")
    status = err.status
    if status is None:
        return ProxyError(502, f"{what} failed: {err.why}")
    if 400 <= status < 500:
        return ProxyError(status, err.why, why=err.why, error_code=err.error_code)
    if status in (502, 503, 504):
        return ProxyError(status, f"{what} answered {status}: {err.why}", err.why, err.error_code)
    if 200 <= status < 300:  # an answer that could not be read
        return ProxyError(502, f"{what} sent an answer that could not be read: {err.why}")
    return ProxyError(502, f"{what} failed ({status}): {err.why}", err.why, err.error_code)
