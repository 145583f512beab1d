"""One embedded server per data dir: its lock and its ready file.

A running ``jupyter ucloud local`` holds an exclusive ``flock`` on ``<data dir>/server.lock``
for its whole life (the kernel drops it when the process dies, however it dies) and announces
itself in ``<data dir>/server.json``: ``{"url", "pid", "refreshTokenFile", "providerId",
"dataDir", "backend", "startedAt"}``. Anyone can therefore tell a live server (lock held, pid
alive) from a stale file (lock free): a second server on the same data dir reports the first and
exits, and the Jupyter extension finds and uses the live one instead of starting another.

Standard library only, and no dependency on the rest of ``local``: the Jupyter extension imports
this module to find the server it starts as a separate process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DataDirLock", "ServerInfo", "find_running", "read_info", "remove_info", "write_info"]

LOCK_FILE = "server.lock"
INFO_FILE = "server.json"


@dataclass(frozen=True)
class ServerInfo:
    url: str
    pid: int
    refresh_token_file: Path
    provider_id: str
    data_dir: Path
    backend: str = "process"
    started_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pid": self.pid,
            "refreshTokenFile": str(self.refresh_token_file),
            "providerId": self.provider_id,
            "dataDir": str(self.data_dir),
            "backend": self.backend,
            "startedAt": self.started_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], data_dir: Path) -> ServerInfo:
        return cls(
            url=str(data["url"]).rstrip("/"),
            pid=int(data["pid"]),
            refresh_token_file=Path(data.get("refreshTokenFile") or data_dir / "refresh_token"),
            provider_id=str(data.get("providerId") or "local"),
            data_dir=data_dir,
            backend=str(data.get("backend") or "process"),
            started_at=float(data.get("startedAt") or 0.0),
        )

    def read_refresh_token(self) -> str:
        return self.refresh_token_file.read_text().strip()


class DataDirLock:
    """The exclusive lock of a data dir, held by the server that serves it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; ``False`` if another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock

    @staticmethod
    def is_held(data_dir: Path) -> bool:
        """Whether some process holds the lock of ``data_dir`` now."""
        try:
            fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also drops the shared lock, if it was taken
        return False


def read_info(data_dir: Path) -> ServerInfo | None:
    """What ``server.json`` says (``None`` if missing or unreadable), live or not."""
    try:
        data = json.loads((data_dir / INFO_FILE).read_text())
        return ServerInfo.from_json(data, data_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_info(info: ServerInfo, path: Path | None = None) -> None:
    """Write ``info`` atomically (0600) to ``server.json`` of its data dir (or to ``path``)."""
    target = path or info.data_dir / INFO_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info.to_json(), out)
    os.replace(tmp, target)


def remove_info(data_dir: Path, pid: int) -> None:
    """Remove ``server.json`` if it is still the one of ``pid``."""
    info = read_info(data_dir)
    if info is not None and info.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / INFO_FILE).unlink()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc here: kill(0) said it exists


def find_running(data_dir: Path, wait: float = 0.0) -> ServerInfo | None:
    """The live server of ``data_dir`` (lock held, announced, pid alive), or ``None``.

    With ``wait`` > 0, a server that holds the lock but has not announced itself yet (it is
    starting) is waited for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        if not DataDirLock.is_held(data_dir):
            return None
        info = read_info(data_dir)
        if info is not None and pid_alive(info.pid):
            return info
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
