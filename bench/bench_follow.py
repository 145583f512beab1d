#!/usr/bin/env python
"""Job follow benchmark: log streaming and state-change latency of ``jobs.follow``.

One run, one machine, the baselines measured alongside:

* **Log throughput and memory**: a batch job's rank prints ``--mb`` MB (100 by default) to its
  stdout. The rank file is read directly (``open`` + ``read`` + the same incremental UTF-8
  decoding a follower does): the baseline. Then a follower reads all of it from ``jobs.follow``
  on the embedded server (``/api/jobs``, UCloud's frames) and through the Jupyter extension
  (``/ucloud/api/jobs/follow``), once after the job ended (everything from the file at once)
  and once live (attached before the rank starts printing). Each row gives MB/s and the peak RSS
  growth and CPU seconds of the servers involved. Then four followers that never read sit on the
  finished job for a while, with one that reads, to show what they cost the servers.
* **State change to follower**: an interactive job runs with followers attached (direct and
  through the extension); ``jobs.terminate`` is sent, and the time until each follower sees
  ``newStatus`` SUCCESS is taken. The baselines are clients that poll ``jobs.retrieve`` every
  50 ms and every 500 ms (UCloud's core polls a job every 500 ms), in rounds of their own so they
  do not load the server while the followers are timed.

Run ``python bench/bench_follow.py --help``; ``--quick`` is a smoke run (10 MB, 3 rounds).
"""

from __future__ import annotations

import argparse
import codecs
import inspect
import json
import os
import platform
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import requests
from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from termbench.procstats import MB, ProcessWatch
from termbench.report import render
from termbench.servers import EmbeddedServer, JupyterServer, remove_scratch_dirs, scratch_dir

LINE = "0123456789abcdef" * 6 + "ucloud\n"  # 103 characters a line
# websockets >= 17 warns unless a directly used connect() says legacy=True (older: no such flag).
LEGACY: dict[str, Any] = (
    {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}
)


@dataclass
class Row:
    """One measured way of getting a rank's output."""

    name: str
    chars: int = 0
    seconds: float = 0.0
    rss_growth: dict[str, float] = field(default_factory=dict)  # MB per server process
    cpu: dict[str, float] = field(default_factory=dict)  # s per server process
    client_cpu: float | None = None  # s of this process (the follower) meanwhile
    note: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.chars / 1e6 / self.seconds if self.seconds else 0.0


class Servers:
    """The embedded server and a Jupyter server with jupyter_ucloud in front of it."""

    def __init__(self) -> None:
        workdir = scratch_dir("follow")
        self.embedded = EmbeddedServer(workdir / "embedded").start()
        self.jupyter = JupyterServer(
            workdir / "jupyter",
            {"jupyter_ucloud": True},
            args=[f"--UCloud.host={self.embedded.url}"],
            env={"UCLOUD_REFRESH_TOKEN": self.embedded.refresh_token},
        ).start()
        if not self.jupyter.extension_loaded("jupyter_ucloud"):
            raise RuntimeError(f"jupyter_ucloud did not load:\n{self.jupyter.log_tail()}")
        self.http = requests.Session()
        self._token = ""
        self._token_at = 0.0

    @property
    def pids(self) -> dict[str, int]:
        return {"embedded server": self.embedded.pid, "jupyter server": self.jupyter.pid}

    def token(self) -> str:
        if time.monotonic() - self._token_at > 300:
            answer = self.http.post(
                f"{self.embedded.url}/auth/refresh",
                headers={"Authorization": f"Bearer {self.embedded.refresh_token}"},
                timeout=30,
            )
            answer.raise_for_status()
            self._token, self._token_at = answer.json()["accessToken"], time.monotonic()
        return self._token

    def call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        answer = self.http.request(
            method,
            f"{self.embedded.url}{path}",
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def create(self, application: str, product: str, command: str | None = None) -> str:
        spec: dict[str, Any] = {
            "application": {"name": application, "version": "1"},
            "product": {"id": product, "category": product, "provider": "local"},
            "replicas": 1,
            "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
        }
        if command is not None:
            spec["parameters"] = {"command": {"type": "text", "value": command}}
        return str(self.call("POST", "/api/jobs", {"items": [spec]})["responses"][0]["id"])

    def state(self, job_id: str) -> str:
        job = self.call("GET", "/api/jobs/retrieve", params={"id": job_id})
        return str(job["status"]["state"])

    def wait(self, job_id: str, *states: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while (state := self.state(job_id)) not in states:
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} is {state}, not {states}")
            time.sleep(0.05)

    def terminate(self, job_id: str) -> None:
        self.call("POST", "/api/jobs/terminate", {"items": [{"id": job_id}]})

    def follow_direct(self, job_id: str) -> Follower:
        ws = connect(
            self.embedded.url.replace("http", "ws", 1) + "/api/jobs",
            **LEGACY,
            max_size=None,
            compression=None,
            close_timeout=1,
        )
        first = {"call": "jobs.follow", "streamId": "0", "payload": {"id": job_id}}
        ws.send(json.dumps({**first, "bearer": self.token()}))
        return Follower(ws, envelope=True)

    def follow_extension(self, job_id: str) -> Follower:
        ws = connect(
            f"{self.jupyter.ws_url}/ucloud/api/jobs/follow?id={job_id}",
            **LEGACY,
            additional_headers=self.jupyter.headers,
            max_size=None,
            compression=None,
            close_timeout=1,
        )
        return Follower(ws, envelope=False)

    def stop(self) -> None:
        self.jupyter.stop()
        proc = self.embedded.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)  # `jupyter ucloud local stop`: ends the jobs too
            try:
                proc.wait(30)
            except Exception:
                self.embedded.stop()


class Follower:
    """A follower that counts log output and notes when it saw each new state."""

    def __init__(self, ws: ClientConnection, envelope: bool) -> None:
        self.ws = ws
        self.envelope = envelope
        self.chars = 0
        self.first_log_at: float | None = None
        self.last_log_at: float | None = None
        self.states: dict[str, float] = {}

    def read_one(self, timeout: float | None = None) -> bool:
        """One frame; ``False`` once the socket has closed."""
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return True
        except Exception:
            return False
        data = orjson.loads(raw)
        payload = data["payload"] if self.envelope else data
        if "error" in payload:
            raise RuntimeError(f"follow failed: {payload['error']}")
        now = time.perf_counter()
        for entry in payload["log"]:
            text = entry.get("stdout") or entry.get("stderr") or ""
            if text:
                self.chars += len(text)
                self.first_log_at = self.first_log_at or now
                self.last_log_at = now
        status = payload.get("newStatus")
        if status is not None:
            self.states.setdefault(status["state"], now)
        return True

    def read_all(self, until_chars: int | None = None, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while self.read_one(timeout=max(0.1, deadline - time.monotonic())):
            if until_chars is not None and self.chars >= until_chars:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"follower timed out with {self.chars} characters")

    def close(self) -> None:
        self.ws.close()


def sample_while(watch: ProcessWatch, work: Callable[[], None]) -> tuple[dict[str, float], ...]:
    """Run ``work``; peak RSS growth (MB) and CPU seconds of each process meanwhile."""
    window = watch.peaks_since()
    cpu_before = watch.cpu()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            window.tick()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    growth = {label: value / MB for label, value in window.growth().items()}
    cpu_after = watch.cpu()
    cpu = {label: cpu_after[label] - cpu_before.get(label, 0.0) for label in cpu_after}
    return growth, cpu


def read_file(path: Path) -> int:
    """The baseline: the rank file, read and decoded as a follower does it."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    chars = 0
    with path.open("rb", buffering=0) as file:
        while chunk := file.read(65536):
            chars += len(decoder.decode(chunk))
    return chars


def measure(
    watch: ProcessWatch,
    name: str,
    open_follower: Callable[[str], Follower],
    job_id: str,
    size: int,
    before_reading: Callable[[], None] = lambda: None,
) -> Row:
    """A follower of ``job_id`` reads all of it: MB/s from its first to its last output, and
    the servers' peak RSS growth and CPU meanwhile."""
    holder: list[Follower] = []

    def work() -> None:
        follower = open_follower(job_id)
        holder.append(follower)
        before_reading()
        follower.read_all()

    row = Row(name)
    cpu_before = time.process_time()
    row.rss_growth, row.cpu = sample_while(watch, work)
    row.client_cpu = time.process_time() - cpu_before
    follower = holder[0]
    row.chars = follower.chars
    if follower.first_log_at is not None and follower.last_log_at is not None:
        row.seconds = follower.last_log_at - follower.first_log_at
    if follower.chars != size:
        row.note = f"LOST: {follower.chars} of {size} characters"
    follower.close()
    return row


def throughput(servers: Servers, size: int, log: Callable[[str], None]) -> list[Row]:
    watch = ProcessWatch(servers.pids)
    lines = size // len(LINE)
    command = f"yes {LINE.strip()} | head -n {lines}"
    size = lines * len(LINE)

    log(f"throughput: a rank prints {size / 1e6:.0f} MB")
    started = time.perf_counter()
    job_id = servers.create("batch", "batch-small", command)
    servers.wait(job_id, "SUCCESS", "FAILURE")
    produce = time.perf_counter() - started
    path = servers.embedded.data_dir / "jobs" / job_id / "rank-0.out"

    read_file(path)  # into the page cache, as for the followers
    baseline = Row("rank file, read directly (baseline)", note="open + read + UTF-8 decode")
    t0 = time.perf_counter()
    baseline.chars = read_file(path)
    baseline.seconds = time.perf_counter() - t0
    baseline.client_cpu = baseline.seconds
    rows = [baseline]

    ways = (("jobs.follow on the embedded server", servers.follow_direct),
            ("through the extension", servers.follow_extension))  # fmt: skip
    for name, open_follower in ways:
        log(f"  {name}, after the end")
        rows.append(measure(watch, f"{name}, after the end", open_follower, job_id, size))
    for name, open_follower in ways:
        log(f"  {name}, live")
        live_job = servers.create("batch", "batch-small", f"sleep 2; {command}")
        servers.wait(live_job, "RUNNING")
        row = measure(watch, f"{name}, live", open_follower, live_job, size)
        row.note = row.note or f"the rank printed it in {produce:.1f} s (job start to end)"
        rows.append(row)

    log("  four followers that do not read, and one that does, at once")
    # A job of its own: the stream of the first one lingers in the extension with only its
    # history (a tab joining an ended stream gets the last 1 MiB per rank and stream).
    other_job = servers.create("batch", "batch-small", command)
    servers.wait(other_job, "SUCCESS", "FAILURE")
    quiet: list[Follower] = []

    def open_quiet() -> None:
        quiet.extend(servers.follow_extension(other_job) for _ in range(2))
        quiet.extend(servers.follow_direct(other_job) for _ in range(2))

    row = measure(
        watch,
        "4 stalled followers + 1 reader, through the extension",
        servers.follow_extension,
        other_job,
        size,
        before_reading=open_quiet,
    )
    for follower in quiet:
        follower.close()
    row.note = row.note or (
        "2 stalled on the extension, 2 on the embedded server; the reader's MB/s includes the"
        " wait until each stalled tab stops holding the stream (slow_client_timeout, 5 s each)"
    )
    rows.append(row)
    return rows


@dataclass
class Latency:
    name: str
    seconds: list[float] = field(default_factory=list)


def poller(servers: Servers, job_id: str, interval: float, seen: list[float]) -> None:
    while True:
        state = servers.state(job_id)
        if state == "SUCCESS":
            seen.append(time.perf_counter())
            return
        time.sleep(interval)


def latency(servers: Servers, rounds: int, log: Callable[[str], None]) -> list[Latency]:
    results = {
        name: Latency(name)
        for name in (
            "follower, embedded server",
            "follower, through the extension",
            "poll jobs.retrieve every 50 ms (baseline)",
            "poll jobs.retrieve every 500 ms (baseline; the core's interval)",
            "the jobs.terminate call itself",
        )
    }
    log(f"latency: {rounds} rounds of terminate with followers, then with pollers")
    for kind in ("followers", "poll-50", "poll-500"):
        for _ in range(rounds):
            job_id = servers.create("terminal", "compute-example")
            servers.wait(job_id, "RUNNING")
            followers: list[tuple[str, Follower]] = []
            threads: list[threading.Thread] = []
            seen: list[float] = []
            if kind == "followers":
                followers = [
                    ("follower, embedded server", servers.follow_direct(job_id)),
                    ("follower, through the extension", servers.follow_extension(job_id)),
                ]
                for _, follower in followers:
                    follower.read_one(timeout=10)  # initialJob

                    def run(follower: Follower = follower) -> None:
                        while "SUCCESS" not in follower.states and follower.read_one(30):
                            pass

                    threads.append(threading.Thread(target=run, daemon=True))
            else:
                interval = 0.05 if kind == "poll-50" else 0.5
                threads.append(
                    threading.Thread(
                        target=poller, args=(servers, job_id, interval, seen), daemon=True
                    )
                )
            for thread in threads:
                thread.start()
            time.sleep(0.6)  # pollers out of phase with the terminate
            t0 = time.perf_counter()
            servers.terminate(job_id)
            results["the jobs.terminate call itself"].seconds.append(time.perf_counter() - t0)
            for thread in threads:
                thread.join(60)
            for name, follower in followers:
                if "SUCCESS" in follower.states:
                    results[name].seconds.append(follower.states["SUCCESS"] - t0)
                follower.close()
            if kind != "followers" and seen:
                name = (
                    "poll jobs.retrieve every 50 ms (baseline)"
                    if kind == "poll-50"
                    else "poll jobs.retrieve every 500 ms (baseline; the core's interval)"
                )
                results[name].seconds.append(seen[0] - t0)
    return list(results.values())


def tables(rows: list[Row], latencies: list[Latency], markdown: bool) -> str:
    labels = ["embedded server", "jupyter server"]
    header = [
        "way",
        "MB",
        "MB/s",
        *[f"{label} RSS growth MB" for label in labels],
        *[f"{label} CPU s" for label in labels],
        "follower CPU s",
        "note",
    ]
    body = []
    for row in rows:
        growth = [f"{row.rss_growth[x]:.1f}" if x in row.rss_growth else "-" for x in labels]
        cpu = [f"{row.cpu[x]:.2f}" if x in row.cpu else "-" for x in labels]
        mb = f"{row.chars / 1e6:.0f}"
        client = f"{row.client_cpu:.2f}" if row.client_cpu is not None else "-"
        body.append([row.name, mb, f"{row.mb_per_s:.0f}", *growth, *cpu, client, row.note])
    out = [render(body, header, markdown), ""]
    header = ["state change seen by", "rounds", "p50 ms", "max ms"]
    body = []
    for item in latencies:
        values = sorted(item.seconds)
        body.append(
            [
                item.name,
                str(len(values)),
                f"{statistics.median(values) * 1000:.0f}" if values else "FAILED",
                f"{values[-1] * 1000:.0f}" if values else "-",
            ]
        )
    out.append(render(body, header, markdown))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 MB and 3 rounds, a smoke run")
    parser.add_argument("--mb", type=float, help="MB the rank prints (default 100)")
    parser.add_argument("--rounds", type=int, help="terminate rounds per kind (default 10)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    size = int((args.mb or (10 if args.quick else 100)) * 1e6)
    rounds = args.rounds or (3 if args.quick else 10)

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    load_at_start = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    servers = Servers()
    try:
        rows = throughput(servers, size, log)
        latencies = latency(servers, rounds, log)
    finally:
        servers.stop()
        remove_scratch_dirs()
    print(
        f"# jobs.follow benchmark, {started}, {platform.node()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
        f"{load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end\n"
        f"# a rank printing {size / 1e6:.0f} MB; {rounds} terminate rounds per kind\n"
    )
    print(tables(rows, latencies, args.markdown))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "throughput": [row.__dict__ | {"mb_per_s": row.mb_per_s} for row in rows],
                    "latency": [item.__dict__ for item in latencies],
                },
                indent=1,
            )
        )
    failed = any(row.note.startswith("LOST") for row in rows) or any(
        not item.seconds for item in latencies
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
