"""The Python client of UCloud's Jobs API and job shells.

``UCloud`` (sync, requests) and ``AsyncUCloud`` (aiohttp, tornado websockets) make UCloud's
calls under UCloud's names; ``Shell``/``AsyncShell`` are shells into job ranks; ``JobHandle``,
``ProductTable`` and ``JobTable`` are notebook conveniences on top.
"""

from ..protocol import JobState
from .aio import AsyncUCloud
from .async_shell import AsyncShell
from .errors import (
    ShellClosedError,
    UCloudConfigError,
    UCloudConnectionError,
    UCloudError,
    UCloudJobStateError,
    UCloudTimeoutError,
)
from .handle import JobHandle
from .shell import Shell
from .shell_protocol import CommandResult, strip_ansi
from .sync import UCloud
from .tables import JobTable, ProductTable

__all__ = [
    "AsyncShell",
    "AsyncUCloud",
    "CommandResult",
    "JobHandle",
    "JobState",
    "JobTable",
    "ProductTable",
    "Shell",
    "ShellClosedError",
    "UCloud",
    "UCloudConfigError",
    "UCloudConnectionError",
    "UCloudError",
    "UCloudJobStateError",
    "UCloudTimeoutError",
    "strip_ansi",
]
