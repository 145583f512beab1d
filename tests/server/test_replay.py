"""The replay buffer and terminal-query stripping, on their own."""

from __future__ import annotations

from jupyter_ucloud.server.replay import ReplayBuffer, strip_terminal_queries


def test_offsets_and_reads_across_chunks() -> None:
    buffer = ReplayBuffer(1 << 20)
    text = "".join(f"line {i}\r\n" for i in range(5000))
    for start in range(0, len(text), 7):
        buffer.append(text[start : start + 7])
    assert buffer.end == len(text)
    assert buffer.start == 0
    first, got = buffer.read(12345, 100)
    assert first == 12345
    assert got == text[12345:12445]
    first, got = buffer.read(0, len(text) + 10)
    assert got == text


def test_bounded_in_bytes_and_reports_gaps() -> None:
    buffer = ReplayBuffer(10_000)
    sent = ""
    for i in range(3000):
        piece = f"{i:05d}é€\n"  # multi-byte characters count as bytes
        sent += piece
        buffer.append(piece)
        assert buffer.size_bytes <= 10_000
    assert buffer.size_bytes > 9_000
    assert buffer.end == len(sent)
    first, got = buffer.read(0, 10**9)
    assert first == buffer.start > 0  # the oldest output is gone: the reader sees the gap
    assert got == sent[first:]
    assert len(got.encode()) <= 10_000


def test_one_append_larger_than_the_buffer_keeps_its_tail() -> None:
    buffer = ReplayBuffer(1000)
    buffer.append("x" * 5000 + "TAIL")
    assert buffer.end == 5004
    first, got = buffer.read(0, 10**6)
    assert got.endswith("TAIL")
    assert len(got) == 1000
    assert first == 4004


def test_read_at_or_past_end_is_empty() -> None:
    buffer = ReplayBuffer(100)
    buffer.append("abc")
    assert buffer.read(3) == (3, "")
    assert buffer.read(99) == (3, "")


def test_terminal_queries_are_stripped_and_nothing_else() -> None:
    queries = [
        "\x1b[6n",
        "\x1b[5n",
        "\x1b[?6n",
        "\x1b[c",
        "\x1b[0c",
        "\x1b[>c",
        "\x1b[>0c",
        "\x1b[=c",
        "\x1b[>q",
        "\x1b[?2004$p",
        "\x1b[14t",
        "\x1b[18t",
        "\x1bP$qm\x1b\\",
        "\x1bP+q544e\x1b\\",
        "\x1b]10;?\x07",
        "\x1b]11;?\x1b\\",
        "\x1b]12;?\x07",
        "\x1b]4;1;?\x07",
    ]
    kept = "\x1b[1;31mred\x1b[0m \x1b[2J\x1b[H\x1b]0;title\x07\x1b[8;24;80t done"
    text = "A" + "B".join(queries) + "C" + kept
    assert strip_terminal_queries(text) == "A" + "B" * (len(queries) - 1) + "C" + kept
    assert strip_terminal_queries("plain") == "plain"


def test_stdout_frames_are_the_json_a_terminal_expects() -> None:
    """``["stdout", text, end]`` as the stock terminal reads it, for any text the provider
    may send: escapes, non-ASCII, and (after ``_encodable``) JSON's escaped lone surrogates."""
    import json

    from jupyter_ucloud.server.shells.clients import stdout_frame
    from jupyter_ucloud.server.shells.shell import _encodable

    for text in ("plain", 'a"\\b\x00\x1b[31m\r\n', "æøå ✓ 😀 \u2028", "x" * 70000):
        frame = stdout_frame(text, 42)
        assert isinstance(frame, bytes)
        assert json.loads(frame) == ["stdout", text, 42]
    lone = _encodable(json.loads('"a\\ud800b"'))
    assert json.loads(stdout_frame(lone, 3)) == ["stdout", "a\ufffdb", 3]


def test_output_a_reader_still_needs_is_kept_past_the_limit() -> None:
    buffer = ReplayBuffer(1000)
    buffer.append("a" * 900)
    buffer.append("b" * 5000, keep_from=300)  # a reader is at 300: keep 300.. whole
    assert buffer.start == 300
    first, got = buffer.read(300, 10_000)
    assert (first, got) == (300, "a" * 600 + "b" * 5000)
    buffer.append("c" * 10, keep_from=5900)  # it read everything: back to the limit
    assert buffer.size_bytes <= 1000
    assert buffer.read(buffer.start, 10_000)[1].endswith("b" * 990 + "c" * 10)
    buffer.append("d" * 3000)  # nobody reading: a single large append keeps its tail
    assert buffer.size_bytes == 1000
    assert buffer.read(buffer.start, 10_000)[1] == "d" * 1000
