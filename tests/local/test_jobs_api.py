"""The Jobs API of the embedded server: products, create, browse, retrieve, terminate, extend,
interactive sessions, and the process backend's states. Every answer is parsed by the protocol
models."""

from __future__ import annotations

import time

import pytest

from jupyter_ucloud.protocol import (
    BulkResponse,
    ErrorBody,
    FindByStringId,
    Job,
    PageV2,
    SupportByProvider,
)

from .conftest import Api, api_for, batch_spec, product, terminal_spec, wait_no_processes


def test_retrieve_products(api: Api) -> None:
    raw = api.ok("jobs.retrieveProducts")
    products = SupportByProvider.model_validate(raw)
    assert products.to_wire() == raw  # nothing lost, nothing added
    by_name = {s.product.name: s for s in products.products_by_provider["local"]}
    assert set(by_name) >= {"compute-example", "batch-small", "compute-multi"}

    example = raw["productsByProvider"]["local"][list(by_name).index("compute-example")]
    assert example["product"]["type"] == "compute"
    assert example["product"]["cpu"] == 1
    assert example["product"]["memoryInGigs"] == 2
    assert example["product"]["category"]["provider"] == "local"
    assert "accountingUnit" in example["product"]["category"]
    assert example["support"]["product"] == product("compute-example")
    # The process backend captures each rank's output: `logs` (jobs.follow streams it).
    assert example["support"]["docker"] == {"enabled": True, "logs": True, "terminal": True}
    assert example["support"]["virtualMachine"] == {}
    assert example["support"]["native"] == {}
    assert example["features"] == [
        "jobs.docker.enabled",
        "jobs.docker.logs",
        "jobs.docker.terminal",
    ]

    assert not by_name["batch-small"].supports_terminal
    assert (
        "terminal"
        not in raw["productsByProvider"]["local"][list(by_name).index("batch-small")]["support"][
            "docker"
        ]
    )  # false flags are absent
    assert by_name["compute-multi"].supports_extension
    assert by_name["compute-multi"].supports_terminal


def test_applications_browse(api: Api) -> None:
    response = api.session.get(
        api.url + "/api/hpc/apps/browse",
        headers={"Authorization": f"Bearer {api.token}"},
        timeout=10,
    )
    assert response.status_code == 200
    page = PageV2[dict].model_validate(response.json())
    names = {(a["metadata"]["name"], a["metadata"]["version"]) for a in page.items}
    assert {("terminal", "1"), ("batch", "1")} <= names
    batch = next(a for a in page.items if a["metadata"]["name"] == "batch")
    assert [p["name"] for p in batch["invocation"]["parameters"]] == ["command", "shell"]
    assert api.session.get(api.url + "/api/hpc/apps/browse", timeout=10).status_code == 403


def test_create_retrieve_and_include_flags(api: Api, local_server) -> None:
    answer = api.ok("jobs.create", {"type": "bulk", "items": [terminal_spec(name="my job")]})
    created = BulkResponse[FindByStringId].model_validate(answer)
    job_id = created.responses[0].id
    assert answer == {"responses": [{"id": job_id}]}
    api.wait_for_state(job_id, "RUNNING")

    raw = api.ok("jobs.retrieve", query={"id": job_id})
    job = Job.model_validate(raw)
    assert job.to_wire() == raw
    assert job.specification.name == "my job"
    assert job.owner.created_by == "user"
    assert job.owner.project is None
    assert job.permissions.myself == ["ADMIN", "READ", "EDIT"]
    assert [u.state.value for u in job.updates if u.state] == ["IN_QUEUE", "RUNNING"]
    assert all(u.status for u in job.updates)
    # retrieve does not strip; product/support only on request
    assert job.status.resolved_application.metadata.name == "terminal"
    assert job.status.job_parameters_json["request"]["application"]["name"] == "terminal"
    assert raw["status"]["resolvedProduct"] is None
    assert raw["status"]["resolvedSupport"] is None
    # the default time allocation of the app is applied, and expiresAt follows
    assert job.specification.time_allocation.to_ms() == 3600_000
    assert job.status.expires_at == job.status.started_at + 3600_000

    full = api.retrieve(job_id, includeProduct="true", includeSupport="true")
    assert full.status.resolved_product.name == "compute-example"
    assert full.status.resolved_support.supports_terminal

    page = api.ok("jobs.browse", query={"filterIds": job_id})
    (stripped,) = page["items"]
    assert stripped["updates"] == []
    assert stripped["status"]["resolvedApplication"] is None
    assert stripped["status"]["jobParametersJson"] is None
    page = api.ok(
        "jobs.browse",
        query={
            "filterIds": job_id,
            "includeUpdates": "true",
            "includeApplication": "true",
            "includeParameters": "true",
            "includeProduct": "true",
        },
    )
    (included,) = PageV2[Job].model_validate(page).items
    assert len(included.updates) == 2
    assert included.status.resolved_application is not None
    assert included.status.job_parameters_json is not None
    assert included.status.resolved_product.cpu == 1
    api.terminate(job_id)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (
            {**terminal_spec(), "application": {"name": "nope", "version": "1"}},
            "Unknown application requested",
        ),
        (
            {**terminal_spec(), "application": {"name": "terminal", "version": "9"}},
            "Unknown application requested",
        ),
        ({**terminal_spec(), "product": product("no-such-machine")}, "Bad machine type requested"),
        (
            {**terminal_spec(), "product": product("compute-example", provider="k8s")},
            "Bad machine type requested",
        ),
        (
            {**terminal_spec(), "product": {**product("compute-example"), "category": "x"}},
            "Bad machine type requested",
        ),
        (terminal_spec(replicas=0), "You must request at least 1 node"),
        (terminal_spec(replicas=2), "This machine type allows at most 1 node"),
        (terminal_spec("compute-multi", replicas=5), "This machine type allows at most 4 nodes"),
        (
            terminal_spec(timeAllocation={"hours": 0, "minutes": 0, "seconds": 0}),
            "Time allocated for job is too short",
        ),
        (
            terminal_spec(parameters={"x": {"type": "text", "value": "1"}}),
            "Unknown parameter supplied: 'x'",
        ),
        ({**batch_spec("true"), "parameters": {}}, "Missing value for 'command'"),
        (
            batch_spec("true", parameters={"command": {"type": "integer", "value": 1}}),
            "Bad value supplied for 'command'",
        ),
    ],
)
def test_create_validation(api: Api, spec: dict, why: str) -> None:
    response = api.call("jobs.create", {"items": [spec]})
    assert response.status_code == 400, response.text
    assert response.json() == {"statusCode": 400, "why": why, "errorCode": "", "detailedCode": 0}
    ErrorBody.model_validate(response.json())


def test_create_is_all_or_nothing(api: Api) -> None:
    before = api.ok("jobs.browse", query={"itemsPerPage": "1000"})["items"]
    response = api.call("jobs.create", {"items": [terminal_spec(), terminal_spec(replicas=0)]})
    assert response.status_code == 400
    after = api.ok("jobs.browse", query={"itemsPerPage": "1000"})["items"]
    assert len(after) == len(before)


def test_terminate_ends_success_and_kills_processes(api: Api, local_server) -> None:
    (job_id,) = api.create(terminal_spec("compute-multi", replicas=3))
    api.wait_for_state(job_id, "RUNNING")
    answer = api.ok("jobs.terminate", {"items": [{"id": job_id}]})
    assert answer == {"responses": [{}]}
    job = api.wait_for_state(job_id, "SUCCESS")
    assert job.updates[-1].state.value == "SUCCESS"
    assert "terminated" in job.updates[-1].status
    wait_no_processes(local_server.data_dir, job_id)
    for rank in range(3):
        assert (local_server.data_dir / "jobs" / job_id / f"rank-{rank}").is_dir()
    # Terminating an ended job changes nothing.
    assert api.ok("jobs.terminate", {"items": [{"id": job_id}]}) == {"responses": [{}]}
    assert api.retrieve(job_id).state.value == "SUCCESS"


def test_batch_exit_code_decides(api: Api, local_server) -> None:
    ok, failing = api.create(
        batch_spec("echo hi > out.txt; exit 0"),
        batch_spec("echo oops; echo bad >&2; exit 3"),
    )
    assert api.wait_for_state(ok, "SUCCESS", "FAILURE").state.value == "SUCCESS"
    assert (local_server.data_dir / "jobs" / ok / "rank-0" / "out.txt").read_text() == "hi\n"
    failed = api.wait_for_state(failing, "SUCCESS", "FAILURE")
    assert failed.state.value == "FAILURE"
    assert failed.updates[-1].status == "Rank 0 exited with status 3"
    folder = local_server.data_dir / "jobs" / failing
    assert (folder / "rank-0.out").read_text() == "oops\n"
    assert (folder / "rank-0.err").read_text() == "bad\n"


def test_batch_fails_when_one_rank_fails(api: Api, local_server) -> None:
    spec = batch_spec("sleep 1 & exit $UCLOUD_RANK", replicas=3)
    spec["product"] = product("compute-multi")
    (job_id,) = api.create(spec)
    job = api.wait_for_state(job_id, "SUCCESS", "FAILURE")
    assert job.state.value == "FAILURE"
    assert job.updates[-1].status == "Rank 1 exited with status 1"
    wait_no_processes(local_server.data_dir, job_id)  # the background sleeps went too


def test_time_allocation_expires(api: Api, local_server) -> None:
    (job_id,) = api.create(terminal_spec(timeAllocation={"hours": 0, "minutes": 0, "seconds": 1}))
    job = api.wait_for_state(job_id, "EXPIRED", timeout=15)
    assert job.updates[-1].state.value == "EXPIRED"
    assert job.status.expires_at == job.status.started_at + 1000
    wait_no_processes(local_server.data_dir, job_id)


def test_extend(api: Api) -> None:
    (job_id,) = api.create(
        terminal_spec("compute-multi", timeAllocation={"hours": 0, "minutes": 0, "seconds": 2})
    )
    api.wait_for_state(job_id, "RUNNING")
    answer = api.ok(
        "jobs.extend",
        {"items": [{"jobId": job_id, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}}]},
    )
    assert answer == {"responses": [{}]}
    job = api.retrieve(job_id)
    assert job.updates[-1].new_time_allocation == 3_602_000
    assert job.specification.time_allocation.to_ms() == 3_602_000
    time.sleep(3)
    assert api.retrieve(job_id).state.value == "RUNNING"
    api.terminate(job_id)

    (plain,) = api.create(terminal_spec())
    response = api.call(
        "jobs.extend",
        {"items": [{"jobId": plain, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}}]},
    )
    assert response.status_code == 400
    assert response.json()["why"] == "Time extension is not supported by this provider"
    api.terminate(plain)


def test_interactive_session_errors(api: Api) -> None:
    (batch_job,) = api.create(batch_spec("sleep 30"))
    (multi,) = api.create(terminal_spec("compute-multi", replicas=2))

    def open_session(item: dict) -> tuple[int, str]:
        response = api.call("jobs.openInteractiveSession", {"items": [item]})
        return response.status_code, response.json()["why"]

    assert open_session({"id": batch_job, "rank": 0, "sessionType": "SHELL"}) == (
        400,
        "Terminal access is not supported by this provider",
    )
    status, why = open_session({"id": multi, "rank": 2, "sessionType": "SHELL"})
    assert status == 400
    assert why.startswith("Rank 2 is out of range")
    assert open_session({"id": multi, "rank": -1, "sessionType": "SHELL"})[0] == 400
    assert open_session({"id": multi, "rank": 0, "sessionType": "WEB"})[0] == 400
    assert open_session({"id": "999999", "rank": 0, "sessionType": "SHELL"}) == (
        404,
        "Permission denied or job not found (999999)",
    )
    assert api.open_shell_session(multi, rank=1).session.rank == 1
    api.terminate(batch_job, multi)


def test_browse_pagination_and_filters(fresh_local_server) -> None:
    api = api_for(fresh_local_server)
    done = api.create(*[batch_spec("true") for _ in range(5)])
    running = api.create(terminal_spec(), terminal_spec())
    for job_id in done:
        api.wait_for_state(job_id, "SUCCESS")
    for job_id in running:
        api.wait_for_state(job_id, "RUNNING")
    all_ids = sorted(done + running, key=int, reverse=True)

    seen, token, pages = [], None, 0
    while True:
        query = {"itemsPerPage": "3", **({"next": token} if token else {})}
        page = PageV2[Job].model_validate(api.ok("jobs.browse", query=query))
        assert page.items_per_page == 3
        seen += [job.id for job in page.items]
        pages += 1
        token = page.next
        if token is None:
            break
        assert token == page.items[-1].id  # next is the id of the last item
    assert seen == all_ids  # newest first, nothing twice, nothing missing
    assert pages == 3

    by_state = api.ok("jobs.browse", query={"filterState": "RUNNING"})
    assert sorted(j["id"] for j in by_state["items"]) == sorted(running)
    assert all(j["status"]["state"] == "RUNNING" for j in by_state["items"])
    assert len(api.ok("jobs.browse", query={"filterApplication": "batch"})["items"]) == 5
    assert len(api.ok("jobs.browse", query={"filterProductId": "compute-example"})["items"]) == 2
    assert api.ok("jobs.browse", query={"itemsPerPage": "0"})["itemsPerPage"] == 50
    assert api.ok("jobs.browse", query={"itemsPerPage": "-5"})["itemsPerPage"] == 50
    assert api.ok("jobs.browse", query={"itemsPerPage": "5000"})["itemsPerPage"] == 1000
    ascending = api.ok(
        "jobs.browse",
        query={"sortBy": "createdAt", "sortDirection": "ascending", "itemsPerPage": "4"},
    )
    assert [j["id"] for j in ascending["items"]] == sorted(all_ids, key=int)[:4]
    assert ascending["next"] == "4"
    rest = api.ok(
        "jobs.browse",
        query={
            "sortBy": "createdAt",
            "sortDirection": "ascending",
            "itemsPerPage": "4",
            "next": "4",
        },
    )
    assert [j["id"] for j in rest["items"]] == sorted(all_ids, key=int)[4:]
    assert rest["next"] is None
    api.terminate(*running)


def test_terminate_right_after_create(api: Api, local_server) -> None:
    jobs = api.create(*[terminal_spec("compute-multi", replicas=4) for _ in range(3)])
    api.terminate(*jobs)  # while ranks may still be starting
    for job_id in jobs:
        job = api.wait_for_state(job_id, "SUCCESS", "FAILURE")
        assert job.state.value == "SUCCESS"
        wait_no_processes(local_server.data_dir, job_id)


def test_enumeration_parameter_takes_one_of_its_options_as_text(api: Api, local_server) -> None:
    apps = api.session.get(
        f"{api.url}/api/hpc/apps/browse",
        headers={"Authorization": f"Bearer {api.token}"},
        timeout=10,
    ).json()["items"]
    batch = next(a for a in apps if a["metadata"]["name"] == "batch")
    shell = next(p for p in batch["invocation"]["parameters"] if p["name"] == "shell")
    assert shell["type"] == "enumeration"
    assert shell["options"] == [
        {"name": "bash", "value": "/bin/bash"},
        {"name": "sh", "value": "/bin/sh"},
    ]
    assert shell["defaultValue"] == {"type": "text", "value": "/bin/bash"}
    assert shell["optional"] is True

    for value, why in (
        (
            {"type": "text", "value": "/bin/zsh"},
            "Bad value supplied for 'shell' (one of: /bin/bash, /bin/sh)",
        ),
        ({"type": "enumeration", "value": "/bin/sh"}, "Bad value supplied for 'shell'"),
        ({"type": "text", "value": 1}, "Bad value supplied for 'shell'"),
    ):
        spec = batch_spec(
            "true", parameters={"command": {"type": "text", "value": "true"}, "shell": value}
        )
        response = api.call("jobs.create", {"items": [spec]})
        assert response.status_code == 400, response.text
        assert response.json()["why"] == why

    # As UCloud's web client sends it: the option's value as text; the command runs in that shell.
    (job_id,) = api.create(
        batch_spec(
            "unused",
            parameters={
                "command": {"type": "text", "value": 'echo "shell=$0"'},
                "shell": {"type": "text", "value": "/bin/sh"},
            },
        )
    )
    assert api.wait_for_state(job_id, "SUCCESS", "FAILURE").state.value == "SUCCESS"
    out = local_server.data_dir / "jobs" / job_id / "rank-0.out"
    assert out.read_text() == "shell=/bin/sh\n"
