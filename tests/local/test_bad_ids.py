"""Ids and cursors are ASCII decimal numbers (at most 18 digits) or they name nothing.

``str.isdigit()`` and ``int()`` also take Unicode digits: ``²`` made the server answer 500 and
``\u0661`` (Arabic-Indic one) found job 1. These tests use the look-alikes of a real job's id.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from jupyter_ucloud.protocol import ErrorBody

from .conftest import Api, api_for, terminal_spec


def _why(response: requests.Response) -> str:
    return ErrorBody.model_validate(response.json()).why


def look_alikes(job_id: str) -> list[str]:
    """Strings that ``int()`` reads as ``job_id`` (or that ``isdigit()`` accepts) but that are
    not ASCII decimal, and other near misses."""
    arabic = "".join(chr(0x0660 + int(d)) for d in job_id)
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in job_id)
    devanagari = "".join(chr(0x0966 + int(d)) for d in job_id)
    return [
        arabic,
        fullwidth,
        devanagari,
        "²",
        job_id + "²",
        "¹" * len(job_id),
        f"+{job_id}",
        f" {job_id}",
        f"{job_id} ",
        f"{job_id}\n",
        f"0x{int(job_id):x}",
        "1_0",
        f"{job_id}.0",
        "0" * 19 + job_id,
        "9" * 19,
        "9" * 5000,
        "-1",
        f"{job_id}\x00",
    ]


@pytest.fixture(scope="module")
def job_id(local_server: object) -> Iterator[str]:
    api = api_for(local_server)
    (job,) = api.create(terminal_spec("compute-multi"))
    api.wait_for_state(job, "RUNNING")
    yield job
    api.terminate(job)


def test_retrieve_with_a_look_alike_id_is_forbidden(api: Api, job_id: str) -> None:
    assert api.call("jobs.retrieve", query={"id": job_id}).status_code == 200
    for bad in look_alikes(job_id):
        response = api.call("jobs.retrieve", query={"id": bad})
        assert response.status_code == 403, (bad, response.text)
        assert _why(response) == "Write permission is required"


@pytest.mark.parametrize(
    ("call", "item"),
    [
        ("jobs.terminate", lambda i: {"id": i}),
        (
            "jobs.extend",
            lambda i: {"jobId": i, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}},
        ),
        ("jobs.openInteractiveSession", lambda i: {"id": i, "rank": 0, "sessionType": "SHELL"}),
    ],
)
def test_bulk_calls_with_a_look_alike_id_find_nothing(
    api: Api, job_id: str, call: str, item: object
) -> None:
    for bad in look_alikes(job_id):
        response = api.call(call, {"items": [item(bad)]})  # type: ignore[operator]
        assert response.status_code == 404, (call, bad, response.text)
        assert _why(response).startswith("Permission denied or job not found ("), response.text
    assert api.retrieve(job_id).state.value == "RUNNING"  # nothing happened to the real job


def test_browse_cursor_and_filter_ids_take_only_ascii_numbers(api: Api, job_id: str) -> None:
    found = api.ok("jobs.browse", query={"filterIds": job_id})
    assert [job["id"] for job in found["items"]] == [job_id]
    for bad in look_alikes(job_id):
        for sort in ({}, {"sortBy": "createdAt"}):
            response = api.call("jobs.browse", query={"next": bad, **sort})
            assert response.status_code == 400, (bad, sort, response.text)
            assert _why(response) == "Invalid request supplied"
        if bad.strip() == job_id:
            continue  # filterIds is a comma-separated list: white space around an id is fine
        page = api.ok("jobs.browse", query={"filterIds": bad})
        assert page["items"] == [], bad
        page = api.ok("jobs.browse", query={"filterIds": f"{bad},{job_id}"})
        assert [job["id"] for job in page["items"]] == [job_id], bad


def test_application_browse_cursor_takes_only_ascii_numbers(api: Api) -> None:
    url = api.url + "/api/hpc/apps/browse"
    headers = {"Authorization": f"Bearer {api.token}"}
    assert requests.get(url, params={"next": "1"}, headers=headers, timeout=10).status_code == 200
    for bad in ("\u0661", "²", "1_0", "+1", "-1", "9" * 5000, "0x1", "1.0"):
        for name in ("next", "itemsPerPage"):
            if name == "itemsPerPage" and bad == "-1":
                continue  # <= 0 means the default page size, as for jobs.browse
            response = requests.get(url, params={name: bad}, headers=headers, timeout=10)
            assert response.status_code == 400, (name, bad, response.text)
            assert _why(response) == "Invalid request supplied"
