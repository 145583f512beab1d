"""A real Jupyter server with jupyter_ucloud in embedded mode, as a child process.

Its configuration (``root/config``) names the embedded server's data dir ``root/ucloud-local``;
HOME is ``root/home`` (no dotfiles for the jobs' login shells). Each start picks a new port and
token, as a restarted server may.
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
from pathlib import Path

import requests


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class JupyterServer:
    def __init__(self, root: Path, ucloud: dict[str, object]) -> None:
        self.root = root
        self.ucloud = {"embedded_data_dir": str(self.embedded_data_dir), **ucloud}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""

    @property
    def embedded_data_dir(self) -> Path:
        return self.root / "ucloud-local"

    @property
    def log_file(self) -> Path:
        return self.root / "jupyter-server.log"

    def start(self, timeout: float = 120.0) -> None:
        """Start it and return once ``/ucloud/api/status`` answers (which waits for the
        embedded server to be found or started)."""
        port, self.token = _free_port(), secrets.token_hex(16)
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
            "UCloud": self.ucloud,
        }
        for name in ("config", "work", "home"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        (self.root / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("UCLOUD_", "JUPYTER_UCLOUD_", "JPY_"))
        }
        env.update(
            HOME=str(self.root / "home"),
            JUPYTER_CONFIG_DIR=str(self.root / "config"),
            JUPYTER_DATA_DIR=str(self.root / "data"),
            JUPYTER_RUNTIME_DIR=str(self.root / "runtime"),
            IPYTHONDIR=str(self.root / "ipython"),
        )
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                answer = requests.get(
                    self.url + "ucloud/api/status",
                    headers={"Authorization": f"token {self.token}"},
                    timeout=max(1.0, deadline - time.monotonic()),
                )
                if answer.status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the Jupyter server did not start; see {self.log_file}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, as a user's Ctrl-C; SIGKILL to its process group if it does not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
