"""Server processes under test: a dedicated `jupyter server`, the embedded UCloud server."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import requests

# Extensions that would only add start-up time and noise; jupyter_server_terminals stays on.
QUIET_EXTENSIONS = {"jupyterlab": False, "notebook_shim": False, "jupyter_lsp": False}


def _python(label: str) -> list[str]:
    """The interpreter command of a server; under cProfile (``BENCH_PROFILE=<prefix>``: the
    profile is written to ``<prefix>.<label>.<n>.prof`` when the server stops; ``n`` counts
    the servers started, so the echo rounds' servers and the flood's do not overwrite each
    other)."""
    prefix = os.environ.get("BENCH_PROFILE")
    if not prefix:
        return [sys.executable]
    return [sys.executable, "-m", "cProfile", "-o", f"{prefix}.{label}.{next(_started)}.prof"]


_started = itertools.count(1)


def workdir_name(workdir: Path) -> str:
    """The bench path a server belongs to, from its scratch dir (``bench-<path>-...``)."""
    for part in reversed(workdir.parts):
        if part.startswith("bench-"):
            return part.removeprefix("bench-").rsplit("-", 1)[0]
    return "server"


class ServerProcessError(RuntimeError):
    pass


class _Process:
    """A server child process in its own session, its log in `log_file`."""

    proc: subprocess.Popen[bytes] | None = None
    log_file: Path

    def _spawn(self, args: list[str], env: Mapping[str, str]) -> None:
        # The shells read no dotfiles of the machine's user: a `.bashrc` that runs `pyenv
        # rehash` adds 0.3-0.6 s to every shell start and can stall a minute on a stale lock.
        home = self.log_file.parent / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {**env, "HOME": str(home)}
        with self.log_file.open("ab") as log:
            # In the scratch dir: `python -m` puts the working directory first on sys.path, so
            # from a checkout's root every server would import that checkout's jupyter_ucloud,
            # whatever PYTHONPATH says (and `--compare-code` would compare a code with itself).
            self.proc = subprocess.Popen(
                args,
                cwd=self.log_file.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerProcessError(
                f"{self.proc.args[2:4]} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 15.0) -> None:
        if hasattr(self, "http"):
            self.http.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class JupyterServer(_Process):
    """`jupyter server` on a random loopback port with isolated config/data/runtime dirs."""

    def __init__(
        self,
        workdir: Path,
        extensions: Mapping[str, bool],
        args: list[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.token = secrets.token_hex(16)
        self.extensions = {**QUIET_EXTENSIONS, **extensions}
        if os.environ.get("BENCH_LOOP_PROBE"):  # see loopprobe.py
            self.extensions["termbench.loopprobe"] = True
        self.args = args or []
        self.extra_env = dict(env or {})
        self.log_file = workdir / "jupyter-server.log"
        self.url = ""
        # Like a browser, keep the login cookie: a token-only request is a new anonymous user
        # each time, and jupyter_ucloud's shells belong to the user who opened them.
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"

    @property
    def headers(self) -> dict[str, str]:
        """Token and login cookie, for websocket handshakes."""
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        headers = {"Authorization": f"token {self.token}"}
        if cookies:
            headers["Cookie"] = cookies
        return headers

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def start(self, timeout: float = 60.0) -> JupyterServer:
        config_dir, runtime_dir = self.workdir / "config", self.workdir / "runtime"
        for path in (config_dir, runtime_dir, self.workdir / "data", self.workdir / "root"):
            path.mkdir(parents=True, exist_ok=True)
        (config_dir / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": self.extensions}})
        )
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_DATA_DIR": str(self.workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(runtime_dir),
            "JUPYTER_PLATFORM_DIRS": "1",
            **self.extra_env,
        }
        if os.environ.get("BENCH_LOOP_PROBE"):
            bench = str(Path(__file__).resolve().parent.parent)
            probe = os.environ["BENCH_LOOP_PROBE"]
            env["BENCH_LOOP_PROBE"] = f"{probe}.{workdir_name(self.workdir)}"
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [bench, env.get("PYTHONPATH")]))
        args = [
            *_python(workdir_name(self.workdir)), "-m", "jupyter_server",
            "--ServerApp.port=0", "--ServerApp.ip=127.0.0.1", "--no-browser", "--allow-root",
            f"--ServerApp.root_dir={self.workdir / 'root'}",
            "--ServerApp.terminals_enabled=True",
            *self.args,
        ]  # fmt: skip
        env["JUPYTER_TOKEN"] = self.token  # not on the command line, where `ps` would show it
        self._spawn(args, env)
        info_file = runtime_dir / f"jpserver-{self.pid}.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if info_file.exists():
                try:
                    info = json.loads(info_file.read_text())
                except ValueError:
                    info = None
                if info and self._answers(info["url"]):
                    self.url = info["url"].rstrip("/")
                    return self
            time.sleep(0.1)
        self.stop()
        raise ServerProcessError(f"jupyter server did not start:\n{self.log_tail()}")

    def _answers(self, url: str) -> bool:
        try:
            return self.http.get(f"{url}api/status", timeout=5).ok
        except requests.RequestException:
            return False

    def extension_loaded(self, name: str) -> bool:
        return f"{name} | extension was successfully loaded" in self.log_tail(10**7)


class EmbeddedServer(_Process):
    """`python -m jupyter_ucloud local` (the embedded UCloud-compatible server)."""

    def __init__(self, data_dir: Path, args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = args or []
        self.log_file = data_dir / "server.log"
        self.url = ""
        self.provider_id = "local"

    @property
    def refresh_token(self) -> str:
        return (self.data_dir / "refresh_token").read_text().strip()

    def start(self, timeout: float = 60.0, env: Mapping[str, str] | None = None) -> EmbeddedServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ready = self.data_dir / "ready.json"
        ready.unlink(missing_ok=True)
        python = _python(f"{workdir_name(self.data_dir)}.embedded")
        args = [
            *python, "-m", "jupyter_ucloud", "local", "--port", "0",
            "--data-dir", str(self.data_dir), "--ready-file", str(ready), *self.args,
        ]  # fmt: skip
        self._spawn(args, {**os.environ, **(env or {})})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if ready.exists():
                try:
                    info = json.loads(ready.read_text())
                except ValueError:
                    info = None
                if info:
                    self.url = info["url"].rstrip("/")
                    self.provider_id = info.get("providerId", "local")
                    return self
            time.sleep(0.05)
        self.stop()
        raise ServerProcessError(f"embedded server did not start:\n{self.log_tail()}")


SCRATCH_DIRS: list[Path] = []


def scratch_dir(prefix: str) -> Path:
    """A new temporary directory (servers' data, config and logs); see `remove_scratch_dirs`."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    SCRATCH_DIRS.append(path)
    return path


def remove_scratch_dirs() -> None:
    while SCRATCH_DIRS:
        shutil.rmtree(SCRATCH_DIRS.pop(), ignore_errors=True)
