"""Connections that send a request slowly or not at all are closed after ``header_timeout``
(headers; also an idle keep-alive connection) and ``body_timeout`` (body), not held for minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from jupyter_ucloud.local import LocalConfig

from ..conftest import LocalServerProcess
from ..rawhttp import connect, read_response, request_head, wait_closed
from .conftest import api_for

#: Generous: the server is told 1 s and 2 s; the defaults would keep the connection 20 s / 60 s.
PATIENCE = 15.0


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    tmp_path = tmp_path_factory.mktemp("impatient")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"header_timeout": 1, "body_timeout": 2}))
    server = LocalServerProcess(tmp_path / "ucloud-local", config_file=config).start()
    yield server
    server.stop()


def test_defaults() -> None:
    config = LocalConfig()
    assert config.header_timeout == 20
    assert config.body_timeout == 60


def test_partial_request_line_is_closed(impatient_server: LocalServerProcess) -> None:
    with connect(impatient_server.url, timeout=PATIENCE) as sock:
        sock.sendall(b"GET /api/jobs/brow")
        assert wait_closed(sock, PATIENCE) < PATIENCE


def test_partial_headers_are_closed(impatient_server: LocalServerProcess) -> None:
    with connect(impatient_server.url, timeout=PATIENCE) as sock:
        sock.sendall(b"GET /api/jobs/browse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthoriz")
        assert wait_closed(sock, PATIENCE) < PATIENCE


def test_partial_body_is_closed(impatient_server: LocalServerProcess) -> None:
    api = api_for(impatient_server)
    with connect(impatient_server.url, timeout=PATIENCE) as sock:
        headers = {"Authorization": f"Bearer {api.token}", "Content-Length": "1000"}
        sock.sendall(request_head("POST", api.url + "/api/jobs/terminate", headers) + b'{"it')
        assert wait_closed(sock, PATIENCE) < PATIENCE


def test_idle_keep_alive_connection_is_closed(impatient_server: LocalServerProcess) -> None:
    api = api_for(impatient_server)
    with connect(impatient_server.url, timeout=PATIENCE) as sock:
        headers = {"Authorization": f"Bearer {api.token}"}
        sock.sendall(request_head("GET", api.url + "/api/jobs/retrieveProducts", headers))
        assert read_response(sock).status == 200
        assert wait_closed(sock, PATIENCE) < PATIENCE
    # and the server answers new connections as ever
    assert api.call("jobs.retrieveProducts").status_code == 200
