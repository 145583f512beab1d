"""Per-job supervisors of the process backend: a small process per job that owns the job's
process tree, records exit statuses, enforces the time allocation and outlives the embedded
server, which re-adopts it after a restart (the role slurmstepd plays for Slurm).

``daemon`` is the supervisor process, ``processes`` its process mechanics (subreaper, spawn,
descendants), ``spec`` what it is asked to run, ``wire`` the control socket both sides use, and
``client`` the server's side of that socket. Everything but ``client`` is standard library only,
so the supervisor starts in a few tens of milliseconds.
"""
