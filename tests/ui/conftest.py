"""A real JupyterLab (with the extension on its embedded UCloud server) and headless Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests

from jupyter_ucloud.local.config import (
    ApplicationSpec,
    EnumOptionSpec,
    ParameterSpec,
    default_applications,
)
from tests.conftest import local_cli

REPO = Path(__file__).resolve().parents[2]
BUILT_LABEXTENSION = REPO / "jupyter_ucloud" / "labextension"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = REPO / "test-artifacts"


#: The default products and applications, and one application with a parameter of every type
#: the Start dialog can set.
EVERY_TYPE_APP = ApplicationSpec(
    name="every-type",
    version="1",
    title="Every parameter type",
    description="Prints its parameters.",
    kind="batch",
    command=["/bin/sh", "-c", "echo {text} {count} {ratio} {flag} {size}"],
    parameters=[
        ParameterSpec(name="text", type="text", title="Some text", description="Any words."),
        ParameterSpec(name="count", type="integer", title="A count", optional=True, default=3),
        ParameterSpec(name="ratio", type="floating_point", title="A ratio", optional=True),
        ParameterSpec(name="flag", type="boolean", title="A flag"),
        ParameterSpec(
            name="size",
            type="enumeration",
            title="A size",
            description="How big.",
            options=[
                EnumOptionSpec(name="Small", value="s"),
                EnumOptionSpec(name="Large", value="l"),
            ],
        ),
    ],
)
TEST_CONFIG: dict[str, object] = {
    "applications": [
        app.model_dump(mode="json") for app in [*default_applications(), EVERY_TYPE_APP]
    ]
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@dataclass
class LabProcess:
    """`jupyter lab` as a child process with every Jupyter path isolated under `root`."""

    root: Path
    #: Config of the embedded UCloud server (LocalConfig's keys), when not the defaults.
    embedded_config: dict[str, object] | None = None
    #: JupyterLab terminal settings; the tests read the screen reader's rows of a terminal.
    terminal_settings: dict[str, object] = field(default_factory=lambda: {"screenReaderMode": True})
    #: JupyterLab theme ("JupyterLab Light" or "JupyterLab Dark").
    theme: str = "JupyterLab Light"
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    token: str = ""

    @property
    def log_file(self) -> Path:
        return self.root / "lab.log"

    def api(self, path: str, method: str = "GET", **kwargs: object) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, f"{self.url}/{path}", headers=headers, timeout=30, **kwargs)

    def start(self, timeout: float = 90.0) -> LabProcess:
        port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{port}"
        dirs = {
            name: self.root / name
            for name in ("config", "data", "runtime", "settings", "workspaces", "work")
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        # The built labextension of this checkout (not a stale copy in the venv) comes first.
        embedded: dict[str, str] = {}
        if self.embedded_config is not None:
            write_json(self.root / "ucloud-local.json", self.embedded_config)
            embedded["embedded_config_file"] = str(self.root / "ucloud-local.json")
        extensions = self.root / "labextensions"
        extensions.mkdir(exist_ok=True)
        (extensions / "jupyter-ucloud").symlink_to(BUILT_LABEXTENSION, target_is_directory=True)
        write_json(
            dirs["config"] / "jupyter_server_config.json",
            {
                "ServerApp": {
                    "ip": "127.0.0.1",
                    "port": port,
                    "port_retries": 0,
                    "open_browser": False,
                    "allow_root": True,
                    "root_dir": str(dirs["work"]),
                    "jpserver_extensions": {"jupyter_ucloud": True},
                },
                "IdentityProvider": {"token": self.token},
                "LabApp": {"extra_labextensions_path": [str(extensions)]},
                # No host: the extension runs the embedded UCloud server itself.
                "UCloud": {"embedded_data_dir": str(self.root / "ucloud-local"), **embedded},
            },
        )
        settings = dirs["settings"]
        write_json(
            settings / "@jupyterlab" / "terminal-extension" / "plugin.jupyterlab-settings",
            self.terminal_settings,
        )
        write_json(
            settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings",
            {"theme": self.theme},
        )
        write_json(
            settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
            {"fetchNews": "false", "checkForUpdates": False},
        )
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("UCLOUD_", "JUPYTER_UCLOUD_", "JPY_", "JUPYTER"))
        }
        env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
            IPYTHONDIR=str(self.root / "ipython"),
            HOME=str(self.root),
            SHELL="/bin/bash",
        )
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser"],
            cwd=dirs["work"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                status = self.api("ucloud/api/status")
                if status.ok and status.json().get("ok"):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.25)
        tail = self.log_file.read_text(errors="replace")[-4000:]
        self.stop()
        raise RuntimeError(f"jupyter lab with the UCloud extension did not come up:\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        # The embedded server outlives JupyterLab by design: end it and its jobs.
        subprocess.run(
            local_cli("stop", self.root / "ucloud-local"),
            check=False,
            capture_output=True,
            timeout=120,
        )
        for child in children:  # kernels and anything else this lab started
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def browser_skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"chromium is not installed ({CHROMIUM}); install it with `apt-get install chromium`"
    if not (BUILT_LABEXTENSION / "package.json").exists():
        return (
            "the labextension is not built (jupyter_ucloud/labextension is missing); "
            "run `pip install -e .` or `cd labextension && jlpm install && jlpm build`"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    server = LabProcess(tmp_path_factory.mktemp("lab"), embedded_config=TEST_CONFIG).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser_page(lab: LabProcess) -> Iterator[object]:
    """One Chromium page on the lab, shared by the steps of a module's flow."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        page.wait_for_selector(".jp-LauncherCard", timeout=45_000)
        yield page
        context.close()
        browser.close()


@pytest.fixture
def jp_server_cleanup() -> None:
    """No in-process Jupyter server here; pytest-jupyter's autouse cleanup would grab and close
    the event loop Playwright's sync API runs on."""


@pytest.fixture
def jp_asyncio_loop() -> None:
    """See `jp_server_cleanup`: the loop here belongs to Playwright."""
