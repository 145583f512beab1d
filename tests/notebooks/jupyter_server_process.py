"""A real Jupyter server with the jupyter_ucloud extension, as a child process on a free port.

It talks to an embedded UCloud server given by URL; the credentials reach it through a config
file (``c.UCloud.credentials_file``), never through argv or the environment, so kernels started
for it inherit no UCloud credential.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any UCloud or Jupyter-server discovery variable, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UCLOUD_", "JUPYTER_UCLOUD_", "JPY_"))
    }
    env.update(extra)
    return env


@dataclass
class JupyterServerProcess:
    """With ``ucloud_host`` empty: embedded mode, the extension finds or starts the embedded
    server of ``root/ucloud-local`` (job shells get ``root/home`` as HOME: no dotfiles)."""

    root: Path
    ucloud_host: str = ""
    credentials_file: Path | None = None
    #: More ``c.UCloud`` settings.
    ucloud_extra: dict[str, object] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    token: str = ""

    @property
    def log_file(self) -> Path:
        return self.root / "jupyter-server.log"

    def start(self, timeout: float = 60.0) -> JupyterServerProcess:
        port = free_port()
        self.token = secrets.token_hex(16)
        config_dir = self.root / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "work").mkdir(exist_ok=True)
        config = {
            "ServerApp": {
                "ip": "127.0.0.1",
                "port": port,
                "port_retries": 0,
                "open_browser": False,
                "allow_root": True,
                "root_dir": str(self.root / "work"),
                "jpserver_extensions": {"jupyter_ucloud": True},
            },
            "IdentityProvider": {"token": self.token},
            "UCloud": self._ucloud_config(),
        }
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        env = clean_env(
            HOME=str(home),
            JUPYTER_CONFIG_DIR=str(config_dir),
            JUPYTER_DATA_DIR=str(self.root / "data"),
            JUPYTER_RUNTIME_DIR=str(self.root / "runtime"),
            IPYTHONDIR=str(self.root / "ipython"),
        )
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                answer = requests.get(
                    self.url + "ucloud/api/status",
                    headers={"Authorization": f"token {self.token}"},
                    timeout=10,  # status waits for the embedded server, slow on a loaded machine
                )
                if answer.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter server did not start:\n{self.log_file.read_text()[-4000:]}")

    @property
    def embedded_data_dir(self) -> Path:
        return self.root / "ucloud-local"

    def _ucloud_config(self) -> dict[str, object]:
        if not self.ucloud_host:
            return {"embedded_data_dir": str(self.embedded_data_dir), **self.ucloud_extra}
        return {
            **self.ucloud_extra,
            "host": self.ucloud_host,
            "credentials_file": str(self.credentials_file),
            "allowed_provider_hosts": ["127.0.0.1", "localhost"],
            # A remote UCloud's catalogue is not browsed: the start form offers these.
            "applications": [
                {"name": "terminal", "version": "1", "title": "Terminal"},
                {"name": "batch", "version": "1", "title": "Batch command"},
            ],
        }

    def api(self, method: str, path: str, **kwargs: object) -> requests.Response:
        """A request to the server, authenticated with its token."""
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def kernel_env(self) -> dict[str, str]:
        """What a kernel of this server gets to find it (and nothing else UCloud-related)."""
        return clean_env(
            JUPYTER_UCLOUD_SERVER_URL=self.url,
            JUPYTER_UCLOUD_SERVER_TOKEN=self.token,
        )

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class SharedServer:
    """One Jupyter server per test session, shared by the notebook and the widget tests."""

    _server: JupyterServerProcess | None = None
    _users = 0

    @classmethod
    def acquire(cls, local_server: object, root: Path) -> JupyterServerProcess:
        if cls._server is None:
            cls._server = JupyterServerProcess(
                root=root,
                ucloud_host=local_server.url,  # type: ignore[attr-defined]
                credentials_file=local_server.data_dir / "refresh_token",  # type: ignore[attr-defined]
            ).start()
        cls._users += 1
        return cls._server

    @classmethod
    def release(cls) -> None:
        cls._users -= 1
        if cls._users <= 0 and cls._server is not None:
            cls._server.stop()
            cls._server = None
