"""Keep the garbage collector's full collections short in a long-running server.

A full (generation 2) collection walks every object the collector tracks, and the event loop
stands still meanwhile: no keystroke is echoed on any terminal. A Jupyter server holds some
150,000-250,000 such objects once it has started (modules, classes, configuration, the
extensions' state); on a 2-vCPU VM one full collection took 85-190 ms while shells streamed
(``gc.callbacks``, issue 14), and one came every minute or two. The embedded server's took
17-40 ms.

Nearly all of those objects live as long as the process. ``freeze_startup_heap`` collects once
(the garbage of start-up, while nobody types yet) and then moves every object left to the
permanent generation (``gc.freeze``), which later collections skip: a full collection then walks
only what was made since. The price: an object of start-up that later becomes part of a garbage
cycle is not reclaimed, which bounds the memory at stake by the start-up heap.

This module imports nothing of the project's, so both servers use it.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> int:
    """Collect, then exempt every object alive now from later collections. Returns how many
    objects the permanent generation holds."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
