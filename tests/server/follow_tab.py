"""A browser tab on the extension's job follow websocket, for the tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_ucloud.protocol import JobsFollowMessage, JobState


@dataclass
class Tab:
    """A browser tab on the follow websocket: every frame it got, parsed, and its close."""

    ws: Any
    raw: list[str] = field(default_factory=list)
    messages: list[JobsFollowMessage] = field(default_factory=list)
    error: str | None = None
    closed: bool = False
    chars: int = 0  # of log output

    async def next(self, timeout: float = 20.0) -> JobsFollowMessage | None:
        text = await asyncio.wait_for(self.ws.read_message(), timeout)
        if text is None:
            self.closed = True
            return None
        self.raw.append(text)
        data = json.loads(text)
        if set(data) == {"error"}:
            self.error = data["error"]
            return None
        assert set(data) == {"updates", "log", "newStatus", "initialJob"}, data
        message = JobsFollowMessage.model_validate(data)
        self.messages.append(message)
        self.chars += sum(len(e.stdout or "") + len(e.stderr or "") for e in message.log)
        return message

    async def until(self, predicate: Callable[[Tab], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            assert not self.closed, f"closed ({self.close_code}); error {self.error}"
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; last frames {self.raw[-3:]}"
            await self.next(remaining)

    async def until_closed(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"still open; last frames {self.raw[-3:]}"
            await self.next(remaining)

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code  # type: ignore[no-any-return]

    def text(self, rank: int, stream: str = "stdout") -> str:
        return "".join(
            getattr(entry, stream) or ""
            for message in self.messages
            for entry in message.log
            if entry.rank == rank
        )

    def states(self) -> list[JobState]:
        return [m.new_status.state for m in self.messages if m.new_status is not None]


Open = Callable[[str], Awaitable[Tab]]
