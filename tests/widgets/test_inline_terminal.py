"""InlineTerminal: a shell on the Jupyter server's bridge, whose name the xterm view attaches to."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from traitlets import TraitError
from websockets.sync.client import connect

from jupyter_ucloud import UCloud, UCloudError
from jupyter_ucloud.client import JobHandle
from jupyter_ucloud.widgets import InlineTerminal


def server_shell(server, name: str) -> requests.Response:
    return requests.get(
        f"{server.url}ucloud/shells/{name}",
        headers={"Authorization": f"token {server.token}"},
        timeout=10,
    )


def read_until(ws, marker: str, timeout: float = 20.0) -> str:
    """Terminado frames from the bridge until ``marker`` shows in the output."""
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame[0] == "stdout":
            seen += frame[1]
        elif frame[0] == "disconnect":
            raise AssertionError(f"disconnected: {frame}")
    return seen


def test_front_end_identity() -> None:
    state = InlineTerminal().get_state()
    assert state["_model_name"] == "InlineTerminalModel"
    assert state["_view_name"] == "InlineTerminalView"
    assert state["_model_module"] == state["_view_module"] == "jupyter-ucloud"
    assert state["_model_module_version"] == state["_view_module_version"] == "^0.1.0"
    assert (state["shell_name"], state["rows"]) == ("", 24)


def test_rows_are_bounded() -> None:
    with pytest.raises(TraitError, match="rows must be between 1 and 200, not 0"):
        InlineTerminal(rows=0)


def test_open_attaches_to_a_working_shell(
    uc: UCloud, running_job: JobHandle, ucloud_jupyter_server
) -> None:
    terminal = InlineTerminal.for_job(uc, running_job.id, rank=1, rows=12)
    name = terminal.shell_name
    assert re.fullmatch(rf"ucloud-{running_job.id}-1-[0-9a-f]{{8}}", name)
    assert terminal.get_state()["shell_name"] == name
    assert terminal.get_state()["rows"] == 12
    assert (terminal.job_id, terminal.rank) == (running_job.id, 1)
    assert repr(terminal) == f"InlineTerminal({name}, job {running_job.id}, rank 1)"
    assert server_shell(ucloud_jupyter_server, name).json()["state"] in ("connecting", "open")

    # What the xterm view does with the name: attach to the bridge's websocket and type.
    url = f"{ucloud_jupyter_server.url.replace('http', 'ws', 1)}ucloud/shells/{name}/websocket"
    headers = {"Authorization": f"token {ucloud_jupyter_server.token}"}
    with connect(url, additional_headers=headers) as ws:
        setup = json.loads(ws.recv(timeout=10))
        assert setup[0] == "setup"
        assert setup[1]["name"] == name
        ws.send(json.dumps(["stdin", 'echo "inline-$UCLOUD_RANK-$((6*7))"\r']))
        assert "inline-1-42" in read_until(ws, "inline-1-42")

    terminal.shutdown()
    assert terminal.shell_name == ""
    assert server_shell(ucloud_jupyter_server, name).status_code == 404
    assert running_job.state.value == "RUNNING"  # closing a shell never stops the job


def test_rank_out_of_range_names_job_and_rank(uc: UCloud, running_job: JobHandle) -> None:
    with pytest.raises(UCloudError) as caught:
        InlineTerminal.for_job(uc, running_job.id, rank=5)
    err = caught.value
    assert (err.job_id, err.rank) == (running_job.id, 5)
    assert err.status is not None
    assert 400 <= err.status < 500
    assert f"[job {running_job.id}, rank 5]" in str(err)


def test_unknown_job(uc: UCloud) -> None:
    with pytest.raises(UCloudError) as caught:
        InlineTerminal.for_job(uc, "999999", rank=0)
    assert caught.value.status is not None
    assert 400 <= caught.value.status < 500
    assert "[job 999999, rank 0]" in str(caught.value)


def test_needs_the_jupyter_server(local_server, running_job: JobHandle) -> None:
    direct = UCloud(host=local_server.url, refresh_token=local_server.refresh_token)
    with pytest.raises(UCloudError, match="needs the Jupyter server's jupyter-ucloud extension"):
        InlineTerminal.for_job(direct, running_job.id, rank=0)
    with pytest.raises(UCloudError) as caught:
        InlineTerminal.for_job(direct, running_job.id, rank=0)
    assert local_server.refresh_token not in str(caught.value)


def test_closing_the_widget_closes_its_shell(
    uc: UCloud, running_job: JobHandle, ucloud_jupyter_server
) -> None:
    terminal = InlineTerminal.for_job(uc, running_job.id, rank=0, rows=8)
    name = terminal.shell_name
    assert server_shell(ucloud_jupyter_server, name).status_code == 200
    terminal.close()  # as ipywidgets does for a widget that is closed or garbage-collected
    assert server_shell(ucloud_jupyter_server, name).status_code == 404
    assert terminal.shell_name == ""
    terminal.close()  # twice is harmless
    assert running_job.state.value == "RUNNING"
