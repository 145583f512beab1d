"""A terminal in the cell output, attached to a shell of the Jupyter server's terminal bridge.

``InlineTerminal.for_job(uc, job_id, rank)`` asks the Jupyter server (``POST /ucloud/shells``) for a
shell on that rank and returns a widget whose front end (module ``jupyter-ucloud``, an xterm.js
view registered by our labextension) attaches to ``/ucloud/shells/<name>/websocket``. Terminal
bytes go browser <-> Jupyter server, never through the kernel.
"""

from __future__ import annotations

from typing import Any

from ipywidgets import DOMWidget
from traitlets import Int, TraitError, Unicode, validate

from ._calls import close_server_shell, open_server_shell
from ._frontend import MODULE_NAME, MODULE_VERSION

__all__ = ["InlineTerminal"]

MAX_ROWS = 200


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
        return widget

    @property
    def job_id(self) -> str | None:
        return self.shell.get("jobId")

    @property
    def rank(self) -> int | None:
        return self.shell.get("rank")

    def shutdown(self) -> None:
        """Close the shell on the server (the job keeps running) and detach the view."""
        if self._uc is not None and self.shell_name:
            close_server_shell(self._uc, self.shell_name)
        self.shell_name = ""

    def __repr__(self) -> str:
        where = f"job {self.job_id}, rank {self.rank}" if self.shell else "not attached"
        return f"InlineTerminal({self.shell_name or '-'}, {where})"
