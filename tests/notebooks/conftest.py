"""A real Jupyter server with the jupyter_ucloud extension, before the embedded UCloud server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notebooks.jupyter_server_process import JupyterServerProcess, SharedServer


@pytest.fixture(scope="session")
def ucloud_jupyter_server(
    local_server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServerProcess]:
    yield SharedServer.acquire(local_server, tmp_path_factory.mktemp("jupyter-server"))
    SharedServer.release()
