"""Shell session identifiers handed out by ``jobs.openInteractiveSession``.

An identifier is UCloud's ``util.RandomToken(32)`` format: decimal nanoseconds followed by 64 hex
characters (256 random bits). It is bound to a job, a rank and a user, can be claimed by exactly
one websocket (a second connection with it is refused), is dead once that connection ends, and
expires when nobody claims it within ``ttl`` seconds. Unlike UCloud's IM (no TTL, a second socket
silently takes over), these rules are strict because the identifier is the only credential on
the provider's websocket.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

__all__ = ["ShellSession", "ShellSessions"]


@dataclass
class ShellSession:
    identifier: str
    job_id: str
    rank: int
    username: str
    created: float  # monotonic
    claimed: bool = False

    def __repr__(self) -> str:  # the identifier is a credential
        return f"ShellSession(job_id={self.job_id!r}, rank={self.rank}, user={self.username!r})"


class ShellSessions:
    """In-memory registry of shell sessions (they do not survive a restart, as in UCloud)."""

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._sessions: dict[str, ShellSession] = {}

    def create(self, job_id: str, rank: int, username: str) -> ShellSession:
        self._purge_expired()
        identifier = f"{time.time_ns()}{secrets.token_hex(32)}"
        session = ShellSession(identifier, job_id, rank, username, time.monotonic())
        self._sessions[identifier] = session
        return session

    def claim(self, identifier: str) -> ShellSession | None:
        """Take the session for one connection; ``None`` if unknown, expired or already taken.

        A claimed session is removed, so the identifier can never be used again."""
        self._purge_expired()
        session = self._sessions.pop(identifier, None) if isinstance(identifier, str) else None
        if session is None or session.claimed:
            return None
        session.claimed = True
        return session

    def __len__(self) -> int:
        return len(self._sessions)

    def _purge_expired(self) -> None:
        cutoff = time.monotonic() - self.ttl
        for identifier in [i for i, s in self._sessions.items() if s.created < cutoff]:
            del self._sessions[identifier]
