"""Jobs: the Job resource, states, durations, create bodies, pages, Go-style output."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from jupyter_ucloud.protocol import (
    CALLS,
    AppParameterValue,
    BulkRequest,
    Job,
    JobOwner,
    JobSpecification,
    JobState,
    JobStatus,
    JobUpdate,
    NameAndVersion,
    PageV2,
    ProductReference,
    SimpleDuration,
)


def test_core_job_parses(example):
    job = Job.model_validate(example("core_job"))
    assert job.id == "4242"
    assert job.created_at == 1_718_000_000_000
    assert job.owner == JobOwner(created_by="alice#1234", project=None)
    assert job.permissions is not None
    assert job.permissions.myself == ["ADMIN", "READ", "EDIT"]
    assert job.provider_generated_id == "4242"
    assert [u.state for u in job.updates] == [JobState.IN_QUEUE, JobState.RUNNING]
    assert job.updates[1].status == "Your job is now running"
    assert job.updates[1].timestamp == 1_718_000_030_000
    spec = job.specification
    assert spec.product == ProductReference(
        id="u1-standard-2", category="u1-standard", provider="k8s"
    )
    assert spec.application == NameAndVersion(name="terminal-ubuntu", version="0.8.6")
    assert spec.name == "my job"
    assert spec.replicas == 1
    assert spec.time_allocation == SimpleDuration(hours=1)
    assert spec.parameters is not None
    assert spec.parameters["ucMetricSampleRate"].value == "0ms"
    assert spec.resources is not None
    assert spec.resources[0].type == "file"
    assert spec.resources[0].path == "/1234/my-folder"
    assert job.state is JobState.RUNNING
    status = job.status
    assert status.started_at == 1_718_000_030_000
    assert status.expires_at == status.started_at + spec.time_allocation.to_ms()
    assert status.job_parameters_json is not None
    assert status.job_parameters_json["machineType"] == {"cpu": 2, "memoryInGigs": 8}
    assert status.resolved_application is not None
    assert status.resolved_application.metadata.name == "..."
    assert status.resolved_application.backend == "DOCKER"
    assert status.resolved_product is None
    assert status.allow_restart is False
    assert job.output is not None
    assert job.output.output_folder is None


def test_core_job_round_trips_exactly(example):
    raw = example("core_job")
    job = Job.model_validate(raw)
    assert job.to_wire() == raw
    assert Job.model_validate(job.to_wire()) == job


def test_job_with_resolved_product_and_support(example):
    raw = example("core_job")
    [resolved] = example("core_retrieve_products")["productsByProvider"]["k8s"]
    raw["status"]["resolvedProduct"] = resolved["product"]
    raw["status"]["resolvedSupport"] = resolved
    job = Job.model_validate(raw)
    assert job.status.resolved_product is not None
    assert job.status.resolved_product.reference == job.specification.product
    assert job.status.resolved_support is not None
    assert job.status.resolved_support.supports_terminal
    assert job.to_wire() == raw


def test_job_built_in_python_is_written_as_go_writes_it():
    job = Job(
        id="1",
        created_at=5,
        owner=JobOwner(created_by="user"),
        specification=JobSpecification(
            product=ProductReference(id="compute-example", category="ce", provider="local"),
            application=NameAndVersion(name="terminal", version="1"),
        ),
        status=JobStatus(state=JobState.IN_QUEUE),
    )
    wire = job.to_wire()
    assert wire == {
        "id": "1",
        "createdAt": 5,
        "owner": {"createdBy": "user", "project": None},
        "permissions": None,
        "updates": [],
        "specification": {
            "product": {"id": "compute-example", "category": "ce", "provider": "local"},
            "application": {"name": "terminal", "version": "1"},
        },
        "status": {
            "state": "IN_QUEUE",
            "jobParametersJson": None,
            "startedAt": None,
            "expiresAt": None,
            "resolvedApplication": None,
            "resolvedProduct": None,
            "resolvedSupport": None,
            "allowRestart": False,
        },
        "output": {"outputFolder": None},
    }
    assert "providerGeneratedId" not in wire
    assert Job.model_validate(wire) == job
    update = JobUpdate(state=JobState.RUNNING, status="Your job is now running", timestamp=7)
    assert update.to_wire() == {
        "state": "RUNNING",
        "outputFolder": None,
        "status": "Your job is now running",
        "expectedState": None,
        "expectedDifferentState": None,
        "newTimeAllocation": None,
        "allowRestart": None,
        "resourceList": None,
        "timestamp": 7,
    }


def test_job_states():
    assert {s.value for s in JobState} == {
        "IN_QUEUE", "RUNNING", "SUCCESS", "FAILURE", "EXPIRED", "SUSPENDED",
    }  # fmt: skip
    assert [s.value for s in JobState if s.is_final] == ["SUCCESS", "FAILURE", "EXPIRED"]
    assert str(JobState.RUNNING) == "RUNNING"
    assert JobState("SUSPENDED") is JobState.SUSPENDED


@pytest.mark.parametrize(
    ("duration", "ms"),
    [
        (SimpleDuration(), 0),
        (SimpleDuration(hours=1), 3_600_000),
        (SimpleDuration(hours=2, minutes=3, seconds=4), 7_384_000),
        (SimpleDuration(minutes=90), 5_400_000),
    ],
)
def test_simple_duration(duration, ms):
    assert duration.to_ms() == ms
    assert SimpleDuration.from_ms(ms).to_ms() == ms


def test_simple_duration_from_ms_normalises():
    assert SimpleDuration.from_ms(5_400_999) == SimpleDuration(hours=1, minutes=30, seconds=0)
    assert SimpleDuration(hours=1).to_wire() == {"hours": 1, "minutes": 0, "seconds": 0}


def test_create_request_parses_and_round_trips(example):
    raw = example("core_create_request")
    request_type = CALLS["jobs.create"].request
    body = request_type.model_validate(raw)
    [spec] = body.items
    assert isinstance(spec, JobSpecification)
    assert spec.parameters == {"someParam": AppParameterValue(type="text", value="hello")}
    folder = AppParameterValue(type="file", path="/1234/my-folder", read_only=False)
    assert spec.resources == [folder]
    assert spec.ssh_enabled is False
    assert spec.labels == {}
    assert body.to_wire() == raw


def test_web_client_create_body_is_accepted():
    # The web client sends the app's whole metadata and "type": "bulk".
    raw = {
        "type": "bulk",
        "items": [
            {
                "application": {"name": "terminal", "version": "1", "title": "T", "public": True},
                "product": {"id": "p", "category": "c", "provider": "local"},
                "hostname": None,
                "allowDuplicateJob": False,
                "replicas": 2,
                "parameters": {},
                "resources": [],
                "timeAllocation": None,
            }
        ],
    }
    body = BulkRequest[JobSpecification].model_validate(raw)
    assert body.type == "bulk"
    assert body.items[0].application == NameAndVersion(name="terminal", version="1")
    assert body.items[0].replicas == 2
    assert body.items[0].time_allocation is None
    wire = body.to_wire()
    assert wire["items"][0]["application"] == {"name": "terminal", "version": "1"}
    assert wire["items"][0]["timeAllocation"] is None


def test_browse_page(example):
    job = example("core_job")
    page = PageV2[Job].model_validate({"items": [job], "itemsPerPage": 50, "next": "4100"})
    assert page.items[0].id == "4242"
    assert page.items_per_page == 50
    assert page.next == "4100"
    assert page.to_wire() == {"items": [job], "itemsPerPage": 50, "next": "4100"}
    assert PageV2[Job](items=[]).to_wire() == {"items": [], "itemsPerPage": 50, "next": None}


def test_browse_shape_without_include_flags():
    raw = {
        "id": "9",
        "createdAt": 1,
        "owner": {"createdBy": "user", "project": "p1"},
        "permissions": {"myself": ["ADMIN", "READ", "EDIT"], "others": []},
        "updates": [],
        "specification": {
            "product": {"id": "p", "category": "c", "provider": "local"},
            "application": {"name": "terminal", "version": "1"},
        },
        "status": {"state": "SUCCESS", "jobParametersJson": None, "resolvedApplication": None},
        "output": {"outputFolder": None},
    }
    job = Job.model_validate(raw)
    assert job.state.is_final
    assert job.status.job_parameters_json is None
    assert job.provider_generated_id is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("status", "state"), "DONE"),
        (("status", "state"), None),
        (("createdAt",), "yesterday"),
        (("createdAt",), 1.5),
        (("id",), 4242),
        (("specification", "replicas"), "1"),
        (("specification", "timeAllocation", "hours"), 1.5),
        (("specification", "product"), "u1-standard-2"),
        (("specification", "parameters", "ucMetricSampleRate", "readOnly"), "false"),
        (("updates",), {"state": "RUNNING"}),
        (("updates", 0, "timestamp"), "now"),
        (("permissions", "myself"), "ADMIN"),
    ],
)
def test_wrong_types_are_rejected(example, path, value):
    raw = example("core_job")
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        Job.model_validate(raw)


@pytest.mark.parametrize("missing", ["id", "specification", "status"])
def test_required_fields(example, missing):
    raw = example("core_job")
    del raw[missing]
    with pytest.raises(ValidationError):
        Job.model_validate(raw)


def test_unknown_fields_are_ignored(example):
    raw = example("core_job")
    noisy = copy.deepcopy(raw)
    noisy["newResourceField"] = {"x": 1}
    noisy["status"]["newStatusField"] = 2
    noisy["updates"][0]["newUpdateField"] = 3
    noisy["specification"]["newSpecField"] = 4
    assert Job.model_validate(noisy) == Job.model_validate(raw)
    assert Job.model_validate(noisy).to_wire() == raw


def test_credentials_not_in_repr():
    value = AppParameterValue(type="api_server", server="https://x", token="s3cret-token")
    assert "s3cret-token" not in repr(value)
    assert value.to_wire()["token"] == "s3cret-token"


def test_go_nil_slices_read_as_empty_lists(example):
    raw = example("core_job")
    raw["updates"] = None
    raw["permissions"]["myself"] = None
    job = Job.model_validate(raw)
    assert job.updates == []
    assert job.permissions is not None
    assert job.permissions.myself == []
    assert Job.model_validate(job.to_wire()) == job
