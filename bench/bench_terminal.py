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
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from termbench.paths import ALL_PATHS, make_paths
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
    load_before = os.getloadavg()[0]
    results = []
    try:
        shared_paths = [p for name in names for p in make_paths(name)]
        shared = shared_phase(shared_paths, sizes, log=not args.quiet)
        for name in names:
            for path in make_paths(name):
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

    print()
    print(
        f"# terminal benchmark, {started}, {platform.node()}, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}, "
        f"load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    )
    print(
        f"# {sizes.keystrokes} keystrokes per path in {sizes.echo_rounds} interleaved rounds, "
        f"bulk {sizes.bulk_mb:g} MB in {sizes.bulk_rounds}, "
        f"flood {sizes.flood_seconds:g} s at {sizes.flood_rate / 1e6:g} MB/s read rate"
    )
    print()
    print(full_report(results, args.markdown))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1, default=str))
    if any(r.status == "error" for r in results):
        return 1
    if args.strict and (missed := misses(results)):
        print("\n--strict: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
