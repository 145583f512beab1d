"""The environment of a job's processes and shells, for every backend: built from an allow-list.

A job runs user code, perhaps on other machines, so it never gets the server's environment as a
whole (which may hold ``JUPYTER_TOKEN``, cloud keys, or anything else of whoever started the
server). It gets:

* from the server's environment, only ``ALLOWED`` names and the ``LC_*`` locale variables;
* the names the product or the application asks to pass on (``pass_environment``) and the values
  they set (``environment``), in that order, the application last;
* the job's own ``UCLOUD_JOB_ID``, ``UCLOUD_RANK`` and ``UCLOUD_NODES`` (nothing else starting
  with ``UCLOUD_`` or ``JUPYTER_UCLOUD`` is ever passed on), and ``TERM`` for shells.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from ..config import ApplicationSpec, ProductSpec
from ..store import JobRecord

__all__ = ["ALLOWED", "job_environment", "tool_environment"]

ALLOWED = frozenset(
    ("HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR")
)
_RESERVED_PREFIXES = ("UCLOUD_", "JUPYTER_UCLOUD")


def _allowed(name: str, extra: Iterable[str]) -> bool:
    return name in ALLOWED or name.startswith("LC_") or name in extra


def tool_environment(
    extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of the commands a backend runs itself (``squeue``, ``scontrol``): the
    allow-listed part of ``base`` (default: the server's environment) and ``extra``."""
    source = os.environ if base is None else base
    env = {
        name: value
        for name, value in source.items()
        if _allowed(name, ()) and not name.startswith(_RESERVED_PREFIXES)
    }
    env.update(extra or {})
    env.setdefault("PATH", os.defpath)
    return env


def job_environment(
    job: JobRecord,
    rank: int | None,
    *,
    product: ProductSpec | None,
    application: ApplicationSpec | None,
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
    for_shell: bool = False,
) -> dict[str, str]:
    """The environment of ``rank`` of ``job`` (``rank=None``: a launcher that sets it itself,
    as the Slurm batch script does), from ``base`` (default: the server's environment);
    ``extra`` are the backend's own settings (e.g. ``SLURM_CONF``)."""
    source = os.environ if base is None else base
    specs = [spec for spec in (product, application) if spec is not None]
    passed = {name for spec in specs for name in spec.pass_environment}
    env = {
        name: value
        for name, value in source.items()
        if _allowed(name, passed) and not name.startswith(_RESERVED_PREFIXES)
    }
    for spec in specs:
        env.update(spec.environment)
    env.update(extra or {})
    for name in [n for n in env if n.startswith(_RESERVED_PREFIXES)]:
        del env[name]
    env.update(UCLOUD_JOB_ID=job.id, UCLOUD_NODES=str(job.replicas))
    if rank is not None:
        env["UCLOUD_RANK"] = str(rank)
    if for_shell:
        env["TERM"] = "xterm-256color"
    env.setdefault("PATH", os.defpath)
    return env
