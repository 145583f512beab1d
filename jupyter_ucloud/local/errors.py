"""UCloud-style HTTP errors of the embedded server (reference section 1.4)."""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """Answered as ``{"statusCode", "why", "errorCode", "detailedCode"}`` with ``status``.

    As ``util.HttpErr`` does, the first letter of ``why`` is upper-cased."""

    def __init__(self, status: int, why: str, error_code: str = "") -> None:
        why = why[:1].upper() + why[1:]
        super().__init__(why)
        self.status = status
        self.why = why
        self.error_code = error_code

    @classmethod
    def job_not_found(cls, job_id: str) -> ApiError:
        shown = job_id if len(job_id) <= 64 else job_id[:64] + "..."
        return cls(404, f"Permission denied or job not found ({shown})")

    @classmethod
    def invalid_request(cls) -> ApiError:
        return cls(400, "Invalid request supplied")
