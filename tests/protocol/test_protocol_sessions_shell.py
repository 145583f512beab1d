"""openInteractiveSession answers, the provider shell websocket frames and URL."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import TypeAdapter, ValidationError

from jupyter_ucloud.protocol import (
    CALLS,
    BulkResponse,
    JobsOpenInteractiveSessionRequestItem,
    OpenSession,
    OpenSessionShell,
    OpenSessionVnc,
    OpenSessionWeb,
    OpenSessionWithProvider,
    ShellAck,
    ShellData,
    ShellInitialize,
    ShellInitialized,
    ShellInput,
    ShellRequestEnvelope,
    ShellResize,
    ShellResponseEnvelope,
    provider_websocket_url,
    shell_call_name,
    to_wire,
)

SESSIONS = TypeAdapter(list[OpenSession])


@pytest.mark.parametrize(
    ("name", "job_id", "rank"),
    [
        ("seed_interactive_session_request", "123", 1),
        ("core_interactive_session_request", "4242", 0),
    ],
)
def test_interactive_session_requests(example, name, job_id, rank):
    raw = example(name)
    body = CALLS["jobs.openInteractiveSession"].request.model_validate(raw)
    [item] = body.items
    assert isinstance(item, JobsOpenInteractiveSessionRequestItem)
    assert (item.id, item.rank, item.session_type.value) == (job_id, rank, "SHELL")
    assert item.target is None
    assert body.to_wire() == raw


def test_seed_interactive_session_response(example):
    raw = example("seed_interactive_session_response")
    body = CALLS["jobs.openInteractiveSession"].response.model_validate(raw)
    [opened] = body.responses
    assert isinstance(opened, OpenSessionWithProvider)
    assert opened.provider_domain == "provider.example.com"
    assert opened.provider_id == "example"
    session = opened.session
    assert isinstance(session, OpenSessionShell)
    assert (session.job_id, session.rank) == ("123", 1)
    assert session.session_identifier == "a81ea644-58f5-44d9-8e94-89f81666c441"
    assert session.domain_override is None
    assert body.to_wire() == raw


def test_core_interactive_session_response(example):
    raw = example("core_interactive_session_response")
    body = BulkResponse[OpenSessionWithProvider].model_validate(raw)
    session = body.responses[0].session
    assert isinstance(session, OpenSessionShell)
    assert session.domain_override == "wss://k8s.provider.example:443"
    assert body.responses[0].provider_domain == "wss://k8s.provider.example:443"
    assert body.to_wire() == raw


def test_all_session_types(example):
    raw = example("core_open_sessions")
    shell, web, vnc = SESSIONS.validate_python(raw)
    assert isinstance(shell, OpenSessionShell)
    assert shell.rank == 1
    assert isinstance(web, OpenSessionWeb)
    assert web.redirect_client_to == "https://app-4242.example"
    assert isinstance(vnc, OpenSessionVnc)
    assert (vnc.url, vnc.password) == ("wss://vnc.example/4242", "pw")
    assert to_wire([shell, web, vnc]) == raw


def test_sessions_built_in_python_carry_their_type():
    assert OpenSessionShell(job_id="1", rank=0, session_identifier="t").to_wire() == {
        "type": "shell",
        "jobId": "1",
        "rank": 0,
        "sessionIdentifier": "t",
    }
    opened = OpenSessionWithProvider(
        provider_domain="http://127.0.0.1:1",
        provider_id="local",
        session=OpenSessionShell(job_id="1", session_identifier="t", domain_override=None),
    )
    wire = opened.to_wire()
    assert wire["session"]["type"] == "shell"
    assert wire["session"]["domainOverride"] is None
    assert OpenSessionWithProvider.model_validate(wire) == opened


@pytest.mark.parametrize(
    "session",
    [
        {"type": "folder", "jobId": "1", "rank": 0},
        {"jobId": "1", "rank": 0, "sessionIdentifier": "x"},
        {"type": "shell", "jobId": "1", "rank": "0", "sessionIdentifier": "x"},
        {"type": "shell", "jobId": "1", "rank": 0},
        {"type": "shell", "jobId": 1, "rank": 0, "sessionIdentifier": "x"},
    ],
)
def test_bad_sessions_are_rejected(session):
    with pytest.raises(ValidationError):
        OpenSessionWithProvider.model_validate(
            {"providerDomain": "https://p", "providerId": "p", "session": session}
        )


def test_credentials_not_in_repr():
    shell = OpenSessionShell(job_id="1", session_identifier="sekrit-session")
    vnc = OpenSessionVnc(job_id="1", password="sekrit-password")
    init = ShellInitialize(session_identifier="sekrit-session", cols=80, rows=24)
    envelope = ShellRequestEnvelope(call="c", stream_id="0", payload=init, bearer="sekrit-bearer")
    opened = OpenSessionWithProvider(provider_domain="d", provider_id="p", session=shell)
    for model in (shell, vnc, init, envelope, opened):
        assert "sekrit" not in repr(model)
        assert "sekrit" not in str(model)


def test_seed_shell_frames(example):
    requests = [ShellRequestEnvelope.model_validate(f) for f in example("seed_shell_requests")]
    init, typed = requests
    assert init.call == shell_call_name("example")
    assert init.stream_id == "0"
    assert init.payload == ShellInitialize(
        session_identifier="a81ea644-58f5-44d9-8e94-89f81666c441", cols=80, rows=24
    )
    assert typed.payload == ShellInput(data="ls -1\n")
    responses = [ShellResponseEnvelope.model_validate(f) for f in example("seed_shell_responses")]
    assert isinstance(responses[0].payload, ShellInitialized)
    assert isinstance(responses[2].payload, ShellAck)
    assert responses[2].stream_id == "1"
    output = "".join(r.payload.data for r in responses if isinstance(r.payload, ShellData))
    assert "hello_world.txt\n" in output
    assert {r.stream_id for r in responses if isinstance(r.payload, ShellData)} == {"0"}


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("seed_shell_requests", ShellRequestEnvelope),
        ("core_shell_requests", ShellRequestEnvelope),
        ("seed_shell_responses", ShellResponseEnvelope),
        ("core_shell_responses", ShellResponseEnvelope),
    ],
)
def test_shell_frames_round_trip(example, name, model):
    for frame in example(name):
        parsed = model.model_validate(frame)
        assert parsed.to_wire() == frame
        assert model.model_validate_json(json.dumps(parsed.to_wire())) == parsed


def test_core_shell_frames(example):
    frames = example("core_shell_requests")
    init, typed, resize = (ShellRequestEnvelope.model_validate(f) for f in frames)
    assert isinstance(init.payload, ShellInitialize)
    assert (init.payload.cols, init.payload.rows) == (120, 32)
    assert init.project == "<projectId, omitted if none>"
    assert init.signed_intent == "<optional JWS>"
    assert init.bearer is None
    assert typed.payload == ShellInput(data="echo hi\r")
    assert resize.payload == ShellResize(cols=100, rows=40)
    assert resize.stream_id == "2"


def test_frames_built_in_python_are_written_like_the_im():
    frame = ShellResponseEnvelope(payload=ShellData(data="$ "), stream_id="0").to_wire()
    assert json.dumps(frame) == (
        '{"type": "message", "payload": {"type": "data", "data": "$ "}, "streamId": "0"}'
    )
    assert ShellResponseEnvelope(payload=ShellAck(), stream_id="3").to_wire() == {
        "type": "message",
        "payload": {"type": "ack"},
        "streamId": "3",
    }
    request = ShellRequestEnvelope(
        call=shell_call_name("local"),
        stream_id="0",
        payload=ShellInitialize(session_identifier="s", cols=80, rows=24),
    ).to_wire()
    assert request == {
        "call": "jobs.compute.local.shell.open",
        "streamId": "0",
        "payload": {"type": "initialize", "sessionIdentifier": "s", "cols": 80, "rows": 24},
    }


@pytest.mark.parametrize(
    "frame",
    [
        {"call": "c", "streamId": "0", "payload": {"type": "teleport"}},
        {"call": "c", "streamId": "0", "payload": {"type": "input"}},
        {"call": "c", "streamId": "0", "payload": {"type": "input", "data": 5}},
        {"call": "c", "streamId": "0", "payload": {"type": "resize", "cols": "80", "rows": 24}},
        {"call": "c", "streamId": "0", "payload": {"type": "resize", "cols": 80.5, "rows": 24}},
        {"call": "c", "streamId": 0, "payload": {"type": "input", "data": "x"}},
        {"call": "c", "streamId": "0", "payload": '{"type": "input"}'},
        {"call": "c", "streamId": "0"},
        {"streamId": "0", "payload": {"type": "input", "data": "x"}},
    ],
)
def test_bad_request_frames_are_rejected(frame):
    with pytest.raises(ValidationError):
        ShellRequestEnvelope.model_validate(frame)


def test_non_json_frame_is_rejected():
    with pytest.raises(ValidationError):
        ShellRequestEnvelope.model_validate_json("ls -1\n")


def test_shell_call_name():
    assert shell_call_name("k8s") == "jobs.compute.k8s.shell.open"


@pytest.mark.parametrize(
    ("domain", "base"),
    [
        ("wss://k8s.provider.example:443", "wss://k8s.provider.example:443"),
        ("https://provider.example.com/", "wss://provider.example.com"),
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080"),
        ("HTTP://127.0.0.1:8080//", "ws://127.0.0.1:8080"),
        ("ws://127.0.0.1:9", "ws://127.0.0.1:9"),
        ("provider.example.com", "wss://provider.example.com"),
    ],
)
def test_provider_websocket_url(domain, base):
    url = provider_websocket_url(domain, "k8s", "1718a3f", "alice#1234")
    hint = base64.b64encode(b"alice#1234").decode()
    assert url == f"{base}/ucloud/k8s/websocket?session=1718a3f&usernameHint={hint}"


def test_username_hint_is_standard_base64_of_utf8():
    url = provider_websocket_url("https://p", "p", "s", "åsa>?")
    hint = url.split("usernameHint=", 1)[1]
    assert base64.b64decode(hint, validate=True).decode() == "åsa>?"
    assert hint == base64.b64encode("åsa>?".encode()).decode()
    assert "+" in hint or "/" in hint or "=" in hint  # std alphabet, not URL-encoded


def test_seed_flow_url(example):
    body = BulkResponse[OpenSessionWithProvider].model_validate(
        example("seed_interactive_session_response")
    )
    opened = body.responses[0]
    assert isinstance(opened.session, OpenSessionShell)
    url = provider_websocket_url(
        opened.provider_domain, opened.provider_id, opened.session.session_identifier, "user"
    )
    assert url == (
        "wss://provider.example.com/ucloud/example/websocket"
        "?session=a81ea644-58f5-44d9-8e94-89f81666c441&usernameHint=dXNlcg=="
    )
