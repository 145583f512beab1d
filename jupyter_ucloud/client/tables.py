"""Products and jobs as tables, with rich HTML reprs for notebooks."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..protocol import Job, ResolvedSupport, SupportByProvider

__all__ = ["JobTable", "ProductTable"]

_CHECK = "\u2713"


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return (
        f"<table class='jupyter-ucloud-table'><caption>{html.escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


class ProductTable(list[ResolvedSupport]):
    """``uc.products()``: a list of ``ResolvedSupport`` that shows as a table."""

    headers = (
        "name",
        "provider",
        "category",
        "cpu",
        "memory (GB)",
        "gpu",
        "terminal",
        "logs",
        "web",
        "vnc",
    )

    @classmethod
    def of(cls, support: SupportByProvider) -> ProductTable:
        return cls(support.all())

    def rows(self) -> list[tuple[Any, ...]]:
        def mark(flag: bool) -> str:
            return _CHECK if flag else ""

        return [
            (
                item.product.name,
                item.product.provider,
                item.product.category_name,
                item.product.cpu or 0,
                item.product.memory_in_gigs or 0,
                item.product.gpu or 0,
                mark(item.supports_terminal),
                mark(item.supports_logs),
                mark(item.supports_web),
                mark(item.supports_vnc),
            )
            for item in self
        ]

    def find(self, name: str) -> ResolvedSupport | None:
        """The product called ``name`` (product name, or ``provider/name``)."""
        provider, _, product = name.rpartition("/")
        for item in self:
            if item.product.name == product and provider in ("", item.product.provider):
                return item
        return None

    def _repr_html_(self) -> str:
        return _html_table(self.headers, self.rows(), f"{len(self)} UCloud products")

    def __str__(self) -> str:
        return _text_table(self.headers, self.rows())

    __repr__ = __str__


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else ""


class JobTable(list[Job]):
    """``uc.jobs.list()``: a list of ``Job`` that shows as a table."""

    headers = ("id", "name", "application", "product", "ranks", "state", "created", "expires")

    def rows(self) -> list[tuple[Any, ...]]:
        return [
            (
                job.id,
                job.specification.name or "",
                f"{job.specification.application.name} {job.specification.application.version}",
                job.specification.product.id,
                job.specification.replicas,
                job.state.value,
                _when(job.created_at),
                _when(job.status.expires_at),
            )
            for job in self
        ]

    def _repr_html_(self) -> str:
        return _html_table(self.headers, self.rows(), f"{len(self)} UCloud jobs")

    def __str__(self) -> str:
        return _text_table(self.headers, self.rows())

    __repr__ = __str__
