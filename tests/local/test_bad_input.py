"""Bad HTTP input gets UCloud's answers: 400 JSON errors, plain-text 404s, never a 500."""

from __future__ import annotations

import pytest
import requests

from jupyter_ucloud.protocol import ErrorBody

from .conftest import Api, terminal_spec


def _why(response: requests.Response) -> str:
    return ErrorBody.model_validate(response.json()).why


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "No request body found"),
        (b"   ", "No request body found"),
        (b"{not json", "Invalid request supplied"),
        (b"\xff\xfe\x00garbage", "Invalid request supplied"),
        (b"[" * 100_000 + b"]" * 100_000, "Invalid request supplied"),
        (b'{"items": "everything"}', "Invalid request supplied"),
        (b'{"items": [{"application": 5}]}', "Invalid request supplied"),
        (
            b'{"items": [{"application": {"name": "terminal", "version": "1"},'
            b' "product": {"id": "compute-example", "category": "compute-example",'
            b' "provider": "local"}, "replicas": "two"}]}',
            "Invalid request supplied",
        ),
        (b"null", "Invalid request supplied"),
        (
            b'{"items": [' + b'{"id": "1"},' * 300_000 + b'{"id": "1"}]}',
            "Request body too large (at most 1048576 bytes)",
        ),
    ],
)
def test_bad_bodies(api: Api, body: bytes, why: str) -> None:
    for name in ("jobs.create", "jobs.terminate"):
        response = api.call(name, body)
        assert response.status_code == (413 if "too large" in why else 400), (name, response.text)
        assert _why(response) == why


def test_too_many_items(api: Api) -> None:
    response = api.call("jobs.terminate", {"items": [{"id": "1"}] * 1001})
    assert response.status_code == 400
    assert "Too many items" in _why(response)


def test_wrong_types_in_items(api: Api) -> None:
    for name, item in (
        ("jobs.terminate", {"id": 5}),
        ("jobs.extend", {"jobId": "1", "requestedTime": "1h"}),
        ("jobs.openInteractiveSession", {"id": "1", "rank": "zero", "sessionType": "SHELL"}),
        ("jobs.openInteractiveSession", {"id": "1", "rank": 0, "sessionType": "TELNET"}),
    ):
        response = api.call(name, {"items": [item]})
        assert response.status_code == 400, name
        assert _why(response) == "Invalid request supplied"


def test_bad_queries(api: Api) -> None:
    for query in (
        {"itemsPerPage": "many"},
        {"includeUpdates": "maybe"},
        {"filterState": "SLEEPING"},
        {"next": "not-a-number"},
        {"filterCreatedAfter": "yesterday"},
    ):
        response = api.call("jobs.browse", query=query)
        assert response.status_code == 400, query
        assert _why(response) == "Invalid request supplied"
    assert api.call("jobs.retrieve").status_code == 400  # id is required


def test_unknown_ids(api: Api) -> None:
    for job_id in ("424242", "abc", "-1", "9" * 40, "1 OR 1=1", ""):
        retrieve = api.call("jobs.retrieve", query={"id": job_id})
        if job_id == "":
            assert retrieve.status_code == 400
            continue
        assert retrieve.status_code == 403, job_id
        assert _why(retrieve) == "Write permission is required"
        terminate = api.call("jobs.terminate", {"items": [{"id": job_id}]})
        assert terminate.status_code == 404
        assert _why(terminate).startswith("Permission denied or job not found (")
        assert len(_why(terminate)) < 120


def test_unknown_paths_and_methods_are_go_404s(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.token}"}
    for method, path in (
        ("GET", "/api/jobs/nope"),
        ("GET", "/"),
        ("GET", "/api/jobs/terminate"),  # wrong method: no 405
        ("DELETE", "/api/jobs"),
        ("PUT", "/api/jobs/browse"),
        ("GET", "/auth/refresh"),
        ("POST", "/ucloud/other-provider/websocket"),
    ):
        response = requests.request(method, api.url + path, headers=headers, timeout=10)
        assert response.status_code == 404, (method, path)
        assert response.text == "404 page not found\n"
        assert response.headers["Content-Type"].startswith("text/plain")


def test_oversized_body_then_server_still_fine(api: Api) -> None:
    big = b'{"items": [{"id": "' + b"1" * (2 * 1024 * 1024) + b'"}]}'
    response = api.call("jobs.terminate", big)
    assert response.status_code == 413
    assert _why(response) == "Request body too large (at most 1048576 bytes)"
    assert api.call("jobs.create", {"items": [terminal_spec(replicas=0)]}).status_code == 400
    assert api.call("jobs.retrieveProducts").status_code == 200


def test_gzip_when_asked(api: Api) -> None:
    response = api.call("jobs.retrieveProducts", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == "gzip"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "productsByProvider" in response.json()


def test_out_of_range_numbers(api: Api) -> None:
    huge = 10**30
    for spec in (
        terminal_spec(timeAllocation={"hours": huge, "minutes": 0, "seconds": 0}),
        terminal_spec(replicas=huge),
        terminal_spec(timeAllocation={"hours": -1, "minutes": 0, "seconds": 0}),
    ):
        response = api.call("jobs.create", {"items": [spec]})
        assert response.status_code == 400, response.text
    for query in (
        {"filterCreatedAfter": str(huge)},
        {"filterIds": ",".join(["1"] * 1500)},
        {"next": str(huge)},
    ):
        response = api.call("jobs.browse", query=query)
        assert response.status_code == 400, query
    (job_id,) = api.create(terminal_spec("compute-multi"))
    for requested in (
        {"hours": huge, "minutes": 0, "seconds": 0},
        {"hours": 0, "minutes": 0, "seconds": -5},
    ):
        response = api.call(
            "jobs.extend", {"items": [{"jobId": job_id, "requestedTime": requested}]}
        )
        assert response.status_code == 400
    response = api.call(
        "jobs.openInteractiveSession",
        {"items": [{"id": job_id, "rank": huge, "sessionType": "SHELL"}]},
    )
    assert response.status_code == 400
    api.terminate(job_id)


def test_bad_websocket_handshakes_get_ucloud_errors(api: Api) -> None:
    """A plain GET on the provider's shell socket, or an upgrade with its headers missing or
    wrong (found by tests/fuzz: tornado answered bare text or an empty body)."""
    for path, headers, status in (
        ("/ucloud/local/websocket", {}, 400),
        ("/ucloud/local/websocket", {"Upgrade": "websocket"}, 400),
        ("/ucloud/local/websocket", {"Upgrade": "websocket", "Connection": "Upgrade"}, 426),
        (
            "/ucloud/local/websocket",
            {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "7",
            },
            426,
        ),
        ("/api/jobs", {"Upgrade": "websocket"}, 400),
        ("/api/jobs", {"Upgrade": "websocket", "Connection": "Upgrade"}, 426),
    ):
        response = requests.get(api.url + path, headers=headers, timeout=10)
        assert response.status_code == status, (path, headers, response.text)
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert _why(response).startswith("Bad websocket handshake"), response.text
        assert response.json()["statusCode"] == status
