"""The Jupyter server extension: UCloud Jobs API proxy, shell sessions and the terminal bridge.

The extension app is :class:`jupyter_ucloud.server.app.UCloud`; see docs/architecture.md section 4.
"""
