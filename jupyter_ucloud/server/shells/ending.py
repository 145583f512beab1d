"""How a shell ends, and what its clients are told.

When the provider leg closes on its own, the clients are told why with
``["disconnect", reason, message]``, decided in this order:

1. ``job-ended`` (close 4001) if the job is in a final state, with UCloud's web client wording
   ("The job has completed." / "has failed." / "has expired."). The job state is asked first,
   and for up to 2 s while it still says RUNNING: a provider closes the shells of an ending job
   before UCloud's job state is final.
2. ``shell-exited`` (close 1000, "The shell has exited.") if the provider closed normally (close
   code 1000) and the job still runs: the user typed ``exit``. The embedded provider closes
   with 1000 "shell exited" when the shell process ends, which is taken at its word (no 2 s of
   asking whether the job is ending).
3. ``provider-lost`` (close 4002) otherwise: an abnormal close (1006, no close frame), a ping
   that went unanswered (``c.UCloud.ping_interval``; the provider leg is pinged too), or an
   error. The message says what was found: that the job still runs (a new shell will work), or
   that its state could not be checked; and how much typed input never reached the shell.

The ambiguity: a real UCloud integration module (Go, gorilla/websocket) may end a shell whose
process exited by dropping the connection without a close frame, which is indistinguishable from
a lost provider; such a shell reports ``provider-lost``, whose message invites the user to open a
new shell - the right action in both cases. A job that ended is never misreported, because the
job state is checked before the close code.

An explicit close (:meth:`Shell.close <.shell.Shell.close>`) ends a shell as ``closed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from .health import undelivered
from .state import ShellState

__all__ = [
    "CLOSE_CODES",
    "JOB_ENDED_MESSAGES",
    "PROVIDER_LOST_MESSAGE",
    "PROVIDER_LOST_UNKNOWN",
    "Ending",
]

log = logging.getLogger(__package__)

CLOSE_CODES = {"job-ended": 4001, "provider-lost": 4002, "closed": 1000, "shell-exited": 1000}
JOB_ENDED_MESSAGES = {
    "SUCCESS": "The job has completed.",
    "FAILURE": "The job has failed.",
    "EXPIRED": "The job has expired.",
}
PROVIDER_LOST_MESSAGE = (
    "The connection to the job was lost. The job is still running: open a new shell to reconnect."
)
#: The close reason of the embedded provider when the shell process ended (``shell_socket``).
SHELL_EXITED_REASON = "shell exited"
PROVIDER_LOST_UNKNOWN = (
    "The connection to the job was lost, and the job's state could not be checked: open a new "
    "shell to reconnect if it still runs."
)


class Ending(ShellState):
    """The part of a Shell that ends it and decides why (see the module docstring)."""

    last_job_state: str | None
    _job_state: Callable[[], Awaitable[str | None]]
    _ending: asyncio.Task[None] | None  # deciding why the provider leg closed

    def _end(self, reason: str, message: str) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        self.reason = reason
        self.message = message
        self.ended_at = time.monotonic()
        log.info("Shell %s ended: %s", self.name, reason)
        for client in self.clients:
            client.wake.set()

    def _on_provider_closed(self) -> None:
        if self._closing:
            return
        clean = self._leg.close_code == 1000
        log.debug("Shell %s: provider leg closed (code %s)", self.name, self._leg.close_code)
        self._ending = asyncio.ensure_future(self._after_provider_closed(clean))

    async def _after_provider_closed(self, clean: bool) -> None:
        # A clean close is ambiguous (the user typed ``exit``, or the provider closes the shells
        # of a job that is ending, before UCloud's state is final): keep asking while the job
        # still says RUNNING - unless the provider said the shell exited (the embedded one does).
        exited = clean and getattr(self._leg, "close_message", None) == SHELL_EXITED_REASON
        state = await self._settled_job_state(wait_while_running=clean and not exited)
        if state in JOB_ENDED_MESSAGES:
            self._end("job-ended", JOB_ENDED_MESSAGES[state])
        elif clean:
            self._end("shell-exited", "The shell has exited.")
        else:
            lost = PROVIDER_LOST_MESSAGE if state == "RUNNING" else PROVIDER_LOST_UNKNOWN
            chars = getattr(self._leg, "undelivered_chars", 0)
            self._end("provider-lost", lost + undelivered(chars))
        with contextlib.suppress(Exception):
            await self._leg.close()

    async def _settled_job_state(
        self, patience: float = 2.0, *, wait_while_running: bool = True
    ) -> str | None:
        """The job's state, asked again (every 0.2 s, ``patience`` s at most) while it cannot
        be had, and, with ``wait_while_running``, while it still says RUNNING (a job whose
        shell just went away may take a moment to be final)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            try:
                left = max(0.05, deadline - loop.time())
                state = await asyncio.wait_for(self._job_state(), timeout=left)
            except Exception:
                state = None  # not now: UCloud (or the embedded server) does not answer
            if state is not None:
                self.last_job_state = state
            settled = state is not None and (state != "RUNNING" or not wait_while_running)
            if settled or loop.time() >= deadline:
                return state
            await asyncio.sleep(0.2)
