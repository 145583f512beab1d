"""What one path measured, and how it is run (the same order for every path)."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from .clients import TerminalClient
from .paths import BenchPath
from .procstats import ProcessWatch, settle
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
    bulk_rounds: int = 4  # the bulk output of every path, in this many interleaved rounds
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


def run_flood(path: BenchPath, sizes: Sizes, log: bool = True) -> PathResult:
    """Set up `path` on its own, run the flood on one terminal, record its server processes
    (CPU, peak RSS, growth during the flood), tear it down. Echo and bulk run in
    ``shared_phase``."""
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
            try:
                opened = path.open()
                term = opened.term
                result.first_output_s = opened.first_output_s
                wait_ready(term)
                say(f"flood: {sizes.flood_seconds:g} s of `yes` read at 1 MB/s, Ctrl-C")
                window = watch.peaks_since()
                result.flood = flood(
                    term, sizes.flood_seconds, sizes.flood_rate, on_tick=window.tick
                )
                growth = window.growth()
            except Exception as error:
                failed("flood", error)
            cpu1 = watch.cpu()
            watch.sample()
            for label in path.processes:
                result.processes[label] = ProcessResult(
                    cpu_total_s=cpu1.get(label, 0.0) - cpu0.get(label, 0.0),
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
class SharedRun:
    """What a path measured in the shared phase (echo and bulk, in rounds)."""

    echo: EchoResult | None = None
    bulk: BulkResult | None = None
    errors: dict[str, str] = field(default_factory=dict)
    first_output_s: float | None = None
    cpu_total: dict[str, float] = field(default_factory=dict)
    cpu_bulk: dict[str, float] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)


def in_turns(
    names: list[str], rounds: int, measure: Callable[[str], None], failed: Callable[[str], bool]
) -> None:
    """``measure(name)`` for every name, ``rounds`` times; round r starts with name r mod n, so
    a change in the machine's load hits every path alike. Names that ``failed`` are left out."""
    for round_ in range(rounds):
        for i in range(len(names)):
            name = names[(round_ + i) % len(names)]
            if not failed(name):
                measure(name)


def shared_phase(paths: list[BenchPath], sizes: Sizes, log: bool = True) -> dict[str, SharedRun]:
    """Keystroke echo, then bulk output, of every path at once: all the paths' servers run, each
    path has one terminal, and the measurements take turns in rounds (``in_turns``), so the
    ratios against the baseline do not depend on when each path happened to run."""
    found: dict[str, SharedRun] = {path.name: SharedRun() for path in paths}
    terms: dict[str, TerminalClient] = {}
    watches: dict[str, ProcessWatch] = {}
    ready: list[BenchPath] = []
    by_name = {path.name: path for path in paths}

    def say(text: str) -> None:
        if log:
            print(f"[bench] shared: {text}", flush=True)

    def fail(name: str, what: str, error: Exception) -> None:
        found[name].errors[what] = f"{type(error).__name__}: {error}"
        say(f"{name} {what} FAILED: {found[name].errors[what]}")

    def failed(name: str) -> bool:
        return bool(found[name].errors)

    try:
        for path in paths:
            if path.unavailable():
                continue
            try:
                path.setup()
                ready.append(path)
                opened = path.open()
                terms[path.name] = opened.term
                found[path.name].first_output_s = opened.first_output_s
                wait_ready(opened.term)
                echo_latency(opened.term, 20)  # warm-up, not counted
                watches[path.name] = ProcessWatch(path.processes).__enter__()
            except Exception as error:
                fail(path.name, "setup", error)
        names = [name for name in terms if not failed(name)]
        cpu_start = {name: watches[name].cpu() for name in names}

        rounds = max(1, sizes.echo_rounds)
        per_round = max(1, sizes.keystrokes // rounds)
        samples: dict[str, list[float]] = {name: [] for name in names}
        say(f"echo: {rounds} rounds of {per_round} keystrokes on {', '.join(names)}")
        say(f"waited {settle():.1f} s for the machine to be quiet")

        def echo(name: str) -> None:
            try:
                samples[name] += echo_latency(terms[name], per_round).samples_ms
            except Exception as error:
                fail(name, "echo", error)

        in_turns(names, rounds, echo, failed)
        for name in names:
            if not failed(name):
                found[name].echo = EchoResult(samples[name])

        bulk_names = [n for n in names if "bulk" in by_name[n].workloads and not failed(n)]
        rounds = max(1, sizes.bulk_rounds)
        chars: dict[str, int] = dict.fromkeys(bulk_names, 0)
        seconds: dict[str, float] = dict.fromkeys(bulk_names, 0.0)
        machine: dict[str, float] = dict.fromkeys(bulk_names, 0.0)
        say(f"bulk: {rounds} rounds of {sizes.bulk_mb / rounds:g} MB on {', '.join(bulk_names)}")

        def bulk(name: str) -> None:
            before = watches[name].cpu()
            try:
                result = bulk_throughput(terms[name], sizes.bulk_mb / rounds)
            except Exception as error:
                fail(name, "bulk", error)
                return
            machine[name] += result.machine_cpu_s or 0.0
            after = watches[name].cpu()
            chars[name] += result.chars
            seconds[name] += result.seconds
            spent = found[name].cpu_bulk
            for label in after:
                spent[label] = spent.get(label, 0.0) + after[label] - before.get(label, 0.0)

        in_turns(bulk_names, rounds, bulk, failed)
        for name in bulk_names:
            if not failed(name):
                found[name].bulk = BulkResult(chars[name], seconds[name], machine[name])
        for name in names:
            end = watches[name].cpu()
            found[name].cpu_total = {
                label: end[label] - cpu_start[name].get(label, 0.0) for label in end
            }
            watches[name].sample()
            found[name].peak_rss = dict(watches[name].peak)
    finally:
        for watch in watches.values():
            watch.__exit__(None, None, None)
        for term in terms.values():
            _close_quietly(term)
        for path in ready:
            try:
                path.teardown()
            except Exception as error:
                say(f"{path.name} teardown FAILED: {error}")
    return found


def merge_shared(result: PathResult, shared: SharedRun) -> None:
    """Fold a path's shared-phase measurements into its result."""
    result.echo, result.bulk = shared.echo, shared.bulk
    if result.first_output_s is None:
        result.first_output_s = shared.first_output_s
    for label, cpu in shared.cpu_total.items():
        process = result.processes.setdefault(label, ProcessResult())
        process.cpu_total_s += cpu
        process.cpu_bulk_s = shared.cpu_bulk.get(label)
        process.peak_rss = max(process.peak_rss, shared.peak_rss.get(label, 0))
    if shared.errors:
        result.errors.update(shared.errors)
        result.status = "error"
        result.reason = "; ".join(f"{k}: {v}" for k, v in result.errors.items())


def _close_quietly(term: TerminalClient) -> None:
    with contextlib.suppress(Exception):
        term.close()
