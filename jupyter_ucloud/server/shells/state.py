"""What the parts of a :class:`~.shell.Shell` share: the interfaces of its two legs, each
client's place in the output, and the shell's own state.

A Shell is one object made of mixins, one per concern (clients, pacing, interrupts, sizes,
ending); :class:`ShellState` declares the state more than one of them reads or writes, so that
each module says what it relies on. ``Shell.__init__`` sets all of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..replay import ReplayBuffer

__all__ = ["ClientSink", "ProviderLeg", "ShellClient", "ShellState"]


class ProviderLeg(Protocol):
    """The provider side of a shell (``jupyter_ucloud.client.AsyncShell`` fits)."""

    #: Characters of output received so far, and whether the provider acknowledges input.
    output_chars: int
    acks_seen: bool

    @property
    def close_code(self) -> int | None: ...

    def stream_output(
        self, on_output: Callable[[str], Awaitable[object] | None], on_closed: Callable[[], None]
    ) -> None: ...

    def send_nowait(self, text: str) -> asyncio.Future[None]: ...

    async def send(self, text: str) -> None: ...

    async def resize(self, cols: int, rows: int) -> None: ...

    async def close(self) -> None: ...

    def watch_next_input(self, on_acked: Callable[[], None] | None = None) -> int | None:
        """Remember where in the output the provider acknowledges the next ``send``; call
        ``on_acked`` when it does."""

    def ack_position(self) -> int | None:
        """``output_chars`` when the watched input was acknowledged, else ``None``."""

    # Optional: ``liveness`` (``client.liveness.Liveness | None``: whether the provider answers,
    # see ``health``) and ``undelivered_chars`` (input it has not acknowledged).


class ClientSink(Protocol):
    """Where a client's frames go (the terminal websocket handler, or a benchmark)."""

    async def send_frame(self, frame: str | bytes) -> None:
        """Send one text frame (``bytes``: already UTF-8); return when the transport has taken
        it."""

    # Optional: ``write_frame(frame) -> Future | None`` starts the same write without a
    # coroutine, so new output can go to an idle client as it arrives, without waking its sender
    # task; ``None`` when the transport has taken the frame already (nothing to wait for).

    def close_client(self, code: int, reason: str) -> None:
        """Close the client's connection."""


@dataclass(eq=False)
class ShellClient:
    """One attached client and where it is in the shell's output."""

    sink: ClientSink
    cursor: int
    live_from: int
    pacing: bool = True
    write_started: float | None = None
    size: tuple[int, int] | None = None  # (rows, cols)
    skip_floor: int = 0  # after an interrupt: the stale output before this is not sent
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    idle: bool = False  # its sender task waits for output, having sent everything
    writing: asyncio.Future[Any] | None = None  # a frame written to it directly, in flight
    write_now: Callable[[bytes], asyncio.Future[Any] | None] | None = None  # sink.write_frame


class ShellState:
    """The state the parts of a Shell share (declared here, set in ``Shell.__init__``)."""

    name: str
    state: str  # "open", then "ended"
    reason: str | None  # why it ended (``ending``)
    message: str | None
    buffer: ReplayBuffer  # the output held for clients (``replay``)
    clients: list[ShellClient]
    detached_since: float | None  # monotonic time the last client left (the manager culls)
    ended_at: float | None
    _leg: ProviderLeg
    _room: asyncio.Event  # set when a pacing client may have made room (``pacing``)
    _skipping: bool  # an interrupt's stale output is being skipped (``interrupts``)
    _closing: bool  # close() was called: the provider leg's output and close are ignored
    provider: str  # "ok", or "unresponsive" while the provider does not answer (``health``)
