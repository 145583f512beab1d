"""Tables of the many-shell workloads (``load``), with the ratios to the stock terminal."""

from __future__ import annotations

from .load import FairnessResult, OpenResult, Stats
from .report import render

#: Targets (issue 14): echo p99 under load no worse than stock's, max under 200 ms at k=10;
#: opening shells within 1.2x stock; the API at most 2 ms over a direct call.
ECHO_MAX_MS_AT_10 = 200.0
OPEN_RATIO_MAX = 1.2
API_OVERHEAD_MAX_MS = 2.0


def _row(label: str, s: Stats) -> list[str]:
    return [label, str(s.n), f"{s.mean:.1f}", f"{s.p50:.1f}", f"{s.p99:.1f}", f"{s.max:.1f}"]


def fairness_table(found: FairnessResult, markdown: bool) -> str:
    header = [
        "streaming shells k", "path", "keystrokes", "echo mean ms", "p50", "p99", "max",
        "> 100 ms", "stream MB/s", "p99 vs stock", "max",
    ]  # fmt: skip
    rows = []
    ks = sorted({k for _, k in found.echo})
    for k in ks:
        stock = found.echo.get(("stock", k))
        for (name, kk), s in sorted(found.echo.items()):
            if kk != k:
                continue
            rates = found.stream_mb_s.get((name, k), [])
            vs, limit = "-", "-"
            if name != "stock" and stock is not None:
                ratio = s.p99 / stock.p99
                vs = f"{ratio:.2f}x {'ok' if ratio <= 1.0 else 'MISS'}"
                if k >= 10:
                    limit = f"{s.max:.0f} ms {'ok' if s.max < ECHO_MAX_MS_AT_10 else 'MISS'}"
            rows.append(
                [
                    str(k),
                    *_row(name, s)[:1],
                    *_row(name, s)[1:],
                    f"{s.over(100) * 100:.1f} %",
                    f"{sum(rates) / len(rates):.0f}" if rates else "-",
                    vs,
                    limit,
                ]
            )
    return render(rows, header, markdown)


def open_table(found: OpenResult, markdown: bool, many: int) -> str:
    header = ["shells opened", "path", "runs", "mean ms", "p50", "p99", "max", "mean vs stock"]
    rows = []
    for label, table in (("1", found.one), (f"{many} at once", found.many)):
        stock = table.get("stock")
        for name, s in table.items():
            vs = "-"
            if name != "stock" and stock is not None:
                ratio = s.mean / stock.mean
                vs = f"{ratio:.2f}x {'ok' if ratio <= OPEN_RATIO_MAX else 'MISS'}"
            rows.append([label, *_row(name, s), vs])
    return render(rows, header, markdown)


def api_table(found: dict[str, Stats], markdown: bool) -> str:
    header = [
        "call", "calls", "mean ms", "p50", "p99", "max", "over direct (p50)",
        "Jupyter server CPU ms/call", "embedded server CPU ms/call",
    ]  # fmt: skip
    rows = []
    for label, s in found.items():
        extra = "-"
        if " via extension" in label:
            direct = found.get(label.replace(" via extension", " direct"))
            if direct is not None:
                over = s.p50 - direct.p50
                extra = f"{over:+.2f} ms {'ok' if over <= API_OVERHEAD_MAX_MS else 'MISS'}"
        cpu = [
            f"{s.cpu_ms[server] / s.n:.2f}" if server in s.cpu_ms and s.n else "-"
            for server in ("jupyter", "embedded")
        ]
        rows.append([*_row(label, s), extra, *cpu])
    return render(rows, header, markdown)
