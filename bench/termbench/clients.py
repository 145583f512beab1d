"""Terminal clients with one shape: `send(text)`, `recv(timeout) -> str | None`, `close()`.

`recv` returns the next chunk of terminal output, `None` when nothing arrived within `timeout`,
and raises `EOFError` once the terminal is gone. Every client is synchronous on purpose: the
measurements must not include an event loop of the benchmark's own.
"""

from __future__ import annotations

import codecs
import errno
import fcntl
import json
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

ROWS, COLS = 24, 200


class TerminalClient(Protocol):
    def send(self, text: str) -> None: ...

    def recv(self, timeout: float | None) -> str | None: ...

    def close(self) -> None: ...


class RawPty:
    """A command on a fresh PTY, read with `select` + `os.read`: the floor every path is held to."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        environ = dict(os.environ if env is None else env)
        environ.setdefault("TERM", "xterm-256color")
        pid, fd = pty.fork()
        if pid == 0:  # child: already the session leader with the PTY as controlling terminal
            try:
                os.execvpe(argv[0], list(argv), environ)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._closed = False

    def send(self, text: str) -> None:
        data = text.encode()
        while data:
            data = data[os.write(self.fd, data) :]

    def recv(self, timeout: float | None) -> str | None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        try:
            data = os.read(self.fd, 65536)
        except OSError as error:  # EIO: the other side of the PTY is closed
            if error.errno == errno.EIO:
                raise EOFError("pty closed") from None
            raise
        if not data:
            raise EOFError("pty closed")
        return self._decoder.decode(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self.fd)  # hangs up the terminal: srun and bash get SIGHUP
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                return
            time.sleep(0.02)
        os.kill(self.pid, signal.SIGKILL)  # interactive bash ignores SIGTERM
        os.waitpid(self.pid, 0)


def _connect(url: str, headers: Mapping[str, str] | None) -> ClientConnection:
    # No permessage-deflate: neither UCloud's provider nor our bridge's upstream client use it,
    # and the stock terminal handler does not accept it.
    return connect(
        url,
        additional_headers=dict(headers or {}),
        compression=None,
        max_size=None,
        open_timeout=30,
    )


class _WebsocketClient:
    def __init__(self, url: str, headers: Mapping[str, str] | None = None) -> None:
        self.ws = _connect(url, headers)

    def _recv_frame(self, timeout: float | None) -> object | None:
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as closed:
            raise EOFError(f"websocket closed ({closed.rcvd})") from None
        return json.loads(raw)

    def close(self) -> None:
        self.ws.close()


class TerminadoSocket(_WebsocketClient):
    """The terminado protocol as JupyterLab's terminal speaks it (stock terminal and our bridge)."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(url, headers)
        self.setup: dict[str, object] | None = None
        self.disconnect: list[object] | None = None
        self.ws.send(json.dumps(["set_size", ROWS, COLS, ROWS * 25, COLS * 9]))

    def send(self, text: str) -> None:
        self.ws.send(json.dumps(["stdin", text]))

    def recv(self, timeout: float | None) -> str | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            frame = self._recv_frame(left)
            if frame is None:
                return None
            if not isinstance(frame, list) or not frame:
                raise ValueError(f"unexpected terminado frame {frame!r:.200}")
            if frame[0] == "stdout":
                return str(frame[1])
            if frame[0] == "setup":
                self.setup = frame[1] if len(frame) > 1 else {}
            elif frame[0] == "disconnect":
                self.disconnect = frame
                raise EOFError(f"terminal disconnected: {frame[1:]}")


class ProviderShellSocket(_WebsocketClient):
    """UCloud's provider shell websocket (ucloud-api.md section 4), as a browser uses it."""

    def __init__(
        self,
        url: str,
        provider_id: str,
        session_identifier: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(url, headers)
        self.call = f"jobs.compute.{provider_id}.shell.open"
        self._stream = 0
        self.ws.send(
            json.dumps(
                {
                    "call": self.call,
                    "streamId": "0",
                    "payload": {
                        "type": "initialize",
                        "sessionIdentifier": session_identifier,
                        "cols": COLS,
                        "rows": ROWS,
                    },
                }
            )
        )
        self._pending: list[str] = []
        deadline = time.monotonic() + 30
        while True:
            frame = self._recv_frame(max(0.0, deadline - time.monotonic()))
            if frame is None:
                raise TimeoutError("provider did not answer initialize within 30 s")
            payload = frame.get("payload") if isinstance(frame, dict) else None
            if isinstance(payload, dict) and payload.get("type") == "initialize":
                break
            if isinstance(payload, dict) and payload.get("type") == "data":
                self._pending.append(str(payload.get("data", "")))

    def send(self, text: str) -> None:
        self._stream += 1
        envelope = {
            "call": self.call,
            "streamId": str(self._stream),
            "payload": {"type": "input", "data": text},
        }
        self.ws.send(json.dumps(envelope))

    def recv(self, timeout: float | None) -> str | None:
        if self._pending:
            return self._pending.pop(0)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            frame = self._recv_frame(left)
            if frame is None:
                return None
            payload = frame.get("payload") if isinstance(frame, dict) else None
            if isinstance(payload, dict) and payload.get("type") == "data":
                return str(payload.get("data", ""))
            # acks (one per input) and anything else carry no terminal output
