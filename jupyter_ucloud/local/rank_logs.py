"""Reading a job's captured output for ``jobs.follow``: each rank's ``rank-<r>.out`` and
``rank-<r>.err`` in the job's folder, written by the backend (the process backend's supervisor,
the Slurm batch script's rank launcher), each bounded by ``log_limit_bytes`` with a note where the
rest was dropped.

``RankLogs.next_chunks(n)`` reads the next chunks of output that are there (up to ``n``), taking
the sources in turn (rank 0's stdout, rank 0's stderr, rank 1's stdout, ...), so one rank
printing a lot does not hold back the others. A chunk is at most ``CHUNK_BYTES`` of the file,
decoded as UTF-8 with an incremental decoder per file: a character split between two reads is
completed by the next read, and bytes that are not UTF-8 become U+FFFD, so every chunk is valid
text. The files are read
only when asked (the caller asks at the pace of its socket) and in a worker thread (a slow disk
must not block the event loop); a file that does not exist yet reads as empty.

``output_complete(job_dir)``: whether the backend has finished writing the files of a job that
ended. The process backend's supervisor posts the job's end, then ends the processes (up to the
grace period) and drains their pipes, then records ``phase: "ended"`` in ``supervisor.json``:
until then a follower keeps reading. A job without that record (Slurm, whose batch script waits
for its rank launchers, which wait for their copies) is complete once it has ended.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .supervisor.spec import rank_log_paths
from .supervisor.wire import RECORD_FILE

__all__ = ["CHUNK_BYTES", "RankLogs", "output_complete"]

#: Largest piece of a file read (and sent as one log entry) at a time.
CHUNK_BYTES = 65536


def _decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


@dataclass
class _Source:
    rank: int
    stream: str  # "stdout" | "stderr"
    path: Path
    offset: int = 0
    fd: int | None = None
    decoder: codecs.IncrementalDecoder = field(default_factory=_decoder)


class RankLogs:
    """The output files of a job's ranks, read from the start (see the module docstring)."""

    def __init__(self, job_dir: Path, ranks: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._sources: list[_Source] = []
        for rank in range(ranks):
            out, err = rank_log_paths(job_dir, rank)
            self._sources += [_Source(rank, "stdout", out), _Source(rank, "stderr", err)]
        self._next = 0  # the source to look at first
        self._chunk = chunk_bytes
        self._closed = False
        self._lock = threading.Lock()  # a read in the worker thread, or close()

    @property
    def bytes_read(self) -> int:
        return sum(source.offset for source in self._sources)

    async def next_chunks(self, count: int = 1) -> list[tuple[int, str, str]]:
        """Up to ``count`` chunks ``(rank, "stdout"|"stderr", text)``, the sources taken in
        turn, read in one trip to the worker thread; ``[]`` when every file has been read to its
        current end."""
        while not self._closed:
            found = await asyncio.to_thread(self._read_many, count)
            if not found:
                return []
            chunks = []
            for source, data in found:
                text = source.decoder.decode(data)
                if text:  # empty: only the start of a character, completed by the next read
                    chunks.append((source.rank, source.stream, text))
            if chunks:
                return chunks
        return []

    def _read_many(self, count: int) -> list[tuple[_Source, bytes]]:
        found = []
        for _ in range(count):
            one = self._read_some()
            if one is None:
                break
            found.append(one)
        return found

    def flush(self) -> list[tuple[int, str, str]]:
        """What the decoders still hold (an incomplete character at the end of a file, as
        U+FFFD); call once the files are complete."""
        tails = []
        for source in self._sources:
            text = source.decoder.decode(b"", final=True)
            if text:
                tails.append((source.rank, source.stream, text))
        return tails

    def _read_some(self) -> tuple[_Source, bytes] | None:
        """In a worker thread: read from the first source (in turn) that has unread bytes."""
        with self._lock:
            count = len(self._sources)
            for step in range(count):
                index = (self._next + step) % count
                source = self._sources[index]
                data = self._read(source)
                if data:
                    source.offset += len(data)
                    self._next = (index + 1) % count
                    return source, data
            return None

    def _read(self, source: _Source) -> bytes:
        if self._closed:
            return b""
        if source.fd is None:
            try:
                source.fd = os.open(source.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return b""
        return os.pread(source.fd, self._chunk, source.offset)

    def close(self) -> None:
        """Close the files (a read in progress in the worker thread finishes first)."""
        with self._lock:
            self._closed = True
            for source in self._sources:
                fd, source.fd = source.fd, None
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)


def output_complete(job_dir: Path) -> bool | None:
    """Whether the supervisor of a job that has ended is done writing its output files;
    ``None`` when the job has no supervisor record (not a process-backend job)."""
    try:
        record = json.loads((job_dir / RECORD_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return False  # being rewritten: look again
    return isinstance(record, dict) and record.get("phase") == "ended"
