"""What a UCloud job becomes in Slurm: sbatch options, the batch script, the shell command.

A job is one allocation of ``replicas`` nodes (one task per node, the product's CPUs per task).
The batch script runs the application's command once on every node with ``srun``: rank ``r`` is
the ``r``-th node (``SLURM_NODEID``) and runs in ``<work_dir>/rank-<r>``. The script ends with
srun's exit code (the highest of the ranks'), so a batch job is COMPLETED when every rank exits 0
and FAILED otherwise; an interactive application (``terminal``: ``sleep infinity``) holds the
allocation until it is cancelled or runs out of time.

Each rank's stdout and stderr go to ``<work_dir>/rank-<r>.out`` and ``rank-<r>.err`` (0600), as
the process backend's supervisor writes them, for ``jobs.follow``: the rank launcher runs the
command with both on pipes, each copied by ``head -c <limit>`` (coreutils only: compute nodes need
nothing of ours); past the limit the copy appends ``[jupyter-ucloud: rank r's stdout passed the
limit of N bytes; the rest was not kept]`` and reads the rest away, so the program never blocks
on a full pipe. The launcher waits for both copies and exits with the command's status.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..config import ProductSpec
from ..store import JobRecord
from .slurm_cli import minutes_for
from .slurm_config import SlurmSettings

__all__ = [
    "RANK_LAUNCHER",
    "batch_script",
    "job_name",
    "sbatch_options",
    "shell_argv",
]


def job_name(job_id: str) -> str:
    """The Slurm job name of a UCloud job (how its jobs are recognised in ``squeue``)."""
    return f"ucloud-{job_id}"


def sbatch_options(job: JobRecord, product: ProductSpec, settings: SlurmSettings) -> list[str]:
    options = [
        f"--job-name={job_name(job.id)}",
        f"--nodes={job.replicas}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={max(1, product.cpu)}",
        f"--chdir={job.work_dir}",
        f"--output={job.work_dir / 'slurm-%j.out'}",
        "--export=ALL",
    ]
    if settings.request_memory and product.memory_in_gigs > 0:
        options.append(f"--mem={product.memory_in_gigs}G")
    if job.time_allocation_ms is not None and job.time_allocation_ms > 0:
        options.append(f"--time={minutes_for(job.time_allocation_ms)}")
    partition = settings.partition_for(product.name, product.category)
    if partition:
        options.append(f"--partition={partition}")
    if settings.account:
        options.append(f"--account={settings.account}")
    return [*options, *settings.sbatch_args]


#: What ``srun`` runs on each node: ``bash -c RANK_LAUNCHER ucloud-rank <work_dir> <limit>
#: <argv...>`` (see the module docstring).
RANK_LAUNCHER = """\
export UCLOUD_RANK="$SLURM_NODEID"
base="$1/rank-$SLURM_NODEID"; limit="$2"; shift 2
capture() {
  head -c "$limit" >> "$1"
  if [ "$(head -c 1 | wc -c)" -gt 0 ]; then
    note="[jupyter-ucloud: rank %s's %s passed the limit of %s bytes; the rest was not kept]"
    printf "\\n$note\\n" "$SLURM_NODEID" "$2" "$limit" >> "$1"
    cat > /dev/null
  fi
}
mkdir -p "$base" || exit 1
(umask 077 && : >> "$base.out" && : >> "$base.err") || exit 1
cd "$base" || exit 1
{ { "$@" 2>&3 3>&- | capture "$base.out" stdout 3>&-; exit "${PIPESTATUS[0]}"; } 3>&1 \\
  | capture "$base.err" stderr; exit "${PIPESTATUS[0]}"; }
"""


def batch_script(job: JobRecord, argv: Sequence[str], log_limit: int = 256 * 1024 * 1024) -> str:
    """The batch script: ``argv`` once per node, in the rank's directory, with its rank set and
    its output captured (at most ``log_limit`` bytes of each of stdout and stderr)."""
    srun = [
        "srun",
        "--nodes=$SLURM_JOB_NUM_NODES",  # expanded by bash below (not quoted)
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=0",
        "bash",
        "-c",
        RANK_LAUNCHER,
        "ucloud-rank",
        str(job.work_dir),
        str(max(1, log_limit)),
        *argv,
    ]
    quoted = " ".join(a if a.startswith("--nodes=$") else shlex.quote(a) for a in srun)
    return "\n".join(
        [
            "#!/bin/bash",
            f"# UCloud job {job.id} ({job.application.name} {job.application.version}),"
            f" submitted by the embedded jupyter-ucloud server",
            f"export UCLOUD_JOB_ID={shlex.quote(job.id)}",
            f"export UCLOUD_NODES={job.replicas}",
            f"exec {quoted}",
            "",
        ]
    )


def shell_argv(slurm_job_id: str, node: str, work_dir: str, shell: Sequence[str]) -> list[str]:
    """UCloud's Slurm shell: ``srun --overlap --pty --jobid <id> -w <node>`` (one task)."""
    return [
        "srun",
        "--overlap",
        "--pty",
        f"--jobid={slurm_job_id}",
        f"--nodelist={node}",
        "--nodes=1",
        "--ntasks=1",
        f"--chdir={work_dir}",
        *shell,
    ]
