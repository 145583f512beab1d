"""A raw ``jobs.follow`` client, as UCloud's web client speaks it (reference 5.2): the
websocket at ``/api/jobs``, the bearer in the first frame, message envelopes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from jupyter_ucloud.protocol import JobsFollowMessage, JobState


def follow_url(server_url: str) -> str:
    return server_url.replace("http", "ws", 1) + "/api/jobs"


@dataclass
class Follow:
    """One follower: every payload it got, in order, and how the socket closed."""

    ws: ClientConnection
    stream_id: str = "0"
    messages: list[JobsFollowMessage] = field(default_factory=list)
    closed: bool = False
    close_code: int | None = None

    @classmethod
    def open(
        cls,
        server_url: str,
        job_id: str,
        bearer: str | None,
        *,
        stream_id: str = "0",
        project: str | None = None,
        first_frame: Any = None,
    ) -> Follow:
        ws = connect(follow_url(server_url), open_timeout=10, max_size=None)
        frame = first_frame
        if frame is None:
            frame = {
                "call": "jobs.follow",
                "streamId": stream_id,
                "payload": {"id": job_id},
                "bearer": bearer,
                "project": project,
            }
        ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))
        return cls(ws, stream_id)

    def next(self, timeout: float = 15.0) -> JobsFollowMessage | None:
        """The next payload; ``None`` once the socket has closed."""
        try:
            raw = self.ws.recv(timeout=timeout)
        except ConnectionClosed as closed:
            self.closed = True
            self.close_code = closed.rcvd.code if closed.rcvd is not None else None
            return None
        envelope = json.loads(raw)
        assert envelope["type"] == "message", envelope
        assert envelope["streamId"] == self.stream_id
        assert set(envelope["payload"]) == {"updates", "log", "newStatus", "initialJob"}
        message = JobsFollowMessage.model_validate(envelope["payload"])
        self.messages.append(message)
        return message

    def until_closed(self, timeout: float = 30.0) -> Follow:
        deadline = time.monotonic() + timeout
        while not self.closed:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"still open after {timeout} s; got {len(self.messages)}"
            self.next(remaining)
        return self

    def until(self, predicate: Any, timeout: float = 30.0) -> JobsFollowMessage:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; got {self.messages[-3:]}"
            message = self.next(remaining)
            assert message is not None, f"closed ({self.close_code}) before the condition"
            if predicate(message):
                return message

    def text(self, rank: int, stream: str = "stdout") -> str:
        return "".join(
            getattr(entry, stream) or ""
            for message in self.messages
            for entry in message.log
            if entry.rank == rank
        )

    def states(self) -> list[JobState]:
        return [m.new_status.state for m in self.messages if m.new_status is not None]

    def close(self) -> None:
        self.ws.close()
