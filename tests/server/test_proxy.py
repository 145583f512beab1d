"""The Jobs API proxy, status and applications, against the embedded UCloud server."""

from __future__ import annotations

import pytest

from .conftest import Api


async def test_status_reports_remote_mode_with_working_credentials(api: Api, local_server) -> None:
    status = await api.call("GET", "api", "status")
    assert status["mode"] == "remote"
    assert status["host"].rstrip("/") == local_server.url.rstrip("/")
    assert status["ok"] is True
    assert status["error"] is None
    assert status["user"] == "user"


async def test_seed_flow_products_create_browse_retrieve_terminate(api: Api) -> None:
    support = await api.call("GET", "api", "jobs", "retrieveProducts")
    resolved = [item for items in support["productsByProvider"].values() for item in items]
    terminal = [r for r in resolved if r["product"]["name"] == "compute-example"]
    assert terminal, resolved
    assert "jobs.docker.terminal" in (terminal[0].get("features") or []) or terminal[0]["support"][
        "docker"
    ].get("terminal")

    job_id = await api.start_job()
    page = await api.call("GET", "api", "jobs", "browse", itemsPerPage=10, filterState="RUNNING")
    assert job_id in [job["id"] for job in page["items"]]
    assert "next" in page
    assert "itemsPerPage" in page
    job = await api.call("GET", "api", "jobs", "retrieve", id=job_id, includeProduct="true")
    assert job["status"]["state"] == "RUNNING"
    assert job["specification"]["product"]["id"] == "compute-example"

    assert await api.call("POST", "api", "jobs", "terminate", body={"items": [{"id": job_id}]}) == {
        "responses": [{}]
    }
    job = await api.wait_state(job_id, "SUCCESS", "FAILURE")
    assert job["status"]["state"] == "SUCCESS"


async def test_extend_passes_ucloud_status_and_why_through(api: Api) -> None:
    job_id = await api.start_job()
    body = {"items": [{"jobId": job_id, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}}]}
    status, error = await api.error("POST", "api", "jobs", "extend", body=body)
    assert status == 400
    assert "not supported" in error["why"].lower()
    assert error["message"] == error["why"]
    await api.terminate(job_id)

    extendable = await api.start_job(product="compute-multi")
    answer = await api.call(
        "POST",
        "api",
        "jobs",
        "extend",
        body={
            "items": [
                {"jobId": extendable, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}}
            ]
        },
    )
    assert answer == {"responses": [{}]}
    await api.terminate(extendable)


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ((), "{not json", "not valid JSON"),
        ((), "", "needs a JSON body"),
        ((), [1, 2], "Invalid request for jobs.create"),
        ((), {"items": [{"application": {"name": "terminal", "version": "1"}}]}, "product"),
        ((), {"items": [{"replicas": "many"}]}, "Invalid request for jobs.create"),
        ((), {"items": "nope"}, "items"),
        (("terminate",), {"items": [{"id": 42}]}, "Invalid request for jobs.terminate"),
        (("terminate",), {"items": [{}]}, "id"),
        (("extend",), {"items": [{"jobId": "1", "requestedTime": "1h"}]}, "requestedTime"),
    ],
)
async def test_bad_bodies_are_400_before_anything_goes_upstream(
    api: Api, path: tuple[str, ...], body: object, needle: str
) -> None:
    status, error = await api.error("POST", "api", "jobs", *path, body=body)
    assert status == 400, error
    assert needle.lower() in error["message"].lower()


async def test_bad_queries_unknown_calls_and_wrong_methods(api: Api) -> None:
    status, error = await api.error("GET", "api", "jobs", "retrieve")
    assert status == 400
    assert "jobs.retrieve" in error["message"]
    status, error = await api.error("GET", "api", "jobs", "browse", includeProduct="perhaps")
    assert status == 400
    assert "includeProduct" in error["message"]
    status, error = await api.error("GET", "api", "jobs", "browse", itemsPerPage="ten")
    assert status == 400
    status, error = await api.error("GET", "api", "jobs", "interactiveSession")
    assert status == 404
    assert "Unknown jobs call" in error["message"]
    status, error = await api.error("POST", "api", "jobs", "browse", body={})
    assert status == 405
    status, error = await api.error("GET", "api", "jobs")
    assert status == 405


async def test_unknown_job_ids_pass_ucloud_errors_through(api: Api) -> None:
    status, error = await api.error("GET", "api", "jobs", "retrieve", id="999999")
    assert status in (403, 404)
    assert error["why"]
    status, error = await api.error(
        "POST", "api", "jobs", "terminate", body={"items": [{"id": "999999"}]}
    )
    assert status == 404
    assert "999999" in error["why"]


async def test_applications_in_remote_mode_come_from_config(api: Api) -> None:
    assert await api.call("GET", "api", "applications") == {"items": []}
