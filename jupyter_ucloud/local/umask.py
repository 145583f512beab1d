"""The embedded server's file mode mask: what it writes is readable by its user only.

``restrictive_umask()`` is called first thing in ``jupyter ucloud local``: the SQLite store
with its ``-wal``/``-shm`` files, the token files, logs, the ready file and the job folders are
then created 0600 (files) and 0700 (directories) whatever umask the server was started with.
That umask is kept in ``ORIGINAL_UMASK`` for the processes of jobs, which should create files
as the user's own umask says.
"""

from __future__ import annotations

import os

__all__ = ["ORIGINAL_UMASK", "RESTRICTIVE_UMASK", "restrictive_umask"]

RESTRICTIVE_UMASK = 0o077

#: The umask the process had before the first ``restrictive_umask()`` (``None`` before it).
ORIGINAL_UMASK: int | None = None


def restrictive_umask() -> int:
    """Set this process's umask to 0o077 and return the previous one (the original one, kept
    in ``ORIGINAL_UMASK``, when called again)."""
    global ORIGINAL_UMASK
    previous = os.umask(RESTRICTIVE_UMASK)
    if ORIGINAL_UMASK is None:
        ORIGINAL_UMASK = previous
    return ORIGINAL_UMASK
