"""`jupyter ucloud ...` command line (entry point `jupyter-ucloud`)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter ucloud", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from .local.cli import add_arguments as add_local_arguments

    local = sub.add_parser("local", help="run the embedded UCloud-compatible server")
    add_local_arguments(local)
    args = parser.parse_args(argv)
    if args.command == "local":
        from .local.cli import run

        return run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
