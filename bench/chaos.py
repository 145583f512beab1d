#!/usr/bin/env python
"""Chaos test of "jobs outlive JupyterLab": kill -9 a random part while clients type.

Set-up: a real Jupyter server with jupyter_ucloud in embedded mode (the extension starts the
embedded server; with --slurm its config puts it on the Slurm backend of $SLURM_CONF), three
interactive jobs (2 + 2 + 1 ranks), one terminal client per rank attached through the
extension's terminal websocket and typing numbered lines into a file in its rank's folder, and a
batch job writing numbered lines to its stdout for the whole run.

Each round kills -9 one of: the Jupyter server (started again), the embedded server (the
extension starts a new one, which re-adopts the jobs), one client's login shell, or (--slurm) a
node's slurmd (started again). Then it checks that every client was told what happened and
typed on in a new shell, the jobs are the same ones and still RUNNING, no acknowledged line was
lost, the batch output is in order, exactly one embedded server runs and no shell was left
behind. At the end: everything is stopped with `jupyter ucloud local stop` and nothing of the
run may be left. Exit status 1 when an invariant failed. See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this jupyter_ucloud
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (chaos/)

from chaos.ending import cleanup, finish
from chaos.kills import KILLS
from chaos.report import HEADER, round_lines, summary_lines, verdict
from chaos.scenario import Check, Round, Scenario

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="kills at most (default 30)")
    parser.add_argument(
        "--seconds", type=float, default=600, help="no new round after this long (default 600)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: time); printed")
    parser.add_argument("--slurm", action="store_true", help="the embedded server on Slurm")
    parser.add_argument(
        "--extra",
        action="store_true",
        help="also kill two parts at once: Jupyter + embedded server, the embedded server twice",
    )
    parser.add_argument(
        "--slurmd-down",
        type=float,
        default=3.0,
        help="a killed slurmd stays down up to this long (default 3 s; keep it well under the"
        " cluster's SlurmdTimeout, or the node goes DOWN and its jobs with it)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The servers under test are the sources next to this script (every child inherits this).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    if args.slurm and not os.environ.get("SLURM_CONF"):
        print('--slurm needs SLURM_CONF (eval "$(scripts/dev-slurm start)")', file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="ucloud-chaos-"))
    hours = max(1, math.ceil((args.seconds + 900) / 3600))
    scenario = Scenario(root, args.slurm, rng, hours)
    scenario.slurmd_down = max(0.5, args.slurmd_down)
    backend = "slurm" if args.slurm else "process"
    print(
        f"# chaos: backend {backend}, seed {seed}, at most {args.rounds} rounds / "
        f"{args.seconds:g} s, scratch {root}",
        flush=True,
    )
    rounds: list[Round] = []
    final: list[Check] = []
    started = time.monotonic()
    try:
        scenario.setup()
        jobs = ", ".join(f"{j.key}={j.id} ({j.replicas} rank(s))" for j in scenario.jobs)
        print(f"# jobs {jobs}; {len(scenario.clients)} clients typing", flush=True)
        print(HEADER, flush=True)
        loop_start = time.monotonic()
        while len(rounds) < args.rounds and time.monotonic() - loop_start < args.seconds:
            target = rng.choice(scenario.targets(args.extra))
            r = Round(len(rounds) + 1, time.monotonic() - loop_start, target)
            killed = KILLS[target](scenario, r)
            scenario.check_round(r, killed)
            rounds.append(r)
            print("\n".join(round_lines(r)), flush=True)
            time.sleep(rng.uniform(0.5, 2.0))  # the clients type on
        embedded_kills = sum(r.embedded_killed for r in rounds)
        final = finish(scenario, embedded_kills)
    except Exception as err:  # the run could not go on: a failure, with where it happened
        traceback.print_exc()
        where = f"round {len(rounds) + 1}" if scenario.clients else "set-up"
        final.append(Check("run completed", False, f"{where}: {type(err).__name__}: {err}"))
    finally:
        notes = cleanup(scenario)
        for note in notes:
            print(f"# clean-up: {note}", flush=True)
    wall = time.monotonic() - started
    for line in summary_lines(rounds, final, wall):
        print(line)
    ok = verdict(rounds, final)
    print(f"\nverdict: {'PASS' if ok else 'FAIL'} (backend {backend}, seed {seed})")
    if args.json:
        results = {
            "backend": backend,
            "seed": seed,
            "wall_seconds": wall,
            "rounds": [{k: v for k, v in asdict(r).items() if k != "expect"} for r in rounds],
            "final": [asdict(c) for c in final],
            "verdict": ok,
        }
        args.json.write_text(json.dumps(results, indent=1))
    if ok and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"logs kept in {root}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
