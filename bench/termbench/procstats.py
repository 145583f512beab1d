"""CPU time and resident memory of the server processes a path involves, sampled with psutil."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import psutil

MB = 1024 * 1024


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (every process and the kernel's
    own work, such as the tty layer's; not idle, I/O wait or time stolen by the hypervisor)."""
    times = psutil.cpu_times()
    busy = times.user + times.nice + times.system
    return busy + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


class ProcessWatch:
    """Samples RSS of labelled processes in a thread (peaks) and reads their CPU time on demand.

    Only the processes themselves are counted, not their children (the shells they run).
    """

    def __init__(self, pids: Mapping[str, int], interval: float = 0.05) -> None:
        self.procs = {label: psutil.Process(pid) for label, pid in pids.items()}
        self.peak: dict[str, int] = dict.fromkeys(self.procs, 0)
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="procwatch", daemon=True)

    def __enter__(self) -> ProcessWatch:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> dict[str, int]:
        """Current RSS per label (bytes); also folds it into the peaks."""
        now: dict[str, int] = {}
        for label, proc in self.procs.items():
            try:
                now[label] = proc.memory_info().rss
            except psutil.Error:
                continue
        with self._lock:
            for label, rss in now.items():
                self.peak[label] = max(self.peak[label], rss)
        return now

    def cpu(self) -> dict[str, float]:
        """Cumulative user+system CPU seconds per label."""
        out: dict[str, float] = {}
        for label, proc in self.procs.items():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            out[label] = times.user + times.system
        return out

    def peaks_since(self) -> PeakWindow:
        """Start a window whose peak RSS is tracked separately from the overall peak."""
        return PeakWindow(self)


class PeakWindow:
    """Peak RSS over a window (e.g. the flood), relative to RSS at its start."""

    def __init__(self, watch: ProcessWatch) -> None:
        self.watch = watch
        self.start = watch.sample()
        self.peak = dict(self.start)
        self._last = 0.0

    def tick(self) -> None:
        if time.monotonic() - self._last < 0.02:
            return
        self._last = time.monotonic()
        for label, rss in self.watch.sample().items():
            self.peak[label] = max(self.peak.get(label, 0), rss)

    def growth(self) -> dict[str, int]:
        self._last = 0.0
        self.tick()
        return {label: self.peak[label] - self.start.get(label, 0) for label in self.peak}


def busy_processes(seconds: float = 1.0, top: int = 5, min_percent: float = 5.0) -> list[str]:
    """The processes that kept a CPU busiest over ``seconds`` (``"name pid: N %"``), for the
    record of what else ran on the machine."""
    procs = []
    for proc in psutil.process_iter(["name", "pid"]):
        try:
            proc.cpu_percent(None)
            procs.append(proc)
        except psutil.Error:
            continue
    time.sleep(seconds)
    used = []
    for proc in procs:
        try:
            used.append((proc.cpu_percent(None), proc.info["name"], proc.info["pid"]))
        except psutil.Error:
            continue
    used.sort(reverse=True)
    return [f"{name} {pid}: {pct:.0f} %" for pct, name, pid in used[:top] if pct >= min_percent]


def stolen_share(before: Any, after: Any) -> float | None:
    """The share of the CPUs' time between two ``psutil.cpu_times()`` that the hypervisor gave
    to other guests (``steal``); ``None`` where the kernel does not count it. On a shared VM
    this is what moves every path's figures at once."""
    if not hasattr(before, "steal"):
        return None
    total = sum(after) - sum(before)
    return (after.steal - before.steal) / total if total > 0 else None


def settle(busy_cpus: float = 0.3, window: float = 0.5, limit: float = 15.0) -> float:
    """Wait until the machine is quiet: fewer than ``busy_cpus`` CPUs busy over ``window``
    seconds (what a workload before left behind, such as shells still being ended, would
    otherwise be measured with the next one). Gives up after ``limit`` seconds; returns the
    seconds waited."""
    started = time.monotonic()
    while True:
        before = machine_busy_seconds()
        time.sleep(window)
        if (machine_busy_seconds() - before) / window < busy_cpus:
            break
        if time.monotonic() - started > limit:
            break
    return time.monotonic() - started
