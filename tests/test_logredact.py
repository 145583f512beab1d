"""What ``jupyter_ucloud.logredact`` takes out of log records, and that it reaches every logger
and handler of a process, also ones made after it was installed."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from jupyter_ucloud.logredact import MARKER, redact, redact_record

R = MARKER


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "400 GET /ucloud/local/websocket?session=ab12&usernameHint=%ff (127.0.0.1): x",
            f"400 GET /ucloud/local/websocket?session={R}&usernameHint=%ff (127.0.0.1): x",
        ),
        ("/x?token=abc def", f"/x?token={R} def"),
        ("uri='/x?access_token=abc', v", f"uri='/x?access_token={R}', v"),
        ('"/x?refresh_token=abc"', f'"/x?refresh_token={R}"'),
        ("?a=1&SESSION=AB&Token=c", f"?a=1&SESSION={R}&Token={R}"),
        ("next=%2Fx%3Fsession%3Dabc%26y%3D1", f"next=%2Fx%3Fsession%3D{R}%26y%3D1"),
        ("RefreshTokenAuth(token='abc')", f"RefreshTokenAuth(token='{R}')"),
        (
            '{"sessionIdentifier": "abc", "bearer":"t"}',
            f'{{"sessionIdentifier": "{R}", "bearer":"{R}"}}',
        ),
        (
            "{'refresh_token': 'abc', 'api_token': ''}",
            f"{{'refresh_token': '{R}', 'api_token': ''}}",
        ),
        ("Authorization: Bearer eyJ.a-b_c", f"Authorization: Bearer {R}"),
        # names that only contain or start like one, and empty values, are left alone
        ("sessions=2 session_id=3 nosession=4 tokens=5 token_type=bearer", None),
        ("session= x, token=&y=1", None),
        ("nothing to see", None),
    ],
)
def test_redact(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is None else expected)


def test_record_message_traceback_and_stack() -> None:
    try:
        raise ValueError("cannot open ws://h/ucloud/local/websocket?session=s3cr3t")
    except ValueError:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "failed %s (%d)",
            ("?token=t0k3n&a=1", 5),
            sys.exc_info(),
            sinfo="Stack (most recent call last):\n  url ?session=s3cr3t",
        )
    redact_record(record)
    text = logging.Formatter().format(record)
    assert "s3cr3t" not in text
    assert "t0k3n" not in text
    assert f"failed ?token={R}&a=1 (5)" in text
    assert f"ValueError: cannot open ws://h/ucloud/local/websocket?session={R}" in text
    assert "Stack (most recent call last)" in text


SCRIPT = textwrap.dedent(
    """
    import io, logging, sys
    from jupyter_ucloud import logredact

    logredact.install(keep_from=["banner/app.py"])
    logredact.install()  # again: no second wrapper
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # made after install
    for name in ("tornado.general", "made.later", ""):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
        logger.warning("%d GET /p?session=%s (ip)", 400, "s3cr3t")
    try:
        raise RuntimeError("?access_token=s3cr3t")
    except RuntimeError:
        later = logging.getLogger("made.later")
        later.exception("Uncaught exception for %r", "uri='/?token=s3cr3t'")
    banner = logging.getLogger("made.later").makeRecord(
        "made.later", logging.INFO, "/x/banner/app.py", 1, "open /?token=shown", (), None
    )
    handler.handle(banner)
    print(stream.getvalue())
    print(logredact.installed(), logging.getLogRecordFactory().__name__)
    """
)


def test_installed_in_a_process() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    out = result.stdout
    assert "s3cr3t" not in out + result.stderr
    assert out.count(f"400 GET /p?session={R} (ip)") == 3
    assert f"Uncaught exception for \"uri='/?token={R}'\"" in out
    assert f"RuntimeError: ?access_token={R}" in out
    assert "open /?token=shown" in out  # a source kept as it is
    assert out.strip().endswith("True redacting_factory")
