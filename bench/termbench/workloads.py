"""The measurements, written once against `TerminalClient` so every path runs the same code."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from .clients import TerminalClient
from .procstats import machine_busy_seconds

CTRL_C, CTRL_U = "\x03", "\x15"


class BenchError(RuntimeError):
    """A path did not behave like a terminal (no echo, no marker, closed early)."""


def read_until(
    term: TerminalClient, marker: str, timeout: float, on_chunk: Callable[[str], None] | None = None
) -> tuple[int, float]:
    """Read until `marker` shows up; returns (characters read, seconds taken)."""
    start = time.perf_counter()
    deadline = start + timeout
    total, tail = 0, ""
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise BenchError(f"no {marker!r} within {timeout:.0f} s (read {total} chars)")
        chunk = term.recv(left)
        if chunk is None:
            continue
        total += len(chunk)
        if on_chunk:
            on_chunk(chunk)
        window = tail + chunk
        if marker in window:
            return total, time.perf_counter() - start
        tail = window[-len(marker) :]


def drain(term: TerminalClient, quiet: float = 0.05, limit: float = 10.0) -> int:
    """Read until nothing arrives for `quiet` seconds; returns characters read."""
    total = 0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        chunk = term.recv(quiet)
        if chunk is None:
            return total
        total += len(chunk)
    return total


def wait_ready(term: TerminalClient, timeout: float = 60.0) -> None:
    """Make sure the shell reads commands: run an echo and wait for its computed output."""
    term.send("echo READY$((20+1))\r")
    read_until(term, "READY21", timeout)
    drain(term)


def time_to_first_output(term: TerminalClient, started: float, timeout: float = 120.0) -> float:
    """Seconds from `started` (perf_counter when the shell was asked for) to its first output."""
    deadline = started + timeout
    while time.perf_counter() < deadline:
        chunk = term.recv(max(0.0, deadline - time.perf_counter()))
        if chunk:
            return time.perf_counter() - started
    raise BenchError(f"no output within {timeout:.0f} s of asking for the shell")


@dataclass
class EchoResult:
    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def echo_latency(term: TerminalClient, keystrokes: int, timeout: float = 10.0) -> EchoResult:
    """Send one character at a time and time until readline echoes it; Ctrl-U every 50, untimed."""
    samples: list[float] = []
    for i in range(keystrokes):
        if i and i % 50 == 0:
            term.send(CTRL_U)
            drain(term, quiet=0.03)
        start = time.perf_counter()
        term.send("x")
        read_until(term, "x", timeout)
        samples.append((time.perf_counter() - start) * 1000)
    term.send(CTRL_U)
    drain(term, quiet=0.05)
    return EchoResult(samples)


@dataclass
class BulkResult:
    chars: int
    seconds: float
    #: CPU seconds the whole machine was busy meanwhile (clients, shells, kernel included)
    machine_cpu_s: float | None = None

    @property
    def mb_per_s(self) -> float:
        return self.chars / 1e6 / self.seconds


def bulk_throughput(term: TerminalClient, megabytes: float, timeout: float = 600.0) -> BulkResult:
    """`head -c N /dev/zero | tr '\\0' a; echo DONE42`: characters over time until DONE42."""
    size = int(megabytes * 1_000_000)
    busy = machine_busy_seconds()
    term.send(f"head -c {size} /dev/zero | tr '\\0' a; echo DONE$((40+2))\r")
    chars, seconds = read_until(term, "DONE42", timeout)
    busy = machine_busy_seconds() - busy
    drain(term)
    if chars < size:
        raise BenchError(f"bulk: only {chars} of {size} characters arrived")
    return BulkResult(chars, seconds, busy)


@dataclass
class FloodResult:
    seconds: float
    chars_during: int
    ctrl_c_seconds: float
    chars_after_ctrl_c: int
    #: characters of a 100 kB output, run right after the shell came back, that arrived
    followup_chars: int = 0


FOLLOWUP_CHARS = 100_000


def flood(
    term: TerminalClient,
    seconds: float,
    read_rate: float = 1_000_000.0,
    on_tick: Callable[[], None] | None = None,
    ctrl_c_timeout: float = 120.0,
) -> FloodResult:
    """`yes` while reading at `read_rate` chars/s, then Ctrl-C: time until the shell answers again.

    After Ctrl-C the client reads at full speed; the time counts until a command typed right
    after Ctrl-C has run (its computed output appears): the backlog is drained, the prompt back.
    """
    term.send("yes\r")
    start = time.perf_counter()
    received = 0
    while (now := time.perf_counter()) - start < seconds:
        # Throttle: never be ahead of read_rate, so the pipeline fills up behind the client.
        ahead = received / read_rate - (now - start)
        if ahead > 0:
            time.sleep(min(ahead, 0.05))
            if on_tick:
                on_tick()
            continue
        chunk = term.recv(0.05)
        if chunk:
            received += len(chunk)
        if on_tick:
            on_tick()
    if received == 0:
        raise BenchError("flood: `yes` produced no output")
    t0 = time.perf_counter()
    term.send(CTRL_C)
    term.send("echo CTRLC$((6*7))\r")
    after, tail = 0, ""
    resend = t0 + 5
    while True:
        now = time.perf_counter()
        if now - t0 > ctrl_c_timeout:
            raise BenchError(f"flood: shell did not come back within {ctrl_c_timeout:.0f} s")
        if now > resend:  # the typed command may have been flushed with the tty's input queue
            term.send(CTRL_C + "echo CTRLC$((6*7))\r")
            resend = now + 5
        chunk = term.recv(0.2)
        if on_tick:
            on_tick()
        if chunk is None:
            continue
        after += len(chunk)
        window = tail + chunk
        if "CTRLC42" in window:
            ctrl_c = time.perf_counter() - t0
            break
        tail = window[-7:]
    # Output of a command typed right after the interrupt must arrive in full.
    term.send(f"head -c {FOLLOWUP_CHARS} /dev/zero | tr '\\0' Q; echo AFTER$((1+1))\r")
    counted = [0]

    def count_q(chunk: str) -> None:
        counted[0] += chunk.count("Q")

    read_until(term, "AFTER2", 60, on_chunk=count_q)
    drain(term)
    # The echoed command line holds one "Q" of its own.
    return FloodResult(t0 - start, received, ctrl_c, after, max(0, counted[0] - 1))
