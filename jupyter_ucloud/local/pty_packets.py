"""A PTY master in packet mode: where in the output the terminal acted on an interrupt.

Writing ``^C`` to the master returns at once, but the terminal acts on it later, in a kernel
worker: it sends ``SIGINT`` to the foreground process group and discards the output it holds.
Until then the program writes on; ``yes`` wrote tens of kilobytes more in that window on a busy
machine (and once 75 KB). So "the output read after the write of ``^C``" is not yet the output
after the interrupt.

In packet mode (``TIOCPKT``) every read of the master is one packet: a zero byte and output, or
one status byte. The terminal's discard shows up as a status with ``TIOCPKT_FLUSHREAD`` or
``TIOCPKT_FLUSHWRITE``: output read before that status was written before the interrupt took
effect. After it still come at most ``UNFLUSHED_CHARS`` of stale output (the master's own read
buffer, which the discard does not reach, and the rest of a write the program was in), then
the echo of ``^C`` and what the programs write next.

Only interrupts that discard output are waited for (:func:`discards_output`): a signal
character (``VINTR``, ``VQUIT``, ``VSUSP``) with ``isig`` on and ``noflsh`` off in the
terminal's settings, which a master reports for its slave. In raw mode (an editor, ``srun
--pty``) ``^C`` is an ordinary byte.
"""

from __future__ import annotations

import fcntl
import struct
import termios

__all__ = ["DISCARDED", "UNFLUSHED_CHARS", "discards_output", "enable_packet_mode"]

#: The status bits of a packet that say the terminal discarded its queued output.
DISCARDED = termios.TIOCPKT_FLUSHREAD | termios.TIOCPKT_FLUSHWRITE
#: Stale output that may still follow the discard: the master's read buffer (``N_TTY_BUF_SIZE``,
#: 4096) and the write chunk the program was in (2048 bytes, 3072 once each newline is CR LF).
UNFLUSHED_CHARS = 4096 + 3072

_SIGNAL_CHARS = (termios.VINTR, termios.VQUIT, termios.VSUSP)
_DISABLED = b"\x00"  # _POSIX_VDISABLE on Linux


def enable_packet_mode(master_fd: int) -> bool:
    """Switch the PTY of ``master_fd`` to packet mode; ``False`` where it is not a PTY master."""
    try:
        fcntl.ioctl(master_fd, termios.TIOCPKT, struct.pack("i", 1))
    except OSError:
        return False
    return True


def discards_output(master_fd: int, data: bytes) -> bool:
    """Whether the terminal, given ``data`` as input, sends a signal and discards its queued
    output (see the module docstring)."""
    try:
        settings = termios.tcgetattr(master_fd)
    except termios.error:
        return False
    local_modes, chars = settings[3], settings[6]
    if not local_modes & termios.ISIG or local_modes & termios.NOFLSH:
        return False
    for index in _SIGNAL_CHARS:
        char = chars[index]
        if isinstance(char, bytes) and char != _DISABLED and char in data:
            return True
    return False
