"""Where the widget front ends live: the `jupyter-ucloud` module registered by our labextension."""

from __future__ import annotations

MODULE_NAME = "jupyter-ucloud"
MODULE_VERSION = "^0.1.0"
