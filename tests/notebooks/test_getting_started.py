"""notebooks/getting-started.ipynb, executed top to bottom by nbclient in a real kernel that finds
the Jupyter server (and through it the embedded UCloud server) on its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
from nbclient import NotebookClient

from tests.notebooks.jupyter_server_process import JupyterServerProcess

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "getting-started.ipynb"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def cell_tagged(nb: Any, tag: str) -> Any:
    return next(c for c in nb.cells if tag in c.get("metadata", {}).get("tags", []))


def stdout_of(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def data_of(cell: Any, mime: str) -> Any:
    for output in cell.outputs:
        if output.output_type in ("execute_result", "display_data") and mime in output.data:
            return output.data[mime]
    raise AssertionError(f"no {mime} output in cell {cell.metadata.get('tags')}: {cell.outputs}")


def widget_state(nb: Any, cell: Any) -> dict[str, Any]:
    model_id = data_of(cell, WIDGET_VIEW)["model_id"]
    return nb.metadata["widgets"][WIDGET_STATE]["state"][model_id]


@pytest.fixture(scope="module")
def executed(ucloud_jupyter_server: JupyterServerProcess, tmp_path_factory) -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    workdir = tmp_path_factory.mktemp("notebook-run")
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        store_widget_state=True,
    )
    env = ucloud_jupyter_server.kernel_env()
    env["JUPYTER_RUNTIME_DIR"] = str(workdir / "runtime")
    client.execute(env=env)
    return nb


@pytest.mark.timeout(180)
def test_products_are_listed_with_capabilities(executed: Any) -> None:
    table = data_of(cell_tagged(executed, "products"), "text/html")
    for name in ("compute-example", "batch-small", "compute-multi"):
        assert name in table
    picker = widget_state(executed, cell_tagged(executed, "product-picker"))
    assert picker["model_name"] == "VBoxModel"


def test_job_started_on_two_ranks_and_ran_a_command_on_each(executed: Any) -> None:
    progress = stdout_of(cell_tagged(executed, "start-job"))
    assert "RUNNING" in progress
    job_html = data_of(cell_tagged(executed, "start-job"), "text/html")
    assert "compute-multi" in job_html
    assert "2 ranks" in job_html
    out = stdout_of(cell_tagged(executed, "run-all"))
    assert "rank 0: exit status 0" in out
    assert "rank 1: exit status 0" in out
    # $((6*7)) is only 42 once the shell ran it: the echoed command line cannot match.
    assert "rank-0-says-42" in out
    assert "rank-1-says-42" in out


def test_batch_job_output_streamed_into_the_cell(executed: Any) -> None:
    cell = cell_tagged(executed, "batch-follow")
    streams: dict[str, str] = {}
    for output in cell.outputs:
        if output.output_type == "stream":
            streams[output.name] = streams.get(output.name, "") + output.text
    lines = streams.get("stdout", "").splitlines()
    for rank in (0, 1):
        mine = [line for line in lines if line.startswith(f"[rank {rank}] ")]
        assert mine == [f"[rank {rank}] rank {rank} line {i}" for i in (1, 2, 3)], lines
    assert any(re.fullmatch(r"job \d+: SUCCESS .*", line) for line in lines), lines
    assert sorted(streams.get("stderr", "").splitlines()) == [
        "[rank 0] rank 0 done",
        "[rank 1] rank 1 done",
    ]
    logs = stdout_of(cell_tagged(executed, "batch-logs"))
    assert logs == "rank 1 line 1\nrank 1 line 2\nrank 1 line 3\n\n"


def test_open_terminal_button_reaches_the_front_end(executed: Any) -> None:
    state = widget_state(executed, cell_tagged(executed, "terminal-button"))
    assert state["model_name"] == "OpenTerminalButtonModel"
    assert state["model_module"] == "jupyter-ucloud"
    assert state["model_module_version"] == "^0.1.0"
    job_id = job_id_of(executed)
    assert state["state"]["job_id"] == job_id
    assert state["state"]["rank"] == 1
    assert state["state"]["label"] == "Terminal on rank 1"
    assert state["state"]["_view_name"] == "OpenTerminalButtonView"


def test_inline_terminal_had_a_server_shell_and_closed_it(
    executed: Any, ucloud_jupyter_server: JupyterServerProcess
) -> None:
    cell = cell_tagged(executed, "inline-terminal")
    job_id = job_id_of(executed)
    text = data_of(cell, "text/plain")
    name = rf"ucloud-{job_id}-0-[0-9a-f]{{8}}"
    assert re.search(rf"InlineTerminal\({name}, job {job_id}, rank 0\)", text), text
    state = widget_state(executed, cell)
    assert state["model_name"] == "InlineTerminalModel"
    assert state["model_module"] == "jupyter-ucloud"
    assert state["state"]["_view_name"] == "InlineTerminalView"
    assert state["state"]["rows"] == 16
    assert state["state"]["shell_name"] == ""  # shutdown() detached it at the end
    shells = requests.get(
        ucloud_jupyter_server.url + "ucloud/shells",
        headers={"Authorization": f"token {ucloud_jupyter_server.token}"},
        timeout=10,
    ).json()
    assert [s for s in shells if s["jobId"] == job_id] == []


def test_job_terminated(executed: Any, ucloud_jupyter_server: JupyterServerProcess) -> None:
    assert "final state: SUCCESS" in stdout_of(cell_tagged(executed, "terminate"))
    job = requests.get(
        ucloud_jupyter_server.url + "ucloud/api/jobs/retrieve",
        params={"id": job_id_of(executed)},
        headers={"Authorization": f"token {ucloud_jupyter_server.token}"},
        timeout=10,
    ).json()
    assert job["status"]["state"] == "SUCCESS"
    assert job["specification"]["replicas"] == 2


def test_no_cell_failed(executed: Any) -> None:
    errors = [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []


def job_id_of(nb: Any) -> str:
    html = data_of(cell_tagged(nb, "start-job"), "text/html")
    match = re.search(r"UCloud job (\d+)", html)
    assert match, html
    return match.group(1)
