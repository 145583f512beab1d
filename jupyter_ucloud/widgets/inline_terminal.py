"""A terminal in the cell output, attached to a shell of the Jupyter server's terminal bridge.

``InlineTerminal.for_job(uc, job_id, rank)`` asks the Jupyter server (``POST /ucloud/shells``) for a
shell on that rank and returns a widget whose front end (module ``jupyter-ucloud``, an xterm.js
view registered by our labextension) attaches to ``/ucloud/shells/<name>/websocket``. Terminal
bytes go browser <-> Jupyter server, never through the kernel.

The shell belongs to the widget: ``close()`` (also when ipywidgets closes a widget that is
garbage-collected) and the kernel's exit close it, and re-running the notebook cell that made a
terminal closes the previous run's terminals, so re-running a cell does not leave shells behind.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import weakref
from typing import Any

from ipywidgets import DOMWidget
from traitlets import Int, TraitError, Unicode, validate

from ._calls import close_server_shell, open_server_shell
from ._frontend import MODULE_NAME, MODULE_VERSION

__all__ = ["InlineTerminal"]

MAX_ROWS = 200

log = logging.getLogger(__name__)


def _cell_execution() -> tuple[str, str] | None:
    """``(cell id, request id)`` of the notebook cell running now, when the front end says
    (JupyterLab sends ``cellId`` in an execute request's metadata); ``None`` elsewhere."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets needs IPython
        return None
    kernel = getattr(get_ipython(), "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:
        return None
    if not isinstance(parent, dict):
        return None
    cell = (parent.get("metadata") or {}).get("cellId")
    request = (parent.get("header") or {}).get("msg_id")
    return (str(cell), str(request)) if cell and request else None


class _CellTerminals:
    """The terminals each cell made in its last run; a new run of the cell closes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[str, list[weakref.ref[InlineTerminal]]]] = {}
        self._alive: weakref.WeakSet[InlineTerminal] = weakref.WeakSet()

    def add(self, terminal: InlineTerminal) -> None:
        self._alive.add(terminal)
        where = _cell_execution()
        if where is None:
            return
        cell, request = where
        with self._lock:
            previous_request, previous = self._runs.get(cell, ("", []))
            if previous_request == request:
                previous.append(weakref.ref(terminal))
                return
            self._runs[cell] = (request, [weakref.ref(terminal)])
        for ref in previous:
            old = ref()
            if old is not None and old is not terminal:
                old.close()

    def close_all(self) -> None:
        """At the kernel's exit: the views are gone with it, so are their shells."""
        for terminal in list(self._alive):
            terminal.close()


_CELLS = _CellTerminals()
atexit.register(_CELLS.close_all)


class InlineTerminal(DOMWidget):
    """An xterm.js terminal in the output area, attached to the server shell ``shell_name``."""

    _model_name = Unicode("InlineTerminalModel").tag(sync=True)
    _view_name = Unicode("InlineTerminalView").tag(sync=True)
    _model_module = Unicode(MODULE_NAME).tag(sync=True)
    _view_module = Unicode(MODULE_NAME).tag(sync=True)
    _model_module_version = Unicode(MODULE_VERSION).tag(sync=True)
    _view_module_version = Unicode(MODULE_VERSION).tag(sync=True)

    shell_name = Unicode("", help="name of the shell on the Jupyter server").tag(sync=True)
    rows = Int(24, help="height of the terminal in rows").tag(sync=True)

    #: The shell model the server answered (``name``, ``jobId``, ``rank``, ``state``, ...).
    shell: dict[str, Any]

    def __init__(self, shell_name: str = "", **kwargs: Any) -> None:
        self.shell = {}
        self._uc: Any = None
        super().__init__(shell_name=shell_name, **kwargs)

    @validate("rows")
    def _valid_rows(self, proposal: dict[str, Any]) -> int:
        rows = int(proposal["value"])
        if not 1 <= rows <= MAX_ROWS:
            raise TraitError(f"rows must be between 1 and {MAX_ROWS}, not {rows}")
        return rows

    @classmethod
    def for_job(
        cls, uc: Any, job_id: str, rank: int = 0, *, rows: int = 24, cols: int = 80
    ) -> InlineTerminal:
        """Open a shell on ``rank`` of ``job_id`` through the Jupyter server and show it.

        (Not called ``open``: that name is ipywidgets' own, it opens the widget's comm.)

        ``uc`` must talk to a Jupyter server (``UCloud()`` inside a notebook does); the error says
        so otherwise, and names the job and rank when the server refuses (job not running, rank
        out of range, product without terminal).
        """
        if rows < 1 or rows > MAX_ROWS:
            raise ValueError(f"rows must be between 1 and {MAX_ROWS}, not {rows}")
        shell = open_server_shell(uc, str(job_id), rank, cols=cols, rows=rows)
        widget = cls(shell_name=shell["name"], rows=rows)
        widget.shell = shell
        widget._uc = uc
        _CELLS.add(widget)
        return widget

    @property
    def job_id(self) -> str | None:
        return self.shell.get("jobId")

    @property
    def rank(self) -> int | None:
        return self.shell.get("rank")

    def shutdown(self) -> None:
        """Close the shell on the server (the job keeps running) and detach the view."""
        name, self.shell_name = self.shell_name, ""
        if self._uc is not None and name:
            close_server_shell(self._uc, name)

    def close(self) -> None:
        """Close the shell (as :meth:`shutdown`) and the widget."""
        name = self.shell_name
        if getattr(self, "_uc", None) is not None and name and not sys.is_finalizing():
            try:
                self.shutdown()
            except Exception as err:  # the widget closes anyway; the server's idle timeout remains
                log.warning("could not close the shell %s: %s", name, err)
        super().close()

    def __repr__(self) -> str:
        where = f"job {self.job_id}, rank {self.rank}" if self.shell else "not attached"
        return f"InlineTerminal({self.shell_name or '-'}, {where})"
