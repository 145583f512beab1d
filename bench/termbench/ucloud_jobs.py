"""Starting a job with a terminal on a UCloud(-compatible) server, through the project's client."""

from __future__ import annotations

import time
from typing import Any

APPLICATION = {"name": "terminal", "version": "1"}


def client(url: str, refresh_token: str) -> Any:
    from jupyter_ucloud import UCloud

    return UCloud(host=url, refresh_token=refresh_token)


def start_terminal_job(uc: Any, timeout: float = 120.0) -> str:
    """Create a one-node job of the `terminal` application and wait until it runs."""
    support = uc.jobs.retrieve_products()
    product = next((s for s in support.all() if s.supports_terminal), None)
    if product is None:
        raise RuntimeError("the server offers no product with terminal support")
    ref = product.product.reference
    spec = {
        "application": APPLICATION,
        "product": {"id": ref.id, "category": ref.category, "provider": ref.provider},
        "name": "terminal benchmark",
        "replicas": 1,
        "parameters": {},
        "resources": [],
        "timeAllocation": {"hours": 2, "minutes": 0, "seconds": 0},
    }
    job_id = uc.jobs.create(spec)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = uc.jobs.retrieve(job_id).status.state
        if state.value == "RUNNING":
            return str(job_id)
        if state.is_final:
            raise RuntimeError(f"benchmark job {job_id} ended as {state.value}")
        time.sleep(0.2)
    raise TimeoutError(f"benchmark job {job_id} not running after {timeout:.0f} s")


def stop_job(uc: Any, job_id: str) -> None:
    uc.jobs.terminate(job_id)
