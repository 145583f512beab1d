"""The shell protocols and run()'s marker parsing, on the exact bytes a terminal produces."""

from __future__ import annotations

import json

import pytest

from jupyter_ucloud.client.shell_protocol import (
    CommandRun,
    Ended,
    Output,
    ProviderShellCodec,
    Ready,
    TerminadoShellCodec,
    strip_ansi,
)
from jupyter_ucloud.protocol import ShellRequestEnvelope

TOKEN = "0123456789abcdef"


def terminal_output(command: str, output: str, status: int, run: CommandRun) -> str:
    """What bash on a PTY prints for ``run.input``: bracketed paste on, a coloured prompt, the
    echoed line (wrapped by readline), the markers, then the next prompt."""
    prompt = "\x1b[?2004h\x1b[01;32muser@host\x1b[00m:\x1b[01;34m~\x1b[00m$ "
    echo = run.input.replace("\n", "\r\n")
    echo = echo[:70] + "\r\x1b[K" + echo[70:]  # readline redraw noise in the middle
    body = output.replace("\n", "\r\n")
    return (
        prompt
        + echo
        + "\x1b[?2004l\r"
        + f"\r\n__UC_{TOKEN}_B__\r\n"
        + body
        + f"\r\n__UC_{TOKEN}_E_{status}__\r\n"
        + prompt
    )


@pytest.mark.parametrize(
    ("output", "status"),
    [
        ("hello_world.txt\n", 0),
        ("", 0),
        ("no newline at end", 3),
        ("\x1b[31mred\x1b[0m and \x1b]0;title\x07plain\n", 0),
        ("two\nlines\n", 127),
    ],
)
def test_run_parses_output_and_status_from_noisy_terminal(output: str, status: int) -> None:
    run = CommandRun("ls -1", token=TOKEN)
    text = terminal_output("ls -1", output, status, run)
    result = run.feed(text)
    assert result is not None
    assert result.exit_status == status
    assert result.output == strip_ansi(output)
    assert "__UC_" not in result.output
    assert "$ " not in result.output


def test_run_handles_every_chunk_boundary() -> None:
    run_template = CommandRun("echo hi", token=TOKEN)
    text = terminal_output("echo hi", "hi\n", 0, run_template)
    for cut in range(len(text)):
        run = CommandRun("echo hi", token=TOKEN)
        first = run.feed(text[:cut])
        second = run.feed(text[cut:])
        result = first or second
        assert result is not None, cut
        assert (result.output, result.exit_status) == ("hi\n", 0)


def test_echoed_command_line_cannot_complete_the_run() -> None:
    run = CommandRun("false", token=TOKEN)
    # Only the echo of the typed line, with no command output yet.
    assert run.feed("$ " + run.input.replace("\n", "\r\n")) is None
    assert run.result is None


def test_markers_are_random_per_run() -> None:
    assert CommandRun("x").input != CommandRun("x").input


def test_command_is_quoted_for_eval() -> None:
    run = CommandRun("echo 'it''s' \"$HOME\"; exit 3", token=TOKEN)
    assert "eval 'echo '\"'\"'it'\"'\"''\"'\"'s'\"'\"' \"$HOME\"; exit 3'" in run.input
    assert run.input.endswith('"$?"\n')


def test_strip_ansi_removes_escapes_and_crlf() -> None:
    text = "\x1b[?2004h\x1b[1;31mA\x1b[0m\r\n\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1b(B\x1b=B"
    assert strip_ansi(text) == "A\nlinkB"


def test_provider_codec_frames() -> None:
    codec = ProviderShellCodec("local", "secret-session", project="p1")
    first = json.loads(codec.opening_frames(80, 24)[0])
    assert first == {
        "call": "jobs.compute.local.shell.open",
        "streamId": "0",
        "payload": {
            "type": "initialize",
            "sessionIdentifier": "secret-session",
            "cols": 80,
            "rows": 24,
        },
        "project": "p1",
    }
    ShellRequestEnvelope.model_validate(first)
    assert codec.ready_frames(80, 24) == []
    second = json.loads(codec.input_frame("ls -1\n"))
    assert second["streamId"] == "1"
    assert second["payload"] == {"type": "input", "data": "ls -1\n"}
    third = json.loads(codec.resize_frame(100, 30))
    assert (third["streamId"], third["payload"]) == (
        "2",
        {"type": "resize", "cols": 100, "rows": 30},
    )


def test_provider_codec_decodes_answers_and_skips_the_rest() -> None:
    codec = ProviderShellCodec("local", "s")
    frame = {"type": "message", "payload": {"type": "initialize"}, "streamId": "0"}
    assert codec.decode(json.dumps(frame)) == [Ready()]
    data = {
        "type": "message",
        "payload": {"type": "data", "data": "user@machine:~$ "},
        "streamId": "0",
    }
    assert codec.decode(json.dumps(data)) == [Output("user@machine:~$ ")]
    ack = {"type": "message", "payload": {"type": "ack"}, "streamId": "7"}
    assert codec.decode(json.dumps(ack)) == []
    for junk in (
        "not json",
        b"\xff\xfe",
        "[1,2]",
        '{"ping":"pong"}',
        '{"type":"message"}',
        '{"type":"message","payload":{"type":"data"},"streamId":"0"}',
        "[" * 5000 + "]" * 5000,  # nested past any parser's limit
    ):
        assert codec.decode(junk) == []
    # Valid JSON that the fast parser refuses (an escaped lone surrogate) still decodes.
    odd = '{"type":"message","payload":{"type":"data","data":"a\\ud800b"},"streamId":"0"}'
    assert codec.decode(odd) == [Output("a\ud800b")]
    assert codec.decode(odd.encode()) == [Output("a\ud800b")]


def test_terminado_codec() -> None:
    codec = TerminadoShellCodec()
    assert codec.opening_frames(80, 24) == []
    assert json.loads(codec.ready_frames(80, 24)[0]) == ["set_size", 24, 80, 0, 0]
    assert json.loads(codec.input_frame("ls\r")) == ["stdin", "ls\r"]
    assert json.loads(codec.resize_frame(120, 40)) == ["set_size", 40, 120, 0, 0]
    setup = ["setup", {"name": "ucloud-1-0-abcd1234", "jobId": "1", "rank": 0, "offset": 0}]
    assert codec.decode(json.dumps(setup)) == [Ready()]
    assert codec.decode(json.dumps(["stdout", "hi", 2])) == [Output("hi")]
    assert codec.decode(json.dumps(["stdout", "hi"])) == [Output("hi")]  # stock terminado
    gone = ["disconnect", "job-ended", "The job has completed."]
    assert codec.decode(json.dumps(gone)) == [Ended("job-ended", "The job has completed.")]
    assert codec.decode(json.dumps(["disconnect", 1])) == [Ended("1", "")]
    for junk in ("{}", "[]", "[3]", '["stdout", 5]', "nope", '["unknown", 1]'):
        assert codec.decode(junk) == []
