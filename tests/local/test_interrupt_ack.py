"""Ctrl-C on the provider's shell websocket: acknowledged once the terminal acted on it.

Real shells on a real PTY flooding with ``yes``; what is measured is what a client skipping
stale output up to the ack (as the Jupyter bridge does) would still show of the flood, and
whether keys typed right after Ctrl-C reach the shell. The PTY side: test_pty_interrupt.py."""

from __future__ import annotations

import time

from jupyter_ucloud.local.pty_packets import UNFLUSHED_CHARS
from jupyter_ucloud.local.shell_socket import INTERRUPT_ACK_WAIT

from .conftest import Api, ShellSocket, open_shells

ROUNDS = 10


def _flood(shell: ShellSocket, seconds: float = 0.3) -> None:
    """Start ``yes`` and read its output for ``seconds``: the PTY and the socket fill up."""
    shell.input("yes\n")
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        shell.recv()


def _flood_after_ack(shell: ShellSocket, interrupt_stream: str) -> int:
    """Characters of ``yes`` output that came after the ack of ``interrupt_stream``, read
    until the socket went quiet."""
    acked = False
    after = 0
    while True:
        try:
            frame = shell.recv(timeout=0.5)
        except TimeoutError:
            break
        if frame.payload.type == "ack" and frame.stream_id == interrupt_stream:
            acked = True
        elif frame.payload.type == "data" and acked:
            after += frame.payload.data.count("y\r\n") * 3  # type: ignore[union-attr]
    assert acked, "the interrupt was never acknowledged"
    return after


def test_ctrl_c_is_acked_after_the_stale_flood(api: Api, shells) -> None:
    """Before this was built, 6 rounds in 25 had 8-75 KB of the flood after the ack (the
    terminal acts on Ctrl-C in a kernel worker, after the write returned)."""
    stale = []
    for _ in range(ROUNDS):
        (shell,), job_id = open_shells(api)
        shells.append(shell)
        _flood(shell)
        stale.append(_flood_after_ack(shell, shell.input("\x03")))
        shell.close()
        api.terminate(job_id)
    print(f"chars of the flood after the ack of Ctrl-C, {ROUNDS} rounds: {sorted(stale)}")
    assert max(stale) <= UNFLUSHED_CHARS, sorted(stale)


def test_keys_typed_right_after_ctrl_c_are_not_lost(api: Api, shells) -> None:
    """Input sent right after Ctrl-C waits while the ack does, and then reaches the shell
    whole: typed once, never again."""
    (shell,), job_id = open_shells(api)
    shells.append(shell)
    for attempt in range(ROUNDS):
        _flood(shell, 0.2)
        shell.input("\x03")
        shell.input(f"echo typed-$(({attempt}*7))\n")
        shell.read_until(f"typed-{attempt * 7}", timeout=10)
    api.terminate(job_id)


def test_in_raw_mode_ctrl_c_is_acked_at_once(api: Api, shells) -> None:
    """A program in raw mode (an editor) gets Ctrl-C as a byte; nothing is waited for."""
    (shell,), job_id = open_shells(api)
    shells.append(shell)
    shell.input("stty raw -echo; echo RE''ADY; head -c 1 | od -An -tx1; stty sane\n")
    shell.read_until("READY")
    sent = time.monotonic()
    stream = shell.input("\x03")
    while (frame := shell.recv()).payload.type != "ack" or frame.stream_id != stream:
        if frame.payload.type == "data":
            shell.output += frame.payload.data  # type: ignore[union-attr]
    assert time.monotonic() - sent < INTERRUPT_ACK_WAIT / 2
    assert "03" in shell.read_until(" 03")
    api.terminate(job_id)
