"""A terminal client of the extension, in a thread of its own, typing as a user would.

It speaks JupyterLab's terminal protocol to ``/ucloud/shells/<name>/websocket`` (terminado
frames). Each command appends one numbered line to a file in the rank's folder and then prints an
acknowledgement computed by the shell (``echo ack-a0-$((17+0))`` prints ``ack-a0-17``; the echo of
what was typed never contains it). A number is **sent** once its command went to the socket and
**acknowledged** once the client saw the shell print its acknowledgement, which the shell does
only after the append returned. When the shell goes away the client notes what it was told (a
``["disconnect", reason, message]`` frame and the close code, or just the close), then opens a
new shell on the same rank, as a user would, and carries on with the next number.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

ACK_TIMEOUT = 30.0
RETRY_PAUSE = 0.05


class JupyterAddress(Protocol):
    url: str
    token: str


@dataclass(frozen=True)
class Told:
    at: float  # time.monotonic()
    what: str  # "disconnect" (a frame came) or "closed" (only the socket closed)
    reason: str  # the frame's reason, else ""
    message: str
    code: int | None  # close code (1006: closed without a close frame)

    def summary(self) -> str:
        if self.what == "disconnect":
            return f"{self.reason}/{self.code}"
        return f"closed/{self.code}"


@dataclass(frozen=True)
class Opened:
    usable_at: float  # the new shell answered its first command
    name: str
    pid: int  # the login shell's pid, as the shell itself reports it ($$)
    failures: tuple[str, ...]  # attempts that failed before (status and message)


@dataclass
class Stall:
    at: float
    number: int


class _Gone(Exception):
    """The shell's socket closed (what the client was told is recorded)."""


@dataclass
class Client:
    cid: str
    job_id: str
    rank: int
    file: Path
    jupyter: JupyterAddress
    up: threading.Event  # cleared while the Jupyter server is known to be down
    stop: threading.Event
    pace: float = 0.3
    sent: list[int] = field(default_factory=list)
    acked: list[tuple[int, float]] = field(default_factory=list)
    told: list[Told] = field(default_factory=list)
    opened: list[Opened] = field(default_factory=list)
    stalls: list[Stall] = field(default_factory=list)
    crashed: str | None = None
    pid: int | None = None  # the current shell's login shell, while connected
    _ws: ClientConnection | None = None
    _out: str = ""
    _next: int = 1
    _thread: threading.Thread | None = None

    # --- seen from the main thread ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"client-{self.cid}", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.pid is not None

    def told_since(self, since: float) -> list[Told]:
        return [t for t in list(self.told) if t.at >= since]

    def opened_since(self, since: float) -> list[Opened]:
        return [o for o in list(self.opened) if o.usable_at >= since]

    def acked_since(self, since: float) -> int:
        return sum(1 for _, at in list(self.acked) if at >= since)

    # --- the client's thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                if self._ws is None:
                    self._open()
                    continue
                try:
                    self._type_one()
                    self._idle(self.pace)
                except _Gone:
                    continue
        except Exception as err:  # a bug of the client: reported, never hidden
            self.crashed = f"{type(err).__name__}: {err}"
        finally:
            self._drop()

    def _open(self) -> None:
        failures: list[str] = []
        while not self.stop.is_set():
            if not self.up.wait(0.5):
                continue
            url, token = self.jupyter.url, self.jupyter.token
            headers = {"Authorization": f"token {token}"}
            try:
                answer = requests.post(
                    url + "ucloud/shells",
                    json={"jobId": self.job_id, "rank": self.rank, "cols": 200, "rows": 50},
                    headers=headers,
                    timeout=30,
                )
                if answer.status_code != 201:
                    failures.append(f"{answer.status_code} {answer.text[:160]}")
                    time.sleep(RETRY_PAUSE * 4)
                    continue
                name = answer.json()["name"]
                ws_url = url.replace("http", "ws", 1) + f"ucloud/shells/{name}/websocket"
                self._ws = connect(ws_url, additional_headers=headers, open_timeout=10)
                first = json.loads(self._ws.recv(timeout=30))
                if first[0] != "setup":
                    failures.append(f"first frame {first!r:.80}")
                    self._drop()
                    continue
                self._out = ""
                pid = self._ask_pid()
            except _Gone:
                failures.append(f"closed while opening: {self.told[-1].summary()}")
                continue
            except (requests.RequestException, OSError, WebSocketException, TimeoutError) as err:
                failures.append(f"{type(err).__name__}: {str(err)[:120]}")
                self._drop()
                time.sleep(RETRY_PAUSE)
                continue
            self.pid = pid
            self.opened.append(Opened(time.monotonic(), name, pid, tuple(failures)))
            return

    def _ask_pid(self) -> int:
        self._send(f"echo pid-$(( $$ + 0 ))-{self.cid}\r")
        found = self._read_until(re.compile(rf"pid-(\d+)-{self.cid}\r\n"), ACK_TIMEOUT)
        if found is None:
            raise TimeoutError("the new shell did not answer within 30 s")
        return int(found.group(1))

    def _type_one(self) -> None:
        n = self._next
        self._next += 1
        mark = len(self._out)
        self.sent.append(n)
        self._send(f"echo {self.cid}-$(({n}+0)) >> {self.file} && echo ack-{self.cid}-$(({n}+0))\r")
        found = self._read_until(re.compile(rf"ack-{self.cid}-{n}\r\n"), ACK_TIMEOUT, mark)
        if found is None:
            self.stalls.append(Stall(time.monotonic(), n))
            return
        self.acked.append((n, time.monotonic()))
        self._out = self._out[found.end() :]

    def _send(self, text: str) -> None:
        assert self._ws is not None
        try:
            self._ws.send(json.dumps(["stdin", text]))
        except ConnectionClosed as err:
            # What came before the close is still queued: a disconnect frame says what
            # happened. Read it (``_receive`` raises ``_Gone`` once it has the close).
            for _ in range(1000):
                self._receive(1.0)
            self._closed(err)

    def _idle(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self.stop.is_set():
            self._receive(left)

    def _read_until(self, pattern: re.Pattern[str], timeout: float, mark: int = 0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.search(self._out, mark)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or self.stop.is_set():
                return None
            self._receive(min(left, 0.5))

    def _receive(self, timeout: float) -> None:
        """One frame (or nothing within ``timeout``); raises ``_Gone`` once the socket closed."""
        assert self._ws is not None
        try:
            raw = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return
        except ConnectionClosed as err:
            self._closed(err)
        frame = json.loads(raw)
        if frame[0] == "stdout":
            self._out += frame[1]
        elif frame[0] == "disconnect":
            at = time.monotonic()
            code = None
            try:  # the server closes right after the frame
                while True:
                    self._ws.recv(timeout=10)
            except ConnectionClosed as err:
                code = err.rcvd.code if err.rcvd is not None else 1006
            except TimeoutError:
                code = None
            reason, message = str(frame[1]), str(frame[2]) if len(frame) > 2 else ""
            self.told.append(Told(at, "disconnect", reason, message, code))
            self._drop()
            raise _Gone

    def _closed(self, err: ConnectionClosed) -> Any:
        code = err.rcvd.code if err.rcvd is not None else 1006
        reason = err.rcvd.reason if err.rcvd is not None else ""
        self.told.append(Told(time.monotonic(), "closed", "", reason, code))
        self._drop()
        raise _Gone

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        self.pid = None
        if ws is not None:
            with contextlib.suppress(OSError, WebSocketException):
                ws.close()


def file_lines(path: Path, cid: str) -> tuple[list[int], list[str]]:
    """The numbers in a client's file, and the lines that are not ``<cid>-<n>``."""
    numbers, bad = [], []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return [], []
    for line in text.splitlines():
        match = re.fullmatch(rf"{cid}-(\d+)", line)
        if match:
            numbers.append(int(match.group(1)))
        else:
            bad.append(line)
    return numbers, bad


def check_file(client: Client) -> str | None:
    """What is wrong with a client's file (``None``: nothing): every acknowledged number is
    there, each number at most once and in the order typed, and only numbers that were sent."""
    acked = [n for n, _ in list(client.acked)]  # before the file: all of these must be there
    numbers, bad = file_lines(client.file, client.cid)
    sent = set(client.sent)  # after the file: every number in it was sent before
    problems = []
    if bad:
        problems.append(f"{len(bad)} foreign line(s), first {bad[0]!r:.60}")
    missing = sorted(set(acked) - set(numbers))
    if missing:
        problems.append(f"acknowledged but missing: {missing[:10]}")
    if any(b <= a for a, b in itertools.pairwise(numbers)):
        problems.append("numbers repeated or out of order")
    never_sent = sorted(set(numbers) - sent)
    if never_sent:
        problems.append(f"never sent: {never_sent[:10]}")
    return "; ".join(problems) or None


def probe_shell(jupyter: JupyterAddress, job_id: str, rank: int, timeout: float) -> str:
    """Open a shell on ``rank`` once, as a user opening a new tab, run one command and close it
    again; what the user got: ``usable``, ``HTTP <status>: <message>``, ``told <reason>/<code>:
    <message>``, ``closed/<code>`` or ``no answer``."""
    headers = {"Authorization": f"token {jupyter.token}"}
    deadline = time.monotonic() + timeout
    answer = requests.post(
        jupyter.url + "ucloud/shells",
        json={"jobId": job_id, "rank": rank, "cols": 200, "rows": 50},
        headers=headers,
        timeout=timeout,
    )
    if answer.status_code != 201:
        return f"HTTP {answer.status_code}: {answer.text[:200]}"
    name = answer.json()["name"]
    ws_url = jupyter.url.replace("http", "ws", 1) + f"ucloud/shells/{name}/websocket"
    output = ""
    try:
        with connect(ws_url, additional_headers=headers, open_timeout=10) as ws:
            ws.send(json.dumps(["stdin", "echo probe-$((6*7))\r"]))
            while "probe-42\r\n" not in output:
                frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
                if frame[0] == "stdout":
                    output += frame[1]
                elif frame[0] == "disconnect":
                    said = " | ".join(line.strip() for line in output.splitlines()[-3:])
                    return f"told {frame[1]}: {frame[2] if len(frame) > 2 else ''} [{said}]"
            return "usable"
    except ConnectionClosed as err:
        return f"closed/{err.rcvd.code if err.rcvd is not None else 1006}"
    except TimeoutError:
        return f"no answer within {timeout:g} s (output {output[-120:]!r})"
    finally:
        requests.delete(jupyter.url + f"ucloud/shells/{name}", headers=headers, timeout=30)
