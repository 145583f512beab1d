"""Small pieces of HTML shared by the widgets: capability marks and the error/status line."""

from __future__ import annotations

import html

from ..protocol import ResolvedSupport

#: Capabilities shown for a product, in this order: (ResolvedSupport property, label).
CAPABILITIES = (
    ("supports_terminal", "terminal"),
    ("supports_logs", "logs"),
    ("supports_web", "web"),
    ("supports_vnc", "vnc"),
    ("supports_peers", "peers"),
    ("supports_extension", "time extension"),
)


def capabilities_of(item: ResolvedSupport) -> list[str]:
    """Labels of what the product supports, e.g. ``["terminal", "logs"]``."""
    return [label for prop, label in CAPABILITIES if getattr(item, prop)]


def machine_of(item: ResolvedSupport) -> str:
    """``"2 CPU · 8 GB · 1 GPU"`` from what the product states (absent parts are left out)."""
    product = item.product
    parts = []
    if product.cpu:
        parts.append(f"{product.cpu} CPU")
    if product.memory_in_gigs:
        parts.append(f"{product.memory_in_gigs} GB")
    if product.gpu:
        parts.append(f"{product.gpu} GPU")
    return " · ".join(parts)


def capabilities_html(item: ResolvedSupport) -> str:
    """One line: machine, then every capability marked as supported or not."""
    marks = []
    for prop, label in CAPABILITIES:
        if getattr(item, prop):
            marks.append(f"<span title='supported'>&#10003; {label}</span>")
        else:
            marks.append(f"<span style='opacity:0.5' title='not supported'>&#10007; {label}</span>")
    machine = html.escape(machine_of(item))
    description = html.escape(item.product.description or "")
    head = f"<b>{html.escape(item.product.name)}</b> ({html.escape(item.product.provider)})"
    details = " · ".join(part for part in (machine, description) if part)
    return f"{head}{': ' + details if details else ''}<br>{' &nbsp; '.join(marks)}"


def error_html(message: str) -> str:
    """The error line: the server's ``why``, escaped, in the theme's error colour."""
    if not message:
        return ""
    return (
        "<span class='ucloud-widget-error' style='color: var(--jp-error-color1, #d32f2f)'>"
        f"{html.escape(message)}</span>"
    )


def status_html(message: str) -> str:
    """A neutral status line (what the last action did)."""
    return f"<span class='ucloud-widget-status'>{html.escape(message)}</span>" if message else ""
