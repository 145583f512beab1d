"""Shell sessions: one provider shell, many browser clients, a bounded history.

The design is in :mod:`.shell`'s docstring. Every name is importable from here.
"""

from .clients import FRAME_CHARS, SKIPPED_NOTE
from .ending import CLOSE_CODES, JOB_ENDED_MESSAGES, PROVIDER_LOST_MESSAGE
from .interrupts import INTERRUPT_CHARS, INTERRUPT_FLUSH_SECONDS, INTERRUPT_TAIL_CHARS
from .pacing import FLOW_WINDOW
from .shell import (
    STDIN_CHUNK,
    Shell,
    ShellError,
    ShellManager,
)
from .state import ClientSink, ProviderLeg, ShellClient

__all__ = [
    "CLOSE_CODES",
    "FLOW_WINDOW",
    "FRAME_CHARS",
    "INTERRUPT_CHARS",
    "INTERRUPT_FLUSH_SECONDS",
    "INTERRUPT_TAIL_CHARS",
    "JOB_ENDED_MESSAGES",
    "PROVIDER_LOST_MESSAGE",
    "SKIPPED_NOTE",
    "STDIN_CHUNK",
    "ClientSink",
    "ProviderLeg",
    "Shell",
    "ShellClient",
    "ShellError",
    "ShellManager",
]
