"""Notebook conveniences: tables, job handles, commands on every rank, browse_all paging."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jupyter_ucloud import UCloud
from jupyter_ucloud.client import (
    JobTable,
    ProductTable,
    UCloudError,
    UCloudJobStateError,
    UCloudTimeoutError,
)
from jupyter_ucloud.protocol import AppParameterValue, JobState


def test_product_table(uc: UCloud) -> None:
    products = uc.products()
    assert isinstance(products, ProductTable)
    rows = {row[0]: row for row in products.rows()}
    assert rows["compute-example"][3:7] == (1, 2, 0, "\u2713")
    assert rows["batch-small"][6] == ""  # no terminal
    page = products._repr_html_()
    assert "<th>terminal</th>" in page
    assert "<td>compute-example</td>" in page
    assert "compute-multi" in str(products)
    assert products.find(f"{products[0].product.provider}/{products[0].product.name}")
    assert products.find("nope") is None


def test_start_run_all_shell_and_terminate(uc: UCloud) -> None:
    progress: list[str] = []
    job = uc.start(
        "terminal",
        "1",
        product="compute-multi",
        replicas=3,
        wait=True,
        progress=lambda j: progress.append(j.state.value),
    )
    try:
        assert progress[-1] == "RUNNING"
        assert job.state == JobState.RUNNING
        assert job.ranks == 3
        started = time.monotonic()
        results = job.run_all("sleep 1; echo rank $UCLOUD_RANK of $UCLOUD_JOB_ID")
        assert time.monotonic() - started < 6  # concurrently, not 3 x (1 s + shell start)
        assert {rank: r.output for rank, r in results.items()} == {
            rank: f"rank {rank} of {job.id}\n" for rank in range(3)
        }
        assert job.run("(exit 3)", rank=2).exit_status == 3
        with job.shell(1) as shell:
            assert shell.run("echo $UCLOUD_RANK").output == "1\n"
        with pytest.raises(UCloudError) as caught:
            job.run("true", rank=7)
        assert (caught.value.job_id, caught.value.rank) == (job.id, 7)
        assert f"[job {job.id}, rank 7]" in str(caught.value)
        listed = uc.jobs.list(state="RUNNING")
        assert isinstance(listed, JobTable)
        assert job.id in [j.id for j in listed]
        assert all(j.state == JobState.RUNNING for j in listed)
        assert f"<td>{job.id}</td>" in listed._repr_html_()
        assert "terminal" in job._repr_html_()
    finally:
        job.terminate(wait=True, timeout=20)
    assert job.job.state == JobState.SUCCESS
    with pytest.raises(UCloudJobStateError) as ended:
        job.run("true")
    assert "the job is SUCCESS, not RUNNING" in str(ended.value)
    assert f"[job {job.id}, rank 0]" in str(ended.value)


def test_wait_until_names_the_job_when_it_ends_otherwise(uc: UCloud, make_spec: Any) -> None:
    spec = make_spec(
        product="batch-small",
        application="batch",
        parameters={"command": AppParameterValue(type="text", value="exit 3")},
    )
    job = uc.job(uc.jobs.create(spec))
    with pytest.raises(UCloudJobStateError) as caught:
        job.wait_until("SUCCESS", timeout=20, progress=False)
    assert caught.value.job_id == job.id
    assert str(caught.value).startswith(
        f"[job {job.id}] ended as FAILURE while waiting for SUCCESS"
    )

    running = uc.job(uc.jobs.create(make_spec()))
    try:
        with pytest.raises(UCloudTimeoutError, match=r"still RUNNING after 0\.5 s"):
            running.wait_until("SUCCESS", timeout=0.5, progress=False)
    finally:
        running.terminate()


def test_wait_until_prints_progress(uc: UCloud, make_spec: Any, capsys: Any) -> None:
    job = uc.job(uc.jobs.create(make_spec()))
    try:
        job.wait_until("RUNNING", timeout=20)
    finally:
        job.terminate()
    printed = capsys.readouterr().out
    assert f"job {job.id}: RUNNING" in printed


def test_browse_all_walks_every_page(fresh_local_server: Any) -> None:
    uc = UCloud(host=fresh_local_server.url, refresh_token=fresh_local_server.refresh_token)
    spec = {
        "application": {"name": "batch", "version": "1"},
        "product": {
            "id": "batch-small",
            "category": "batch-small",
            "provider": fresh_local_server.provider_id,
        },
        "parameters": {"command": {"type": "text", "value": "true"}},
    }
    ids = uc.jobs.create_bulk([spec] * 5)
    assert len(set(ids)) == 5
    first = uc.jobs.browse(items_per_page=2)
    assert len(first.items) == 2
    assert first.next
    walked = [job.id for job in uc.jobs.browse_all(items_per_page=2)]
    assert sorted(walked) == sorted(ids)  # every job once, over three pages
    assert walked == sorted(walked, key=int, reverse=True)  # newest first
    assert [j.id for j in uc.jobs.browse_all(items_per_page=2, filter_state="RUNNING")] == [
        j.id for j in uc.jobs.browse_all(filter_state="RUNNING")
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, (1, 0)),
        ({"minutes": 30}, (0, 30)),
        ({"hours": 2}, (2, 0)),
        ({"hours": 0, "minutes": 5}, (0, 5)),
        ({"hours": 1, "minutes": 15}, (1, 15)),
    ],
)
def test_start_time_allocation_replaces_the_default_hour(
    uc: UCloud, given: dict[str, int], expected: tuple[int, int]
) -> None:
    job = uc.start("terminal", "1", product="compute-example", progress=False, **given)
    try:
        allocation = job.job.specification.time_allocation
        assert allocation is not None
        assert (allocation.hours, allocation.minutes, allocation.seconds) == (*expected, 0)
    finally:
        job.terminate(wait=True, timeout=30)
