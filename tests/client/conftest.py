"""Client tests run against the real embedded server (``local_server``) over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jupyter_ucloud import UCloud
from jupyter_ucloud.protocol import (
    JobSpecification,
    NameAndVersion,
    ProductReference,
    SimpleDuration,
)


def job_spec(
    server: Any,
    product: str = "compute-example",
    application: str = "terminal",
    replicas: int = 1,
    **extra: Any,
) -> JobSpecification:
    return JobSpecification(
        application=NameAndVersion(name=application, version="1"),
        product=ProductReference(id=product, category=product, provider=server.provider_id),
        replicas=replicas,
        time_allocation=SimpleDuration(hours=1),
        **extra,
    )


@pytest.fixture
def make_spec(local_server: Any) -> Callable[..., JobSpecification]:
    """``make_spec(product=..., application=..., replicas=..., **extra)`` for the shared server."""

    def make(**kwargs: Any) -> JobSpecification:
        return job_spec(local_server, **kwargs)

    return make


@pytest.fixture
def uc(local_server: Any) -> Iterator[UCloud]:
    client = UCloud(host=local_server.url, refresh_token=local_server.refresh_token, timeout=15)
    yield client
    client.close()


@pytest.fixture(scope="session")
def terminal_job(local_server: Any) -> Iterator[str]:
    """A RUNNING ``terminal`` job on ``compute-example``, shared by the client tests."""
    client = UCloud(host=local_server.url, refresh_token=local_server.refresh_token, timeout=15)
    job_id = client.jobs.create(job_spec(local_server, name="client tests"))
    client.job(job_id).wait_until("RUNNING", timeout=30, progress=False)
    yield job_id
    client.jobs.terminate(job_id)
    client.close()
