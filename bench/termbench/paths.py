"""The paths under test. Each one starts what it needs, opens terminals, and names its servers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import slurm
from .clients import ProviderShellSocket, RawPty, TerminadoSocket, TerminalClient
from .servers import EmbeddedServer, JupyterServer, scratch_dir
from .slurm import slurm_unavailable
from .ucloud_jobs import client, start_terminal_job, stop_job
from .workloads import time_to_first_output


@dataclass
class Terminal:
    """A terminal created on a server, not yet connected to."""

    name: str
    url: str
    headers: dict[str, str]


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

    def create_terminal(self) -> Terminal:
        assert self.server is not None
        reply = self.server.http.post(f"{self.server.url}/api/terminals", timeout=60)
        reply.raise_for_status()
        name = reply.json()["name"]
        url = f"{self.server.ws_url}/terminals/websocket/{name}"
        return Terminal(name, url, self.server.headers)

    def delete_terminal(self, name: str) -> None:
        assert self.server is not None
        self.server.http.delete(f"{self.server.url}/api/terminals/{name}", timeout=30)

    def open(self) -> Opened:
        started = time.perf_counter()
        created = self.create_terminal()
        term = TerminadoSocket(created.url, created.headers)
        return Opened(term, time_to_first_output(term, started))

    def teardown(self) -> None:
        if self.server is not None:
            self.server.stop()


def _missing_module(*modules: str) -> str | None:
    import importlib.util

    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} is not there yet"
    return None


class ProviderLegPath(BenchPath):
    """A websocket client straight to the embedded server's provider shell websocket."""

    def __init__(self, name: str = "provider", backend_args: list[str] | None = None) -> None:
        super().__init__(name, "embedded server: /ucloud/<provider>/websocket, no Jupyter")
        self.backend_args = backend_args or []
        self.server: EmbeddedServer | None = None
        self.uc = None
        self.job_id = ""

    def unavailable(self) -> str | None:
        return _missing_module("jupyter_ucloud.local.cli", "jupyter_ucloud.client")

    def setup(self) -> None:
        self.server = EmbeddedServer(scratch_dir(self.name), self.backend_args).start()
        self.processes = {"embedded server": self.server.pid}
        self.uc = client(self.server.url, self.server.refresh_token)
        self.job_id = start_terminal_job(self.uc)

    def open(self) -> Opened:
        from jupyter_ucloud.protocol import provider_websocket_url

        assert self.uc is not None
        started = time.perf_counter()
        opened = self.uc.jobs.open_interactive_session(self.job_id, 0, "SHELL")
        session = opened.session
        url = provider_websocket_url(
            opened.provider_domain, opened.provider_id, session.session_identifier, "user"
        )
        term = ProviderShellSocket(url, opened.provider_id, session.session_identifier)
        return Opened(term, time_to_first_output(term, started))

    def teardown(self) -> None:
        try:
            if self.uc is not None and self.job_id:
                stop_job(self.uc, self.job_id)
        finally:
            if self.server is not None:
                self.server.stop()


class BridgePath(BenchPath):
    """Browser leg + provider leg: jupyter_ucloud in a `jupyter server` -> embedded server."""

    def __init__(self, name: str = "bridge", code: str | None = None) -> None:
        """``code``: a directory holding another ``jupyter_ucloud`` for both servers to run
        (``PYTHONPATH``), to compare two versions in the same rounds."""
        description = "jupyter_ucloud: POST /ucloud/shells + terminado websocket"
        super().__init__(name, description + (f" (code in {code})" if code else ""))
        self.env = {"PYTHONPATH": code} if code else {}
        self.embedded: EmbeddedServer | None = None
        self.jupyter: JupyterServer | None = None
        self.uc = None
        self.job_id = ""

    def unavailable(self) -> str | None:
        return _missing_module(
            "jupyter_ucloud.local.cli", "jupyter_ucloud.client", "jupyter_ucloud.server.handlers"
        )

    def setup(self) -> None:
        workdir = scratch_dir(self.name)
        self.embedded = EmbeddedServer(workdir / "embedded").start(env=self.env)
        self.uc = client(self.embedded.url, self.embedded.refresh_token)
        self.job_id = start_terminal_job(self.uc)
        self.jupyter = JupyterServer(
            workdir / "jupyter",
            {"jupyter_server_terminals": True, "jupyter_ucloud": True},
            # The many-shell workloads open 50 shells at once (the stock terminal has no limit).
            args=[f"--UCloud.host={self.embedded.url}", "--UCloud.max_shells_per_user=80"],
            env={"UCLOUD_REFRESH_TOKEN": self.embedded.refresh_token, **self.env},
        ).start()
        if not self.jupyter.extension_loaded("jupyter_ucloud"):
            raise RuntimeError(f"jupyter_ucloud did not load:\n{self.jupyter.log_tail()}")
        self.processes = {"jupyter server": self.jupyter.pid, "embedded server": self.embedded.pid}

    def create_terminal(self) -> Terminal:
        assert self.jupyter is not None
        reply = self.jupyter.http.post(
            f"{self.jupyter.url}/ucloud/shells",
            json={"jobId": self.job_id, "rank": 0, "cols": 200, "rows": 24},
            timeout=60,
        )
        if not reply.ok:
            raise RuntimeError(f"POST /ucloud/shells: {reply.status_code} {reply.text[:500]}")
        name = reply.json()["name"]
        url = f"{self.jupyter.ws_url}/ucloud/shells/{name}/websocket"
        return Terminal(name, url, self.jupyter.headers)

    def delete_terminal(self, name: str) -> None:
        assert self.jupyter is not None
        self.jupyter.http.delete(f"{self.jupyter.url}/ucloud/shells/{name}", timeout=30)

    def open(self) -> Opened:
        started = time.perf_counter()
        created = self.create_terminal()
        term = TerminadoSocket(created.url, created.headers)
        return Opened(term, time_to_first_output(term, started))

    def teardown(self) -> None:
        try:
            if self.jupyter is not None:
                self.jupyter.stop()
            if self.uc is not None and self.job_id:
                stop_job(self.uc, self.job_id)
        finally:
            if self.embedded is not None:
                self.embedded.stop()


class SlurmProviderPath(ProviderLegPath):
    """The provider leg with the embedded server's Slurm backend (`srun --overlap --pty`)."""

    def __init__(self) -> None:
        super().__init__("slurm", ["--backend", "slurm"])
        self.description = "embedded server --backend slurm: provider websocket"
        self.workloads = {"echo"}

    def unavailable(self) -> str | None:
        return slurm_unavailable() or super().unavailable()


class SrunPtyPath(BenchPath):
    """`srun --overlap --pty --jobid <id> bash` alone under a PTY: the Slurm floor."""

    def __init__(self) -> None:
        super().__init__("srun", "srun --overlap --pty --jobid <id> bash under a PTY")
        self.workloads = {"echo"}
        self.slurm_job = ""

    def unavailable(self) -> str | None:
        return slurm_unavailable()

    def setup(self) -> None:
        self.slurm_job = slurm.submit_sleeper()

    def open(self) -> Opened:
        started = time.perf_counter()
        term = RawPty(["srun", "--overlap", "--pty", "--jobid", self.slurm_job, "bash"])
        return Opened(term, time_to_first_output(term, started))

    def teardown(self) -> None:
        if self.slurm_job:
            slurm.cancel(self.slurm_job)


ALL_PATHS = ("raw", "stock", "provider", "bridge", "slurm")


def make_paths(name: str) -> list[BenchPath]:
    """The paths behind one `--only` name (`slurm` is measured beside plain `srun`)."""
    factories: dict[str, list[type[BenchPath]]] = {
        "raw": [RawPtyPath],
        "stock": [StockTerminalPath],
        "provider": [ProviderLegPath],
        "bridge": [BridgePath],
        "slurm": [SlurmProviderPath, SrunPtyPath],
    }
    return [factory() for factory in factories[name]]
