"""A Jupyter server extension for the benchmark only: how long the event loop is kept from
turning, and by what (``BENCH_LOOP_PROBE=<file>`` in the bench's environment loads it into the
bench's Jupyter servers).

Every callback the loop runs is timed (``asyncio.Handle._run`` wrapped); the file gets, once a
second, the loop-lag percentiles of a 5 ms timer and the callbacks that ran longest, by name.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
from typing import Any

_slow: collections.Counter[str] = collections.Counter()
_slow_total: collections.Counter[str] = collections.Counter()
_count: collections.Counter[str] = collections.Counter()
_lags: list[float] = []
_worst: list[tuple[float, str]] = []


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
        start = time.perf_counter()
        original(self)
        spent = time.perf_counter() - start
        if spent > 0.0005:
            name = _name(self)
            _count[name] += 1
            _slow_total[name] += spent
            if spent > 0.02:
                _slow[name] += 1
                _worst.append((spent, name))
                _worst.sort(reverse=True)
                del _worst[20:]

    asyncio.Handle._run = timed  # type: ignore[method-assign]


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
                "worst": [[round(s * 1000, 1), n] for s, n in _worst],
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
