"""Workloads of many shells at once: echo while other shells stream (fairness), opening shells
one at a time and 50 at once, and the REST API through the extension against a direct call.

The streaming shells are read in a separate process (``stream_worker``) so that reading them
takes no time from the process that times the keystrokes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import psutil
import requests

from .clients import TerminadoSocket
from .paths import Terminal
from .workloads import CTRL_C, CTRL_U, drain, read_until, time_to_first_output, wait_ready


class ManyShells(Protocol):
    name: str

    def create_terminal(self) -> Terminal: ...

    def delete_terminal(self, name: str) -> None: ...


@dataclass
class Stats:
    """Samples in ms, with the summary every table prints."""

    samples: list[float] = field(default_factory=list)
    #: CPU ms the servers spent on these samples, by server (``api_latency``).
    cpu_ms: dict[str, float] = field(default_factory=dict)

    def add(self, more: Sequence[float]) -> None:
        self.samples.extend(more)

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    @property
    def max(self) -> float:
        return max(self.samples)

    def over(self, limit_ms: float) -> float:
        """Share of samples over ``limit_ms``."""
        return sum(s > limit_ms for s in self.samples) / len(self.samples)


# --- the streaming shells, in their own process ---------------------------------------------


def stream_worker(terminals: list[tuple[str, dict[str, str]]], conn: Any) -> None:
    """Connect to each terminal, run `yes` in it and read everything as fast as it comes until
    told to stop; then Ctrl-C and close. Sends ("ready",) once every shell streams, and
    ("done", chars) at the end."""
    socks = [TerminadoSocket(url, headers) for url, headers in terminals]
    stop = threading.Event()
    counts = [0] * len(socks)
    started = [threading.Event() for _ in socks]

    def read(i: int) -> None:
        ws = socks[i].ws
        while not stop.is_set():
            try:
                frame = ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:
                return
            counts[i] += len(frame)
            if counts[i] > 100_000:
                started[i].set()

    for sock in socks:
        sock.send("yes\r")
    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(socks))]
    for thread in threads:
        thread.start()
    for event in started:
        event.wait(30)
    conn.send(("ready",))
    conn.recv()  # stop
    for sock in socks:
        with contextlib.suppress(Exception):
            sock.send(CTRL_C)
    stop.set()
    for thread in threads:
        thread.join(2)
    for sock in socks:
        with contextlib.suppress(Exception):
            sock.close()
    conn.send(("done", sum(counts)))


class Streams:
    """``k`` shells of ``path`` streaming `yes` in a worker process (a context manager)."""

    def __init__(self, path: ManyShells, k: int) -> None:
        self.path, self.k = path, k
        self.created: list[Terminal] = []
        self.chars = 0
        self.seconds = 0.0

    def __enter__(self) -> Streams:
        self.created = [self.path.create_terminal() for _ in range(self.k)]
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=stream_worker, args=([(t.url, t.headers) for t in self.created], child)
        )
        self.proc.start()
        if not self.conn.poll(60):
            raise RuntimeError("the streaming shells did not start within 60 s")
        self.conn.recv()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        try:
            self.conn.send(("stop",))
            if self.conn.poll(30):
                self.chars = self.conn.recv()[1]
        finally:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
            for terminal in self.created:
                with contextlib.suppress(Exception):
                    self.path.delete_terminal(terminal.name)


#: An echo slower than this is reported as it happens (``fairness``).
SLOW_ECHO_MS = 200.0


def paced_echo(term: TerminadoSocket, keystrokes: int, gap_s: float = 0.02) -> list[float]:
    """Typing: one character, wait for its echo, then a random pause (0-2x ``gap_s``), so the
    keystrokes fall at random points of the other shells' output. Ctrl-U every 50, untimed."""
    samples = []
    for i in range(keystrokes):
        if i and i % 50 == 0:
            term.send(CTRL_U)
            drain(term, quiet=0.03)
        time.sleep(random.uniform(0, 2 * gap_s))
        start = time.perf_counter()
        term.send("x")
        read_until(term, "x", 30)
        samples.append((time.perf_counter() - start) * 1000)
    term.send(CTRL_U)
    drain(term, quiet=0.05)
    return samples


@dataclass
class FairnessResult:
    #: (path, k) -> echo samples of the probe shell while k other shells stream
    echo: dict[tuple[str, int], Stats] = field(default_factory=dict)
    #: (path, k) -> MB/s the streaming shells delivered to their reader meanwhile
    stream_mb_s: dict[tuple[str, int], list[float]] = field(default_factory=dict)


def fairness(
    paths: Sequence[Any],
    ks: Sequence[int],
    rounds: int,
    keystrokes: int,
    say: Callable[[str], None],
) -> FairnessResult:
    """Echo on one shell of each path while ``k`` other shells of the same server stream,
    for each ``k``; the paths take turns within every round."""
    found = FairnessResult()
    probes: dict[str, TerminadoSocket] = {}
    for path in paths:
        probe = path.open().term
        wait_ready(probe)
        paced_echo(probe, 20)  # warm-up
        probes[path.name] = probe
    try:
        for round_ in range(rounds):
            for k in ks:
                order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
                for path in order:
                    say(f"fairness round {round_ + 1}/{rounds}: {path.name}, k={k}")
                    with Streams(path, k) as streams:
                        samples = paced_echo(probes[path.name], keystrokes)
                    found.echo.setdefault((path.name, k), Stats()).add(samples)
                    for index, ms in enumerate(samples):
                        if ms > SLOW_ECHO_MS:  # rare: say when, to look for the cause
                            say(f"slow echo: {path.name}, k={k}, keystroke {index}: {ms:.0f} ms")
                    rate = streams.chars / 1e6 / max(streams.seconds, 1e-9)
                    found.stream_mb_s.setdefault((path.name, k), []).append(rate)
    finally:
        for probe in probes.values():
            with contextlib.suppress(Exception):
                probe.close()
    return found


# --- opening shells ---------------------------------------------------------------------------


@dataclass
class OpenResult:
    one: dict[str, Stats] = field(default_factory=dict)  # ms to first output, one shell
    many: dict[str, Stats] = field(default_factory=dict)  # ms until all N have output


def _open_and_wait(path: ManyShells) -> tuple[Terminal, TerminadoSocket]:
    started = time.perf_counter()
    created = path.create_terminal()
    term = TerminadoSocket(created.url, created.headers)
    time_to_first_output(term, started)
    return created, term


def _close_all(path: ManyShells, opened: list[tuple[Terminal, TerminadoSocket]]) -> None:
    for created, term in opened:
        with contextlib.suppress(Exception):
            term.close()
        with contextlib.suppress(Exception):
            path.delete_terminal(created.name)


def opening(paths: Sequence[Any], rounds: int, many: int, say: Callable[[str], None]) -> OpenResult:
    """One shell at a time (time to its first output), then ``many`` at once (time until the
    last has output), the paths taking turns."""
    found = OpenResult()
    for round_ in range(rounds):
        order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
        for path in order:
            for _ in range(5):
                started = time.perf_counter()
                opened = [_open_and_wait(path)]
                found.one.setdefault(path.name, Stats()).add(
                    [(time.perf_counter() - started) * 1000]
                )
                _close_all(path, opened)
        for path in order:
            say(f"open round {round_ + 1}/{rounds}: {path.name}, {many} at once")
            started = time.perf_counter()
            with ThreadPoolExecutor(many) as pool:
                opened = list(pool.map(_open_and_wait, [path] * many))
            found.many.setdefault(path.name, Stats()).add([(time.perf_counter() - started) * 1000])
            _close_all(path, opened)
            time.sleep(1)  # let the shells go before the other path's turn
    return found


# --- the REST API -----------------------------------------------------------------------------


def api_latency(paths: Sequence[Any], calls: int, say: Callable[[str], None]) -> dict[str, Stats]:
    """``jobs.browse`` and ``jobs.retrieve`` through each bridge path's extension and straight
    to its UCloud server (one keep-alive session each, as a browser and a client library hold),
    all of them in turns, call by call. Also the CPU time of the path's Jupyter server and
    embedded server during each call (clock ticks of 10 ms, summed over the calls: the mean
    per call is unbiased once there are some hundreds of calls)."""
    targets: list[tuple[str, requests.Session, str]] = []
    procs: dict[str, dict[str, psutil.Process]] = {}
    directs = []
    for path in paths:
        jupyter, embedded = path.jupyter, path.embedded
        procs[path.name] = {
            "jupyter": psutil.Process(jupyter.pid),
            "embedded": psutil.Process(embedded.pid),
        }
        direct = requests.Session()
        directs.append(direct)
        token = direct.post(
            f"{embedded.url}/auth/refresh",
            headers={"Authorization": f"Bearer {embedded.refresh_token}"},
            timeout=30,
        )
        token.raise_for_status()
        direct.headers["Authorization"] = f"Bearer {token.json()['accessToken']}"
        # As the extension's own leg to the loopback and its answers to the browser: no
        # compression. (The embedded server gzips JSON over 1 KB for a client that asks; a
        # gzipped retrieve, 3.4 KB, cost the direct call some 0.4 ms and made the extension's
        # margin for retrieve look that much smaller than browse's, 0.7 KB and never gzipped.)
        direct.headers["Accept-Encoding"] = "identity"
        for op, query in (("browse", "itemsPerPage=50"), ("retrieve", f"id={path.job_id}")):
            targets.append(
                (
                    f"{op} via extension ({path.name})",
                    jupyter.http,
                    f"{jupyter.url}/ucloud/api/jobs/{op}?{query}",
                )
            )
            targets.append(
                (f"{op} direct ({path.name})", direct, f"{embedded.url}/api/jobs/{op}?{query}")
            )
        # The floor of any call through the Jupyter server: its own status call, no UCloud.
        status = f"{jupyter.url}/api/status"
        targets.append((f"Jupyter's own /api/status ({path.name})", jupyter.http, status))
    found: dict[str, Stats] = {label: Stats() for label, _, _ in targets}
    say(f"api: {calls} rounds of {len(targets)} calls")
    for _, session, url in targets:
        for _ in range(5):  # warm-up: connections, tokens
            session.get(url, timeout=30).raise_for_status()

    def cpu(label: str) -> dict[str, float]:
        name = label.rsplit("(", 1)[1].rstrip(")")
        out = {}
        for server, proc in procs[name].items():
            times = proc.cpu_times()
            out[server] = times.user + times.system
        return out

    for _ in range(calls):
        for label, session, url in targets:
            before = cpu(label)
            started = time.perf_counter()
            session.get(url, timeout=30).raise_for_status()
            found[label].add([(time.perf_counter() - started) * 1000])
            for server, seconds in cpu(label).items():
                spent = found[label].cpu_ms
                spent[server] = spent.get(server, 0.0) + (seconds - before[server]) * 1000
    for direct in directs:
        direct.close()
    return found
