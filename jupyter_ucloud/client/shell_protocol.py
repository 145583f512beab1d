"""Shell protocols without I/O: the frames of UCloud's provider shell websocket (reference
section 4) and of the Jupyter server's terminado bridge, and ``run()``'s marker protocol.

``Shell`` (sync) and ``AsyncShell`` only move frames; everything else is decided here.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shlex
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from ..protocol import (
    ShellData,
    ShellInitialize,
    ShellInitialized,
    ShellInput,
    ShellRequestEnvelope,
    ShellResize,
    ShellResponseEnvelope,
    shell_call_name,
)

__all__ = [
    "Acked",
    "CommandResult",
    "CommandRun",
    "Ended",
    "Output",
    "ProviderShellCodec",
    "Ready",
    "ShellCodec",
    "TerminadoShellCodec",
    "strip_ansi",
]

log = logging.getLogger("jupyter_ucloud.client.shell")


@dataclass(frozen=True)
class Ready:
    """The other end accepted the shell (provider ``initialize`` answer / terminado ``setup``)."""


@dataclass(frozen=True)
class Output:
    text: str


@dataclass(frozen=True)
class Ended:
    """The other end said the shell is over (terminado ``disconnect``)."""

    reason: str
    message: str


@dataclass(frozen=True)
class Acked:
    """The provider acknowledged the request sent with stream id ``stream`` (``events()``
    only: the embedded provider acks an ``input`` once it is written to the PTY)."""

    stream: int


Event = Ready | Output | Ended | Acked


class ShellCodec(Protocol):
    def opening_frames(self, cols: int, rows: int) -> list[str]: ...
    def ready_frames(self, cols: int, rows: int) -> list[str]: ...
    def input_frame(self, text: str) -> str: ...
    def resize_frame(self, cols: int, rows: int) -> str: ...
    def decode(self, frame: str | bytes) -> list[Event]: ...
    def events(self, frame: str | bytes) -> list[Event]: ...


_ENVELOPE_KEYS = frozenset(("type", "payload", "streamId"))


class ProviderShellCodec:
    """UCloud's envelope ``{call, streamId, payload}``; ``streamId`` counts up per message."""

    def __init__(self, provider_id: str, session_identifier: str, project: str | None = None):
        self._call = shell_call_name(provider_id)
        self._session = session_identifier
        self._project = project
        self._next_stream = 0
        self._initialize_stream: str | None = None

    @property
    def next_stream(self) -> int:
        """The stream id the next request frame will carry."""
        return self._next_stream

    def _envelope(self, payload: ShellInitialize | ShellInput | ShellResize) -> str:
        stream_id = str(self._next_stream)
        self._next_stream += 1
        fields: dict[str, Any] = {"project": self._project} if self._project else {}
        envelope = ShellRequestEnvelope(
            call=self._call, stream_id=stream_id, payload=payload, **fields
        )
        return json.dumps(envelope.to_wire())

    def opening_frames(self, cols: int, rows: int) -> list[str]:
        self._initialize_stream = str(self._next_stream)
        return [
            self._envelope(ShellInitialize(session_identifier=self._session, cols=cols, rows=rows))
        ]

    def ready_frames(self, cols: int, rows: int) -> list[str]:
        return []

    def input_frame(self, text: str) -> str:
        # The hot path (one per keystroke): a plain dict, the same JSON as the model gives.
        stream_id = str(self._next_stream)
        self._next_stream += 1
        envelope: dict[str, Any] = {
            "call": self._call,
            "streamId": stream_id,
            "payload": {"type": "input", "data": text},
        }
        if self._project:
            envelope["project"] = self._project
        return json.dumps(envelope)

    def resize_frame(self, cols: int, rows: int) -> str:
        return self._envelope(ShellResize(cols=cols, rows=rows))

    def decode(self, frame: str | bytes) -> list[Event]:
        """Events of one provider frame. Acks, pings and frames we do not know are skipped."""
        return [event for event in self.events(frame) if not isinstance(event, Acked)]

    def events(self, frame: str | bytes) -> list[Event]:
        """As ``decode``, with ``Acked`` for acks (whose stream id is a number)."""
        data = _json(frame)
        if type(data) is not dict or data.get("type") != "message":
            return []
        # The hot path - data, ack, initialize in exactly the shape the IM writes - is checked
        # by hand; anything else goes through the models (same answers, slower).
        payload = data.get("payload")
        stream_id = data.get("streamId")
        if type(payload) is dict and type(stream_id) is str and data.keys() <= _ENVELOPE_KEYS:
            kind = payload.get("type")
            if kind == "data" and len(payload) == 2:
                text = payload.get("data")
                if type(text) is str:
                    return [Output(text)]
            elif kind == "ack" and len(payload) == 1:
                return _acked(stream_id)
            elif kind == "initialize" and len(payload) == 1:
                return [Ready()]
        try:
            envelope = ShellResponseEnvelope.model_validate(data)
        except ValidationError:
            log.debug("ignoring a shell frame that is not a known message")
            return []
        payload = envelope.payload
        if isinstance(payload, ShellInitialized):
            return [Ready()]
        if isinstance(payload, ShellData):
            return [Output(payload.data)]
        return _acked(envelope.stream_id)


def _acked(stream_id: str) -> list[Event]:
    if 0 < len(stream_id) <= 18 and stream_id.isascii() and stream_id.isdigit():
        return [Acked(int(stream_id))]
    return []


class TerminadoShellCodec:
    """The Jupyter server's terminal websocket: terminado arrays (docs/architecture.md s. 4)."""

    def opening_frames(self, cols: int, rows: int) -> list[str]:
        return []

    def ready_frames(self, cols: int, rows: int) -> list[str]:
        return [self.resize_frame(cols, rows)]

    def input_frame(self, text: str) -> str:
        return json.dumps(["stdin", text])

    def resize_frame(self, cols: int, rows: int) -> str:
        return json.dumps(["set_size", rows, cols, 0, 0])

    def decode(self, frame: str | bytes) -> list[Event]:
        data = _json(frame)
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return []
        kind, args = data[0], data[1:]
        if kind == "setup":
            return [Ready()]
        if kind == "stdout" and args and isinstance(args[0], str):
            return [Output(args[0])]
        if kind == "disconnect":
            reason = str(args[0]) if args else "closed"
            message = str(args[1]) if len(args) > 1 and args[1] is not None else ""
            return [Ended(reason, message)]
        return []

    def events(self, frame: str | bytes) -> list[Event]:
        return self.decode(frame)  # terminado has no acks


def _json(frame: str | bytes) -> Any:
    try:
        return orjson.loads(frame)  # several times faster than json on 64 KiB data frames
    except orjson.JSONDecodeError:
        pass
    try:  # what orjson refuses but json reads (escaped lone surrogates), or is no JSON at all
        return json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError):
        log.debug("ignoring a shell frame that is not JSON")
        return None


# --- run(): one command, its output and exit status --------------------------------------------

_ANSI = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]                 # CSI: colours, cursor, bracketed paste ?2004h/l
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?    # OSC: titles, hyperlinks
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?         # DCS, SOS, PM, APC
    | \x1b[()*+][0-9A-Za-z]                 # character set selection
    | \x1b[@-Z\\-_=>78]                     # other two-byte escapes
    """,
    re.VERBOSE,
)


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences, with CRLF as LF."""
    return _ANSI.sub("", text).replace("\r\n", "\n")


@dataclass(frozen=True)
class CommandResult:
    output: str
    exit_status: int

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def __str__(self) -> str:
        return self.output


class CommandRun:
    """The input that runs ``command`` between two markers, and the parser of the output.

    Markers hold a random token printed by ``printf`` from two halves, so the echo of the
    command line (which holds the halves apart) can never match; the output between the markers
    is the command's alone: prompts and the echo come before the first marker.
    """

    def __init__(self, command: str, token: str | None = None) -> None:
        token = token or secrets.token_hex(8)
        half = len(token) // 2
        first, second = token[:half], token[half:]
        self._begin = f"__UC_{token}_B__"
        self._end = re.compile(rf"__UC_{token}_E_(\d+)__")
        self.input = (
            f" printf '\\n__UC_%s%s_B__\\n' {first} {second}; eval {shlex.quote(command)};"
            f" printf '\\n__UC_%s%s_E_%s__\\n' {first} {second} \"$?\"\n"
        )
        self._seen = ""
        self._body_at = -1  # where the output starts, once the begin marker has come
        self.result: CommandResult | None = None

    def feed(self, text: str) -> CommandResult | None:
        """Take more shell output; the result once the end marker has come."""
        if self.result is not None:
            return self.result
        scan_from = max(0, len(self._seen) - 64)  # a marker may straddle two chunks
        self._seen += text
        if self._body_at < 0:
            begin = self._seen.find(self._begin, scan_from)
            if begin < 0:
                self._seen = self._seen[-64:]  # nothing before the marker is kept
                return None
            self._body_at = begin + len(self._begin)
            scan_from = self._body_at
        match = self._end.search(self._seen, max(scan_from, self._body_at))
        if match is None:
            return None
        output = strip_ansi(self._seen[self._body_at : match.start()])
        output = output.removeprefix("\n").removesuffix("\n")
        self.result = CommandResult(output, int(match.group(1)))
        return self.result
