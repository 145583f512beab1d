"""The hand-written hot paths of the provider shell protocol give what the models give."""

from __future__ import annotations

import json

import pytest

from jupyter_ucloud.client.shell_protocol import Acked, Output, ProviderShellCodec, Ready
from jupyter_ucloud.local.shell_acks import ack_frame
from jupyter_ucloud.local.shell_socket import _data_frame, _frame, _plain_input
from jupyter_ucloud.protocol import (
    ShellAck,
    ShellData,
    ShellInput,
    ShellRequestEnvelope,
    ShellResponseEnvelope,
)


@pytest.mark.parametrize("text", ["", "a", "ls -l\r", "æøå ✓ \U0001f600", '"\\\x00\x1b[31m'])
def test_data_and_ack_frames_match_the_models(text: str) -> None:
    assert _data_frame(text, "3") == _frame(ShellData(data=text), "3").encode()
    assert ack_frame("17") == _frame(ShellAck(), "17").encode()
    ShellResponseEnvelope.model_validate(json.loads(_data_frame(text, "3")))


@pytest.mark.parametrize("project", [None, "p1"])
def test_input_frames_match_the_model(project: str | None) -> None:
    codec = ProviderShellCodec("local", "secret", project=project)
    codec.opening_frames(80, 24)
    assert codec.next_stream == 1
    frame = json.loads(codec.input_frame("x\x03æ"))
    envelope = ShellRequestEnvelope.model_validate(frame)
    assert isinstance(envelope.payload, ShellInput)
    assert frame == envelope.to_wire()
    assert (frame["streamId"], envelope.payload.data, envelope.project) == ("1", "x\x03æ", project)
    assert codec.next_stream == 2


def test_decode_fast_path_and_model_path_agree() -> None:
    codec = ProviderShellCodec("local", "s")
    message = {"type": "message", "streamId": "0"}
    cases = [
        ({**message, "payload": {"type": "data", "data": "hi"}}, [Output("hi")]),
        ({**message, "payload": {"type": "initialize"}}, [Ready()]),
        ({**message, "payload": {"type": "ack"}, "streamId": "12"}, [Acked(12)]),
        ({**message, "payload": {"type": "ack"}, "streamId": "x"}, []),
        ({**message, "payload": {"type": "ack"}, "streamId": "١٢"}, []),  # not ASCII digits
        ({**message, "payload": {"type": "ack"}, "streamId": "9" * 40}, []),
        # Unusual shapes go through the model, which accepts extra fields and a status:
        ({**message, "payload": {"type": "data", "data": "x", "more": 1}}, [Output("x")]),
        ({**message, "payload": {"type": "ack"}, "status": 200, "streamId": "4"}, [Acked(4)]),
        ({**message, "payload": {"type": "data", "data": 5}}, []),
        ({**message, "payload": {"type": "data"}}, []),
        ({**message, "payload": {"type": "nope"}}, []),
        ({**message, "payload": "data"}, []),
        ({"type": "other", "payload": {"type": "data", "data": "x"}, "streamId": "0"}, []),
    ]
    for frame, events in cases:
        assert codec.events(json.dumps(frame)) == events, frame
        assert codec.decode(json.dumps(frame)) == [e for e in events if not isinstance(e, Acked)]
    for junk in ("", "[]", "null", "nope", b"\xff"):
        assert codec.events(junk) == []


def test_plain_input_takes_only_the_usual_shape() -> None:
    usual = {"call": "c", "streamId": "5", "payload": {"type": "input", "data": "ls\r"}}
    assert _plain_input(usual) == ("ls\r", "5")
    assert _plain_input({**usual, "project": "p"}) == ("ls\r", "5")
    assert _plain_input({**usual, "project": None}) == ("ls\r", "5")
    for unusual in (
        {**usual, "project": 5},
        {**usual, "bearer": "token"},
        {**usual, "streamId": 5},
        {**usual, "call": None},
        {"streamId": "5", "payload": usual["payload"]},
        {**usual, "payload": {"type": "input", "data": 3}},
        {**usual, "payload": {"type": "input", "data": "x", "extra": 1}},
        {**usual, "payload": {"type": "resize", "cols": 1, "rows": 1}},
    ):
        assert _plain_input(unusual) is None, unusual
