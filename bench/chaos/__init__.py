"""Helpers of `bench/chaos.py`: processes, terminal clients, Slurm daemons, the scenario, the
report."""
