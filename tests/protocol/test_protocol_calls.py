"""The call table against UCloud's conventions, query encoding, errors and auth bodies."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode

import pytest
from pydantic import BaseModel, ValidationError

from jupyter_ucloud.protocol import (
    CALLS,
    AuthenticationTokens,
    BulkRequest,
    BulkResponse,
    ErrorBody,
    FindByStringId,
    JobsBrowseRequest,
    JobsExtendRequestItem,
    JobsRetrieveRequest,
    JobState,
    RefreshResponse,
    SimpleDuration,
    decode_query,
    encode_query,
    find_call,
)

REQUIRED = {
    "jobs.retrieveProducts",
    "jobs.browse",
    "jobs.retrieve",
    "jobs.create",
    "jobs.terminate",
    "jobs.extend",
    "jobs.openInteractiveSession",
    "auth.refresh",
}


def conventional_route(name: str) -> tuple[str, str, str]:
    """Method, path and encoding that reference section 1.1 derives from a call name."""
    context, op = name.rsplit(".", 1)
    base = ("/" if context.startswith("auth") else "/api/") + context.replace(".", "/")
    if context == "auth":
        return "POST", f"{base}/{op}", "none"  # auth.refresh: Bearer header, no body
    if op == "retrieveProducts":
        return "GET", f"{base}/{op}", "none"  # a Retrieve call without parameters
    if op.startswith(("browse", "retrieve")):
        return "GET", f"{base}/{op}", "query"
    if op.startswith("create"):
        rest = op[len("create") :]
        return "POST", base + (f"/{rest[0].lower()}{rest[1:]}" if rest else ""), "body"
    if op == "openInteractiveSession":
        return "POST", f"{base}/interactiveSession", "body"  # the documented exception
    return "POST", f"{base}/{op}", "body"


def test_table_has_the_calls():
    assert set(CALLS) >= REQUIRED
    for name, call in CALLS.items():
        assert call.name == name


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_call_follows_ucloud_conventions(name):
    call = CALLS[name]
    assert (call.method, call.path, call.encoding) == conventional_route(name)
    assert re.fullmatch(r"(/api)?/[a-z][A-Za-z/]*[A-Za-z]", call.path)
    assert find_call(call.method, call.path) is call
    assert find_call(call.method.lower(), call.path + "/") is call


def test_call_types_are_consistent():
    for call in CALLS.values():
        if call.encoding == "none":
            assert call.request is None
        else:
            assert issubclass(call.request, BaseModel)
        assert issubclass(call.response, BaseModel)
        if call.encoding == "query":
            assert call.method == "GET"
        if call.bulk:
            assert call.method == "POST"
            assert call.encoding == "body"
            assert issubclass(call.request, BulkRequest)
            assert issubclass(call.response, BulkResponse)
            assert call.request_item is not None
            assert call.response_item is not None
        else:
            assert call.request_item is None
    assert CALLS["jobs.create"].response_item is FindByStringId
    assert CALLS["jobs.extend"].request_item is JobsExtendRequestItem


def test_unknown_routes():
    assert find_call("GET", "/api/jobs") is None
    assert find_call("DELETE", "/api/jobs/terminate") is None
    assert find_call("POST", "/api/jobs/openInteractiveSession") is None


@pytest.mark.parametrize(
    ("name", "fixture"),
    [
        ("jobs.create", "core_create_request"),
        ("jobs.terminate", "core_terminate_request"),
        ("jobs.extend", "core_extend_request"),
        ("jobs.openInteractiveSession", "core_interactive_session_request"),
    ],
)
def test_request_bodies(example, name, fixture):
    raw = example(fixture)
    assert CALLS[name].request.model_validate(raw).to_wire() == raw


@pytest.mark.parametrize(
    ("name", "fixture"),
    [
        ("jobs.retrieveProducts", "core_retrieve_products"),
        ("jobs.retrieveProducts", "seed_retrieve_products"),
        ("jobs.retrieve", "core_job"),
        ("jobs.create", "core_create_response"),
        ("jobs.terminate", "core_bulk_empty_response"),
        ("jobs.extend", "core_bulk_empty_response"),
        ("jobs.openInteractiveSession", "core_interactive_session_response"),
        ("jobs.openInteractiveSession", "seed_interactive_session_response"),
        ("auth.refresh", "auth_refresh_response"),
    ],
)
def test_response_bodies(example, name, fixture):
    raw = example(fixture)
    assert CALLS[name].response.model_validate(raw).to_wire() == raw


def test_extend_item(example):
    body = CALLS["jobs.extend"].request.model_validate(example("core_extend_request"))
    hour = SimpleDuration(hours=1)
    assert body.items == [JobsExtendRequestItem(job_id="4242", requested_time=hour)]
    assert body.items[0].requested_time.to_ms() == 3_600_000


def test_empty_bulk_response_parses():
    assert CALLS["jobs.terminate"].response.model_validate({}).responses == []


# --- query encoding ------------------------------------------------------------------------------


def test_encode_query():
    request = JobsBrowseRequest(
        items_per_page=25,
        next="4100",
        filter_state=JobState.RUNNING,
        include_product=True,
        include_updates=False,
        filter_labels={"env": "prod", "team": "a b"},
        filter_created_after=1_718_000_000_000,
    )
    assert encode_query(request) == {
        "filterState": "RUNNING",
        "includeUpdates": "false",
        "includeProduct": "true",
        "filterLabels.env": "prod",
        "filterLabels.team": "a b",
        "filterCreatedAfter": "1718000000000",
        "itemsPerPage": "25",
        "next": "4100",
    }
    assert encode_query(JobsBrowseRequest()) == {}


def test_query_round_trip_through_a_real_query_string():
    request = JobsBrowseRequest(
        items_per_page=10,
        next="99",
        filter_application="terminal",
        filter_state=JobState.SUCCESS,
        filter_type="JOBS_ONLY",
        include_parameters=True,
        include_application=False,
        include_others=True,
        include_updates=True,
        include_support=True,
        include_product=True,
        filter_labels={"k": "v=1&x", "ø": "å"},
        filter_created_by="alice#1234",
        filter_created_after=1,
        filter_created_before=-2,
        filter_provider="local",
        filter_product_id="p",
        filter_product_category="c",
        hide_product_id="h",
        hide_product_category="hc",
        hide_provider="hp",
        filter_provider_ids="a,b",
        filter_ids="1,2",
        sort_by="createdAt",
        sort_direction="ascending",
    )
    assert all(getattr(request, name) is not None for name in JobsBrowseRequest.model_fields)
    query = urlencode(encode_query(request))
    decoded = decode_query(JobsBrowseRequest, parse_qs(query, keep_blank_values=True))
    assert decoded == request


def test_decode_reference_example():
    query = (
        "id=4242&includeApplication=true&includeUpdates=true"
        "&includeSupport=true&includeProduct=true"
    )
    request = decode_query(JobsRetrieveRequest, parse_qs(query))
    assert request.id == "4242"
    assert request.include_application is True
    assert request.include_product is True
    assert request.include_parameters is None
    assert encode_query(request) == dict(pair.split("=") for pair in query.split("&"))


def test_decode_ignores_empty_and_unknown_and_accepts_bytes_lists():
    request = decode_query(
        JobsBrowseRequest,
        {
            "itemsPerPage": [b"5", b"7"],
            "next": "",
            "filterState": [""],
            "consistency": "PREFER",
            "itemsToSkip": "3",
            "includeOthers": b"T",
            "includeProduct": "0",
            "filterLabels.a": "",
        },
    )
    assert request.items_per_page == 5
    assert request.next is None
    assert request.filter_state is None
    assert request.include_others is True
    assert request.include_product is False
    assert request.filter_labels is None


@pytest.mark.parametrize(
    "params",
    [
        {"includeProduct": "yes"},
        {"includeProduct": "TRue"},
        {"itemsPerPage": "ten"},
        {"itemsPerPage": "1.5"},
        {"itemsPerPage": " 5"},
        {"itemsPerPage": "99999999999999999999"},
        {"filterCreatedAfter": "0x10"},
        {"filterState": "DONE"},
        {"next": b"\xff"},
    ],
)
def test_decode_bad_values_raise_value_error(params):
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is a 400 for the server
        decode_query(JobsBrowseRequest, params)


def test_decode_missing_required_raises_validation_error():
    with pytest.raises(ValidationError):
        decode_query(JobsRetrieveRequest, {"includeProduct": "true"})
    with pytest.raises(ValidationError):
        decode_query(JobsRetrieveRequest, {"id": ""})


def test_encode_rejects_what_ucloud_cannot_encode():
    class WithList(BaseModel):
        ids: list[str]

    with pytest.raises(TypeError):
        encode_query(WithList(ids=["1"]))


# --- errors and auth -----------------------------------------------------------------------------


def test_error_bodies(example):
    core = ErrorBody.model_validate(example("core_error"))
    assert core.status_code == 404
    assert core.why == "Permission denied or job not found (4242)"
    assert core.to_wire() == example("core_error")
    im = ErrorBody.model_validate(example("im_error"))
    assert (im.why, im.error_code) == ("Bad session", "BAD_SESSION")
    assert ErrorBody(status_code=400, why="Invalid request supplied").to_wire() == {
        "statusCode": 400,
        "why": "Invalid request supplied",
        "errorCode": "",
        "detailedCode": 0,
    }
    with pytest.raises(ValidationError):
        ErrorBody.model_validate({"statusCode": "404", "why": "x"})


def test_auth_bodies(example):
    refresh = RefreshResponse.model_validate(example("auth_refresh_response"))
    assert refresh.access_token.count(".") == 2
    assert refresh.csrf_token == "0a1b2c"
    tokens = AuthenticationTokens.model_validate(example("auth_login_server_response"))
    assert tokens.username == "alice"
    assert tokens.expires_at == 1_719_999_999_000
    assert tokens.to_wire() == example("auth_login_server_response")
    for model in (refresh, tokens):
        assert "eyJ" not in repr(model)
        assert "deadbeef" not in repr(model)
        assert "0a1b2c" not in repr(model)
    with pytest.raises(ValidationError):
        RefreshResponse.model_validate({"csrfToken": "x"})
    assert RefreshResponse(access_token="a").to_wire() == {"accessToken": "a", "csrfToken": None}
