#!/usr/bin/env python
"""Terminal benchmark: raw PTY, stock Jupyter terminal, UCloud provider leg, full bridge, Slurm.

Every path runs the same client code (keystroke echo, flood + Ctrl-C, bulk output) in one run,
with the stock Jupyter terminal measured alongside as the baseline. Keystroke echo and bulk
output come first, in rounds that take turns between the paths (all their servers up at once);
then each path in turn, on fresh servers, for the flood. Run `./dev bench --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from termbench.load import api_latency, fairness, opening
from termbench.load_report import api_table, fairness_table, open_table
from termbench.paths import ALL_PATHS, BenchPath, BridgePath, StockTerminalPath, make_paths
from termbench.procstats import busy_processes, settle, stolen_share
from termbench.report import full_report, misses
from termbench.results import PathResult, Sizes, merge_shared, run_flood, shared_phase
from termbench.servers import SCRATCH_DIRS, remove_scratch_dirs

QUICK = Sizes(keystrokes=60, echo_rounds=3, bulk_mb=6.0, bulk_rounds=2, flood_seconds=2.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(ALL_PATHS),
        help=f"comma-separated paths out of {','.join(ALL_PATHS)} (default: all)",
    )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--bulk-mb", type=float, help="bulk output size in MB (default 200)")
    parser.add_argument("--keystrokes", type=int, help="timed keystrokes per path (default 1000)")
    parser.add_argument(
        "--echo-rounds",
        type=int,
        help="interleaved rounds the keystrokes are measured in (default 10)",
    )
    parser.add_argument(
        "--bulk-rounds",
        type=int,
        help="interleaved rounds the bulk output is measured in (default 4)",
    )
    parser.add_argument("--flood-seconds", type=float, help="seconds of `yes` (default 10)")
    parser.add_argument(
        "--load",
        choices=("with", "only", "none"),
        default="with",
        help="the many-shell workloads (echo while k shells stream, opening 1 and 50 shells, "
        "the REST API via the extension): with the rest (default), only them, or none",
    )
    parser.add_argument("--ks", default="1,3,10", help="streaming shells per fairness run")
    parser.add_argument(
        "--fairness-rounds", type=int, default=3, help="interleaved rounds per k (default 3)"
    )
    parser.add_argument(
        "--fairness-keystrokes", type=int, default=100, help="keystrokes per round (default 100)"
    )
    parser.add_argument("--open-rounds", type=int, default=3, help="rounds of opening shells")
    parser.add_argument("--open-many", type=int, default=50, help="shells opened at once")
    parser.add_argument("--api-calls", type=int, default=200, help="calls of each API kind")
    parser.add_argument(
        "--compare-code",
        metavar="DIR",
        help="also measure a bridge whose servers run the jupyter_ucloud in DIR (e.g. an older "
        "commit: git archive <commit> jupyter_ucloud | tar -x -C DIR) in the same rounds, as "
        "the path 'bridge@<name of DIR>' (with --only bridge, or the many-shell workloads)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 also when a target is missed or output after Ctrl-C is lost",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--keep", action="store_true", help="keep the servers' scratch dirs (logs) in /tmp"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.bulk_mb is not None:
        sizes.bulk_mb = args.bulk_mb
    if args.keystrokes is not None:
        sizes.keystrokes = args.keystrokes
    if args.flood_seconds is not None:
        sizes.flood_seconds = args.flood_seconds
    if args.echo_rounds is not None:
        sizes.echo_rounds = args.echo_rounds
    if args.bulk_rounds is not None:
        sizes.bulk_rounds = args.bulk_rounds
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_PATHS]
    if unknown:
        print(f"unknown path(s): {', '.join(unknown)}; choose from {', '.join(ALL_PATHS)}")
        return 2

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = os.getloadavg()
    busy_before = busy_processes()
    cpu_before = psutil.cpu_times()
    results = []
    load_tables: list[str] = []
    try:
        if args.load != "none":
            load_tables = load_phase(args, log=not args.quiet)
        if args.load == "only":
            names = []

        def paths_of(name: str) -> list[BenchPath]:
            made = make_paths(name)
            if name == "bridge" and args.compare_code:
                made.append(compared_bridge(args.compare_code))
            return made

        shared_paths = [p for name in names for p in paths_of(name)]
        shared = shared_phase(shared_paths, sizes, log=not args.quiet) if names else {}
        for name in names:
            for path in paths_of(name):
                if "flood" in path.workloads:
                    result = run_flood(path, sizes, log=not args.quiet)
                else:
                    result = PathResult(path.name, path.description)
                    if reason := path.unavailable():
                        result.status, result.reason = "skipped", reason
                if result.status != "skipped" and path.name in shared:
                    merge_shared(result, shared[path.name])
                results.append(result)
    finally:
        if args.keep:
            print(f"[bench] scratch dirs kept: {' '.join(map(str, SCRATCH_DIRS))}")
        else:
            remove_scratch_dirs()

    load_after = os.getloadavg()
    busy_after = busy_processes()
    stolen = stolen_share(cpu_before, psutil.cpu_times())
    print()
    print(
        f"# terminal benchmark, {started}, {platform.node()}, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs (of {os.cpu_count()}), "
        f"Python {platform.python_version()}"
    )
    print(
        "# load average (1/5/15 min) "
        f"{' '.join(f'{v:.2f}' for v in load_before)} at start, "
        f"{' '.join(f'{v:.2f}' for v in load_after)} at end"
    )
    print(f"# busy processes at start: {', '.join(busy_before) or 'none over 5 %'}")
    print(f"# busy processes at end: {', '.join(busy_after) or 'none over 5 %'}")
    if stolen is not None:
        print(f"# CPU time stolen by the hypervisor during the run: {stolen:.1%}")
    if names:
        print(
            f"# {sizes.keystrokes} keystrokes per path in {sizes.echo_rounds} interleaved "
            f"rounds, bulk {sizes.bulk_mb:g} MB in {sizes.bulk_rounds}, "
            f"flood {sizes.flood_seconds:g} s at {sizes.flood_rate / 1e6:g} MB/s read rate"
        )
    if load_tables:
        print(
            f"# many shells: {args.fairness_keystrokes} keystrokes x {args.fairness_rounds} "
            f"rounds per k (stock and bridge in turns); opening in {args.open_rounds} rounds; "
            f"{args.api_calls} API calls of each kind"
        )
    print()
    if names:
        print(full_report(results, args.markdown))
    for table in load_tables:
        print()
        print(table)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1, default=str))
    if any(r.status == "error" for r in results):
        return 1
    if args.strict and (missed := misses(results)):
        print("\n--strict: " + "; ".join(missed))
        return 1
    return 0


def compared_bridge(code: str) -> BridgePath:
    """The bridge on the code in ``code`` (``--compare-code``)."""
    return BridgePath(f"bridge@{Path(code).name}", code)


def load_phase(args: argparse.Namespace, log: bool) -> list[str]:
    """The many-shell workloads on fresh stock and bridge servers, taking turns."""

    def say(text: str) -> None:
        if log:
            print(f"[bench] load: {text}", flush=True)

    stock, bridge = StockTerminalPath(), BridgePath()
    bridges = [bridge]
    if args.compare_code:
        bridges.append(compared_bridge(args.compare_code))
    paths = [stock, *bridges]
    tables = []
    try:
        say(f"starting servers for {', '.join(p.name for p in paths)}")
        for path in paths:
            path.setup()
        ks = [int(k) for k in args.ks.split(",") if k.strip()]

        def attempt(what: str, run: Callable[[], str]) -> None:
            say(f"{what}: waited {settle():.1f} s for the machine to be quiet")
            try:
                tables.append(run())
            except Exception as error:  # the other workloads still run
                say(f"{what} FAILED: {type(error).__name__}: {error}")
                tables.append(f"{what}: FAILED ({type(error).__name__}: {error})")

        if ks and args.fairness_rounds:
            attempt(
                "echo while other shells stream",
                lambda: fairness_table(
                    fairness(paths, ks, args.fairness_rounds, args.fairness_keystrokes, say),
                    args.markdown,
                ),
            )
        if args.open_rounds:
            attempt(
                "opening shells",
                lambda: open_table(
                    opening(paths, args.open_rounds, args.open_many, say),
                    args.markdown,
                    args.open_many,
                ),
            )
        if args.api_calls:
            attempt(
                "API latency",
                lambda: api_table(api_latency(bridges, args.api_calls, say), args.markdown),
            )
    finally:
        for path in paths:
            try:
                path.teardown()
            except Exception as error:
                say(f"{path.name} teardown FAILED: {error}")
    return tables


if __name__ == "__main__":
    sys.exit(main())
