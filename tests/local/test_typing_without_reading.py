"""A client that types and never reads its acks stops being read, and its provider does not
grow: the acks it cannot take hold the reading (``MAX_ACKS_IN_FLIGHT`` of them left in tornado's
buffer), and closing it then leaves no error behind.

The client is a raw socket with a small receive buffer, and the shell runs ``cat > /dev/null``
in raw mode, typed to at a pace it keeps up with: no output comes back and input never waits for
the PTY (which holds the reading too, by another path), so only the acks can stop it. Measured:
without the bound the provider takes all 300,000 frames; with it, it stops after about 70,000
(what the kernel's socket buffers on the way hold).
"""

from __future__ import annotations

import json
import select
import socket
import time
from urllib.parse import urlsplit

import psutil
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from jupyter_ucloud.protocol import OpenSessionWithProvider, provider_websocket_url
from jupyter_ucloud.protocol.shell import shell_call_name

from .conftest import Api, terminal_spec

CHUNK = "x" * 100  # one input frame's text
# The kernel's buffers on the way take some 50,000 acks and 10 MB of input (about 100,000
# frames in all, measured): far more frames than that means the provider never stopped reading.
MAX_FRAMES = 300_000
# Typed at this pace, ``cat`` keeps up and input never waits for the PTY: only the acks the
# client does not read can make the provider stop reading.
FRAMES_PER_SECOND = 10_000


class RawShellClient:
    """The provider's shell websocket on a plain socket: it reads only when told to."""

    def __init__(self, session: OpenSessionWithProvider) -> None:
        url = provider_websocket_url(
            session.provider_domain,
            session.provider_id,
            session.session.session_identifier,  # type: ignore[union-attr]
            "user",
        )
        parts = urlsplit(url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        self.sock.connect((parts.hostname, parts.port))
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.state is not State.OPEN:  # the handshake's answer
            data = self.sock.recv(65536)
            assert data, "the provider closed during the handshake"
            self.protocol.receive_data(data)
            self.protocol.events_received()
        self.call = shell_call_name(session.provider_id)
        self.identifier = session.session.session_identifier  # type: ignore[union-attr]
        self.stream = 0
        self.output = ""

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            self.sock.sendall(data)

    def frame(self, payload: dict[str, object]) -> bytes:
        self.stream += 1
        envelope = {"call": self.call, "streamId": str(self.stream), "payload": payload}
        self.protocol.send_text(json.dumps(envelope).encode())
        return b"".join(self.protocol.data_to_send())

    def read_until(self, needle: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            assert time.monotonic() < deadline, f"{needle!r} not in {self.output[-500:]!r}"
            self.protocol.receive_data(self.sock.recv(65536))
            for event in self.protocol.events_received():
                if getattr(event, "opcode", None) is Opcode.TEXT:
                    payload = json.loads(event.data)["payload"]
                    if payload.get("type") == "data":
                        self.output += payload["data"]
            self._flush()  # pongs and the like

    def close(self) -> None:
        self.sock.close()


def test_a_client_that_types_and_never_reads_is_no_longer_read(api: Api, local_server) -> None:
    (job_id,) = api.create(terminal_spec())
    api.wait_for_state(job_id, "RUNNING")
    client = RawShellClient(api.open_shell_session(job_id))
    provider = psutil.Process(local_server.proc.pid)
    try:
        client.sock.sendall(
            client.frame(
                {
                    "type": "initialize",
                    "sessionIdentifier": client.identifier,
                    "cols": 80,
                    "rows": 24,
                }
            )
        )
        command = "stty raw -echo; echo READY$((20+1)); exec cat > /dev/null\n"
        client.sock.sendall(client.frame({"type": "input", "data": command}))
        client.read_until("READY21")
        rss_before = provider.memory_info().rss

        # From here on the client only writes. Its sends stop going through once the provider
        # no longer reads it (the socket buffers on the way full): then it waits 3 s for room.
        client.sock.setblocking(False)
        sent = 0
        pending = b""
        stalled = False
        deadline = time.monotonic() + 90
        started = time.monotonic()
        while sent < MAX_FRAMES and time.monotonic() < deadline:
            ahead = sent / FRAMES_PER_SECOND - (time.monotonic() - started)
            if ahead > 0.005:
                time.sleep(ahead)
            if not pending:
                pending = client.frame({"type": "input", "data": CHUNK})
            try:
                pending = pending[client.sock.send(pending) :]
            except BlockingIOError:
                _, writable, _ = select.select([], [client.sock], [], 3.0)
                if not writable:
                    stalled = True
                    break
                continue
            if not pending:
                sent += 1
        grown = provider.memory_info().rss - rss_before
    finally:
        client.close()
        api.terminate(job_id)

    assert stalled, f"the provider kept reading: {sent} input frames taken"
    assert grown < 50 * 2**20, f"the provider grew by {grown / 2**20:.0f} MB"
