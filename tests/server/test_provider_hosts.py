"""The extension connects only to provider hosts it has reason to trust (DESIGN "Trust")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_ucloud.server.upstream import host_allowed
from tests.conftest import LocalServerProcess

FOREIGN = "provider.elsewhere.example"


@pytest.mark.parametrize(
    ("host", "ucloud", "allowed", "expected"),
    [
        ("cloud.sdu.dk", "cloud.sdu.dk", [], True),  # the UCloud host itself
        ("k8s.cloud.sdu.dk", "cloud.sdu.dk", [], True),  # a subdomain of its domain
        ("k8s.sdu.dk", "cloud.sdu.dk", [], True),
        ("sdu.dk.evil.example", "cloud.sdu.dk", [], False),  # suffix tricks
        ("evilsdu.dk", "cloud.sdu.dk", [], False),
        ("provider.example.org", "cloud.sdu.dk", [], False),
        ("provider.example.org", "cloud.sdu.dk", ["provider.example.org"], True),
        ("a.hpc.example.org", "cloud.sdu.dk", ["*.hpc.example.org"], True),
        ("hpc.example.org.evil", "cloud.sdu.dk", ["*.hpc.example.org"], False),
        ("127.0.0.1", "127.0.0.1", [], True),
        ("127.0.0.2", "127.0.0.1", [], False),  # an IP host allows only itself
        ("CLOUD.SDU.DK.", "cloud.sdu.dk", [], True),  # case and a trailing dot do not matter
        ("api.example.com", "example.com", [], True),  # a two-label host: its own subdomains
        ("x.co.uk", "x.co.uk", [], True),
        ("provider.x.co.uk", "x.co.uk", [], True),
        ("other.co.uk", "x.co.uk", [], False),  # the parent is a public suffix: not opened up
        ("co.uk", "x.co.uk", [], False),
        ("someone.github.io", "me.github.io", [], False),  # private suffixes count as well
        ("provider.me.github.io", "me.github.io", [], True),
        ("x.localhost", "localhost", [], False),
    ],
)
def test_host_allowed(host: str, ucloud: str, allowed: list[str], expected: bool) -> None:
    assert host_allowed(host, ucloud, allowed) is expected


@pytest.fixture
def foreign_provider(tmp_path: Path) -> Iterator[LocalServerProcess]:
    """An embedded server whose interactive sessions name a provider on another host."""
    server = LocalServerProcess(
        tmp_path / "ucloud-foreign", extra_args=["--public-url", f"http://{FOREIGN}:1"]
    ).start()
    yield server
    server.stop()


@pytest.fixture
def ucloud_config(foreign_provider: LocalServerProcess) -> dict[str, Any]:
    return {
        "host": foreign_provider.url,
        "credentials_file": str(foreign_provider.data_dir / "refresh_token"),
        "request_timeout": 10.0,
    }


async def test_a_session_on_another_host_is_refused(api: Any, foreign_provider) -> None:
    job_id = await api.start_job()
    status, error = await api.error("POST", "shells", body={"jobId": job_id, "rank": 0})
    assert status == 502
    message = error["message"]
    assert FOREIGN in message
    assert "allowed_provider_hosts" in message
    # Nothing was opened, and the refusal carries no credential.
    assert await api.call("GET", "shells") == []
    assert foreign_provider.refresh_token not in message
    await api.terminate(job_id)
