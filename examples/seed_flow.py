"""The seed's flow (UCloud's "interactive terminal session" example) with jupyter_ucloud.

    python examples/seed_flow.py --host http://127.0.0.1:8790 --refresh-token-file PATH

Against ``jupyter ucloud local`` (the refresh token is in its data dir); or any UCloud with
``--product``/``--application``. Prints each step, and ``hello_world.txt`` from ``ls -1``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jupyter_ucloud import UCloud, UCloudError
from jupyter_ucloud.protocol import JobSpecification, NameAndVersion, SimpleDuration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True, help="UCloud URL, e.g. http://127.0.0.1:8790")
    parser.add_argument("--refresh-token-file", required=True, type=Path)
    parser.add_argument("--product", default="compute-example")
    parser.add_argument("--application", default="terminal")
    parser.add_argument("--version", default="1")
    args = parser.parse_args(argv)

    uc = UCloud(host=args.host, refresh_token=args.refresh_token_file.read_text().strip())
    try:
        run(uc, args)
    except UCloudError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def run(uc: UCloud, args: argparse.Namespace) -> None:
    print("1. jobs.retrieveProducts")
    products = uc.products()
    product = products.find(args.product)
    if product is None:
        raise UCloudError(f"no product {args.product!r}")
    print(
        f"   {product.product.name} on {product.product.provider}: "
        f"terminal {'supported' if product.supports_terminal else 'NOT supported'}"
    )

    print(f"2. jobs.create: {args.application} {args.version} on {product.product.name}")
    spec = JobSpecification(
        application=NameAndVersion(name=args.application, version=args.version),
        product=product.product.reference,
        replicas=1,
        time_allocation=SimpleDuration(minutes=10),
        name="seed flow example",
    )
    job = uc.job(uc.jobs.create(spec))
    try:
        job.wait_until("RUNNING", timeout=120)
        with job.shell(0) as shell:
            shell.run("echo hello > hello_world.txt")
        print(f"3. jobs.openInteractiveSession({job.id}, rank 0, SHELL)")
        session = uc.jobs.open_interactive_session(job.id, 0, "SHELL")
        print("4. shell initialize 80x24")
        with uc.shells.open(session, cols=80, rows=24) as shell:
            print("5. input: ls -1")
            result = shell.run("ls -1")
            for line in result.output.splitlines():
                print(f"   {line}")
    finally:
        print(f"6. jobs.terminate({job.id})")
        job.terminate()


if __name__ == "__main__":
    sys.exit(main())
