"""ipywidgets for notebooks: pick products and jobs, open terminals on a job's ranks.

- :class:`ProductPicker`: products with their capabilities; ``.value`` is a ``ProductReference``.
- :class:`JobPicker`: jobs with state and ranks; start, terminate, refresh (or poll).
- :class:`OpenTerminalButton`: opens a JupyterLab terminal tab on a job's rank.
- :class:`InlineTerminal`: an xterm.js terminal in the cell output
  (``InlineTerminal.for_job(uc, job_id, rank)``).

The front ends of the last two are registered by the jupyter-ucloud labextension.
"""

from __future__ import annotations

from .inline_terminal import InlineTerminal
from .job_picker import JobPicker
from .product_picker import ProductPicker
from .terminal_button import OpenTerminalButton

__all__ = ["InlineTerminal", "JobPicker", "OpenTerminalButton", "ProductPicker"]
