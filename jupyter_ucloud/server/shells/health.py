"""Whether the job's provider answers, told to the clients while the shell is open.

A provider that stops answering without closing anything (stopped, overloaded, cut off) would
otherwise look like a terminal that shows nothing while what is typed disappears. The provider
leg watches the connection (``jupyter_ucloud.client.liveness``): a ping when it is silent for
2 s, *unresponsive* once a ping or an input has gone unanswered for 4 s, responsive again as
soon as anything arrives. Each change is sent to every client as a frame we own both ends of::

    ["status", {"provider": "unresponsive" | "ok", "message": "..."}]

(the stock JupyterLab terminal ignores unknown frames; ours shows it), and a client that
attaches meanwhile gets the current one after ``setup``. What is typed meanwhile is sent on:
it waits in the connection and reaches the shell when the provider answers again. If the provider
never does, the leg is dropped after ``c.UCloud.ping_interval`` seconds and the ``disconnect``
message says how many characters never arrived (``undelivered``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from .state import ShellClient, ShellState

__all__ = ["PROVIDER_OK", "PROVIDER_UNRESPONSIVE", "ProviderHealth", "undelivered"]

log = logging.getLogger(__package__)

PROVIDER_UNRESPONSIVE = (
    "The job's provider is not responding. What you type is kept and sent when it answers."
)
PROVIDER_OK = "The job's provider answers again."


def undelivered(chars: int) -> str:
    """The sentence a ``disconnect`` message ends with when typed input never arrived."""
    if chars <= 0:
        return ""
    what = "1 character" if chars == 1 else f"{chars} characters"
    return f" {what} you typed did not reach the shell."


class ProviderHealth(ShellState):
    """The part of a Shell that tells clients whether the provider answers."""

    provider: str  # "ok" | "unresponsive"

    def _watch_provider(self) -> None:
        liveness = getattr(self._leg, "liveness", None)
        if liveness is not None:
            liveness.on_change = self._on_provider_health

    def _on_provider_health(self, responsive: bool) -> None:
        if self.state != "open":
            return
        self.provider = "ok" if responsive else "unresponsive"
        if responsive:
            log.info("Shell %s: the provider answers again", self.name)
        else:
            log.warning("Shell %s: the provider is not responding", self.name)
        frame = self._status_frame()
        for client in self.clients:
            self._send_control(client, frame)

    def _status_frame(self) -> bytes:
        message = PROVIDER_OK if self.provider == "ok" else PROVIDER_UNRESPONSIVE
        return orjson.dumps(["status", {"provider": self.provider, "message": message}])

    def _send_status_if_unresponsive(self, client: ShellClient) -> None:
        """What a client that attaches while the provider does not answer is told first."""
        if self.provider != "ok":
            self._send_control(client, self._status_frame())

    def _send_control(self, client: ShellClient, frame: bytes) -> None:
        """A frame of our own, beside the output (tornado keeps frames in order)."""
        sent: Any = asyncio.ensure_future(client.sink.send_frame(frame))
        sent.add_done_callback(_ignore_failure)


def _ignore_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a client that went away: its sender notices
