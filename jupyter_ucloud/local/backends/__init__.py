"""Backends that run the embedded server's jobs, chosen by name: ``process`` or ``slurm``."""

from __future__ import annotations

from pathlib import Path

from ..config import LocalConfig
from .base import Backend, BackendError, JobUpdateSink

__all__ = ["BACKENDS", "Backend", "BackendError", "JobUpdateSink", "create_backend"]

BACKENDS = ("process", "slurm")


def create_backend(
    name: str, config: LocalConfig, sink: JobUpdateSink, data_dir: Path, *, job_umask: int = 0o022
) -> Backend:
    """``name`` -> a backend instance; the Slurm backend is imported only when chosen.
    ``job_umask`` is the umask of the jobs' processes (process backend)."""
    if name == "process":
        from .process import ProcessBackend

        return ProcessBackend(config, sink, data_dir, umask=job_umask)
    if name == "slurm":
        from .slurm import SlurmBackend

        return SlurmBackend(config, sink, data_dir)
    raise ValueError(f"unknown backend {name!r} (choose one of {', '.join(BACKENDS)})")
