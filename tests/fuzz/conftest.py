"""The fuzzer's servers, its example budget, and the per-test leak check.

One embedded server (``jupyter ucloud local``) and one Jupyter server with the extension (both real
child processes) serve the whole ``tests/fuzz`` directory. The budget of examples per test is
``UCLOUD_FUZZ_EXAMPLES`` (default ``DEFAULT_EXAMPLES``); examples are derandomized (the same in
every CI run) unless ``UCLOUD_FUZZ_RANDOM=1``. No example database is kept.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, settings

from ..conftest import LocalServerProcess
from ..notebooks.jupyter_server_process import JupyterServerProcess

DEFAULT_EXAMPLES = 40
EXAMPLES = int(os.environ.get("UCLOUD_FUZZ_EXAMPLES", str(DEFAULT_EXAMPLES)))

settings.register_profile(
    "ucloud-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("UCLOUD_FUZZ_RANDOM", "") != "1",
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,  # the leak check is per test on purpose
    ],
)
settings.load_profile("ucloud-fuzz")

#: How long a server may take to close what a test opened before it counts as left behind.
SETTLE_SECONDS = 15.0


@pytest.fixture(scope="package")
def fuzz_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    """The fuzzed embedded server (its own: the fuzzer terminates jobs by guessed ids)."""
    server = LocalServerProcess(tmp_path_factory.mktemp("fuzz-local")).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def fuzz_jupyter(
    fuzz_local: LocalServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServerProcess]:
    """A Jupyter server with the extension, on ``fuzz_local``."""
    server = JupyterServerProcess(
        root=tmp_path_factory.mktemp("fuzz-jupyter"),
        ucloud_host=fuzz_local.url,
        credentials_file=fuzz_local.data_dir / "refresh_token",
        # A followed job's upstream stream stays open this long after its last follower left
        # (30 s by default); the leak check waits for it to close.
        ucloud_extra={"follow_linger": 1.0},
    ).start()
    yield server
    server.stop()


def _descendants(process: psutil.Process) -> set[int]:
    found = set()
    for child in process.children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


@dataclass
class Footprint:
    """Open fds and live descendants of one server process."""

    name: str
    process: psutil.Process
    fds: int = 0
    children: set[int] = field(default_factory=set)

    def take(self) -> Footprint:
        return Footprint(
            self.name, self.process, self.process.num_fds(), _descendants(self.process)
        )

    def describe_new(self, before: Footprint) -> str:
        lines = [f"{self.name}: {before.fds} fds before, {self.fds} after"]
        for pid in sorted(self.children - before.children):
            try:
                lines.append(f"  left behind: {pid} {psutil.Process(pid).cmdline()}")
            except psutil.NoSuchProcess:
                continue
        try:
            lines += [f"  fd: {f.path}" for f in self.process.open_files()]
            lines += [
                f"  socket: {c.laddr} -> {c.raddr} {c.status}"
                for c in self.process.net_connections()
            ]
        except psutil.Error:
            pass
        return "\n".join(lines)


class LeakCheck:
    """``watch(pid, name)`` at the start of a test; at its end every watched process must be
    back to (at most) the fds and the descendants it had."""

    def __init__(self) -> None:
        self.before: list[Footprint] = []

    def watch(self, pid: int, name: str) -> None:
        self.before.append(Footprint(name, psutil.Process(pid)).take())

    def settled(self) -> tuple[bool, list[Footprint]]:
        now = [before.take() for before in self.before]
        ok = all(
            after.fds <= before.fds and after.children <= before.children
            for before, after in zip(self.before, now, strict=True)
        )
        return ok, now

    def check(self) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            ok, now = self.settled()
            if ok:
                return
            if time.monotonic() > deadline:
                report = "\n".join(a.describe_new(b) for b, a in zip(self.before, now, strict=True))
                raise AssertionError(f"left behind after the test:\n{report}")
            time.sleep(0.2)


@pytest.fixture
def leaks() -> Iterator[LeakCheck]:
    check = LeakCheck()
    yield check
    check.check()


_SERVER_ERROR = re.compile(r"\b5\d\d (GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) ")


def _records(text: str) -> list[str]:
    """Log records: a line that starts with ``[`` and the indented lines that follow it."""
    records: list[str] = []
    for line in text.splitlines():
        if line.startswith("[") or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    return records


def assert_no_traceback(log_file: Path | None, since: int, known: tuple[str, ...] = ()) -> None:
    """No traceback and no 500 in what a server logged after offset ``since`` (records that
    contain one of ``known`` aside)."""
    assert log_file is not None
    text = log_file.read_bytes()[since:].decode(errors="replace")
    for record in _records(text):
        if any(k in record for k in known):
            continue
        assert "Traceback" not in record, record[-4000:]
        assert not _SERVER_ERROR.search(record), record[-4000:]


def log_size(log_file: Path | None) -> int:
    return log_file.stat().st_size if log_file is not None and log_file.exists() else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A long budget needs more than the suite's 300 s per test: allow a second an example."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.timeout(max(300, EXAMPLES)))


def pytest_report_header(config: Any) -> str:
    return f"fuzz: {EXAMPLES} examples per test (UCLOUD_FUZZ_EXAMPLES)"
