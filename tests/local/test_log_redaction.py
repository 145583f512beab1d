"""A live shell session identifier never reaches the embedded server's log, whatever request
carries it (tornado logs a request's whole URI in some of its warnings)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from websockets.exceptions import InvalidHandshake
from websockets.sync.client import connect

from jupyter_ucloud.logredact import MARKER

from .conftest import ShellSocket, api_for, terminal_spec


def _raw_request(url: str, request: str) -> bytes:
    """Send ``request`` as is and return the start of the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request.encode("latin-1"))
        return sock.recv(200)


def test_session_identifier_in_bad_requests_is_redacted(fresh_local_server) -> None:
    server = fresh_local_server
    api = api_for(server)
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    session = api.open_shell_session(job_id)
    live = session.session.session_identifier  # type: ignore[union-attr]
    path = f"/ucloud/{server.provider_id}/websocket"
    ws_url = server.url.replace("http", "ws", 1) + path

    # usernameHint that is not base64, not UTF-8 after decoding, or not even a URL escape:
    # tornado answers some of them with "400 GET <the whole URI> ... Invalid unicode".
    for hint in ("%%%", "%ff", "%C3%28", "!!!", "wyg="):
        try:
            with connect(f"{ws_url}?session={live}&usernameHint={hint}", open_timeout=10):
                pass
        except InvalidHandshake:
            pass

    answers = [
        _raw_request(server.url, request)
        for request in (
            # a bad method and a request line that is not one at all
            f"FOO {path}?session={live} HTTP/1.1\r\nHost: x\r\n\r\n",
            f"BAD METHOD {path}?session={live} HTTP/1.1\r\nHost: x\r\n\r\n",
            # websocket upgrades that are not: no key, no Upgrade header, a bad header line
            f"GET {path}?session={live} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n\r\n",
            f"GET {path}?session={live}&usernameHint=%ff HTTP/1.1\r\nHost: x\r\n\r\n",
            f"GET {path}?session={live} HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
            # the id on other routes, with arguments tornado cannot decode
            f"GET /api/jobs/browse?session={live}&itemsPerPage=%ff HTTP/1.1\r\nHost: x\r\n\r\n",
            f"GET /nowhere?session={live} HTTP/1.1\r\nHost: x\r\n\r\n",
            f"GET {path}?session={live} HTTP/9.9\r\n\r\n",
        )
    ]
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 4"), answer

    # The identifier was live all along: it still opens the shell.
    shell = ShellSocket(session)
    try:
        shell.initialize()
        shell.input("echo live-$((40+2))\r")
        shell.read_until("live-42")
    finally:
        shell.close()

    api.terminate(job_id)
    server.stop()
    log = server.log_file.read_text()
    assert live not in log
    assert f"session={MARKER}" in log  # tornado's warning was written, without the id
    assert "Invalid unicode in usernameHint" in log


def test_token_parameters_are_redacted(fresh_local_server) -> None:
    """Whatever credential a client puts in the query, tornado's warning about the request
    omits it."""
    secret = "f00d" * 16
    ws_url = fresh_local_server.url.replace("http", "ws", 1) + "/ucloud/local/websocket"
    for query in ("token={}", "access_token={}&x=1", "refresh_token={}", "session%3D{}"):
        url = f"{ws_url}?{query.format(secret)}&usernameHint=%ff"
        with connect(url, open_timeout=10):
            pass  # upgraded, then closed by the server: the argument cannot be decoded
    fresh_local_server.stop()
    log = fresh_local_server.log_file.read_text()
    assert secret not in log
    assert log.count("Invalid unicode in usernameHint") == 4
