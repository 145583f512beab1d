"""What the supervisor and the embedded server share: file names, the control socket, messages.

The control socket is a Unix stream socket in the job's folder (``supervisor.sock``; the folder
is 0700, which is the access control). A connection carries newline-delimited JSON objects: one
request from the server, then the supervisor's answers and, for ``watch`` and ``shell``, events
until the connection closes. A ``shell`` answer carries the PTY's master as an ``SCM_RIGHTS``
file descriptor. Standard library only: the supervisor imports this module.
"""

from __future__ import annotations

import array
import json
import os
import socket
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_MESSAGE_BYTES",
    "RECORD_FILE",
    "SOCKET_FILE",
    "SPEC_FILE",
    "bind_path",
    "decode",
    "encode",
    "read_json_file",
    "recv_with_fds",
    "send_with_fd",
    "write_json_file",
]

SPEC_FILE = "supervisor-spec.json"  # written by the server before it starts the supervisor
RECORD_FILE = "supervisor.json"  # the supervisor's record: pids, exit statuses, outcome
SOCKET_FILE = "supervisor.sock"
LOG_FILE = "supervisor.log"
MAX_MESSAGE_BYTES = 65536
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes, NUL included


def bind_path(path: Path) -> str:
    """An address for ``path`` that fits ``sun_path``: the path itself, or, when it is too long
    (deep temporary folders), ``/proc/self/fd/<dir fd>/<name>`` through an open descriptor of its
    folder. The descriptor stays open for the life of the process (one per folder)."""
    text = os.fsencode(path)
    if len(text) <= _SUN_PATH_MAX:
        return str(path)
    fd = _folder_fds.get(path.parent)
    if fd is None:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        _folder_fds[path.parent] = fd
    return f"/proc/self/fd/{fd}/{path.name}"


_folder_fds: dict[Path, int] = {}


def forget_folder(folder: Path) -> None:
    """Close the descriptor ``bind_path`` keeps for ``folder`` (a job that ended)."""
    fd = _folder_fds.pop(folder, None)
    if fd is not None:
        os.close(fd)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One message; ``ValueError`` if it is not a JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


def send_with_fd(sock: socket.socket, message: dict[str, Any], fd: int) -> None:
    """Send one small message with ``fd`` attached (the socket's buffer is empty then, so this
    does not block)."""
    fds = array.array("i", [fd])
    sock.sendmsg([encode(message)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])


def recv_with_fds(sock: socket.socket, size: int = MAX_MESSAGE_BYTES) -> tuple[bytes, list[int]]:
    """One ``recvmsg`` with room for a few descriptors (received ones are close-on-exec)."""
    fds = array.array("i")
    data, ancillary, _flags, _address = sock.recvmsg(
        size, socket.CMSG_SPACE(4 * fds.itemsize), socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % fds.itemsize
            fds.frombytes(payload[:usable])
    return data, list(fds)


def write_json_file(path: Path, content: dict[str, Any]) -> None:
    """Replace ``path`` atomically (created 0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(content, out)
    os.replace(tmp, path)


def read_json_file(path: Path) -> dict[str, Any] | None:
    """The object in ``path``, or ``None`` if it is missing or not a JSON object."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None
