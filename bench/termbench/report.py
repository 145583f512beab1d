"""Tables: per path, per server process, and ratios against the stock terminal with targets."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .procstats import MB
from .results import PathResult
from .workloads import FOLLOWUP_CHARS

# Targets for the bridge (and the provider leg), relative to the stock Jupyter terminal.
ECHO_P50_RATIO_MAX = 1.5
THROUGHPUT_RATIO_MIN = 1.5
FLOOD_GROWTH_MAX_MB = 50.0
CTRL_C_MAX_S = 1.0


def _f(value: float | None, fmt: str, failed: bool = False) -> str:
    if value is None:
        return "FAILED" if failed else "-"
    return format(value, fmt)


def render(rows: Sequence[Sequence[str]], header: Sequence[str], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def main_table(results: Sequence[PathResult], markdown: bool) -> str:
    header = [
        "path", "first output s", "echo p50 ms", "echo p99 ms", "bulk MB/s",
        "server CPU s (bulk)", "flood RSS growth MB", "Ctrl-C s",
    ]  # fmt: skip
    rows = []
    for r in results:
        if r.status == "skipped" or "setup" in r.errors:
            continue
        bulk_cpu = [p.cpu_bulk_s for p in r.processes.values() if p.cpu_bulk_s is not None]
        growth = [p.flood_growth for p in r.processes.values() if p.flood_growth is not None]
        rows.append(
            [
                r.name,
                _f(r.first_output_s, ".3f"),
                _f(r.echo and r.echo.p50, ".3f", "echo" in r.errors),
                _f(r.echo and r.echo.p99, ".3f", "echo" in r.errors),
                _f(r.bulk and r.bulk.mb_per_s, ".1f", "bulk" in r.errors),
                _f(sum(bulk_cpu) if bulk_cpu else None, ".2f", "bulk" in r.errors),
                _f(max(growth) / MB if growth else None, ".1f", "flood" in r.errors),
                _f(r.flood and r.flood.ctrl_c_seconds, ".2f", "flood" in r.errors),
            ]
        )
    return render(rows, header, markdown)


def _per_100_mb(cpu_s: float | None, r: PathResult) -> float | None:
    if cpu_s is None or r.bulk is None or not r.bulk.chars:
        return None
    return cpu_s / (r.bulk.chars / 1e8)


def process_table(results: Sequence[PathResult], markdown: bool) -> str:
    header = [
        "path", "server process", "CPU s (whole run)", "CPU s (bulk)", "CPU s per 100 MB (bulk)",
        "peak RSS MB", "flood RSS growth MB",
    ]  # fmt: skip
    rows = [
        [
            r.name,
            label,
            _f(p.cpu_total_s, ".2f"),
            _f(p.cpu_bulk_s, ".2f"),
            _f(_per_100_mb(p.cpu_bulk_s, r), ".2f"),
            _f(p.peak_rss / MB, ".1f"),
            _f(None if p.flood_growth is None else p.flood_growth / MB, ".1f"),
        ]
        for r in results
        if r.status != "skipped"
        for label, p in r.processes.items()
    ]
    return render(rows, header, markdown)


def cpu_budget_table(results: Sequence[PathResult], markdown: bool) -> str | None:
    """Bulk output against the machine's CPUs: how busy the whole machine was (clients, shells
    and the kernel's tty work included), and what the busiest server process of each path
    could carry with a core of its own - the throughput a machine with more cores would see."""
    cpus = os.cpu_count() or 1
    header = [
        "path", "bulk MB/s", f"machine CPUs busy (of {cpus})", "machine CPU s per 100 MB",
        "busiest server process CPU s per 100 MB", "MB/s with a core per server process",
    ]  # fmt: skip
    rows = []
    for r in results:
        if r.bulk is None or r.bulk.machine_cpu_s is None or not r.bulk.seconds:
            continue
        per_process = [_per_100_mb(p.cpu_bulk_s, r) for p in r.processes.values()]
        busiest = max((c for c in per_process if c is not None), default=None)
        rows.append(
            [
                r.name,
                f"{r.bulk.mb_per_s:.1f}",
                f"{r.bulk.machine_cpu_s / r.bulk.seconds:.2f}",
                _f(_per_100_mb(r.bulk.machine_cpu_s, r), ".2f"),
                _f(busiest, ".2f"),
                _f(100 / busiest if busiest else None, ".0f"),
            ]
        )
    return render(rows, header, markdown) if rows else None


def flood_table(results: Sequence[PathResult], markdown: bool) -> str:
    header = [
        "path", "flood s", "chars read during flood", "chars after Ctrl-C", "Ctrl-C s",
        f"next command's {FOLLOWUP_CHARS // 1000} kB output",
    ]  # fmt: skip
    rows = [
        [
            r.name,
            f"{r.flood.seconds:.1f}",
            str(r.flood.chars_during),
            str(r.flood.chars_after_ctrl_c),
            f"{r.flood.ctrl_c_seconds:.2f}",
            "complete"
            if r.flood.followup_chars >= FOLLOWUP_CHARS
            else f"LOST {FOLLOWUP_CHARS - r.flood.followup_chars} chars",
        ]
        for r in results
        if r.flood is not None
    ]
    return render(rows, header, markdown)


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


#: The baseline each path is held to: the stock terminal, except Slurm's against plain srun.
BASELINES = {"slurm": "srun"}
NOT_COMPARED = {"stock", "srun"}


def _ratio_row(r: PathResult, base: PathResult) -> list[str]:
    cells = [f"{r.name} vs {base.name}"]
    if r.echo and base.echo:
        ratio = r.echo.p50 / base.echo.p50
        cells.append(f"{ratio:.2f}x {_mark(ratio <= ECHO_P50_RATIO_MAX)}")
    else:
        cells.append("-")
    if r.bulk and base.bulk:
        ratio = r.bulk.mb_per_s / base.bulk.mb_per_s
        cells.append(f"{ratio:.2f}x {_mark(ratio >= THROUGHPUT_RATIO_MIN)}")
    else:
        cells.append("-")
    growth = [p.flood_growth for p in r.processes.values() if p.flood_growth is not None]
    if growth:
        worst = max(growth) / MB
        cells.append(f"{worst:.1f} MB {_mark(worst < FLOOD_GROWTH_MAX_MB)}")
    else:
        cells.append("-")
    if r.flood:
        seconds = r.flood.ctrl_c_seconds
        cells.append(f"{seconds:.2f} s {_mark(seconds < CTRL_C_MAX_S)}")
    else:
        cells.append("-")
    return cells


def _ratio_rows(results: Sequence[PathResult]) -> list[list[str]]:
    measured = {r.name: r for r in results if r.status != "skipped"}
    rows = []
    for r in measured.values():
        base = measured.get(BASELINES.get(r.name, "stock"))
        if r.name in NOT_COMPARED or base is None:
            continue
        rows.append(_ratio_row(r, base))
    stock = measured.get("stock")
    if stock is not None and stock.flood:
        growth = [p.flood_growth for p in stock.processes.values() if p.flood_growth is not None]
        rows.append(
            [
                "(stock itself)",
                "1.00x",
                "1.00x",
                f"{max(growth) / MB:.1f} MB" if growth else "-",
                f"{stock.flood.ctrl_c_seconds:.2f} s",
            ]
        )
    return rows


def ratio_table(results: Sequence[PathResult], markdown: bool) -> str | None:
    header = [
        "path vs baseline",
        f"echo p50 ratio (<= {ECHO_P50_RATIO_MAX:g}x)",
        f"throughput ratio (>= {THROUGHPUT_RATIO_MIN:g}x)",
        f"flood RSS growth (< {FLOOD_GROWTH_MAX_MB:g} MB)",
        f"Ctrl-C (< {CTRL_C_MAX_S:g} s)",
    ]
    rows = _ratio_rows(results)
    return render(rows, header, markdown) if rows else None


def misses(results: Sequence[PathResult]) -> list[str]:
    """Targets missed and output lost, one line each (for `--strict`)."""
    out = [
        f"{row[0]}: {cell}"
        for row in _ratio_rows(results)
        for cell in row[1:]
        if cell.endswith("MISS")
    ]
    out += [
        f"{r.name}: output after Ctrl-C lost"
        for r in results
        if r.flood is not None and r.flood.followup_chars < FOLLOWUP_CHARS
    ]
    return out


def not_run(results: Sequence[PathResult]) -> str:
    lines = [f"skipped {r.name}: {r.reason}" for r in results if r.status == "skipped"]
    lines += [f"ERROR {r.name} {what}: {why}" for r in results for what, why in r.errors.items()]
    return "\n".join(lines)


def full_report(results: Sequence[PathResult], markdown: bool) -> str:
    parts = [main_table(results, markdown)]
    if any(r.processes for r in results):
        parts.append(process_table(results, markdown))
    if budget := cpu_budget_table(results, markdown):
        parts.append(budget)
    if any(r.flood for r in results):
        parts.append(flood_table(results, markdown))
    ratios = ratio_table(results, markdown)
    if ratios:
        parts.append(ratios)
    if skipped := not_run(results):
        parts.append(skipped)
    return "\n\n".join(parts)
