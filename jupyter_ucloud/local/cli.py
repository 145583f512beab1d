"""``jupyter ucloud local``: run the embedded UCloud-compatible server until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .config import ConfigError, LocalConfig, load_config
from .store import StoreError

__all__ = ["add_arguments", "run"]

log = logging.getLogger("jupyter_ucloud.local")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="port to listen on (0: a free one; default 8790)")
    parser.add_argument("--ip", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--data-dir", type=Path, help="jobs, tokens and working directories")
    parser.add_argument("--config", type=Path, help="configuration file (.json or .toml)")
    parser.add_argument(
        "--ready-file",
        type=Path,
        help="write {url, pid, refreshTokenFile, providerId} here once listening",
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
        "--create-api-token",
        metavar="TITLE",
        nargs="?",
        const="api token",
        help="create an API token for the user, print it once, and exit",
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
    }
    return load_config(args.config, overrides)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="[%(levelname).1s %(asctime)s %(name)s] %(message)s",
    )
    try:
        config = _config_from(args)
    except ConfigError as err:
        print(f"jupyter ucloud local: {err}", file=sys.stderr)
        return 2
    try:
        if args.create_api_token is not None:
            return _create_api_token(config, args.create_api_token)
        _run_event_loop(_serve(config, args.ready_file))
    except (OSError, StoreError) as err:
        print(f"jupyter ucloud local: {err}", file=sys.stderr)
        return 1
    return 0


def _run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (fewer wake-up costs per keystroke on the
    provider's shell socket), else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _create_api_token(config: LocalConfig, title: str) -> int:
    from .auth import TokenAuthority
    from .server import LocalServer
    from .store import Store

    data_dir = LocalServer(config).data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "jobs.sqlite")
    try:
        token = TokenAuthority(config, store, data_dir).create_api_token(config.username, title)
    finally:
        store.close()
    print(token)  # shown once, on stdout, for the user who asked for it; only its hash is kept
    return 0


def _write_ready_file(path: Path, content: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(content))
    os.replace(tmp, path)


async def _serve(config: LocalConfig, ready_file: Path | None) -> None:
    from .server import LocalServer

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    server = LocalServer(config)
    await server.start()
    try:
        if ready_file is not None:
            _write_ready_file(
                ready_file,
                {
                    "url": server.url,
                    "pid": os.getpid(),
                    "refreshTokenFile": str(server.refresh_token_file),
                    "providerId": config.provider_id,
                },
            )
        await stopping.wait()
        log.info("Stopping")
    finally:
        await server.stop()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
