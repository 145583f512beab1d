"""What one path measured, and how it is run (the same order for every path)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

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
    keystrokes: int = 500
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


def run_path(path: BenchPath, sizes: Sizes, workloads: set[str], log: bool = True) -> PathResult:
    """Set up `path`, run the workloads in a fixed order (echo, flood, bulk), tear it down."""
    result = PathResult(path.name, path.description)
    if reason := path.unavailable():
        result.status, result.reason = "skipped", reason
        return result

    def say(text: str) -> None:
        if log:
            print(f"[bench] {path.name}: {text}", flush=True)

    try:
        say("starting")
        path.setup()
        with ProcessWatch(path.processes) as watch:
            cpu0 = watch.cpu()
            opened = path.open()
            result.first_output_s = opened.first_output_s
            term = opened.term
            try:
                wait_ready(term)
                if "echo" in workloads:
                    say(f"echo latency, {sizes.keystrokes} keystrokes")
                    result.echo = echo_latency(term, sizes.keystrokes)
                growth: dict[str, int] = {}
                if "flood" in workloads:
                    say(f"flood, {sizes.flood_seconds:g} s of `yes` read at 1 MB/s, then Ctrl-C")
                    window = watch.peaks_since()
                    result.flood = flood(
                        term, sizes.flood_seconds, sizes.flood_rate, on_tick=window.tick
                    )
                    growth = window.growth()
                bulk_cpu: dict[str, float] = {}
                if "bulk" in workloads:
                    say(f"bulk output, {sizes.bulk_mb:g} MB")
                    before = watch.cpu()
                    result.bulk = bulk_throughput(term, sizes.bulk_mb)
                    after = watch.cpu()
                    bulk_cpu = {k: after[k] - before[k] for k in after if k in before}
            finally:
                term.close()
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
        result.status = "error"
        result.reason = f"{type(error).__name__}: {error}"
        if log:
            traceback.print_exc()
    finally:
        try:
            path.teardown()
        except Exception as error:
            if result.status == "ok":
                result.status, result.reason = "error", f"teardown: {error}"
    return result
