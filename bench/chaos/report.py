"""The chaos run's table, timings, invariants and verdict."""

from __future__ import annotations

import statistics
from collections import defaultdict

from .scenario import Check, Round

HEADER = f"{'#':>3} {'t/s':>6}  {'killed':<16} {'which':<34} {'clients were told':<36} timings"


def _seconds(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}s"
    return f"{statistics.median(values):.2f}/{max(values):.2f}s"


def round_lines(r: Round) -> list[str]:
    timings = " ".join(f"{name} {_seconds(v)}" for name, v in r.timings.items() if v)
    lines = [f"{r.number:>3} {r.at:>6.1f}  {r.target:<16} {r.detail:<34} {r.told:<36} {timings}"]
    lines += [f"      FAIL {c.name}: {c.detail}" for c in r.checks if not c.ok]
    return lines


def summary_lines(rounds: list[Round], final: list[Check], wall: float) -> list[str]:
    lines = ["", f"{len(rounds)} rounds in {wall:.0f} s"]
    by_target: dict[str, int] = defaultdict(int)
    for r in rounds:
        by_target[r.target] += 1
    lines.append("kills: " + ", ".join(f"{t} {n}" for t, n in sorted(by_target.items())))
    lines += ["", "timings (median / max / n), seconds:"]
    timings: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rounds:
        for name, values in r.timings.items():
            timings[(r.target, name)] += values
    for (target, name), values in sorted(timings.items()):
        if values:
            lines.append(
                f"  {target:<16} {name:<20} {statistics.median(values):6.2f} "
                f"{max(values):6.2f} {len(values):4d}"
            )
    lines += ["", "invariants after each kill (passed / checked):"]
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rounds:
        for check in r.checks:
            counts[check.name][0] += check.ok
            counts[check.name][1] += 1
    for name, (passed, total) in counts.items():
        lines.append(f"  {name:<16} {passed}/{total}" + ("" if passed == total else "  FAILING"))
    lines += ["", "at the end:"]
    for check in final:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"  {mark} {check.name}" + (f": {check.detail}" if check.detail else ""))
    failures = [(r, c) for r in rounds for c in r.checks if not c.ok]
    if failures:
        lines += ["", "findings:"]
        lines += [
            f"  round {r.number} ({r.target} {r.detail}): {c.name}: {c.detail}" for r, c in failures
        ]
    return lines


def verdict(rounds: list[Round], final: list[Check]) -> bool:
    return bool(rounds) and all(r.ok for r in rounds) and all(c.ok for c in final)
