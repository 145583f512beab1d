"""URL routes of the extension (relative to the Jupyter base URL)."""

from __future__ import annotations

from typing import Any

from .api import ApplicationsHandler, JobsProxyHandler, NotFoundHandler, StatusHandler
from .follow import JobFollowWebSocketHandler
from .shells import ShellHandler, ShellsHandler
from .terminal import TerminalWebSocketHandler

__all__ = ["SHELL_NAME", "handlers"]

SHELL_NAME = r"(?P<name>[A-Za-z0-9_.\-]{1,120})"


def handlers() -> list[tuple[str, Any]]:
    return [
        (r"/ucloud/api/status/?", StatusHandler),
        (r"/ucloud/api/applications/?", ApplicationsHandler),
        (r"/ucloud/api/jobs/follow/?", JobFollowWebSocketHandler),  # before the jobs proxy
        (r"/ucloud/api/jobs(?:/(?P<operation>[A-Za-z]+))?/?", JobsProxyHandler),
        (r"/ucloud/shells/?", ShellsHandler),
        (rf"/ucloud/shells/{SHELL_NAME}/websocket/?", TerminalWebSocketHandler),
        (rf"/ucloud/shells/{SHELL_NAME}/?", ShellHandler),
        (r"/ucloud(?:/.*)?", NotFoundHandler),  # last: every other path under /ucloud
    ]
