"""What a shell knows about itself, shared by ``Shell`` (sync) and ``AsyncShell``."""

from __future__ import annotations

from collections import deque

from .errors import ShellClosedError
from .shell_protocol import Ended, Event, Output


class ShellState:
    """Identity, pending output and how the shell ended; the flavours only move frames."""

    def __init__(self, *, job_id: str, rank: int, cols: int, rows: int) -> None:
        self.job_id, self.rank = job_id, rank
        self.label = f"job {job_id} rank {rank}"
        self.cols, self.rows = cols, rows
        self._pending: deque[str] = deque()
        self.closed = False
        self.close_reason: str | None = None
        self.close_message: str | None = None
        #: Characters of output received so far (``read`` hands them out in this order).
        self.output_chars = 0

    def _apply(self, event: Event) -> None:
        if type(event) is Output:
            self._pending.append(event.text)
            self.output_chars += len(event.text)
        elif isinstance(event, Ended):
            self.close_reason, self.close_message = event.reason, event.message

    def _mark_closed(self, reason: str, message: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = self.close_reason or reason
            self.close_message = self.close_message or message

    def _closed_error(self, what: str) -> ShellClosedError:
        why = self.close_reason or "closed"
        message = f": {self.close_message}" if self.close_message else ""
        return ShellClosedError(
            f"{what}: the shell is closed ({why}{message})", job_id=self.job_id, rank=self.rank
        )
