"""An asyncio wrapper over a real pseudo-terminal running one process group.

The child gets the PTY's slave side as stdin/stdout/stderr and as its controlling terminal
(``setsid`` + ``TIOCSCTTY``), so ``TIOCSWINSZ`` on the master delivers ``SIGWINCH`` to it and job
control works. The master is non-blocking and is only watched (``loop.add_reader``) while a
``read()`` is awaited, or, with ``stream_output``, while the consumer takes more: nobody reads
the PTY unless the consumer can take more, which is the whole flow-control story (when the
consumer stops reading, the kernel buffer fills and the program writing to the terminal blocks).

Taking turns: with ``stream_output``, a read coalesces what is available (up to
``READ_CHUNK``) into one chunk, but all terminals' reads share a budget per round of the event
loop (``read_turns``): a read stops coalescing once the round's budget is spent, and a terminal
that becomes readable after that is read in the next round. So many terminals streaming bulk
output do not keep a keystroke's echo on another one waiting (issue 14), and a terminal that
streams alone still sends 64 KiB frames.

The terminal being typed into goes first (``foreground``): while it is, the terminals streaming
meanwhile are put in the background: they are read at most every ``BACKGROUND_READ_GAP``
seconds, and the CPU priority of their sessions is lowered (the nice value of the session's
autogroup, ``background_nice``), until nobody has typed for a while.

Interrupts: the master is in packet mode (``pty_packets``), so the reader sees where in the
output the terminal acted on a ``^C`` written to it (discarded its queued output); the provider
acknowledges the ``^C`` right there (:meth:`PtyProcess.on_interrupt_taken`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import struct
import termios
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .foreground import BACKGROUND_READ_GAP, foreground
from .pty_packets import DISCARDED, discards_output, enable_packet_mode
from .read_turns import BULK_BYTES, read_round
from .supervisor.processes import live_processes, set_autogroup_nice

__all__ = ["ProcessHandle", "PtyProcess"]

log = logging.getLogger(__name__)

READ_CHUNK = 65536


def _set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _terminal_owner(slave: int) -> Callable[[], None]:
    """The child's set-up between fork and exec: lead a new session whose controlling terminal
    is ``slave``. asyncio's loop has already called ``setsid`` by then (``start_new_session``);
    uvloop runs this first, right after the fork."""

    def become_terminal_owner() -> None:
        if os.getsid(0) != os.getpid():
            os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    return become_terminal_owner


def _session_groups(session_id: int) -> set[int]:
    """The process groups of the live processes in a session (read from /proc; a few ms)."""
    groups = {session_id}
    groups.update(p.group for p in live_processes() if p.session == session_id)
    return groups


def _anyone_in_session(session_id: int) -> bool:
    """Whether any process of the session is alive (zombies do not count)."""
    return any(process.session == session_id for process in live_processes())


def _clamp(value: int) -> int:
    return max(1, min(int(value), 0xFFFF))


class ProcessHandle(Protocol):
    """The shell process behind a PTY: our child (``asyncio.subprocess.Process``), or a child
    of a job's supervisor (``supervisor.client.SupervisedProcess``)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


#: Seconds a closed shell's session gets after SIGHUP (and again after SIGTERM) before the next
#: signal: what a terminal emulator gives, so that programs can clean up (remove lock files).
HANGUP_GRACE = 3.0
TERM_GRACE = 2.0


class PtyProcess:
    """A process group on a PTY. Create with ``await PtyProcess.spawn(...)``, or wrap a process
    someone else started on a PTY whose master this process holds.

    ``background_nice``: the nice value of the session's autogroup while the terminal streams
    in the background of one being typed into (``foreground``; 0: unchanged), ``nice`` the
    value it goes back to (the one it was started with)."""

    def __init__(
        self,
        process: ProcessHandle,
        master_fd: int,
        *,
        background_nice: int = 0,
        nice: int = 0,
    ) -> None:
        self._process = process
        self._fd: int | None = master_fd
        self._background_nice = max(background_nice, nice)
        self._nice = nice
        self._background = False  # streaming while another terminal is typed into
        self._lowered = False  # the session's autogroup has background_nice
        self._pending = bytearray()  # input not yet accepted by the PTY
        self._drained: asyncio.Future[None] | None = None
        self._writer_registered = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._on_output: Callable[[bytes], Awaitable[object] | None] | None = None
        self._streaming = False  # the reader callback of stream_output is registered
        self._held = False  # the consumer has not taken the last chunk yet
        self._packets = enable_packet_mode(master_fd)
        self._interrupting = False  # an interrupt was written, the terminal did not act yet
        self._on_interrupt_taken: list[Callable[[], None]] = []
        self._discarded = False  # a read met the terminal's discard (see _read_available)

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: str | Path,
        env: Mapping[str, str],
        cols: int = 80,
        rows: int = 24,
    ) -> PtyProcess:
        """Start ``argv`` on a new PTY of ``cols`` x ``rows`` in its own session/process group."""
        master, slave = os.openpty()
        try:
            _set_winsize(slave, _clamp(cols), _clamp(rows))
            os.set_blocking(master, False)
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=str(cwd),
                env=dict(env),
                start_new_session=True,
                preexec_fn=_terminal_owner(slave),
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(process, master)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def read(self, max_bytes: int = READ_CHUNK) -> bytes:
        """What the terminal has written, up to ``max_bytes`` (waits when there is nothing).

        Returns ``b""`` once the terminal is closed (every process holding it has exited)."""
        while True:
            self._interrupt_acted_on()  # the caller took what was read before the discard
            chunk = self._read_available(max_bytes)
            if chunk is not None:
                return chunk
            self._interrupt_acted_on()
            await self._wait_readable()

    def stream_output(self, on_output: Callable[[bytes], Awaitable[object] | None]) -> None:
        """Hand what the terminal writes to ``on_output`` right from the event loop's reader
        callback (no task per chunk), ``b""`` once at the end. While an awaitable that
        ``on_output`` returned is not done, the terminal is not read. Not with ``read()``."""
        self._on_output = on_output
        self._watch_output()

    def stop_output(self) -> None:
        """No more ``on_output`` calls."""
        self._on_output = None
        self._unwatch_output()

    def _watch_output(self) -> None:
        if (
            self._fd is not None
            and self._on_output is not None
            and not self._streaming
            and not self._held
        ):
            asyncio.get_running_loop().add_reader(self._fd, self._output_ready)
            self._streaming = True

    def _unwatch_output(self) -> None:
        if self._streaming:
            self._streaming = False
            if self._fd is not None:
                asyncio.get_running_loop().remove_reader(self._fd)

    def _output_ready(self) -> None:
        on_output = self._on_output
        if on_output is None:
            return
        round_ = read_round()
        if round_.spent_up:  # the others' turn: read in the next round of the loop
            self._unwatch_output()
            round_.next_round(self._watch_output)
            return
        started = time.perf_counter()
        data = self._read_available(READ_CHUNK, started + round_.left)
        if data is None:
            self._interrupt_acted_on()
            return
        if not data:
            self.stop_output()
        else:
            round_.foreground.streamed(self, len(data))
        try:
            waiting = on_output(data)
        except Exception:  # a consumer's bug: stop here rather than spin on a readable fd
            log.exception("PTY output handler failed; no more output is read")
            self.stop_output()
            return
        finally:
            round_.charge(time.perf_counter() - started)
            self._interrupt_acted_on()  # after the output written before it was handed on
        if waiting is not None and data:
            self._unwatch_output()
            self._held = True
            asyncio.ensure_future(waiting).add_done_callback(self._consumer_ready)
        elif self._background and self._streaming:
            # another terminal is typed into: leave the CPUs to it for a while
            self._unwatch_output()
            asyncio.get_running_loop().call_later(BACKGROUND_READ_GAP, self._watch_output)
        elif len(data) >= BULK_BYTES and self._streaming and round_.spent_up:
            # bulk output when others may be waiting: they go first next round
            self._unwatch_output()
            round_.next_round(self._watch_output, bulk=True)

    def _consumer_ready(self, waited: asyncio.Future[object]) -> None:
        if not waited.cancelled():
            waited.exception()  # the consumer's own business (e.g. its socket closed)
        self._held = False
        self._watch_output()

    def _read_available(self, max_bytes: int, deadline: float | None = None) -> bytes | None:
        """Everything available now (coalesced; after ``deadline``, a ``time.perf_counter()``,
        no further ``os.read`` than the first), ``b""`` at EOF, ``None`` when nothing is.

        In packet mode, a status packet saying the terminal discarded its output ends the
        read (``_discarded``): what was read before it goes to the consumer first."""
        if self._fd is None:
            return b""
        data = bytearray()
        header = 1 if self._packets else 0  # each packet's first byte: 0, or a status
        while len(data) < max_bytes:
            if data and deadline is not None and time.perf_counter() > deadline:
                break  # others' turn (see the module docstring)
            try:
                chunk = os.read(self._fd, max_bytes - len(data) + header)
            except BlockingIOError:
                break
            except OSError as err:  # EIO: the slave side is closed (the shell exited)
                if err.errno in (errno.EIO, errno.EBADF) and not data:
                    return b""
                break
            if not chunk:
                if not data:
                    return b""
                break
            if header and chunk[0]:
                if chunk[0] & DISCARDED:
                    self._discarded = True
                    break
                continue  # flow control news (^S, ^Q): nothing to pass on
            data += memoryview(chunk)[header:]
        return bytes(data) if data else None

    async def _wait_readable(self) -> None:
        assert self._fd is not None
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        fd = self._fd
        self._read_waiter = ready
        loop.add_reader(fd, on_readable)
        try:
            await ready
        finally:
            self._read_waiter = None
            if self._fd == fd:
                loop.remove_reader(fd)

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the terminal's input; it is written as fast as the PTY takes it."""
        if self._fd is None or not data:
            return
        foreground().typed(self)
        if self._packets and discards_output(self._fd, data):
            self._interrupting = True
        self._pending += data
        self._flush()

    @property
    def interrupting(self) -> bool:
        """Whether an interrupt (``^C`` and the like) was written that the terminal has not
        acted on yet (see ``pty_packets``)."""
        return self._interrupting

    def on_interrupt_taken(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the terminal acted on the interrupts written so far: right
        when the read meets its discard, after the output read before it went to the consumer
        and before any later output does (the stale output still to come is at most
        ``pty_packets.UNFLUSHED_CHARS``). At once when there is none; also when the PTY
        closes. The terminal is only read while the consumer takes output: a caller whose
        consumer may stall needs a timeout of its own."""
        if not self._interrupting:
            callback()
        else:
            self._on_interrupt_taken.append(callback)

    def _interrupt_acted_on(self) -> None:
        if self._discarded:  # a read met the terminal's discard
            self._discarded = False
            self._end_interrupt()

    def _end_interrupt(self) -> None:
        self._interrupting = False
        callbacks, self._on_interrupt_taken = self._on_interrupt_taken, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one caller's bug must not stop the reading
                log.exception("PTY interrupt callback failed")

    @property
    def drained(self) -> bool:
        """Whether every written byte was accepted by the PTY (or the PTY is closed)."""
        return not self._pending or self._fd is None

    async def drain(self) -> None:
        """Wait until every written byte was accepted by the PTY (or the PTY closed)."""
        if not self._pending or self._fd is None:
            return
        if self._drained is None or self._drained.done():
            self._drained = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drained)

    def _flush(self) -> None:
        fd = self._fd
        while self._pending and fd is not None:
            try:
                written = os.write(fd, self._pending)
            except BlockingIOError:
                break
            except OSError:  # closed terminal: input has nowhere to go
                self._pending.clear()
                break
            del self._pending[:written]
        loop = asyncio.get_running_loop()
        if self._pending and fd is not None:
            if not self._writer_registered:
                loop.add_writer(fd, self._flush)
                self._writer_registered = True
            return
        if self._writer_registered and fd is not None:
            loop.remove_writer(fd)
        self._writer_registered = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def set_background(self, background: bool) -> None:
        """In the background (``foreground``), the terminal is read at most every
        ``BACKGROUND_READ_GAP`` seconds and its session's CPU priority is lowered to
        ``background_nice``; back in front, both come back."""
        self._background = background
        if background == self._lowered or self._background_nice <= self._nice:
            return
        if self._process.returncode is not None or self._fd is None:
            return  # the pid may be another process's by now
        self._lowered = background
        nice = self._background_nice if background else self._nice
        if not set_autogroup_nice(self._process.pid, nice):
            log.debug("PTY %d: the session's priority was not changed", self._process.pid)

    def resize(self, cols: int, rows: int) -> None:
        """Set the window size; the foreground process group gets ``SIGWINCH``."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                _set_winsize(self._fd, _clamp(cols), _clamp(rows))

    async def signal_session(self, *sigs: int) -> None:
        """Send ``sigs``, in order, to every process group of the shell's session.

        The shell leads its own session; an interactive shell puts background jobs
        (``sleep 600 &``) in process groups of their own, which signalling the shell's group
        misses. The groups are looked for in /proc in a thread (a few ms with some hundred
        processes, and a closing shell is signalled up to three times): the event loop carries
        the other terminals' keystrokes meanwhile.
        """
        if self._process.returncode is None:  # a shell that has not made its session yet
            for sig in sigs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(self._process.pid, sig)
        groups = await asyncio.to_thread(_session_groups, self._process.pid)
        for sig in sigs:
            for group in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, sig)

    async def wait(self) -> int:
        return await self._process.wait()

    async def terminate(self, grace: float = HANGUP_GRACE) -> None:
        """End the shell's session as a terminal emulator does when its window closes: SIGHUP,
        up to ``grace`` seconds for every process of the session to exit, then SIGTERM, then
        SIGKILL for what is left; the PTY is closed at the end."""
        for sig, wait in ((signal.SIGHUP, grace), (signal.SIGTERM, min(grace, TERM_GRACE))):
            if not await self._session_alive():
                break
            await self.signal_session(sig, signal.SIGCONT)  # a stopped job cannot act on sig
            await self._session_gone(wait)
        if await self._session_alive():
            await self.signal_session(signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._process.wait(), 2.0)
        self.close()

    async def _session_alive(self) -> bool:
        """Whether the shell or any process of its session lives. The shell itself counts
        while it has not made its own session yet: one closed right after it was started (the
        long fuzz run found such shells left running). The session is looked for in /proc in a
        thread: a scan takes about 0.8 ms with 70 processes, more on a busy machine, and runs
        every 50 ms while a shell closes."""
        if self._process.returncode is None:
            return True
        return await asyncio.to_thread(_anyone_in_session, self._process.pid)

    async def _session_gone(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self._session_alive() and loop.time() < deadline:
            await asyncio.sleep(0.05)

    def close(self) -> None:
        """Close the master side (the session gets SIGHUP when its terminal goes away)."""
        if self._fd is None:
            return
        self.set_background(False)  # what outlives the terminal in its session runs as before
        foreground().forget(self)
        fd, self._fd = self._fd, None
        loop = asyncio.get_running_loop()
        if self._writer_registered:
            loop.remove_writer(fd)
            self._writer_registered = False
        if self._streaming:
            loop.remove_reader(fd)
            self._streaming = False
        self._on_output = None
        if self._read_waiter is not None:
            loop.remove_reader(fd)
            if not self._read_waiter.done():
                self._read_waiter.set_result(None)  # the pending read() now returns b""
        self._pending.clear()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._end_interrupt()
        os.close(fd)
