"""The paths under test. Each one starts what it needs, opens terminals, and names its servers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .clients import RawPty, TerminadoSocket, TerminalClient
from .servers import JupyterServer, scratch_dir
from .workloads import time_to_first_output


@dataclass
class Opened:
    term: TerminalClient
    first_output_s: float


@dataclass
class BenchPath:
    """Base class: `setup()`, `open()` as often as needed, `teardown()`."""

    name: str = ""
    description: str = ""
    processes: dict[str, int] = field(default_factory=dict)
    workloads: set[str] = field(default_factory=lambda: {"echo", "flood", "bulk"})

    def unavailable(self) -> str | None:
        """Why this path cannot run here, or None."""
        return None

    def setup(self) -> None:
        pass

    def open(self) -> Opened:
        raise NotImplementedError

    def teardown(self) -> None:
        pass


class RawPtyPath(BenchPath):
    def __init__(self) -> None:
        super().__init__("raw", "pty + bash --norc -i, select/os.read loop")

    def open(self) -> Opened:
        started = time.perf_counter()
        term = RawPty(["bash", "--norc", "-i"])
        return Opened(term, time_to_first_output(term, started))


class StockTerminalPath(BenchPath):
    """jupyter_server_terminals in a dedicated `jupyter server`."""

    def __init__(self) -> None:
        super().__init__("stock", "jupyter_server_terminals: POST /api/terminals + websocket")
        self.server: JupyterServer | None = None
        self.workdir: Path | None = None

    def setup(self) -> None:
        self.workdir = scratch_dir("stock")
        self.server = JupyterServer(
            self.workdir, {"jupyter_server_terminals": True, "jupyter_ucloud": False}
        ).start()
        self.processes = {"jupyter server": self.server.pid}

    def open(self) -> Opened:
        assert self.server is not None
        started = time.perf_counter()
        reply = requests.post(
            f"{self.server.url}/api/terminals", headers=self.server.headers, timeout=30
        )
        reply.raise_for_status()
        name = reply.json()["name"]
        term = TerminadoSocket(
            f"{self.server.ws_url}/terminals/websocket/{name}", self.server.headers
        )
        return Opened(term, time_to_first_output(term, started))

    def teardown(self) -> None:
        if self.server is not None:
            self.server.stop()


ALL_PATHS = ("raw", "stock", "provider", "bridge", "slurm")


def make_path(name: str) -> BenchPath:
    factories = {"raw": RawPtyPath, "stock": StockTerminalPath}
    if name not in factories:
        return _Missing(name)
    return factories[name]()


class _Missing(BenchPath):
    def __init__(self, name: str) -> None:
        super().__init__(name, "")

    def unavailable(self) -> str | None:
        return "not implemented yet"
