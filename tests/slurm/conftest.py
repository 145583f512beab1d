"""Fixtures of the Slurm tests: a reachable cluster (scripts/dev-slurm), and the embedded server
on its Slurm backend."""

from __future__ import annotations

import os
import subprocess

import pytest


def _cluster_problem() -> str | None:
    """Why the Slurm tests cannot run here, or ``None`` when a controller answers."""
    if not os.environ.get("SLURM_CONF"):
        return 'SLURM_CONF is not set (start a dev cluster: eval "$(scripts/dev-slurm start)")'
    try:
        out = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"scontrol ping failed: {err}"
    if out.returncode != 0 or " is UP" not in out.stdout:
        return f"slurmctld is not reachable: {(out.stdout + out.stderr).strip()}"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> dict[str, str]:
    """The environment of a reachable Slurm cluster; skips the test when there is none."""
    problem = _cluster_problem()
    if problem:
        pytest.skip(problem)
    return {"SLURM_CONF": os.environ["SLURM_CONF"]}
