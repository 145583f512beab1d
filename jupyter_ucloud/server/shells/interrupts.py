"""After an interrupt (Ctrl-C), the stale output already on its way to the clients is skipped.

Input never waits for output (it has its own path and lock), so ``\\x03`` reaches the PTY at
once. The tty driver then discards the output still queued in the PTY; what was already on its
way to the browser (the provider's socket buffers, often megabytes of ``yes``) is just as stale,
so it is skipped too - and nothing else. After an interrupt character (``^C``, ``^\\``, ``^Z``)
the provider leg is read without pacing and clients send nothing (with a provider that does not
ack: only the last ``INTERRUPT_TAIL_CHARS`` of output) until the *boundary* is known, the output
position from which everything is delivered in full:

- where the provider acknowledged that input (UCloud providers ``ack`` every ``input``; the
  embedded one right where the terminal acted on the interrupt, ``local.pty_packets``, so
  output before the ack was produced before the interrupt and output after it came after).
  Input typed next is acked later still, so nothing it produces is ever skipped;
- with a provider that has not acked anything, where the output was when the client sent its
  next input;
- in any case, where the output was ``INTERRUPT_FLUSH_SECONDS`` after the interrupt.

Clients then continue from ``INTERRUPT_TAIL_CHARS`` before the boundary (the last screenful
of the stale output, then the prompt). The flood stops on screen as soon as the PTY stops it.

Where the other parts take part: ``Shell.write`` starts a skip and, with a provider that does
not ack, ends it at the next input; the provider leg calls ``_check_interrupt_acked`` when the
ack comes (also when no output follows it); ``_on_output`` does not pace while ``_skipping``;
``_deliver`` and the senders hold the output back meanwhile, then move each client on to its
``skip_floor``.
"""

from __future__ import annotations

import asyncio

from ...protocol.shell import INTERRUPT_CHARS
from .state import ShellState

__all__ = [
    "INTERRUPT_CHARS",
    "INTERRUPT_FLUSH_SECONDS",
    "INTERRUPT_TAIL_CHARS",
    "InterruptSkip",
]

INTERRUPT_FLUSH_SECONDS = 1.0
INTERRUPT_TAIL_CHARS = 4096


class InterruptSkip(ShellState):
    """The part of a Shell that skips an interrupt's stale output (see the module docstring)."""

    _skip_timer: asyncio.TimerHandle | None  # ends the skip at INTERRUPT_FLUSH_SECONDS

    def _start_skip(self) -> None:
        self._skipping = True
        if self._skip_timer is not None:
            self._skip_timer.cancel()
        loop = asyncio.get_running_loop()
        self._skip_timer = loop.call_later(INTERRUPT_FLUSH_SECONDS, self._skip_timed_out)
        self._room.set()
        for client in self.clients:
            client.wake.set()

    def _skip_timed_out(self) -> None:
        self._skip_timer = None
        self._end_skip(self.buffer.end)

    def _check_interrupt_acked(self) -> None:
        acked_at = self._leg.ack_position()
        if acked_at is not None:
            # The leg's output count and the buffer's end advance together (every frame is
            # appended), so the ack's place in the buffer is this far back from the end.
            self._end_skip(self.buffer.end - (self._leg.output_chars - acked_at))

    def _end_skip(self, boundary: int) -> None:
        if not self._skipping:
            return
        self._skipping = False
        if self._skip_timer is not None:
            self._skip_timer.cancel()
            self._skip_timer = None
        floor = max(0, boundary - INTERRUPT_TAIL_CHARS)
        for client in self.clients:
            client.skip_floor = max(client.skip_floor, floor)
            client.wake.set()
        self._room.set()
