"""Process mechanics of the supervisor: becoming a child subreaper, starting a program (on pipes
or on a new PTY), finding every descendant, and signalling them all.

Why a subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``) and not a cgroup: it needs no privileges and
no writable cgroup hierarchy, which many machines (containers, the hybrid v1/v2 set-ups of HPC
login nodes) do not give a user. A process that leaves its parent (``setsid``, ``nohup ... &``
then ``disown``, a double fork) is re-parented to the nearest subreaper ancestor instead of init,
so every process a job starts stays a descendant of its supervisor, found by walking parent links
in ``/proc``. What it cannot hold: a process that a job hands to another supervisor (e.g. a
daemon started through ``systemd-run`` or ``ssh localhost``), and, should the supervisor itself be
killed with SIGKILL, its orphans (those go to init; the server then ends what it can still
recognise, see ``backends.process``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "LiveProcess",
    "Started",
    "become_subreaper",
    "descendants",
    "live_processes",
    "restore_session_priority",
    "set_autogroup_nice",
    "signal_all",
    "spawn",
]

_PR_SET_CHILD_SUBREAPER = 36
_STEP_SETUP, _STEP_CHDIR, _STEP_EXEC = 0, 1, 2  # where a child failed before exec
#: Signals whose handling the supervisor changes; a started program gets the defaults back.
_RESET_SIGNALS = (
    signal.SIGCHLD,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGUSR1,
)


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux only; ``False`` elsewhere)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


@dataclass
class Started:
    pid: int
    #: Read ends of the program's stdout and stderr (pipes), or the PTY's master (as ``stdout``).
    stdout: int
    stderr: int | None


def spawn(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    umask: int,
    pty_size: tuple[int, int] | None = None,
    nice: int = 0,
) -> Started:
    """Start ``argv`` as the leader of a new session: on two pipes (stdout, stderr) with stdin
    from ``/dev/null``, or, with ``pty_size`` ``(cols, rows)``, on a new PTY that becomes its
    controlling terminal; ``nice`` is added to its nice value. ``OSError`` (with the child's
    errno) if it cannot be executed."""
    if pty_size is not None:
        master, slave = os.openpty()
        cols, rows = pty_size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        child_fds = (slave, slave, slave)
        parent_ends: tuple[int, int | None] = (master, None)
        to_close = [slave]
    else:
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        child_fds = (null, out_write, err_write)
        parent_ends = (out_read, err_read)
        to_close = [out_write, err_write, null]
    status_read, status_write = os.pipe()  # close-on-exec: EOF means exec worked
    program = os.fsencode(argv[0])
    args = [os.fsencode(arg) for arg in argv]
    environ = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    try:
        pid = os.fork()
    except OSError:
        for fd in (*to_close, *[e for e in parent_ends if e is not None]):
            os.close(fd)
        os.close(status_read)
        os.close(status_write)
        raise
    if pid == 0:  # the child: only async-signal-safe work until exec
        step = _STEP_SETUP
        try:
            for sig in _RESET_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            os.setsid()
            for target, fd in enumerate(child_fds):
                os.dup2(fd, target)
            if pty_size is not None:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            if nice:
                _lower_priority(nice)
            step = _STEP_CHDIR
            os.chdir(cwd)
            os.umask(umask)
            step = _STEP_EXEC
            os.execvpe(program, args, environ)  # type: ignore[arg-type]  # noqa: S606
        except OSError as err:
            with contextlib.suppress(OSError):
                os.write(status_write, struct.pack("ii", step, err.errno or errno.EINVAL))
        finally:
            os._exit(127)
    os.close(status_write)
    for fd in to_close:
        os.close(fd)
    try:
        report = _read_all(status_read)
    finally:
        os.close(status_read)
    if report:
        step, code = struct.unpack("ii", report[:8].ljust(8, b"\0"))
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        for end in parent_ends:
            if end is not None:
                os.close(end)
        failed_on = cwd if step == _STEP_CHDIR else argv[0]
        raise OSError(code, os.strerror(code), failed_on)
    for end in parent_ends:
        if end is not None:
            os.set_blocking(end, False)
    return Started(pid, parent_ends[0], parent_ends[1])


def _lower_priority(nice: int) -> None:
    """Add ``nice`` to this process's nice value, and give its new session's autogroup the same
    nice value: where the kernel groups processes by session for scheduling (Linux's
    ``sched_autogroup``, on by default on most distributions), a nice value counts only against
    the same session's processes, and every session gets an equal share of the CPUs."""
    os.nice(nice)
    set_autogroup_nice("self", nice)  # without autogroups, the nice value is what counts


def set_autogroup_nice(pid: int | str, nice: int) -> bool:
    """Give the autogroup of ``pid``'s session (Linux's ``sched_autogroup``: the kernel shares the
    CPUs between sessions first, then between the processes of each) the nice value ``nice``.
    Any value from 0 up is allowed for one's own processes, and back down to 0 again.
    ``pid`` may be ``"self"``. ``False`` where there are no autogroups or the process is gone."""
    try:
        fd = os.open(f"/proc/{pid}/autogroup", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, str(nice).encode())
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def restore_session_priority(session_id: int, nice: int) -> bool:
    """Give the autogroup of session ``session_id`` (a shell's, after the shell exited) the
    nice value ``nice`` again, through any of its processes still alive (``nohup`` ones): the
    server lowers a terminal's session while another is typed into, and one that crashed
    meanwhile could not give it back. ``False`` when no process of the session is left (or
    there are no autogroups). Scans ``/proc``: about a millisecond, so not on an event loop."""
    # The session's processes share one autogroup: one that takes the value is enough.
    return any(
        set_autogroup_nice(process.pid, nice)
        for process in live_processes()
        if process.session == session_id
    )


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 64)
        except InterruptedError:
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class LiveProcess(NamedTuple):
    pid: int
    parent: int
    group: int
    session: int


def live_processes() -> Iterator[LiveProcess]:
    """Every live (non-zombie) process, from ``/proc/<pid>/stat``."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if fields[0] == b"Z":
                continue
            found = LiveProcess(int(entry.name), int(fields[1]), int(fields[2]), int(fields[3]))
        except (OSError, IndexError, ValueError):
            continue
        yield found


def descendants(root: int) -> set[int]:
    """Every live (non-zombie) process below ``root``."""
    children: dict[int, list[int]] = {}
    for process in live_processes():
        children.setdefault(process.parent, []).append(process.pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
