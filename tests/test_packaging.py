"""The installed package: labextension and server extension enabled and OK, and JupyterLab starts
with them (`python -m jupyterlab.browser_check`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ANSI = re.compile(r"\x1b\[[0-9;]*m")
BIN = Path(sys.executable).parent


def isolated_env(root: Path) -> dict[str, str]:
    """Jupyter paths under `root`, so no user config can enable or disable anything."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UCLOUD_", "JUPYTER_UCLOUD_", "JPY_", "JUPYTER"))
    }
    for name in ("config", "data", "runtime", "settings", "workspaces"):
        (root / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
        IPYTHONDIR=str(root / "ipython"),
    )
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"{args} exited with {done.returncode}:\n{output[-4000:]}"
    return output


def test_labextension_is_installed_enabled_and_ok(tmp_path: Path) -> None:
    output = run([str(BIN / "jupyter"), "labextension", "list"], isolated_env(tmp_path))
    assert re.search(r"jupyter-ucloud v0\.1\.0 enabled\s+OK \(python, jupyter-ucloud\)", output), (
        output
    )
    # The prebuilt extension carries its settings schema and the widget module shares the
    # widget manager's @jupyter-widgets/base instead of bundling a second copy.
    installed = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyter-ucloud"
    metadata = json.loads((installed / "package.json").read_text())
    assert metadata["jupyterlab"]["sharedPackages"]["@jupyter-widgets/base"]["bundled"] is False
    assert (installed / "schemas" / "jupyter-ucloud" / "plugin.json").exists()
    assert (installed / "install.json").exists()


def test_server_extension_is_enabled_and_ok(tmp_path: Path) -> None:
    output = run([str(BIN / "jupyter"), "server", "extension", "list"], isolated_env(tmp_path))
    assert re.search(r"jupyter_ucloud enabled", output), output
    assert re.search(r"jupyter_ucloud 0\.1\.0 OK", output), output


@pytest.mark.timeout(120)
def test_browser_check_passes(tmp_path: Path, local_server) -> None:
    """JupyterLab starts with both extensions and logs no error.

    Run as `--no-browser-test`: the full check would download Playwright's own Chromium (no
    network here); the extension's code running in a real browser is what tests/ui covers.
    The extension talks to the shared embedded server, so browser_check's abrupt exit leaves
    no embedded child of its own behind.
    """
    env = isolated_env(tmp_path)
    credentials = tmp_path / "refresh-token"
    credentials.write_text(local_server.refresh_token)
    credentials.chmod(0o600)
    (tmp_path / "config" / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {"allow_root": True},
                "UCloud": {
                    "host": local_server.url,
                    "credentials_file": str(credentials),
                    "allowed_provider_hosts": ["127.0.0.1"],
                },
            }
        )
    )
    output = run(
        [sys.executable, "-m", "jupyterlab.browser_check", "--no-browser-test"], env, timeout=100
    )
    assert "jupyter_ucloud" in output, output[-4000:]
    assert "Exiting normally" in output, output[-4000:]
    assert not re.search(r"\[(E|C) [^\]]*\].*ucloud", output, re.IGNORECASE), output[-4000:]


@pytest.mark.timeout(600)
def test_wheel_installed_without_nodejs_passes_browser_check(tmp_path: Path, local_server) -> None:
    """The wheel carries the prebuilt labextension: a fresh environment with no Node.js on PATH
    installs it and JupyterLab starts with both extensions."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "jupyter_ucloud" / "labextension" / "package.json").exists():
        pytest.skip("the labextension is not built in this checkout (./dev install builds it)")
    env = isolated_env(tmp_path)
    dist = tmp_path / "dist"
    # Built from the tree whose labextension is already built: the hook skips the npm build.
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(root),
        ],
        env,
        timeout=300,
    )
    wheel = next(dist.glob("jupyter_ucloud-*.whl"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], env)
    no_node = {**env, "PATH": str(venv / "bin")}
    run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        no_node,
        timeout=400,
    )
    listing = run([str(venv / "bin" / "jupyter"), "labextension", "list"], no_node)
    assert re.search(r"jupyter-ucloud v0\.1\.0 enabled\s+OK", listing), listing
    credentials = tmp_path / "refresh-token"
    credentials.write_text(local_server.refresh_token)
    credentials.chmod(0o600)
    (tmp_path / "config" / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {"allow_root": True},
                "UCloud": {"host": local_server.url, "credentials_file": str(credentials)},
            }
        )
    )
    output = run(
        [str(venv / "bin" / "python"), "-m", "jupyterlab.browser_check", "--no-browser-test"],
        no_node,
        timeout=100,
    )
    assert "Exiting normally" in output, output[-4000:]
    assert not re.search(r"\[(E|C) [^\]]*\].*ucloud", output, re.IGNORECASE), output[-4000:]
