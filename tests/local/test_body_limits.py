"""Bodies over ``max_body_bytes`` are refused with 413 in UCloud's error shape, and never held:
a body of up to ``REFUSED_BODY_DRAIN`` bytes is read and dropped first (a client that sends its
whole body before it reads gets the answer instead of a reset connection); a bigger one is
refused as soon as the server can tell, from ``Content-Length`` before any of the body, and for
a chunked body as soon as the bytes received pass the drain."""

from __future__ import annotations

import pytest

from jupyter_ucloud.local.api import REFUSED_BODY_DRAIN

from ..rawhttp import RawResponse, connect, read_response, request_head
from .conftest import Api

LIMIT = 1024 * 1024
TOO_LARGE = f"Request body too large (at most {LIMIT} bytes)"


def _assert_too_large(response: RawResponse) -> None:
    assert response.status == 413, (response.status, response.body)
    assert response.json() == {
        "statusCode": 413,
        "why": TOO_LARGE,
        "errorCode": "",
        "detailedCode": 0,
    }


@pytest.mark.parametrize("path", ["/api/jobs", "/api/jobs/terminate", "/auth/refresh"])
def test_content_length_over_the_limit_is_refused_before_the_body(api: Api, path: str) -> None:
    with connect(api.url) as sock:
        headers = {
            "Authorization": f"Bearer {api.token}",
            "Content-Type": "application/json",
            "Content-Length": str(50 * 1024 * 1024),
        }
        sock.sendall(request_head("POST", api.url + path, headers) + b'{"items": [')
        # The server answers now, with 49.99 MB of the body still unsent.
        _assert_too_large(read_response(sock, timeout=10))
    assert api.call("jobs.retrieveProducts").status_code == 200


def test_a_client_that_sends_its_whole_body_first_reads_the_refusal(api: Api) -> None:
    """12 MB is more than the sockets' buffers on the way hold: closed under the upload, the
    connection would reset before the client reads (as requests and fetch do)."""
    size = 12 * 1024 * 1024
    assert size < REFUSED_BODY_DRAIN
    with connect(api.url) as sock:
        headers = {"Authorization": f"Bearer {api.token}", "Content-Length": str(size)}
        sock.sendall(request_head("POST", api.url + "/api/jobs/terminate", headers))
        sock.sendall(b" " * size)
        _assert_too_large(read_response(sock, timeout=10))
    assert api.call("jobs.retrieveProducts").status_code == 200


def test_absurd_content_length_is_refused(api: Api) -> None:
    with connect(api.url) as sock:
        headers = {"Authorization": f"Bearer {api.token}", "Content-Length": "9" * 40}
        sock.sendall(request_head("POST", api.url + "/api/jobs/terminate", headers))
        response = read_response(sock, timeout=10)
    assert response.status in (400, 413), response


def test_chunked_body_is_refused_once_it_passes_the_limit(api: Api) -> None:
    chunk = b" " * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    with connect(api.url) as sock:
        headers = {"Authorization": f"Bearer {api.token}", "Transfer-Encoding": "chunked"}
        sock.sendall(request_head("POST", api.url + "/api/jobs/terminate", headers))
        sent = 0
        try:
            while sent < 100 * 1024 * 1024:  # the server stops this long before the end
                sock.sendall(frame)
                sent += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
        _assert_too_large(read_response(sock, timeout=10))
    assert sent < 50 * 1024 * 1024, sent
    assert api.call("jobs.retrieveProducts").status_code == 200


def test_a_body_at_the_limit_is_read(api: Api) -> None:
    body = b'{"items": [{"id": "424242"}]}'
    response = api.call("jobs.terminate", body + b" " * (LIMIT - len(body)))
    assert response.status_code == 404, response.text  # read and parsed: the job is unknown
    response = api.call("jobs.terminate", body + b" " * (LIMIT - len(body) + 1))
    assert response.status_code == 413
    assert response.json()["why"] == TOO_LARGE


def test_unknown_paths_answer_without_reading_a_body(api: Api) -> None:
    with connect(api.url) as sock:
        headers = {"Content-Length": str(50 * 1024 * 1024)}
        sock.sendall(request_head("POST", api.url + "/no/such/path", headers) + b"x" * 100)
        response = read_response(sock, timeout=10)
    assert response.status == 404
    assert response.body == b"404 page not found\n"
