"""Errors, token refresh and credential hygiene, against real servers and sockets."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import socket
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_ucloud import AsyncUCloud, UCloud, UCloudError
from jupyter_ucloud.client import UCloudConnectionError, UCloudTimeoutError
from jupyter_ucloud.client.transport import RefreshTokenAuth, token_expiry


def test_ucloud_error_fields_for_unknown_job_and_unsupported_terminal(
    uc: UCloud, make_spec: Any
) -> None:
    with pytest.raises(UCloudError) as caught:
        uc.jobs.terminate("987654321")
    error = caught.value
    assert (error.status, error.call) == (404, "jobs.terminate")
    assert error.why == "Permission denied or job not found (987654321)"
    assert str(error) == "jobs.terminate: 404 Permission denied or job not found (987654321)"

    job_id = uc.jobs.create(make_spec(product="batch-small", application="terminal"))
    try:
        with pytest.raises(UCloudError) as caught:
            uc.jobs.open_interactive_session(job_id, 0, "SHELL")
        assert caught.value.status == 400
        assert "Terminal access is not supported" in caught.value.why
        assert caught.value.call == "jobs.openInteractiveSession"
    finally:
        uc.jobs.terminate(job_id)

    with pytest.raises(UCloudError) as caught:
        uc.jobs.create(make_spec(product="no-such-product"))
    assert (caught.value.status, caught.value.why) == (400, "Bad machine type requested")


def test_a_bad_refresh_token_is_a_401_that_says_what_to_do(local_server: Any) -> None:
    uc = UCloud(host=local_server.url, refresh_token="00" * 32)
    with pytest.raises(UCloudError) as caught:
        uc.jobs.retrieve_products()
    assert caught.value.status == 401
    assert caught.value.call == "auth.refresh"
    assert "refresh token was refused" in str(caught.value)


def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    uc = UCloud(host=f"http://127.0.0.1:{port}", refresh_token="r" * 64, timeout=5)
    with pytest.raises(UCloudConnectionError) as caught:
        uc.jobs.browse()
    assert str(caught.value) == (
        f"auth.refresh: cannot reach UCloud at http://127.0.0.1:{port}: Connection refused"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_silent_server_is_a_timeout() -> None:
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        uc = UCloud(host=f"http://127.0.0.1:{port}", api_token="uc1-secretsecret", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(UCloudTimeoutError) as caught:
            uc.jobs.retrieve_products()
        assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"jobs.retrieveProducts: UCloud at http://127.0.0.1:{port} did not answer within 0.5 s"
    )


@pytest.fixture
def short_token_server(local_server: Any, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """An embedded server with 2 s access tokens and a configured API token."""
    api_token = f"uc2a-{secrets.token_hex(16)}"
    hashlib.sha256(api_token.encode()).hexdigest()
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "access_token_lifetime": 2,
                "api_tokens": [
                    {"id": 0x2A, "sha256": hashlib.sha256(api_token.encode()).hexdigest()}
                ],
            }
        )
    )
    # The shared fixture's class (tests/conftest.py), with a config file of our own.
    server = type(local_server)(tmp_path / "data", config_file=config).start()
    yield server, api_token
    server.stop()


def test_tokens_refresh_before_expiry_and_after_a_403(
    short_token_server: tuple[Any, str],
) -> None:
    server, api_token = short_token_server
    uc = UCloud(host=server.url, refresh_token=server.refresh_token)
    auth = uc._target.auth
    assert isinstance(auth, RefreshTokenAuth)
    uc.jobs.retrieve_products()
    assert auth.refresh_count == 1
    first_expiry = auth.expires_at
    assert first_expiry is not None
    assert first_expiry - time.time() <= 3
    uc.jobs.browse()  # under 3 minutes left: refreshed before the call
    assert auth.refresh_count == 2

    # A client whose clock lags believes its token is fresh; the server says 403; one refresh
    # and one retry make the call succeed.
    lagging = RefreshTokenAuth(server.refresh_token, clock=lambda: time.time() - 3600)
    uc._target.auth.__dict__.update(lagging.__dict__)
    uc.jobs.retrieve_products()
    assert auth.refresh_count == 1
    time.sleep(2.5)
    expiry = token_expiry(auth._access_token or "")
    assert expiry is not None
    assert expiry < time.time()
    uc.jobs.retrieve_products()
    assert auth.refresh_count == 2

    # API tokens are used as they are, with no refresh.
    with_api = UCloud(host=server.url, api_token=api_token)
    assert with_api.jobs.retrieve_products().all()
    with pytest.raises(UCloudError) as caught:
        UCloud(host=server.url, api_token=api_token + "0").jobs.browse()
    assert caught.value.status == 403


def test_no_credential_in_repr_messages_logs_or_tracebacks(
    local_server: Any, terminal_job: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    refresh_token = local_server.refresh_token
    uc = UCloud(host=local_server.url, refresh_token=refresh_token)
    texts = [repr(uc), str(uc)]
    uc.jobs.retrieve_products()
    texts += [repr(uc), repr(uc._target.auth.__class__)]
    assert repr(uc) == f"UCloud(host={local_server.url!r}, user='user')"
    session = uc.jobs.open_interactive_session(terminal_job, 0, "SHELL")
    identifier = session.session.session_identifier  # type: ignore[union-attr]
    texts += [repr(session), str(session)]
    with uc.shells.open(session) as shell:
        texts.append(repr(shell))
        texts.append(shell.run("echo ok").output)
    access = uc._target.auth._access_token  # type: ignore[attr-defined]
    secrets_ = [refresh_token, access, identifier]
    errors: list[BaseException] = []
    for failing in (
        lambda: uc.jobs.retrieve("424242424"),
        lambda: uc.shells.open(session),  # a used session identifier
        lambda: UCloud(host=local_server.url, refresh_token=refresh_token[::-1]).jobs.browse(),
        lambda: UCloud(host="http://127.0.0.1:9", refresh_token=refresh_token).jobs.browse(),
    ):
        with pytest.raises(UCloudError) as caught:
            failing()
        errors.append(caught.value)
    for error in errors:
        texts.append("".join(traceback.format_exception(error)))
    texts += [record.getMessage() for record in caplog.records]
    texts.append(caplog.text)
    assert any("jobs.retrieveProducts" in record.getMessage() for record in caplog.records)
    for text in texts:
        for secret in secrets_:
            assert secret
            assert secret not in text


def test_async_client_silent_server_and_refused_connection() -> None:
    """``AsyncUCloud`` (its own HTTP/1.1 pool) reports the same errors as ``UCloud``."""
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        uc = AsyncUCloud(host=f"http://127.0.0.1:{port}", api_token="uc1-secretsecret", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(UCloudTimeoutError) as caught:
            asyncio.run(uc.jobs.retrieve_products())
        assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"jobs.retrieveProducts: UCloud at http://127.0.0.1:{port} did not answer within 0.5 s"
    )
    uc = AsyncUCloud(host=f"http://127.0.0.1:{port}", api_token="uc1-secretsecret", timeout=5)
    with pytest.raises(UCloudConnectionError) as refused:
        asyncio.run(uc.jobs.retrieve_products())
    assert str(refused.value) == (
        f"jobs.retrieveProducts: cannot reach UCloud at http://127.0.0.1:{port}: Connection refused"
    )
