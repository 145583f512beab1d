"""``ShellManager``: every shell of this Jupyter server - opens, lists, culls and closes them."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Protocol

from .shell import Shell
from .state import ProviderLeg

__all__ = ["ShellError", "ShellManager", "ShellUpstream"]


class ShellError(Exception):
    """A shell request that cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ShellUpstream(Protocol):
    """What the manager needs of the UCloud it talks to (``server.upstream.Upstream`` fits)."""

    async def open_shell(
        self, job_id: str, rank: int, *, cols: int, rows: int, ping_interval: float, timeout: float
    ) -> ProviderLeg:
        """Check the job and connect to the provider's shell (raises :class:`ShellError`)."""

    async def job_state(self, job_id: str) -> str | None:
        """The job's state (``"RUNNING"``, ``"SUCCESS"``, ...), ``None`` if it has none."""


class ShellManager:
    """Every shell of this Jupyter server, by name; opens, lists, culls and closes them.

    Shells belong to the Jupyter server, as Jupyter's own terminals do: a Jupyter server serves
    one person (JupyterHub gives each user their own), every request is authenticated and
    authorized for ``ucloud``, and Jupyter gives token-authenticated clients (a notebook's
    client) a fresh anonymous identity per request, so names of users cannot scope them. The
    per-user limit (``max_shells_per_user``) is therefore a limit on this server's open shells.
    ``owner`` is recorded for the logs.
    """

    def __init__(
        self,
        upstream: ShellUpstream,
        *,
        replay_bytes: int = 262144,
        ping_interval: float = 30.0,
        idle_timeout: float = 3600.0,
        max_shells_per_user: int = 16,
        slow_client_timeout: float = 5.0,
        stalled_client_timeout: float = 1.0,
        connect_timeout: float = 30.0,
        ended_retention: float = 600.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.upstream = upstream
        self.replay_bytes = replay_bytes
        self.ping_interval = ping_interval
        self.idle_timeout = idle_timeout
        self.max_shells_per_user = max_shells_per_user
        self.slow_client_timeout = slow_client_timeout
        self.stalled_client_timeout = stalled_client_timeout
        self.connect_timeout = connect_timeout
        self.ended_retention = ended_retention
        self.log = log or logging.getLogger(__package__)
        self._shells: dict[str, Shell] = {}
        self._opening = 0
        self._culler: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._culler is None or self._culler.done():
            self._culler = asyncio.ensure_future(self._run_culler())

    def get(self, name: str) -> Shell | None:
        return self._shells.get(name)

    def shells(self) -> list[Shell]:
        return list(self._shells.values())

    async def open(
        self,
        owner: str,
        job_id: str,
        rank: int,
        cols: int = 80,
        rows: int = 24,
        replaces: str | None = None,
    ) -> Shell:
        """Open a shell into ``rank`` of ``job_id`` for ``owner`` (raises ShellError)."""
        self.start()
        open_now = sum(1 for s in self.shells() if s.state != "ended")
        if open_now + self._opening >= self.max_shells_per_user:
            raise ShellError(
                429,
                f"You have {open_now + self._opening} open shells, the most allowed "
                f"(c.UCloud.max_shells_per_user = {self.max_shells_per_user}). Close one first.",
            )
        if replaces is not None:
            old = self.get(replaces)
            if old is None:
                raise ShellError(404, f"No shell named {replaces!r} to replace.")
            if (old.job_id, old.rank) != (job_id, rank):
                raise ShellError(400, "A replacement shell must be for the same job and rank.")
        self._opening += 1
        try:
            leg = await self.upstream.open_shell(
                job_id,
                rank,
                cols=cols,
                rows=rows,
                ping_interval=self.ping_interval,
                timeout=self.connect_timeout,
            )
        finally:
            self._opening -= 1
        name = f"ucloud-{_name_part(job_id)}-{rank}-{secrets.token_hex(4)}"
        shell = Shell(
            name=name,
            owner=owner,
            job_id=job_id,
            rank=rank,
            leg=leg,
            job_state=lambda: self.upstream.job_state(job_id),
            replay_bytes=self.replay_bytes,
            slow_client_timeout=self.slow_client_timeout,
            stalled_client_timeout=self.stalled_client_timeout,
            size=(rows, cols),
            replaces=replaces,
        )
        self._shells[name] = shell
        shell.start()
        if replaces is not None:
            old = self._shells.pop(replaces, None)
            if old is not None:
                await old.close("closed", f"Replaced by shell {name}.")
        self.log.info("Opened shell %s (job %s, rank %s)", name, job_id, rank)
        return shell

    async def close(self, name: str) -> bool:
        shell = self.get(name)
        if shell is None:
            return False
        self._shells.pop(name, None)
        await shell.close()
        return True

    async def close_all(self) -> None:
        if self._culler is not None:
            self._culler.cancel()
        shells, self._shells = list(self._shells.values()), {}
        await asyncio.gather(*(shell.close() for shell in shells), return_exceptions=True)

    async def _run_culler(self) -> None:
        interval = max(1.0, min(60.0, (self.idle_timeout or 60.0) / 4))
        while True:
            await asyncio.sleep(interval)
            await self.cull()

    async def cull(self) -> None:
        now = time.monotonic()
        for shell in list(self._shells.values()):
            if shell.state == "ended":
                if shell.ended_at is not None and now - shell.ended_at > self.ended_retention:
                    self._shells.pop(shell.name, None)
            elif (
                self.idle_timeout
                and not shell.clients
                and shell.detached_since is not None
                and now - shell.detached_since > self.idle_timeout
            ):
                self.log.info("Closing shell %s: nobody attached for a while", shell.name)
                self._shells.pop(shell.name, None)
                await shell.close("closed", "The shell was closed after being idle.")


def _name_part(job_id: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in job_id)[:40]
    return cleaned or "job"
