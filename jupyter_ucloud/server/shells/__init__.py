"""Shell sessions: one provider shell, many browser clients, a bounded history.

A :class:`Shell` is a server-side object with a name. It owns the *provider leg* (the UCloud
provider's shell websocket, through :class:`jupyter_ucloud.client.AsyncShell`) and any number of
*client legs* (browser websockets speaking terminado, or anything with the :class:`ClientSink`
interface - benchmarks attach directly). It outlives its clients; an explicit close, an idle
timeout for shells nobody is attached to, or the end of the job ends it. Closing a shell never
terminates the job.

The data flow
-------------

Output goes provider -> :class:`~..replay.ReplayBuffer` -> clients::

    provider ws -frame-> on_output -append-> ReplayBuffer -read-> sender -await write-> client ws
                                   \\-write-> client ws (an idle, caught-up client: at once)

The provider leg hands each frame to ``_on_output`` as it arrives (``stream_output``). A client
that has sent everything gets the new output written to it right there - the keystroke echo
path has no queue and no task switch - and any other client's sender task is woken to take it
from the buffer. When a client that keeps up falls too far behind, ``_on_output`` gives the
provider leg something to await before it reads on: the provider is read at the pace of the
slowest such client, and nothing grows in between.

Input goes the other way and never waits for output: a keystroke at once, without a task; a
paste in awaited pieces. An interrupt character (Ctrl-C) also makes the clients skip the output
that was already on its way when it reached the shell.

Where each part lives
---------------------

A Shell is one object made of parts, a module each. The parts are mixins of :class:`Shell` over
:class:`~.state.ShellState` (the state they share), so the per-frame and per-keystroke paths stay
plain method calls on one object.

- :mod:`.shell`: :class:`Shell` - lifecycle, the output path from the provider leg into the
  buffer and on to the clients (``_on_output``, ``_deliver``), the input path (``write_nowait``,
  ``write``).
- :mod:`.clients`: attaching and detaching clients, each client's sender, direct writes to
  caught-up clients, replays.
- :mod:`.pacing`: flow control; slow clients stop pacing.
- :mod:`.turns`: the shells' output handling shares a budget per round of the event loop, so
  a keystroke and its echo do not wait behind other shells' backlogs of bulk frames.
- :mod:`.interrupts`: after Ctrl-C, the stale output already on its way is skipped.
- :mod:`.sizes`: the terminal size the clients share.
- :mod:`.ending`: why a shell ended, and what its clients are told.
- :mod:`.health`: whether the provider answers, told to the clients as it changes.
- :mod:`.state`: the legs' interfaces (:class:`ProviderLeg`, :class:`ClientSink`),
  :class:`ShellClient`, and the state the parts share.
- :mod:`.manager`: :class:`ShellManager` (every shell of this Jupyter server: open, list, cull,
  close) and :class:`ShellError`.

Every public name of these modules is importable from this package.
"""

from .clients import FRAME_CHARS, SKIPPED_NOTE
from .ending import CLOSE_CODES, JOB_ENDED_MESSAGES, PROVIDER_LOST_MESSAGE, PROVIDER_LOST_UNKNOWN
from .health import PROVIDER_OK, PROVIDER_UNRESPONSIVE
from .interrupts import INTERRUPT_CHARS, INTERRUPT_FLUSH_SECONDS, INTERRUPT_TAIL_CHARS
from .manager import ShellError, ShellManager, ShellUpstream
from .pacing import FLOW_WINDOW
from .shell import STDIN_CHUNK, Shell
from .state import ClientSink, ProviderLeg, ShellClient
from .turns import ROUND_BUDGET

__all__ = [
    "CLOSE_CODES",
    "FLOW_WINDOW",
    "FRAME_CHARS",
    "INTERRUPT_CHARS",
    "INTERRUPT_FLUSH_SECONDS",
    "INTERRUPT_TAIL_CHARS",
    "JOB_ENDED_MESSAGES",
    "PROVIDER_LOST_MESSAGE",
    "PROVIDER_LOST_UNKNOWN",
    "PROVIDER_OK",
    "PROVIDER_UNRESPONSIVE",
    "ROUND_BUDGET",
    "SKIPPED_NOTE",
    "STDIN_CHUNK",
    "ClientSink",
    "ProviderLeg",
    "Shell",
    "ShellClient",
    "ShellError",
    "ShellManager",
    "ShellUpstream",
]
