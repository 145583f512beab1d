"""The output history of a shell: a ring buffer bounded in bytes, addressed by stream offsets.

Every character a shell ever printed has an *offset* in its output stream (offsets count Unicode
code points, from 0 when the shell opened). The buffer keeps the most recent output, at most
``limit`` bytes of UTF-8, so a client can ask for "everything after offset N" (reattach with
``?since=N``, or a lagging client catching up) and get exactly the text it has not seen.

Appends coalesce into chunks of up to ``CHUNK_CHARS`` characters, so a keystroke echo costs a
bounded string concatenation and a range read walks at most ``limit / CHUNK_CHARS`` chunks: no work
grows with the length of the history.
"""

from __future__ import annotations

import re
from collections import deque

__all__ = ["CHUNK_CHARS", "ReplayBuffer", "strip_terminal_queries"]

CHUNK_CHARS = 16384

# Sequences an application sends to ask the *terminal* something. Replaying one makes xterm.js
# answer it again, and the answer lands on the shell's stdin as garbage such as
# ``2R0;276;0c10;rgb:...`` (jupyterlab#17179, terminado#247). They are removed from replays.
_TERMINAL_QUERY = re.compile(
    r"\x1b\[\??[0-9;]*n"  # DSR / CPR / DECXCPR: ESC[5n ESC[6n ESC[?6n ESC[?15n
    r"|\x1b\[[>=]?[0-9;]*c"  # DA1 / DA2 / DA3: ESC[c ESC[0c ESC[>c ESC[=c
    r"|\x1b\[>[0-9;]*q"  # XTVERSION: ESC[>q
    r"|\x1b\[\??[0-9;]*\$p"  # DECRQM: ESC[?2004$p
    r"|\x1b\[\?u"  # kitty keyboard protocol query
    r"|\x1b\[(?:1[13-9]|2[01])(?:;[0-9]*)*t"  # XTWINOPS reports: ESC[14t ESC[18t ...
    r"|\x1bP[$+]q[^\x1b\x07]*(?:\x1b\\|\x07)"  # DECRQSS / XTGETTCAP: DCS $ q ... ST
    r"|\x1b\][0-9]+;[^\x07\x1b]*\?(?:\x07|\x1b\\)"  # OSC queries: ESC]10;? ESC]11;? ESC]4;1;?
)


def strip_terminal_queries(text: str) -> str:
    """``text`` without the escape sequences that ask the terminal to answer."""
    if "\x1b" not in text:
        return text
    return _TERMINAL_QUERY.sub("", text)


def _utf8_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


class ReplayBuffer:
    """The last ``limit`` bytes of a shell's output, with their stream offsets."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the replay buffer needs a positive size")
        self.limit = limit
        self._chunks: deque[tuple[int, str, int]] = deque()  # (start offset, text, utf-8 bytes)
        self._bytes = 0
        self._end = 0

    @property
    def end(self) -> int:
        """The offset just after the last character ever appended."""
        return self._end

    @property
    def start(self) -> int:
        """The offset of the oldest character still held."""
        return self._chunks[0][0] if self._chunks else self._end

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, text: str, keep_from: int | None = None) -> int:
        """Add output; returns the new end offset.

        ``keep_from``: the oldest offset a connected reader has yet to receive. Nothing from there
        on is evicted, even when that takes the buffer past ``limit`` for a while (the caller
        bounds how far such a reader may lag); the limit applies again once it has read on."""
        if not text:
            return self._end
        size = _utf8_len(text)
        if size > self.limit and keep_from is None:  # keep only the tail that fits
            tail = text[max(0, len(text) - self.limit) :]
            while _utf8_len(tail) > self.limit:
                tail = tail[max(1, (_utf8_len(tail) - self.limit) // 4) :]
            self._end += len(text) - len(tail)
            text, size = tail, _utf8_len(tail)
            self._chunks.clear()
            self._bytes = 0
        if self._chunks and len(self._chunks[-1][1]) + len(text) <= CHUNK_CHARS:
            start, last, last_size = self._chunks.pop()
            self._chunks.append((start, last + text, last_size + size))
        else:
            self._chunks.append((self._end, text, size))
        self._bytes += size
        self._end += len(text)
        while self._bytes > self.limit:
            if keep_from is None:
                self._evict_front()
            elif not self._evict_before(keep_from):
                break
        return self._end

    def _evict_before(self, keep_from: int) -> bool:
        """Evict from the front, but nothing at or after ``keep_from``; ``False`` when there
        is nothing left that may go."""
        start, text, size = self._chunks[0]
        if start >= keep_from:
            return False
        if start + len(text) <= keep_from:
            self._evict_front()
            return True
        # The oldest chunk holds keep_from: drop (at most) what comes before it.
        excess = self._bytes - self.limit
        drop = min(keep_from - start, excess)
        keep = text[drop:]
        keep_size = _utf8_len(keep)
        self._chunks[0] = (start + drop, keep, keep_size)
        self._bytes -= size - keep_size
        return False

    def _evict_front(self) -> None:
        start, text, size = self._chunks.popleft()
        self._bytes -= size
        excess = self._bytes + size - self.limit
        if excess < size:  # keep the part of the oldest chunk that still fits
            keep = text[excess:]
            while _utf8_len(keep) > size - excess:
                keep = keep[1:]
            keep_size = _utf8_len(keep)
            self._chunks.appendleft((start + len(text) - len(keep), keep, keep_size))
            self._bytes += keep_size

    def read(self, since: int, max_chars: int = 65536) -> tuple[int, str]:
        """Output from ``since`` on, at most ``max_chars`` characters.

        Returns ``(first_offset, text)``; ``first_offset`` is later than ``since`` when that
        part of the history has been dropped (the caller skipped a gap).
        """
        since = max(since, self.start)
        if since >= self._end:
            return self._end, ""
        # Find the chunk that holds `since`, walking back from the newest (readers are usually
        # near the end).
        index = len(self._chunks) - 1
        while index > 0 and self._chunks[index][0] > since:
            index -= 1
        pieces: list[str] = []
        taken = 0
        first = since
        while index < len(self._chunks) and taken < max_chars:
            start, text, _ = self._chunks[index]
            piece = text[max(0, since - start) : max(0, since - start) + max_chars - taken]
            pieces.append(piece)
            taken += len(piece)
            since += len(piece)
            index += 1
        return first, "".join(pieces)
