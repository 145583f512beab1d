"""``freeze_startup_heap``: both servers exempt their start-up objects from later full
collections (which stopped every terminal's echo for 85-190 ms, issue 14), and garbage is still
collected: the start-up's before the freeze, and what is made after it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import local_cli
from tests.notebooks.jupyter_server_process import JupyterServerProcess

FROZEN_LINE = re.compile(r"(\d+) objects of (?:the Jupyter server's )?start-up exempted from full")

SEMANTICS = textwrap.dedent(
    """
    import gc, weakref
    from jupyter_ucloud.heap import freeze_startup_heap

    class Node:
        pass

    def cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    kept = Node()  # alive at the freeze
    before = cycle()  # garbage at the freeze
    frozen = freeze_startup_heap()
    assert before() is None, "the garbage of start-up was collected first"
    assert frozen == gc.get_freeze_count() and frozen > 1000, frozen
    assert not any(o is kept for o in gc.get_objects()), "objects alive then are exempted"
    after = cycle()
    gc.collect()
    assert after() is None, "a cycle made after the freeze is collected"
    print("ok", frozen)
    """
)


def test_the_freeze_collects_first_and_later_garbage_is_still_collected() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SEMANTICS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")


@pytest.mark.parametrize("freeze", [True, False])
def test_both_servers_freeze_their_start_up_heap(tmp_path: Path, freeze: bool) -> None:
    extra: dict[str, object] = {} if freeze else {"freeze_startup_heap": False}
    server = JupyterServerProcess(tmp_path, ucloud_extra=extra).start()
    try:
        # The status call above waited for the embedded server, which freezes before it
        # announces itself; the extension freezes right after the extensions' start.
        jupyter_log = server.log_file.read_text()
        embedded_log = (server.embedded_data_dir / "embedded-server.log").read_text()
    finally:
        server.stop()
        subprocess.run(
            local_cli("stop", server.embedded_data_dir),
            check=False,
            capture_output=True,
            timeout=120,
        )
    frozen = [int(n) for n in FROZEN_LINE.findall(jupyter_log)]
    if freeze:
        # A Jupyter server's start-up leaves some 100,000 objects or more.
        assert len(frozen) == 1, jupyter_log[-3000:]
        assert frozen[0] > 50_000
    else:
        assert frozen == [], "c.UCloud.freeze_startup_heap = False is obeyed"
    embedded = [int(n) for n in FROZEN_LINE.findall(embedded_log)]
    assert len(embedded) == 1, embedded_log[-3000:]
    assert embedded[0] > 10_000
