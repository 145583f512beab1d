"""JobPicker against the embedded UCloud server, through a real Jupyter server's proxy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from jupyter_ucloud import UCloud
from jupyter_ucloud.protocol import JobState, ProductReference
from jupyter_ucloud.widgets import JobPicker


def multi() -> ProductReference:
    return ProductReference(id="compute-multi", category="compute-multi", provider="local")


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_start_from_the_form_then_open_terminal_and_terminate(uc: UCloud) -> None:
    picker = JobPicker(uc)
    assert ("terminal", "1") in [value for _label, value in picker.application_dropdown.options]
    started: list[str] = []
    chosen: list[str | None] = []
    picker.on_started(lambda _p, job_id: started.append(job_id))
    picker.observe(lambda change: chosen.append(change["new"]), names="value")

    name = f"form-{uuid.uuid4().hex[:6]}"
    picker.product_picker.value = multi()
    picker.application_dropdown.value = ("terminal", "1")
    picker.name_text.value = name
    picker.replicas_input.value = 2
    picker.minutes_input.value = 10
    picker.hours_input.value = 0
    picker.start_button.click()

    assert picker.error.value == ""
    assert len(started) == 1
    job_id = started[0]
    assert picker.value == job_id
    assert chosen[-1] == job_id
    assert f"Started job {job_id}" in picker.status.value
    assert list(picker.rank_dropdown.options) == [0, 1]
    assert name in picker.details.value
    job = uc.job(job_id)
    assert job.job.specification.replicas == 2
    assert job.job.specification.time_allocation.minutes == 10

    job.wait_until("RUNNING", timeout=30, progress=False)
    picker.refresh_button.click()
    button = picker.terminal_button
    assert (button.job_id, button.rank, button.disabled) == (job_id, 0, False)
    picker.rank_dropdown.value = 1  # the browser's choice
    assert picker.rank == 1
    assert button.rank == 1
    assert button.tooltip == f"Open a terminal on rank 1 of {name} (job {job_id})"
    assert picker.job_list.options[0][0].startswith(f"{name} · RUNNING · 2 nodes · compute-multi")

    picker.terminate_button.click()
    assert picker.error.value == ""
    assert f"Asked to terminate job {job_id}" in picker.status.value
    eventually(lambda: job.state.is_final)
    picker.refresh()
    assert job_id not in [j.id for j in picker.jobs]  # "active" hides ended jobs
    picker.filter = "all"
    assert picker.filter_buttons.value == "all"
    ended = next(j for j in picker.jobs if j.id == job_id)
    assert ended.state == JobState.SUCCESS


def test_server_refusal_shows_on_the_error_line(uc: UCloud) -> None:
    picker = JobPicker(uc)
    before = [j.id for j in picker.jobs]
    # compute-example allows one node only: the embedded server refuses 3 ranks, UCloud-style.
    picker.product_picker.value = ProductReference(
        id="compute-example", category="compute-example", provider="local"
    )
    picker.replicas_input.value = 3
    picker.start_button.click()
    assert "jobs.create: 400" in picker.error.value
    assert [j.id for j in picker.jobs] == before

    picker.value = None
    picker.terminate_button.click()
    assert "Choose a job to terminate" in picker.error.value


def test_running_jobs_first_and_terminal_disabled_when_not_running(uc: UCloud, running_job) -> None:
    ended = uc.start("terminal", "1", product="compute-example", minutes=5, progress=False)
    ended.terminate(wait=True, timeout=30)
    picker = JobPicker(uc, filter="all")
    ids = [j.id for j in picker.jobs]
    assert ids.index(running_job.id) < ids.index(ended.id)
    running = [j.state == JobState.RUNNING for j in picker.jobs]
    assert running == sorted(running, reverse=True)  # RUNNING ones come first

    picker.value = ended.id
    assert picker.terminal_button.disabled
    assert picker.terminal_button.tooltip == (
        "The job has completed, so it has no terminals any more."
    )
    assert picker.terminate_button.disabled
    picker.value = running_job.id
    assert not picker.terminal_button.disabled
    assert not picker.terminate_button.disabled


def test_polling_in_a_thread_sees_new_jobs(uc: UCloud) -> None:
    picker = JobPicker(uc)
    picker.start_polling(0.2)
    try:
        assert picker.polling
        job = uc.start("terminal", "1", product="compute-example", minutes=5, progress=False)
        eventually(lambda: job.id in [j.id for j in picker.jobs], timeout=10)
        job.terminate(wait=True, timeout=30)
        eventually(lambda: job.id not in [j.id for j in picker.jobs], timeout=10)
    finally:
        picker.close()
    assert not picker.polling


def test_error_line_when_the_jupyter_server_refuses(ucloud_jupyter_server) -> None:
    picker = JobPicker(UCloud(jupyter_url=ucloud_jupyter_server.url, jupyter_token="wrong"))
    assert "Could not load jobs" in picker.error.value
    assert "403" in picker.error.value
    assert picker.jobs == []
    assert picker.terminal_button.disabled


def test_running_first_then_most_recently_active_and_one_naming_rule(
    uc: UCloud, running_job
) -> None:
    # `early` is created first but ends last: it must come before the older failure.
    early = uc.start("terminal", "1", product="compute-example", minutes=5, progress=False)
    failed = uc.start(
        "batch",
        "1",
        product="batch-small",
        minutes=5,
        parameters={"command": {"type": "text", "value": "exit 3"}},
        progress=False,
    )
    failed.wait_until("FAILURE", timeout=30, progress=False)
    early.terminate(wait=True, timeout=30)
    picker = JobPicker(uc, filter="all")
    ids = [j.id for j in picker.jobs]
    assert ids.index(running_job.id) < ids.index(early.id) < ids.index(failed.id)
    labels = {job_id: label for label, job_id in picker.job_list.options}
    assert labels[early.id].startswith(f"Job {early.id} · SUCCESS · 1 node · compute-example")
    assert labels[running_job.id].startswith("widget-tests · RUNNING · 2 nodes")
    picker.value = failed.id
    assert "Rank 0 exited with status 3" in picker.details.value
