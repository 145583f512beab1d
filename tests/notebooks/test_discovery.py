"""How ``UCloud()`` finds its way from a notebook kernel, and what it says when it cannot."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import requests
from jupyter_client import BlockingKernelClient
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from tests.notebooks.jupyter_server_process import JupyterServerProcess, clean_env


def run_cell(source: str, env: dict[str, str], workdir: Path) -> nbformat.NotebookNode:
    """Execute one cell in a fresh python3 kernel with exactly ``env``; the executed cell."""
    nb = new_notebook(cells=[new_code_cell(source)])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute(env=env, cwd=str(workdir))
    return nb.cells[0]


def error_of(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert len(errors) == 1, cell.outputs
    return errors[0]


def test_nothing_configured_says_what_to_set(tmp_path: Path) -> None:
    env = clean_env(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))  # no server runs there
    cell = run_cell("from jupyter_ucloud import UCloud\nUCloud()", env, tmp_path)
    error = error_of(cell)
    assert error.ename == "UCloudConfigError"
    assert error.evalue.startswith("no UCloud configured")
    for hint in (
        "UCloud(host=..., refresh_token=...)",
        "UCLOUD_HOST",
        "UCLOUD_REFRESH_TOKEN",
        "UCLOUD_API_TOKEN",
        "jupyter-ucloud server extension",
        "JUPYTER_UCLOUD_SERVER_URL",
    ):
        assert hint in error.evalue


def test_host_without_credentials_is_named(tmp_path: Path, local_server) -> None:
    env = clean_env(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        UCLOUD_HOST=local_server.url,
        JUPYTER_UCLOUD_SERVER_URL="http://127.0.0.1:9/",  # comes later in the order
    )
    error = error_of(run_cell("from jupyter_ucloud import UCloud\nUCloud()", env, tmp_path))
    assert error.ename == "UCloudConfigError"
    assert f"UCloud host {local_server.url} has no credentials" in error.evalue
    assert "UCLOUD_REFRESH_TOKEN or UCLOUD_API_TOKEN" in error.evalue


def test_explicit_arguments_win_over_the_environment(
    tmp_path: Path, ucloud_jupyter_server: JupyterServerProcess
) -> None:
    env = clean_env(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        UCLOUD_HOST="http://127.0.0.1:9",  # nothing listens there
        UCLOUD_REFRESH_TOKEN="0123456789abcdef",
    )
    source = (
        "from jupyter_ucloud import UCloud\n"
        f"uc = UCloud(jupyter_url={ucloud_jupyter_server.url!r}, "
        f"jupyter_token={ucloud_jupyter_server.token!r})\n"
        "print(uc.via_jupyter, sorted(p.product.name for p in uc.products()))"
    )
    cell = run_cell(source, env, tmp_path)
    out = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    assert "True ['batch-small', 'compute-example', 'compute-multi']" in out, cell.outputs


def test_a_kernel_of_the_jupyter_server_finds_it(
    ucloud_jupyter_server: JupyterServerProcess,
) -> None:
    """A kernel the Jupyter server started (as JupyterLab does) needs no configuration at all:
    no UCLOUD_* or JUPYTER_UCLOUD_* variable, and it holds no UCloud token."""
    server = ucloud_jupyter_server
    headers = {"Authorization": f"token {server.token}"}
    kernel = requests.post(
        f"{server.url}api/kernels", json={"name": "python3"}, headers=headers, timeout=30
    ).json()
    try:
        # A client of our own judges the kernel by its heartbeat: wait until the server has
        # heard from it, as a kernel still importing on a loaded machine does not beat yet.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            model = requests.get(
                f"{server.url}api/kernels/{kernel['id']}", headers=headers, timeout=30
            ).json()
            if model.get("execution_state") == "idle":
                break
            time.sleep(0.2)
        connection = server.root / "runtime" / f"kernel-{kernel['id']}.json"
        client = BlockingKernelClient()
        client.load_connection_info(json.loads(connection.read_text()))
        client.start_channels()
        try:
            client.wait_for_ready(timeout=30)
            code = (
                "import os\n"
                "from jupyter_ucloud import UCloud\n"
                "uc = UCloud()\n"
                "print(repr(uc), uc.via_jupyter)\n"
                "print([k for k in os.environ if k.startswith(('UCLOUD_', 'JUPYTER_UCLOUD_'))])\n"
                "print(len(uc.products()), 'products')\n"
            )
            out: list[str] = []
            reply = client.execute_interactive(
                code,
                timeout=60,
                output_hook=lambda msg: out.append(
                    msg["content"].get("text", "") if msg["msg_type"] == "stream" else ""
                ),
            )
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            client.stop_channels()
    finally:
        requests.delete(f"{server.url}api/kernels/{kernel['id']}", headers=headers, timeout=30)
    text = "".join(out)
    assert f"UCloud(jupyter={server.url.rstrip('/')!r}) True" in text
    assert "[]\n" in text
    assert "3 products" in text
    assert server.token not in text


def test_error_in_a_cell_names_job_and_rank(
    tmp_path: Path, ucloud_jupyter_server: JupyterServerProcess
) -> None:
    """What a notebook user sees when a command cannot run: job, rank and the server's reason."""
    env = ucloud_jupyter_server.kernel_env()
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    source = (
        "from jupyter_ucloud import UCloud\n"
        "uc = UCloud()\n"
        "job = uc.start('terminal', '1', product='compute-example', minutes=5, wait=True,"
        " progress=False)\n"
        "job.terminate(wait=True)\n"
        "job.run('hostname', rank=0)"
    )
    error = error_of(run_cell(source, env, tmp_path))
    assert error.ename == "UCloudJobStateError"
    assert "rank 0]" in error.evalue
    assert "the job is SUCCESS, not RUNNING" in error.evalue
