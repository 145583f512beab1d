"""A Slurm allocation for the `srun` baseline, on the cluster SLURM_CONF points at."""

from __future__ import annotations

import os
import shutil
import subprocess
import time


def slurm_unavailable() -> str | None:
    """Why the Slurm paths cannot run, or None."""
    if not os.environ.get("SLURM_CONF"):
        return 'SLURM_CONF not set (eval "$(scripts/dev-slurm start)")'
    if shutil.which("srun") is None or shutil.which("sbatch") is None:
        return "srun/sbatch not installed"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"slurmctld not reachable: {(ping.stdout + ping.stderr).strip()[:200]}"
    return None


def submit_sleeper(timeout: float = 60.0) -> str:
    """`sbatch` a job that sleeps, and wait until it runs; returns its Slurm job id."""
    out = subprocess.run(
        ["sbatch", "--parsable", "-N1", "-J", "terminal-bench", "-o", "/dev/null",
         "--wrap", "exec sleep 7200"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    job = out.strip().split(";")[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
        if state == "RUNNING":
            return job
        time.sleep(0.2)
    cancel(job)
    raise TimeoutError(f"Slurm job {job} not running after {timeout:.0f} s")


def cancel(job: str) -> None:
    subprocess.run(["scancel", job], capture_output=True, timeout=30, check=False)
