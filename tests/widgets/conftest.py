"""Widget tests run against a real Jupyter server with the extension (see tests/notebooks)."""

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


@pytest.fixture
def uc(ucloud_jupyter_server: JupyterServerProcess):
    """A notebook's client: talks to the Jupyter server's proxy, holds no UCloud token."""
    from jupyter_ucloud import UCloud

    return UCloud(jupyter_url=ucloud_jupyter_server.url, jupyter_token=ucloud_jupyter_server.token)


@pytest.fixture
def unused_port() -> int:
    from tests.notebooks.jupyter_server_process import free_port

    return free_port()


@pytest.fixture(scope="module")
def running_job(ucloud_jupyter_server: JupyterServerProcess):
    """A 2-rank interactive job, RUNNING, terminated after the module's tests."""
    from jupyter_ucloud import UCloud

    uc = UCloud(jupyter_url=ucloud_jupyter_server.url, jupyter_token=ucloud_jupyter_server.token)
    job = uc.start(
        "terminal",
        "1",
        product="compute-multi",
        replicas=2,
        name="widget-tests",
        wait=True,
        timeout=60,
        progress=False,
    )
    yield job
    job.terminate(wait=True, timeout=30)
