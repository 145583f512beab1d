"""Settings of the Slurm backend: the ``[slurm]`` table of the embedded server's config file.

Example (TOML)::

    backend = "slurm"

    [slurm]
    partition = "batch"                 # default partition (omit: the cluster's default)
    # product name (or else product category) -> partition
    partitions = { big = "fat", "compute-multi" = "short" }
    account = "my-project"              # --account, when the cluster needs one
    poll_interval = 2.0                 # seconds between squeue polls
    slurm_conf = "/etc/slurm/slurm.conf"   # SLURM_CONF for every Slurm command (omit: inherited)
    sbatch_args = ["--qos=normal"]      # appended to every sbatch
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .base import BackendError

__all__ = ["SlurmSettings"]


class SlurmSettings(BaseModel):
    """How jobs of the embedded server are submitted to Slurm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Partition for products without an entry in ``partitions`` (``None``: cluster default).
    partition: str | None = None
    #: Product name, or else product category, -> partition.
    partitions: dict[str, str] = Field(default_factory=dict)
    account: str | None = None
    #: Seconds between two ``squeue`` polls of the jobs that have not ended.
    poll_interval: float = Field(default=2.0, gt=0, le=300)
    #: ``SLURM_CONF`` for every Slurm command (``None``: the server's environment decides).
    slurm_conf: str | None = None
    #: Extra ``sbatch`` options, appended to the ones derived from the job.
    sbatch_args: list[str] = Field(default_factory=list)
    #: Ask for the product's memory (``--mem``); off for clusters that reject memory requests.
    request_memory: bool = True
    #: Seconds a Slurm command may take before it counts as failed.
    command_timeout: float = Field(default=30.0, gt=0)
    #: The shell ``srun`` starts on the node (UCloud's is ``/bin/bash --login``).
    shell: list[str] = Field(default_factory=lambda: ["bash", "--login"], min_length=1)

    @classmethod
    def from_config(cls, data: dict[str, Any] | None) -> SlurmSettings:
        try:
            return cls.model_validate(data or {})
        except ValidationError as err:
            raise BackendError(f"invalid [slurm] configuration: {err}", 500) from err

    def partition_for(self, product_name: str, category: str) -> str | None:
        return self.partitions.get(product_name) or self.partitions.get(category) or self.partition
