"""A Jupyter server extension for the benchmark only: how long the event loop is kept from
turning, and by what (``BENCH_LOOP_PROBE=<file>`` in the bench's environment loads it into the
bench's Jupyter servers).

Every callback the loop runs is timed (``asyncio.Handle._run`` wrapped); the file gets, once a
second, the loop-lag percentiles of a 5 ms timer and the callbacks that ran longest, by name
(with the CPU time of the longest steps: a long step with little CPU waited for a CPU).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
import time
from typing import Any

_slow: collections.Counter[str] = collections.Counter()
_slow_total: collections.Counter[str] = collections.Counter()
_count: collections.Counter[str] = collections.Counter()
_lags: list[float] = []
_worst: list[tuple[float, float, str]] = []
_gc: dict[int, list[float]] = {0: [], 1: [], 2: []}  # ms of each collection, by generation
_gc_started = 0.0


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _gc[info["generation"]].append((time.perf_counter() - _gc_started) * 1000)


def _name(handle: asyncio.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        return f"task {getattr(coro, '__qualname__', coro)}"
    return getattr(callback, "__qualname__", repr(callback))


def _install() -> None:
    original = asyncio.Handle._run

    def timed(self: asyncio.Handle) -> None:
        start, cpu_start = time.perf_counter(), time.thread_time()
        original(self)
        spent = time.perf_counter() - start
        if spent > 0.0005:
            name = _name(self)
            _count[name] += 1
            _slow_total[name] += spent
            if spent > 0.02:
                _slow[name] += 1
                # CPU time of the step too: a long step with little CPU was the process
                # waiting for a CPU (or blocked in a syscall), not work of its own
                _worst.append((spent, time.thread_time() - cpu_start, name))
                _worst.sort(reverse=True)
                del _worst[20:]

    asyncio.Handle._run = timed  # type: ignore[method-assign]
    gc.callbacks.append(_gc_timer)


async def _probe(path: str) -> None:
    loop = asyncio.get_running_loop()
    last_dump = time.monotonic()
    while True:
        start = loop.time()
        await asyncio.sleep(0.005)
        _lags.append((loop.time() - start - 0.005) * 1000)
        if time.monotonic() - last_dump > 1:
            last_dump = time.monotonic()
            ordered = sorted(_lags)
            report: dict[str, Any] = {
                "lag_ms": {
                    "n": len(ordered),
                    "p50": ordered[len(ordered) // 2] if ordered else None,
                    "p99": ordered[int(len(ordered) * 0.99)] if ordered else None,
                    "max": ordered[-1] if ordered else None,
                },
                "time_in_callbacks_over_0.5ms": {
                    k: [round(v, 3), _count[k], _slow[k]] for k, v in _slow_total.most_common(15)
                },
                "gc (collections, total ms, max ms) by generation": {
                    gen: [len(ms), round(sum(ms), 1), round(max(ms), 1) if ms else 0.0]
                    for gen, ms in _gc.items()
                },
                "worst (ms, CPU ms, callback)": [
                    [round(s * 1000, 1), round(c * 1000, 1), n] for s, c, n in _worst
                ],
            }
            with open(path, "w") as out:
                json.dump(report, out, indent=1)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "termbench.loopprobe"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    path = os.environ.get("BENCH_LOOP_PROBE")
    if not path:
        return
    _install()
    serverapp.io_loop.add_callback(lambda: asyncio.ensure_future(_probe(path)))


def reset() -> None:
    _lags.clear()
