"""What the server asks a supervisor to run (the spec file) and what the supervisor records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RankSpec", "SupervisorSpec"]

#: Default bound of each rank's captured stdout and stderr (each).
DEFAULT_LOG_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True)
class RankSpec:
    argv: list[str]
    cwd: str
    env: dict[str, str]


@dataclass(frozen=True)
class SupervisorSpec:
    """Written by the server as ``supervisor-spec.json`` (0600) before it starts the supervisor."""

    job_id: str
    ranks: list[RankSpec]
    #: The login shell a ``shell`` request starts (in the rank's folder, with its environment).
    shell: list[str]
    #: Time allocation in ms from the moment the ranks started (``None``: no limit).
    allocation_ms: int | None
    #: Seconds between SIGTERM and SIGKILL when the job is terminated or expires.
    grace: float
    umask: int
    log_limit: int = DEFAULT_LOG_LIMIT
    #: Added to the supervisor's nice value for every rank and shell it starts.
    nice: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "ranks": [{"argv": r.argv, "cwd": r.cwd, "env": r.env} for r in self.ranks],
            "shell": self.shell,
            "allocationMs": self.allocation_ms,
            "grace": self.grace,
            "umask": self.umask,
            "logLimit": self.log_limit,
            "nice": self.nice,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SupervisorSpec:
        """``ValueError``/``KeyError``/``TypeError`` if ``data`` is not a spec."""
        ranks = [
            RankSpec(
                argv=[str(a) for a in r["argv"]],
                cwd=str(r["cwd"]),
                env={str(k): str(v) for k, v in r["env"].items()},
            )
            for r in data["ranks"]
        ]
        if not ranks or any(not r.argv for r in ranks):
            raise ValueError("a spec needs at least one rank with a command")
        allocation = data.get("allocationMs")
        return cls(
            job_id=str(data["jobId"]),
            ranks=ranks,
            shell=[str(a) for a in data["shell"]],
            allocation_ms=int(allocation) if allocation is not None else None,
            grace=float(data.get("grace", 3.0)),
            umask=int(data.get("umask", 0o022)),
            log_limit=int(data.get("logLimit", DEFAULT_LOG_LIMIT)),
            nice=int(data.get("nice", 0)),
        )


def rank_log_paths(job_dir: Path, rank: int) -> tuple[Path, Path]:
    """Where rank ``rank``'s stdout and stderr are captured."""
    return job_dir / f"rank-{rank}.out", job_dir / f"rank-{rank}.err"
