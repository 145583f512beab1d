"""The dev Slurm cluster (`scripts/dev-slurm`): kill -9 one node's slurmd and start it again
exactly as the script does; our jobs as Slurm sees them."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

USABLE = ("idle", "mixed", "allocated", "completing")


class SlurmCluster:
    def __init__(self, conf: Path) -> None:
        self.conf = conf
        self.base = conf.parent.parent  # SLURM_BASE: etc/slurm.conf, run/, log/
        self.env = {**os.environ, "SLURM_CONF": str(conf)}

    def nodes(self) -> list[str]:
        out = self._run("sinfo", "-h", "-N", "-o", "%N")
        return sorted(set(out.split()))

    def slurmd_pid(self, node: str) -> int | None:
        """The live slurmd of ``node`` (its pid file names it and its cmdline says so)."""
        try:
            pid = int((self.base / "run" / f"slurmd-{node}.pid").read_text().strip())
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
        if zombie or b"slurmd" not in argv[0] or node.encode() not in argv:
            return None
        return pid

    def start_slurmd(self, node: str) -> None:
        """As `scripts/dev-slurm start` starts one: it daemonizes itself."""
        (self.base / "run" / f"slurmd-{node}.pid").unlink(missing_ok=True)
        with (self.base / "log" / f"slurmd-{node}.stderr").open("ab") as log:
            subprocess.run(
                ["slurmd", "-f", str(self.conf), "-N", node],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                timeout=60,
                check=True,
            )

    def node_state(self, node: str) -> str:
        return self._run("sinfo", "-h", "-n", node, "-o", "%T").split("\n")[0].strip()

    def wait_node_usable(self, node: str, timeout: float = 60.0) -> float:
        """Seconds until ``node``'s slurmd runs and the controller lists the node as usable."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.slurmd_pid(node) is not None and self.node_state(node) in USABLE:
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"slurmd of {node} is not back: {self.node_state(node)!r}")

    def nodes_of(self, slurm_id: str) -> list[str]:
        """The nodes of a running job, in rank order."""
        out = self._run("squeue", "-h", "-j", slurm_id, "-o", "%N").strip()
        return self._run("scontrol", "show", "hostnames", out).split() if out else []

    def jobs_under(self, folder: Path) -> list[tuple[str, str, str]]:
        """(Slurm id, name, state) of every Slurm job whose working dir is in ``folder``."""
        out = self._run("squeue", "-h", "-o", "%i|%j|%T|%Z")
        found = []
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) == 4 and (parts[3] + "/").startswith(str(folder) + "/"):
                found.append((parts[0], parts[1], parts[2]))
        return found

    def cancel_under(self, folder: Path) -> None:
        ids = [job_id for job_id, _, _ in self.jobs_under(folder)]
        if ids:
            subprocess.run(["scancel", *ids], env=self.env, capture_output=True, timeout=30)

    def _run(self, *argv: str) -> str:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30)
        return done.stdout
