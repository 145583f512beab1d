"""Errors of the client. Messages say what failed and where, never a credential."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ShellClosedError",
    "UCloudConfigError",
    "UCloudConnectionError",
    "UCloudError",
    "UCloudJobStateError",
    "UCloudTimeoutError",
    "redact",
]


class UCloudError(Exception):
    """A call failed: UCloud (or the Jupyter server proxying it) answered with an error.

    ``status`` is the HTTP status (``None`` when no answer came), ``why`` UCloud's text,
    ``error_code`` its ``errorCode``, ``call`` the call name (``jobs.retrieve``, ...). ``job_id``
    and ``rank`` are set when the error concerns one job or one of its ranks.
    """

    def __init__(
        self,
        why: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        call: str | None = None,
        job_id: str | None = None,
        rank: int | None = None,
    ) -> None:
        self.why = why
        self.status = status
        self.error_code = error_code or None
        self.call = call
        self.job_id = job_id
        self.rank = rank
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.job_id is not None:
            where.append(f"job {self.job_id}")
        if self.rank is not None:
            where.append(f"rank {self.rank}")
        prefix = f"[{', '.join(where)}] " if where else ""
        call = f"{self.call}: " if self.call else ""
        status = f"{self.status} " if self.status is not None else ""
        code = f" ({self.error_code})" if self.error_code else ""
        return f"{prefix}{call}{status}{self.why}{code}"

    def about(self, job_id: str | None = None, rank: int | None = None) -> UCloudError:
        """This error, naming ``job_id`` and ``rank`` too (for errors raised on a job's behalf)."""
        if job_id is not None:
            self.job_id = job_id
        if rank is not None:
            self.rank = rank
        self.args = (self._message(),)
        return self

    def __str__(self) -> str:
        return self._message()


class UCloudConnectionError(UCloudError):
    """No answer: the host could not be reached or the connection broke."""


class UCloudTimeoutError(UCloudError):
    """No answer in time (an HTTP call, a websocket handshake, or a shell command)."""


class UCloudConfigError(UCloudError):
    """The client does not know where UCloud is or how to authenticate."""


class UCloudJobStateError(UCloudError):
    """A job is (or ended up) in a state that makes the request impossible."""


class ShellClosedError(UCloudError):
    """The shell's websocket is closed (the shell exited, the job ended, or ``close()``)."""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``***`` (for messages built from library errors)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
