"""``jupyter ucloud local [status|stop]``: run, inspect or stop the embedded UCloud server.

``jupyter ucloud local`` serves until SIGTERM/SIGINT (the jobs keep running under their
supervisors, or in Slurm, and the next server re-adopts them), until ``jupyter ucloud local
stop`` (SIGUSR1: every job is terminated first), or, with ``--idle-timeout``, until it has had no
job and no client for that long. A second one on the same data dir reports the first and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from .. import logredact
from ..heap import freeze_startup_heap
from . import umask
from .backends import BACKENDS
from .config import ConfigError, LocalConfig, load_config
from .instance import find_running, pid_alive, read_info, write_info
from .store import StoreError

__all__ = ["add_arguments", "run"]

log = logging.getLogger("jupyter_ucloud.local")

STOP_SIGNAL = signal.SIGUSR1
LOCAL_STOP_WHY = (
    "The job was terminated: the embedded server was stopped (jupyter ucloud local stop)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("serve", "status", "stop"),
        default="serve",
        help="serve (default); status: what runs; stop: terminate every job and stop the server",
    )
    parser.add_argument("--port", type=int, help="port to listen on (0: a free one; default 8790)")
    parser.add_argument("--ip", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--data-dir", type=Path, help="jobs, tokens and working directories")
    parser.add_argument("--config", type=Path, help="configuration file (.json or .toml)")
    parser.add_argument(
        "--ready-file",
        type=Path,
        help="also write {url, pid, refreshTokenFile, providerId} here once listening",
    )
    parser.add_argument("--backend", choices=BACKENDS, help="where jobs run (default process)")
    parser.add_argument(
        "--provider-id", help="provider id of the embedded provider (default local)"
    )
    parser.add_argument("--public-url", help="base URL clients reach this server at")
    parser.add_argument(
        "--access-token-lifetime",
        type=float,
        metavar="SECONDS",
        help="lifetime of access tokens (default 600)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="stop after this long without jobs, open shells or requests (default: never)",
    )
    parser.add_argument(
        "--create-api-token",
        metavar="TITLE",
        nargs="?",
        const="api token",
        help="create an API token for the user, print it once, and exit",
    )
    parser.add_argument("--json", action="store_true", help="status: print JSON")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="stop: seconds to wait (default 120)"
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def _config_from(args: argparse.Namespace) -> LocalConfig:
    overrides = {
        "port": args.port,
        "ip": args.ip,
        "data_dir": args.data_dir,
        "backend": args.backend,
        "provider_id": args.provider_id,
        "public_url": args.public_url,
        "access_token_lifetime": args.access_token_lifetime,
        "idle_timeout": args.idle_timeout,
    }
    return load_config(args.config, overrides)


def _data_dir(config: LocalConfig) -> Path:
    from .server import default_data_dir

    return (config.data_dir or default_data_dir()).expanduser().resolve()


def run(args: argparse.Namespace) -> int:
    umask.restrictive_umask()  # everything the server writes is 0600/0700 (see local/umask.py)
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="[%(levelname).1s %(asctime)s %(name)s] %(message)s",
    )
    logredact.install()  # no session id or token in any log line or traceback (logredact.py)
    try:
        config = _config_from(args)
    except ConfigError as err:
        print(f"jupyter ucloud local: {err}", file=sys.stderr)
        return 2
    if args.action == "status":
        return _status(_data_dir(config), as_json=args.json)
    if args.action == "stop":
        return _stop(_data_dir(config), args.timeout)
    try:
        if args.create_api_token is not None:
            return _create_api_token(config, args.create_api_token)
        return _run_event_loop(_serve(config, args.ready_file))
    except (OSError, StoreError) as err:
        print(f"jupyter ucloud local: {err}", file=sys.stderr)
        return 1


def _run_event_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop when it is installed (fewer wake-up costs per keystroke on the
    provider's shell socket), else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _create_api_token(config: LocalConfig, title: str) -> int:
    from .auth import TokenAuthority
    from .store import Store

    data_dir = _data_dir(config)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "jobs.sqlite")
    try:
        token = TokenAuthority(config, store, data_dir).create_api_token(config.username, title)
    finally:
        store.close()
    print(token)  # shown once, on stdout, for the user who asked for it; only its hash is kept
    return 0


async def _serve(config: LocalConfig, ready_file: Path | None) -> int:
    from .server import AlreadyRunning, LocalServer

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    end_jobs = False

    def stop_everything() -> None:
        nonlocal end_jobs
        end_jobs = True
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(STOP_SIGNAL, stop_everything)
    # Jobs create files as the user's own umask says; the server's files stay private.
    server = LocalServer(config, job_umask=umask.ORIGINAL_UMASK)
    try:
        await server.start()
    except AlreadyRunning as err:
        info = err.info or await asyncio.to_thread(find_running, server.data_dir, 10.0)
        if info is not None and ready_file is not None:
            write_info(info, ready_file)
        print(f"jupyter ucloud local: {err}; not starting another", file=sys.stderr)
        return 0
    try:
        frozen = freeze_startup_heap()  # see heap.py: short full collections from now on
        log.info("%d objects of start-up exempted from full garbage collections", frozen)
        if ready_file is not None:
            write_info(server.info(), ready_file)
        idle = asyncio.ensure_future(server.idle.wait())
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({idle, stop}, return_when=asyncio.FIRST_COMPLETED)
        idle.cancel()
        stop.cancel()
        if end_jobs:
            count = await server.end_jobs(LOCAL_STOP_WHY)
            log.info("Stopping: terminated %d job(s)", count)
        else:
            _log_jobs_left(server)
    finally:
        await server.stop()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    return 0


def _log_jobs_left(server: Any) -> None:
    jobs = server.store.active_jobs()
    if jobs:
        log.info(
            "Stopping; %d job(s) keep running and the next server adopts them"
            " (end them with: jupyter ucloud local stop --data-dir %s)",
            len(jobs),
            server.data_dir,
        )
    else:
        log.info("Stopping")


# --- status and stop --------------------------------------------------------------------------


def _active_jobs(data_dir: Path) -> list[dict[str, Any]]:
    """The jobs that have not ended, read from the store without writing to it."""
    path = data_dir / "jobs.sqlite"
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT id, state, specification, backend_state, work_dir FROM jobs"
                " WHERE state IN ('IN_QUEUE', 'RUNNING', 'SUSPENDED') ORDER BY id"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as err:
        raise OSError(f"cannot read the job store {path}: {err}") from None
    jobs = []
    for job_id, state, spec_json, backend_json, work_dir in rows:
        spec = json.loads(spec_json)
        backend = json.loads(backend_json or "{}")
        supervisor = backend.get("supervisor") or {}
        pid = supervisor.get("pid")
        jobs.append(
            {
                "id": str(job_id),
                "state": state,
                "name": spec.get("name"),
                "application": (spec.get("application") or {}).get("name"),
                "product": (spec.get("product") or {}).get("id"),
                "replicas": spec.get("replicas", 1),
                "supervisorPid": pid,
                "supervisorAlive": bool(isinstance(pid, int) and pid_alive(pid)),
                "slurmJobId": backend.get("slurm_job_id"),
                "folder": work_dir,
            }
        )
    return jobs


def _status(data_dir: Path, *, as_json: bool) -> int:
    info = find_running(data_dir)
    try:
        jobs = _active_jobs(data_dir)
    except OSError as err:
        print(f"jupyter ucloud local: {err}", file=sys.stderr)
        return 1
    if as_json:
        server = info.to_json() if info is not None else None
        print(json.dumps({"dataDir": str(data_dir), "server": server, "jobs": jobs}, indent=2))
        return 0
    if info is None:
        print(f"No embedded server is running for {data_dir}.")
    else:
        up = time.time() - info.started_at if info.started_at else 0
        print(
            f"Embedded server for {data_dir}: pid {info.pid}, {info.url}, backend {info.backend},"
            f" up {_duration(up)}."
        )
    if not jobs:
        print("No job is running.")
    for job in jobs:
        where = (
            f"Slurm job {job['slurmJobId']}"
            if job["slurmJobId"]
            else f"supervisor pid {job['supervisorPid']}"
            + ("" if job["supervisorAlive"] else " (gone)")
        )
        name = f" '{job['name']}'" if job["name"] else ""
        print(
            f"  job {job['id']}{name}: {job['state']}, {job['application']} on {job['product']},"
            f" {job['replicas']} rank(s), {where}"
        )
    return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _stop(data_dir: Path, timeout: float) -> int:
    """Terminate every job and stop the server: through the server when one runs, else by
    asking each job's supervisor directly (the next server then records the outcomes)."""
    info = find_running(data_dir, wait=5.0)
    if info is not None:
        os.kill(info.pid, STOP_SIGNAL)
        deadline = time.monotonic() + timeout
        while pid_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(info.pid):
            print(
                f"jupyter ucloud local: the server (pid {info.pid}) did not stop within"
                f" {timeout:g} s",
                file=sys.stderr,
            )
            return 1
        print(f"Stopped the embedded server for {data_dir} (pid {info.pid}) and its jobs.")
        return 0
    try:
        jobs = _active_jobs(data_dir)
    except OSError as err:
        print(f"jupyter ucloud local: {err}", file=sys.stderr)
        return 1
    orphans = [job for job in jobs if job["supervisorAlive"]]
    if orphans:
        ended = asyncio.run(_terminate_supervised(orphans, timeout))
        print(f"No server was running for {data_dir}; terminated {ended} job(s) it had left.")
    else:
        stale = read_info(data_dir)
        gone = f" (pid {stale.pid} is gone)" if stale is not None else ""
        print(f"No embedded server is running for {data_dir}{gone}.")
    return 0


async def _terminate_supervised(jobs: list[dict[str, Any]], timeout: float) -> int:
    from .supervisor.client import SupervisorRefused, SupervisorUnavailable, call

    ended = 0
    for job in jobs:
        message = {"op": "terminate", "state": "SUCCESS", "why": LOCAL_STOP_WHY}
        try:
            await call(Path(job["folder"]), message, timeout)
            ended += 1
        except (SupervisorUnavailable, SupervisorRefused) as err:
            print(f"job {job['id']}: {err}", file=sys.stderr)
    return ended
