"""UCloud() finds its way: arguments, UCLOUD_* environment, then the Jupyter server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jupyter_ucloud import UCloud
from jupyter_ucloud.client.discovery import ancestor_pids, find_jupyter_server, resolve
from jupyter_ucloud.client.errors import UCloudConfigError
from jupyter_ucloud.client.transport import ApiTokenAuth, JupyterTokenAuth, RefreshTokenAuth

NO_SERVERS: list[dict[str, object]] = []


def test_explicit_arguments_win_over_environment() -> None:
    env = {"UCLOUD_HOST": "http://env", "UCLOUD_REFRESH_TOKEN": "r"}
    target = resolve("http://arg:1/", api_token="uc1-x", environ=env, servers=NO_SERVERS)
    assert target.endpoint.base_url == "http://arg:1"
    assert isinstance(target.auth, ApiTokenAuth)
    assert not target.via_jupyter


def test_environment_then_jupyter_env_then_servers() -> None:
    env = {"UCLOUD_HOST": "https://cloud", "UCLOUD_REFRESH_TOKEN": "r", "UCLOUD_PROJECT": "p"}
    target = resolve(environ=env, servers=NO_SERVERS)
    assert (target.endpoint.base_url, target.project, target.source) == (
        "https://cloud",
        "p",
        "environment",
    )
    assert isinstance(target.auth, RefreshTokenAuth)
    env = {
        "JUPYTER_UCLOUD_SERVER_URL": "http://127.0.0.1:9999/base/",
        "JUPYTER_UCLOUD_SERVER_TOKEN": "t",
    }
    target = resolve(environ=env, servers=NO_SERVERS)
    assert target.via_jupyter
    assert target.endpoint.url("/api/jobs") == "http://127.0.0.1:9999/base/ucloud/api/jobs"
    assert isinstance(target.auth, JupyterTokenAuth)
    server = {"url": "http://127.0.0.1:8888/", "token": "tok", "pid": os.getppid()}
    target = resolve(environ={}, servers=[server])
    assert target.via_jupyter
    assert target.source == f"Jupyter server pid {os.getppid()}"


def test_missing_configuration_says_what_to_set() -> None:
    with pytest.raises(UCloudConfigError, match="UCLOUD_HOST") as caught:
        resolve(environ={}, servers=NO_SERVERS)
    assert "JUPYTER_UCLOUD_SERVER_URL" in str(caught.value)
    with pytest.raises(UCloudConfigError, match="UCLOUD_REFRESH_TOKEN or UCLOUD_API_TOKEN"):
        resolve(environ={"UCLOUD_HOST": "https://cloud"}, servers=NO_SERVERS)
    with pytest.raises(UCloudConfigError, match="without a host"):
        resolve(refresh_token="r", environ={}, servers=NO_SERVERS)
    with pytest.raises(UCloudConfigError, match="http"):
        resolve("cloud.sdu.dk", refresh_token="r", environ={}, servers=NO_SERVERS)


def test_host_without_token_in_a_jupyter_server_process_goes_through_it() -> None:
    """A kernel of a server configured by UCLOUD_HOST + a token: the extension took the token
    out of the environment, UCLOUD_HOST is still there."""
    env = {"UCLOUD_HOST": "https://cloud"}
    mine = {"url": "http://127.0.0.1:8888/", "token": "tok", "pid": os.getppid()}
    target = resolve(environ=env, servers=[mine])
    assert target.via_jupyter
    assert target.source == f"Jupyter server pid {os.getppid()}"
    assert isinstance(target.auth, JupyterTokenAuth)
    other = {"url": "http://b/", "token": "2", "pid": 999_999_999}
    with pytest.raises(UCloudConfigError, match="UCLOUD_REFRESH_TOKEN or UCLOUD_API_TOKEN"):
        resolve(environ=env, servers=[other])  # the only server, but not this process's


def test_ancestors_come_from_proc() -> None:
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from jupyter_ucloud.client.discovery import ancestor_pids; print(ancestor_pids())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert eval(child.stdout)[:2] == [os.getpid(), os.getppid()]
    assert ancestor_pids()[0] == os.getppid()


def test_server_choice() -> None:
    mine = {"url": "http://a/", "token": "1", "pid": os.getppid()}
    other = {"url": "http://b/", "token": "2", "pid": 999_999_999}
    third = {"url": "http://c/", "token": "3", "pid": 999_999_998}
    assert find_jupyter_server([other, mine]) is mine
    assert find_jupyter_server([other]) is other  # the only one running
    assert find_jupyter_server([]) is None
    with pytest.raises(UCloudConfigError, match="2 Jupyter servers are running"):
        find_jupyter_server([other, third])


def test_ucloud_without_anything_raises_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for name in (
        "UCLOUD_HOST",
        "UCLOUD_REFRESH_TOKEN",
        "UCLOUD_API_TOKEN",
        "JUPYTER_UCLOUD_SERVER_URL",
        "JUPYTER_UCLOUD_SERVER_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))  # no running servers here
    with pytest.raises(UCloudConfigError, match="no UCloud configured"):
        UCloud()
