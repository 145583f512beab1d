"""The embedded server's side of a supervisor's control socket (see ``wire``), on its event loop.

Connecting is a local ``connect`` on a Unix socket (instant, or refused); every read waits for
the socket to be readable through the loop, so nothing here blocks the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from . import wire

__all__ = ["SupervisedProcess", "SupervisorConnection", "SupervisorUnavailable", "call"]

DEFAULT_TIMEOUT = 10.0


class SupervisorUnavailable(Exception):
    """Nobody answers on the job's control socket (the supervisor has exited or is gone)."""


class SupervisorRefused(Exception):
    """The supervisor answered ``{"ok": false, "error": ...}``; ``server_side`` when it failed
    (an ``OSError``) rather than refused a request it cannot honour."""

    def __init__(self, message: str, server_side: bool = False) -> None:
        super().__init__(message)
        self.server_side = server_side


class SupervisorConnection:
    """One connection to a supervisor: a request, then its answers and events."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock
        self._buffer = b""
        self._closed = False
        self.fds: list[int] = []  # descriptors that came with the messages read so far

    @classmethod
    def open(cls, job_dir: Path) -> SupervisorConnection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(wire.bind_path(job_dir / wire.SOCKET_FILE))
        except OSError as err:
            sock.close()
            raise SupervisorUnavailable(f"no supervisor answers in {job_dir}: {err}") from None
        sock.setblocking(False)
        return cls(sock)

    async def request(self, message: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Send ``message`` and return the first answer (``SupervisorRefused`` if it says no)."""
        assert self._sock is not None
        try:
            self._sock.sendall(wire.encode(message))
        except OSError as err:
            raise SupervisorUnavailable(f"the supervisor went away: {err}") from None
        try:
            answer = await asyncio.wait_for(self.next(), timeout)
        except asyncio.TimeoutError:
            raise SupervisorUnavailable("the supervisor did not answer in time") from None
        if answer is None:
            raise SupervisorUnavailable("the supervisor closed the connection")
        if not answer.get("ok"):
            why = str(answer.get("error") or "refused")
            raise SupervisorRefused(why, server_side=answer.get("kind") == "os")
        return answer

    async def next(self) -> dict[str, Any] | None:
        """The next message, or ``None`` once the supervisor closed the connection."""
        while b"\n" not in self._buffer:
            if self._closed or self._sock is None:
                return None
            await self._readable()
            try:
                data, fds = wire.recv_with_fds(self._sock)
            except BlockingIOError:
                continue
            except OSError:
                data, fds = b"", []
            self.fds.extend(fds)
            if not data:
                self._closed = True
                continue
            self._buffer += data
            if len(self._buffer) > wire.MAX_MESSAGE_BYTES and b"\n" not in self._buffer:
                raise SupervisorUnavailable("the supervisor sent an oversized message")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return wire.decode(line)
        except ValueError:
            raise SupervisorUnavailable("the supervisor sent something that is not JSON") from None

    async def _readable(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self._sock.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            if self._sock is not None:
                loop.remove_reader(fd)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


async def call(job_dir: Path, message: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> Any:
    """One request, one answer."""
    connection = SupervisorConnection.open(job_dir)
    try:
        return await connection.request(message, timeout)
    finally:
        connection.close()


class SupervisedProcess:
    """A shell the supervisor started, seen from the server: its pid, and its exit status as
    the supervisor reports it on the shell's connection. Quacks like ``asyncio.subprocess.
    Process`` for ``PtyProcess``."""

    def __init__(self, pid: int, connection: SupervisorConnection) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._connection = connection
        self._exited = asyncio.ensure_future(self._follow())

    async def _follow(self) -> int:
        try:
            while (message := await self._connection.next()) is not None:
                if message.get("event") == "exit" and isinstance(message.get("status"), int):
                    self.returncode = message["status"]
                    return self.returncode
        except SupervisorUnavailable:
            pass
        finally:
            self._connection.close()
        # The supervisor went away without saying (it ended the job, or was killed): the shell
        # is gone or going; wait until it is.
        while _alive(self.pid):
            await asyncio.sleep(0.1)
        self.returncode = -9 if self.returncode is None else self.returncode
        return self.returncode

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


async def open_shell(
    job_dir: Path, rank: int, cols: int, rows: int
) -> tuple[SupervisedProcess, int]:
    """A login shell on ``rank``: its process and the PTY master (the caller owns the fd)."""
    connection = SupervisorConnection.open(job_dir)
    try:
        answer = await connection.request({"op": "shell", "rank": rank, "cols": cols, "rows": rows})
        if len(connection.fds) != 1 or not isinstance(answer.get("pid"), int):
            raise SupervisorUnavailable("the supervisor did not hand over the shell's terminal")
    except BaseException:
        connection.close()
        raise
    master = connection.fds.pop()
    return SupervisedProcess(answer["pid"], connection), master
