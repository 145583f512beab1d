"""What one path measured, and how it is run (the same order for every path)."""

from __future__ import annotations

import contextlib
import time
import traceback
from dataclasses import dataclass, field

from .clients import TerminalClient
from .paths import BenchPath
from .procstats import ProcessWatch
from .workloads import (
    BulkResult,
    EchoResult,
    FloodResult,
    bulk_throughput,
    echo_latency,
    flood,
    wait_ready,
)


@dataclass
class Sizes:
    keystrokes: int = 1000
    echo_rounds: int = 10  # the keystrokes of every path, in this many interleaved rounds
    bulk_mb: float = 200.0
    flood_seconds: float = 10.0
    flood_rate: float = 1_000_000.0


@dataclass
class ProcessResult:
    cpu_total_s: float = 0.0
    cpu_bulk_s: float | None = None
    peak_rss: int = 0
    flood_growth: int | None = None


@dataclass
class PathResult:
    name: str
    description: str
    status: str = "ok"  # ok | skipped | error
    reason: str = ""
    first_output_s: float | None = None
    echo: EchoResult | None = None
    bulk: BulkResult | None = None
    flood: FloodResult | None = None
    processes: dict[str, ProcessResult] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def run_path(path: BenchPath, sizes: Sizes, workloads: set[str], log: bool = True) -> PathResult:
    """Set up `path`, run the workloads in a fixed order (echo, flood, bulk), tear it down.

    A workload that fails is recorded in `errors` and the next one gets a fresh terminal, so one
    broken measurement does not hide the others.
    """
    result = PathResult(path.name, path.description)
    if reason := path.unavailable():
        result.status, result.reason = "skipped", reason
        return result

    def say(text: str) -> None:
        if log:
            print(f"[bench] {path.name}: {text}", flush=True)

    def failed(what: str, error: Exception) -> None:
        result.errors[what] = f"{type(error).__name__}: {error}"
        say(f"{what} FAILED: {result.errors[what]}")
        if log:
            traceback.print_exc()

    term: TerminalClient | None = None
    try:
        say("starting")
        path.setup()
        with ProcessWatch(path.processes) as watch:
            cpu0 = watch.cpu()
            growth: dict[str, int] = {}
            bulk_cpu: dict[str, float] = {}
            for what in ("echo", "flood", "bulk"):
                if what not in workloads:
                    continue
                try:
                    if term is None:
                        opened = path.open()
                        term = opened.term
                        if result.first_output_s is None:
                            result.first_output_s = opened.first_output_s
                        wait_ready(term)
                    if what == "echo":
                        say(f"echo latency, {sizes.keystrokes} keystrokes")
                        result.echo = echo_latency(term, sizes.keystrokes)
                    elif what == "flood":
                        say(f"flood: {sizes.flood_seconds:g} s of `yes` read at 1 MB/s, Ctrl-C")
                        window = watch.peaks_since()
                        result.flood = flood(
                            term, sizes.flood_seconds, sizes.flood_rate, on_tick=window.tick
                        )
                        growth = window.growth()
                    else:
                        if result.flood is not None:
                            # Past the bridge's post-interrupt flush window (1 s): a flood's
                            # Ctrl-C must not shorten the next measurement.
                            time.sleep(2)
                        say(f"bulk output, {sizes.bulk_mb:g} MB")
                        before = watch.cpu()
                        result.bulk = bulk_throughput(term, sizes.bulk_mb)
                        after = watch.cpu()
                        bulk_cpu = {k: after[k] - before[k] for k in after if k in before}
                except Exception as error:
                    failed(what, error)
                    if term is not None:
                        _close_quietly(term)
                        term = None
            cpu1 = watch.cpu()
            watch.sample()
            for label in path.processes:
                result.processes[label] = ProcessResult(
                    cpu_total_s=cpu1.get(label, 0.0) - cpu0.get(label, 0.0),
                    cpu_bulk_s=bulk_cpu.get(label),
                    peak_rss=watch.peak.get(label, 0),
                    flood_growth=growth.get(label),
                )
        say("done")
    except Exception as error:
        failed("setup", error)
    finally:
        if term is not None:
            _close_quietly(term)
        try:
            path.teardown()
        except Exception as error:
            failed("teardown", error)
    if result.errors:
        result.status = "error"
        result.reason = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
    return result


@dataclass
class EchoRun:
    echo: EchoResult | None = None
    error: str = ""
    first_output_s: float | None = None


def interleaved_echo(paths: list[BenchPath], sizes: Sizes, log: bool = True) -> dict[str, EchoRun]:
    """Keystroke echo of every path, measured in rounds that take turns (round r starts with
    path r mod n), so a change in the machine's load hits every path alike. All the paths'
    servers run at once; each path gets one terminal. Returns each path's samples, or why
    it has none."""
    found: dict[str, EchoRun] = {path.name: EchoRun() for path in paths}
    terms: dict[str, TerminalClient] = {}
    ready: list[BenchPath] = []

    def say(text: str) -> None:
        if log:
            print(f"[bench] echo: {text}", flush=True)

    try:
        for path in paths:
            if path.unavailable():
                continue
            run = found[path.name]
            try:
                path.setup()
                ready.append(path)
                opened = path.open()
                terms[path.name] = opened.term
                run.first_output_s = opened.first_output_s
                wait_ready(opened.term)
                echo_latency(opened.term, 20)  # warm-up, not counted
            except Exception as error:
                run.error = f"{type(error).__name__}: {error}"
                say(f"{path.name} FAILED: {run.error}")
        names = [name for name in terms if not found[name].error]
        rounds = max(1, sizes.echo_rounds)
        per_round = max(1, sizes.keystrokes // rounds)
        samples: dict[str, list[float]] = {name: [] for name in names}
        say(f"{rounds} rounds of {per_round} keystrokes on {', '.join(names)}")
        for round_ in range(rounds):
            for i in range(len(names)):
                name = names[(round_ + i) % len(names)]
                if found[name].error:
                    continue
                try:
                    samples[name] += echo_latency(terms[name], per_round).samples_ms
                except Exception as error:
                    found[name].error = f"{type(error).__name__}: {error}"
                    say(f"{name} FAILED: {found[name].error}")
        for name in names:
            if not found[name].error:
                found[name].echo = EchoResult(samples[name])
    finally:
        for term in terms.values():
            _close_quietly(term)
        for path in ready:
            try:
                path.teardown()
            except Exception as error:
                say(f"{path.name} teardown FAILED: {error}")
    return found


def _close_quietly(term: TerminalClient) -> None:
    with contextlib.suppress(Exception):
        term.close()
