"""A button that opens a JupyterLab terminal tab on a rank of a job.

The view lives in our labextension (module ``jupyter-ucloud``): clicking runs the lab command
``ucloud:open-terminal`` with ``{jobId, rank}``. The kernel holds no shell; the tab talks to the
Jupyter server's terminal bridge like every other UCloud terminal tab.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ipywidgets import CallbackDispatcher, DOMWidget
from traitlets import Bool, Int, TraitError, Unicode, validate

from ._frontend import MODULE_NAME, MODULE_VERSION

__all__ = ["OpenTerminalButton"]


class OpenTerminalButton(DOMWidget):
    """``OpenTerminalButton(job_id, rank=0)``: opens a terminal tab on that rank when clicked.

    The front end may report back with custom messages ``{"event": "opened", "name": ...}`` or
    ``{"event": "error", "message": ...}``; they land in :attr:`last_event` and :attr:`error`
    and call the :meth:`on_opened` / :meth:`on_error` callbacks.
    """

    _model_name = Unicode("OpenTerminalButtonModel").tag(sync=True)
    _view_name = Unicode("OpenTerminalButtonView").tag(sync=True)
    _model_module = Unicode(MODULE_NAME).tag(sync=True)
    _view_module = Unicode(MODULE_NAME).tag(sync=True)
    _model_module_version = Unicode(MODULE_VERSION).tag(sync=True)
    _view_module_version = Unicode(MODULE_VERSION).tag(sync=True)

    job_id = Unicode("", help="UCloud job id; empty disables the button").tag(sync=True)
    rank = Int(0, help="0-based rank (node) of the job").tag(sync=True)
    label = Unicode("Open terminal", help="button text").tag(sync=True)
    disabled = Bool(False, help="greyed out, e.g. while the job is not running").tag(sync=True)
    tooltip = Unicode("", help="why the button is disabled, or what it opens").tag(sync=True)

    #: Last event the front end reported (``{"event": ...}``), for tests and notebooks.
    last_event = Unicode("")
    #: Error text of the last failed attempt reported by the front end ("" when none).
    error = Unicode("")

    def __init__(self, job_id: str = "", rank: int = 0, **kwargs: Any) -> None:
        super().__init__(job_id=job_id, rank=rank, **kwargs)
        self._opened_handlers = CallbackDispatcher()
        self._error_handlers = CallbackDispatcher()
        self.on_msg(self._handle_front_end_message)
        if not self.tooltip:
            self._describe()
        self.observe(lambda _change: self._describe(), names=["job_id", "rank"])

    @validate("rank")
    def _valid_rank(self, proposal: dict[str, Any]) -> int:
        rank = proposal["value"]
        if rank < 0:
            raise TraitError(f"rank must be 0 or more, not {rank}")
        return int(rank)

    def on_opened(self, callback: Callable[[OpenTerminalButton, str], Any]) -> None:
        """Call ``callback(button, shell_name)`` when the front end has opened the tab."""
        self._opened_handlers.register_callback(callback)

    def on_error(self, callback: Callable[[OpenTerminalButton, str], Any]) -> None:
        """Call ``callback(button, message)`` when the front end could not open the tab."""
        self._error_handlers.register_callback(callback)

    def _describe(self) -> None:
        if self.job_id and not self.disabled:
            self.tooltip = f"Open a terminal on rank {self.rank} of job {self.job_id}"

    def _handle_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        event = content.get("event")
        if event == "opened":
            self.last_event = "opened"
            self.error = ""
            self._opened_handlers(self, str(content.get("name", "")))
        elif event == "error":
            self.last_event = "error"
            self.error = str(content.get("message") or "the terminal could not be opened")
            self._error_handlers(self, self.error)
