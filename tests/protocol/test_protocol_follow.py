"""jobs.follow: the request frame and the messages, as Go writes and reads them (reference 5.2)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from jupyter_ucloud.protocol import (
    JOBS_FOLLOW_PATH,
    Job,
    JobsFollowMessage,
    JobsFollowRequest,
    JobState,
    LogEntry,
    ProductsBrowseRequest,
    decode_query,
    encode_query,
)


def test_request_frame_as_the_web_client_sends_it() -> None:
    raw = {
        "call": "jobs.follow",
        "streamId": "0",
        "payload": {"id": "4242"},
        "bearer": "eyJ.secret.jwt",
        "project": None,
    }
    request = JobsFollowRequest.model_validate(raw)
    assert request.payload.id == "4242"
    assert request.to_wire() == raw
    assert "eyJ" not in repr(request)
    built = JobsFollowRequest(stream_id="1", payload={"id": "7"}, bearer="t")
    assert built.to_wire() == {
        "call": "jobs.follow",
        "streamId": "1",
        "payload": {"id": "7"},
        "bearer": "t",
    }
    assert JOBS_FOLLOW_PATH == "/api/jobs"


def test_messages_as_go_writes_them(example) -> None:  # type: ignore[no-untyped-def]
    initial = JobsFollowMessage.model_validate(
        {"updates": [], "log": [], "newStatus": None, "initialJob": example("core_job")}
    )
    assert isinstance(initial.initial_job, Job)
    assert initial.initial_job.state is JobState.RUNNING
    assert not initial.is_empty
    # Built in Python, every field is written, as Go does (lists never null).
    assert JobsFollowMessage().to_wire() == {
        "updates": [],
        "log": [],
        "newStatus": None,
        "initialJob": None,
    }
    log = JobsFollowMessage(log=[LogEntry(rank=1, stderr="oops\n")])
    entry = {"rank": 1, "stdout": None, "stderr": "oops\n", "channel": None}
    assert log.to_wire()["log"] == [entry]
    # Go's nil slices read as empty lists.
    assert JobsFollowMessage.model_validate({"updates": None, "log": None}).log == []


def test_entries_without_output_or_channel_are_empty() -> None:
    # What the core forwards for the provider's pings and its final response.
    ping = LogEntry.model_validate({"rank": 0, "stdout": None, "stderr": None, "channel": None})
    assert ping.is_empty
    assert JobsFollowMessage(log=[ping]).is_empty
    assert not LogEntry(rank=0, stdout="").is_empty
    assert not LogEntry(rank=0, channel="utilization-data").is_empty


def test_status_frame_round_trips(example) -> None:  # type: ignore[no-untyped-def]
    job = example("core_job")
    raw = {
        "updates": [job["updates"][1]],
        "log": [],
        "newStatus": job["status"],
        "initialJob": None,
    }
    message = JobsFollowMessage.model_validate(raw)
    assert message.new_status is not None
    assert message.new_status.state is JobState.RUNNING
    assert json.loads(json.dumps(message.to_wire())) == raw


def test_bad_rank_is_refused() -> None:
    with pytest.raises(ValidationError):
        LogEntry.model_validate({"rank": "1", "stdout": "x"})


def test_products_browse_query() -> None:
    request = ProductsBrowseRequest(items_per_page=250, filter_product_type="COMPUTE")
    assert encode_query(request) == {"itemsPerPage": "250", "filterProductType": "COMPUTE"}
    parsed = decode_query(
        ProductsBrowseRequest, {"next": [b"local@compute-example@compute-example"]}
    )
    assert parsed.next == "local@compute-example@compute-example"
