"""Shell.run and the rest of the Shell API over the real provider socket and a real PTY."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from jupyter_ucloud import UCloud
from jupyter_ucloud.client import Shell, ShellClosedError, UCloudTimeoutError


@pytest.fixture
def shell(uc: UCloud, terminal_job: str) -> Iterator[Shell]:
    with uc.shells.open_job(terminal_job, 0, cols=80, rows=24) as opened:
        yield opened


def test_run_output_and_exit_status(shell: Shell) -> None:
    assert shell.run("true").exit_status == 0
    result = shell.run("echo out; echo err >&2; exit_with() { return $1; }; exit_with 42")
    assert (result.output, result.exit_status) == ("out\nerr\n", 42)
    assert shell.run("printf 'no newline'").output == "no newline"
    assert shell.run("nosuchcommand-xyz").exit_status == 127
    syntax = shell.run("if then fi")  # a syntax error still ends with a status
    assert syntax.exit_status == 2
    assert "syntax error" in syntax.output
    quoted = shell.run("""echo "it's \\"quoted\\"" '$HOME'""")
    assert quoted.output == 'it\'s "quoted" $HOME\n'
    multi = shell.run("for i in 1 2 3\ndo\n  echo line $i\ndone")
    assert multi.output == "line 1\nline 2\nline 3\n"


def test_run_is_robust_to_colour_prompts_and_bracketed_paste(shell: Shell) -> None:
    setup = shell.run(
        r"""PS1='\[\e[1;35m\]fancy \u@\h \[\e[0m\]\w \$ '; PS2='\[\e[33m\]more> \[\e[0m\]';"""
        """ bind 'set enable-bracketed-paste on'; bind 'set colored-stats on'; export CLICOLOR=1"""
    )
    assert setup.exit_status == 0
    coloured = shell.run(
        r"printf '\033[1;31mred\033[0m \033[38;5;208morange\033[0m\n'; ls --color=always -d ."
    )
    assert coloured.output == "red orange\n.\n"
    title = shell.run(r"printf '\033]0;a title\007done\n'")
    assert title.output == "done\n"
    # The command text itself holds a marker-like string: it must not confuse the parser.
    tricky = shell.run("echo '__UC_00_E_0__'; echo after")
    assert tricky.output == "__UC_00_E_0__\nafter\n"
    big = shell.run("seq 1 20000")
    assert big.output.splitlines() == [str(i) for i in range(1, 20001)]


def test_size_resize_and_state_between_runs(shell: Shell) -> None:
    assert shell.run("stty size").output == "24 80\n"
    shell.resize(132, 43)
    assert shell.run("stty size").output == "43 132\n"
    shell.run("cd /tmp && export UC_TEST_VAR=kept")
    assert shell.run("pwd; echo $UC_TEST_VAR").output == "/tmp\nkept\n"


def test_timeout_interrupts_and_the_shell_stays_usable(shell: Shell) -> None:
    started = time.monotonic()
    with pytest.raises(UCloudTimeoutError, match=r"\] 'sleep 30' did not finish within 1 s"):
        shell.run("sleep 30", timeout=1)
    assert time.monotonic() - started < 5
    assert shell.run("echo alive", timeout=10).output == "alive\n"


def test_read_iterate_and_exit(shell: Shell) -> None:
    shell.send("echo $UCLOUD_RANK-$TERM\n")
    seen = ""
    deadline = time.monotonic() + 10
    while "0-xterm-256color" not in seen:
        assert time.monotonic() < deadline
        seen += shell.read(1)
    shell.send("exit 0\n")
    rest = "".join(shell)  # iteration ends when the shell's socket closes
    assert "exit" in rest
    assert shell.closed
    with pytest.raises(ShellClosedError, match="the shell is closed"):
        shell.send("echo never\n")
    with pytest.raises(ShellClosedError):
        shell.read(0.1)
    with pytest.raises(ShellClosedError, match="while running"):
        shell.run("echo never")
