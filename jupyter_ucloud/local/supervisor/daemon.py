"""The per-job supervisor process: it owns a job's processes for the life of the job.

Started by the embedded server's process backend as ``python -m jupyter_ucloud.local.supervisor
<job folder>`` in a session of its own, it outlives the server (as slurmstepd outlives slurmd):

1. It becomes a child subreaper (see ``processes``), starts every rank's command as a session
   leader with stdout and stderr on pipes, and copies them to ``rank-<r>.out`` / ``rank-<r>.err``
   (each bounded by ``log_limit``, with a note where the rest was dropped).
2. It listens on ``supervisor.sock`` for the server (``wire``): ``status``, ``watch`` (the status,
   then an event at every rank exit and when the job ends), ``terminate``, ``extend`` and
   ``shell`` (a login shell on a new PTY whose master is handed over; the connection then
   reports the shell's exit status).
3. It enforces the time allocation (the job EXPIRES), and decides the outcome when every rank has
   exited (SUCCESS if all exited 0, else FAILURE naming the first rank that did not).
4. When the job ends, however it ends, it sends SIGTERM to every descendant, SIGKILL to what is
   left after ``grace`` seconds, and repeats until none is left: nothing a job started outlives
   it. Then it writes the outcome to ``supervisor.json`` (read by a server that was not there to
   watch) and exits.

SIGTERM to the supervisor terminates the job (SUCCESS, as UCloud ends a cancelled job); SIGHUP
and SIGINT are ignored, so it survives its terminal and the server's process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import wire
from .processes import (
    Started,
    become_subreaper,
    descendants,
    restore_session_priority,
    signal_all,
    spawn,
)
from .spec import SupervisorSpec, rank_log_paths

__all__ = ["Supervisor", "main"]

log = logging.getLogger("jupyter_ucloud.supervisor")

READ_CHUNK = 65536
KILL_ROUNDS_SECONDS = 10.0  # give up SIGKILL rounds after this (a process in D state)
FINAL_STATES = ("SUCCESS", "FAILURE", "EXPIRED")


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Capture:
    """Copies one pipe to a file, at most ``limit`` bytes, then a note; drains to EOF."""

    def __init__(self, fd: int, path: Path, limit: int, what: str) -> None:
        self.fd: int | None = fd
        self.limit = limit
        self.what = what
        self.written = 0
        self.truncated = False
        self.done = asyncio.get_running_loop().create_future()
        self._file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        assert self.fd is not None
        while True:
            try:
                data = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            self._keep(data)

    def _keep(self, data: bytes) -> None:
        room = self.limit - self.written
        if room > 0:
            part = data[:room]
            os.write(self._file, part)
            self.written += len(part)
        if len(data) > max(room, 0) and not self.truncated:
            self.truncated = True
            os.write(
                self._file,
                f"\n[jupyter-ucloud: {self.what} passed the limit of {self.limit} bytes;"
                " the rest was not kept]\n".encode(),
            )

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            os.close(self._file)
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class _Rank:
    pid: int
    exit: int | None = None
    captures: list[_Capture] = field(default_factory=list)


@dataclass
class _Shell:
    pid: int
    rank: int
    connection: socket.socket


class Supervisor:
    def __init__(self, job_dir: Path, spec: SupervisorSpec) -> None:
        self.job_dir = job_dir
        self.spec = spec
        self.ranks: list[_Rank] = []
        self.shells: dict[int, _Shell] = {}
        self.watchers: set[socket.socket] = set()
        self.phase = "starting"
        self.outcome: tuple[str, str] | None = None
        self.started_ms: int | None = None
        self.allocation_ms = spec.allocation_ms
        self.ended_ms: int | None = None
        self._ended = asyncio.Event()
        self._ending: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._started_at = 0.0  # loop time of the start
        self._listener: socket.socket | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # connections being served
        self._peer_tasks: set[asyncio.Task[Any]] = set()  # watchers' connections

    # --- life -------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        if not become_subreaper():
            log.warning("not a child subreaper: processes that detach may outlive the job")
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        loop.add_signal_handler(
            signal.SIGTERM, lambda: self.end("SUCCESS", "The job was terminated")
        )
        for sig in (signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        self._start_ranks()
        self._listen()
        self._reap()  # a rank that exited before the handler was in place
        await self._ended.wait()
        for task in self._peer_tasks:
            task.cancel()  # the watchers' connections end with the job
        # Requests being answered (a terminate waiting for the end) get their answer out.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        return 0

    def _start_ranks(self) -> None:
        self._started_at = asyncio.get_running_loop().time()
        started_ms = _now_ms()
        for index, rank in enumerate(self.spec.ranks):
            try:
                Path(rank.cwd).mkdir(parents=True, exist_ok=True)
                started = spawn(
                    rank.argv,
                    cwd=rank.cwd,
                    env=rank.env,
                    umask=self.spec.umask,
                    nice=self.spec.nice,
                )
            except OSError as err:
                self.phase = "running"
                self.end("FAILURE", f"The job could not start: rank {index}: {_describe(err)}")
                return
            self.ranks.append(_Rank(started.pid, captures=self._capture(index, started)))
        self.started_ms = started_ms
        self.phase = "running"
        self._schedule_deadline()
        self._record()
        log.info("job %s: %d rank(s) started", self.spec.job_id, len(self.ranks))

    def _capture(self, rank: int, started: Started) -> list[_Capture]:
        out, err = rank_log_paths(self.job_dir, rank)
        assert started.stderr is not None
        limit = self.spec.log_limit
        return [
            _Capture(started.stdout, out, limit, f"rank {rank}'s stdout"),
            _Capture(started.stderr, err, limit, f"rank {rank}'s stderr"),
        ]

    def _schedule_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self.allocation_ms is None or self.phase != "running":
            return
        loop = asyncio.get_running_loop()
        when = self._started_at + self.allocation_ms / 1000
        self._deadline = loop.call_at(
            when, lambda: self.end("EXPIRED", "The job's time allocation has expired")
        )

    def end(self, state: str, why: str) -> asyncio.Task[None]:
        """End the job with this outcome (the first outcome wins); returns the ending task."""
        if self._ending is None:
            self.outcome = (state, why)
            self._ending = asyncio.ensure_future(self._end())
        return self._ending

    async def _end(self) -> None:
        assert self.outcome is not None
        self.phase = "ending"
        if self._deadline is not None:
            self._deadline.cancel()
        log.info("job %s: ending (%s: %s)", self.spec.job_id, *self.outcome)
        self._broadcast({"event": "ending", **self.status()})
        self._record()
        await self._kill_everything()
        await asyncio.gather(
            *(c.done for r in self.ranks for c in r.captures), return_exceptions=True
        )
        self.phase = "ended"
        self.ended_ms = _now_ms()
        self._record()
        self._broadcast({"event": "ended", **self.status()})
        self._stop_listening()
        self._ended.set()  # run() cancels the connections' tasks, which close them

    async def _kill_everything(self) -> None:
        """SIGTERM (and SIGHUP to shells) to every descendant, SIGKILL after ``grace``, then
        SIGKILL rounds until none is left."""
        me = os.getpid()
        left = descendants(me)
        if left:
            signal_all(set(self.shells) & left, signal.SIGHUP)
            signal_all(left, signal.SIGTERM)
            signal_all(left, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.spec.grace
            while left and loop.time() < deadline:
                await asyncio.sleep(0.05)
                left = descendants(me)
        rounds_until = asyncio.get_running_loop().time() + KILL_ROUNDS_SECONDS
        while left:
            signal_all(left, signal.SIGKILL)
            await asyncio.sleep(0.02)
            left = descendants(me)
            if asyncio.get_running_loop().time() > rounds_until:
                log.warning("job %s: processes that would not die: %s", self.spec.job_id, left)
                break

    # --- children ---------------------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            rank = next((r for r in self.ranks if r.pid == pid), None)
            if rank is not None:
                self._rank_exited(self.ranks.index(rank), rank, code)
            shell = self.shells.pop(pid, None)
            if shell is not None:
                self._send(shell.connection, {"event": "exit", "status": code})
                shell.connection.close()
                self._restore_priority(pid)

    def _restore_priority(self, session_id: int) -> None:
        """What outlives a shell in its session runs at the job's priority, whatever the
        server had set for the terminal (``restore_session_priority``)."""
        done = asyncio.get_running_loop().run_in_executor(
            None, restore_session_priority, session_id, self.spec.nice
        )
        done.add_done_callback(_log_failure)

    def _rank_exited(self, index: int, rank: _Rank, code: int) -> None:
        rank.exit = code
        log.info("job %s: rank %d exited (%d)", self.spec.job_id, index, code)
        self._broadcast({"event": "rank-exit", "rank": index, "status": code})
        self._record()
        if self.phase == "running" and all(r.exit is not None for r in self.ranks):
            self.end(*self._outcome_of_exits())

    def _outcome_of_exits(self) -> tuple[str, str]:
        for index, rank in enumerate(self.ranks):
            code = rank.exit or 0
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                return "FAILURE", f"Rank {index} {how}"
        return "SUCCESS", "The job has completed"

    # --- record -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        deadline = None
        if self.allocation_ms is not None and self.started_ms is not None:
            deadline = self.started_ms + self.allocation_ms
        outcome = None
        if self.outcome is not None:
            outcome = {"state": self.outcome[0], "why": self.outcome[1]}
        return {
            "jobId": self.spec.job_id,
            "pid": os.getpid(),
            "phase": self.phase,
            "ranks": [{"pid": r.pid, "exit": r.exit} for r in self.ranks],
            "startedAtMs": self.started_ms,
            "allocationMs": self.allocation_ms,
            "deadlineMs": deadline,
            "outcome": outcome,
            "endedAtMs": self.ended_ms,
        }

    def _record(self) -> None:
        try:
            wire.write_json_file(self.job_dir / wire.RECORD_FILE, self.status())
        except OSError as err:
            log.error("job %s: cannot write its record: %s", self.spec.job_id, err)

    # --- control socket ---------------------------------------------------------------------

    def _listen(self) -> None:
        path = self.job_dir / wire.SOCKET_FILE
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is 0600, like every other file of the job's
        try:
            listener.bind(wire.bind_path(path))
        finally:
            os.umask(old)
        listener.listen(16)
        listener.setblocking(False)
        self._listener = listener
        asyncio.get_running_loop().add_reader(listener.fileno(), self._accept)

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            asyncio.get_running_loop().remove_reader(listener.fileno())
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                (self.job_dir / wire.SOCKET_FILE).unlink()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                connection, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                log.warning("accept failed: %s", err)
                return
            connection.setblocking(False)
            task = asyncio.ensure_future(self._serve(connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, connection: socket.socket) -> None:
        keep = False
        try:
            request = await _read_message(connection)
            keep = await self._handle(connection, request)
        except (ValueError, ConnectionError, asyncio.TimeoutError) as err:
            self._send(connection, {"ok": False, "error": f"bad request: {err}"})
        except OSError as err:
            self._send(connection, {"ok": False, "error": _describe(err), "kind": "os"})
        finally:
            if not keep:
                connection.close()

    async def _handle(self, connection: socket.socket, request: dict[str, Any]) -> bool:
        """Answer ``request``; ``True`` when the connection stays open (watch, shell)."""
        op = request.get("op")
        if op == "status":
            self._send(connection, {"ok": True, **self.status()})
            return False
        if op == "watch":
            self._send(connection, {"ok": True, **self.status()})
            if self.phase == "ended":
                return False
            self.watchers.add(connection)
            task = asyncio.ensure_future(self._watch_peer(connection))
            self._peer_tasks.add(task)
            task.add_done_callback(self._peer_tasks.discard)
            return True
        if op == "terminate":
            state = request.get("state", "SUCCESS")
            why = request.get("why", "The job was terminated")
            if state not in FINAL_STATES or not isinstance(why, str):
                raise ValueError("terminate needs a final state and a reason")
            await asyncio.shield(self.end(state, why))
            self._send(connection, {"ok": True, **self.status()})
            return False
        if op == "extend":
            allocation = request.get("allocationMs")
            if not isinstance(allocation, int) or isinstance(allocation, bool) or allocation <= 0:
                raise ValueError("extend needs allocationMs > 0")
            if self.phase != "running":
                raise ValueError("the job is not running")
            self.allocation_ms = allocation
            self._schedule_deadline()
            self._record()
            self._send(connection, {"ok": True, **self.status()})
            return False
        if op == "shell":
            return self._open_shell(connection, request)
        raise ValueError(f"unknown op {op!r}")

    def _open_shell(self, connection: socket.socket, request: dict[str, Any]) -> bool:
        rank, cols, rows = (_integer(request.get(k)) for k in ("rank", "cols", "rows"))
        if rank is None or cols is None or rows is None:
            raise ValueError("shell needs integer rank, cols and rows")
        if self.phase != "running":
            raise ValueError("the job is not running")
        if not 0 <= rank < len(self.spec.ranks):
            raise ValueError(f"rank {rank} does not exist")
        spec = self.spec.ranks[rank]
        env = {**spec.env, "TERM": "xterm-256color"}
        Path(spec.cwd).mkdir(parents=True, exist_ok=True)
        size = (max(1, min(cols, 0xFFFF)), max(1, min(rows, 0xFFFF)))
        started = spawn(
            self.spec.shell,
            cwd=spec.cwd,
            env=env,
            umask=self.spec.umask,
            pty_size=size,
            nice=self.spec.nice,
        )
        self.shells[started.pid] = _Shell(started.pid, rank, connection)
        try:
            wire.send_with_fd(connection, {"ok": True, "pid": started.pid}, started.stdout)
        finally:
            os.close(started.stdout)  # the server's copy is the only one: its close hangs up
        return True

    async def _watch_peer(self, connection: socket.socket) -> None:
        """Notice a watcher that went away (its reads end); close it when the job has ended."""
        loop = asyncio.get_running_loop()
        try:
            with contextlib.suppress(OSError):
                while await loop.sock_recv(connection, 1024):
                    pass
        finally:
            self.watchers.discard(connection)
            connection.close()

    def _broadcast(self, message: dict[str, Any]) -> None:
        for watcher in list(self.watchers):
            if not self._send(watcher, message):
                self.watchers.discard(watcher)
                with contextlib.suppress(OSError):  # its _watch_peer task then closes it
                    watcher.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _send(connection: socket.socket, message: dict[str, Any]) -> bool:
        """Send a small message without waiting; ``False`` if the peer cannot take it."""
        data = wire.encode(message)
        try:
            sent = connection.send(data)
        except OSError:
            return False
        return sent == len(data)


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("restoring a shell session's priority failed: %r", done.exception())


def _describe(err: OSError) -> str:
    where = f" ({err.filename})" if err.filename else ""
    return f"{err.strerror or err}{where}"


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _read_message(connection: socket.socket, timeout: float = 10.0) -> dict[str, Any]:
    return await asyncio.wait_for(_read_line(connection), timeout)


async def _read_line(connection: socket.socket) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    data = b""
    while b"\n" not in data:
        chunk = await loop.sock_recv(connection, wire.MAX_MESSAGE_BYTES)
        if not chunk:
            raise ConnectionError("closed before a request")
        data += chunk
        if len(data) > wire.MAX_MESSAGE_BYTES:
            raise ValueError("request too long")
    return wire.decode(data.split(b"\n", 1)[0])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m jupyter_ucloud.local.supervisor JOB_FOLDER", file=sys.stderr)
        return 2
    job_dir = Path(args[0]).resolve()
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname).1s %(asctime)s supervisor] %(message)s"
    )
    data = wire.read_json_file(job_dir / wire.SPEC_FILE)
    try:
        spec = SupervisorSpec.from_json(data or {})
    except (ValueError, KeyError, TypeError) as err:
        print(f"supervisor: no usable {wire.SPEC_FILE} in {job_dir}: {err}", file=sys.stderr)
        return 2
    return asyncio.run(Supervisor(job_dir, spec).run())
