#!/usr/bin/env python
"""Ctrl-C under `yes` in Chromium: the UCloud job terminal against the stock JupyterLab terminal.

One JupyterLab (the extension on its embedded server, default terminal settings), one headless
Chromium, both terminals open side by side in the same run. Each round, in each terminal: run
`yes` for a while, press Ctrl-C, and time until the prompt is back on screen, taking turns
between the two terminals.

"Back on screen" is measured by xterm.js itself: before each prompt the shell asks the terminal
for a status report (`PROMPT_COMMAND` prints `ESC [5n` and reads the answer), and xterm.js answers
(`ESC [0n`) only once it has parsed everything before the question, so the moment the answer is
sent is the moment the terminal has drawn all output up to the prompt. A wrapper around the page's
WebSocket records, for each terminal's socket, when Ctrl-C left the browser, when the question
arrived, when the answer left, and how much output arrived in between, which splits the time into:

- `arrive`: Ctrl-C leaving the browser -> the prompt's question arriving in the browser (the
  servers, the sockets and what was in flight: the part the protocol-level benchmark measures);
- `parse`: the question arriving -> xterm.js having parsed it (output that had already reached
  the browser and waited in xterm.js's write queue);
- `after`: characters received between Ctrl-C and the prompt.

Each round also times `seq 1 200000` (Enter -> the prompt after it on screen), so pacing the
output by what xterm.js has drawn is seen not to slow bulk output down.

Run: `python bench/bench_browser.py [--rounds 3] [--flood-seconds 3] [--seq N] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, LabProcess  # noqa: E402

#: Records what crosses each WebSocket of the page (see the module docstring).
WEBSOCKET_PROBE = r"""
(() => {
  const Native = window.WebSocket;
  const sockets = (window.__bench = []);
  const has = (data, text) => typeof data === 'string' && data.includes(text);
  class Probe extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = { url: String(url), chars: 0, marks: [] };
      sockets.push(rec);
      this.__rec = rec;
      this.addEventListener('message', event => {
        rec.chars += typeof event.data === 'string' ? event.data.length : 0;
        if (has(event.data, '\\u001b[5n')) {
          rec.marks.push(['question', performance.now(), rec.chars]);
        }
      });
    }
    send(data) {
      if (has(data, '\\u0003')) {
        this.__rec.marks.push(['interrupt', performance.now(), this.__rec.chars]);
      }
      if (data === '["stdin","\\r"]') {
        this.__rec.marks.push(['enter', performance.now(), this.__rec.chars]);
      }
      if (has(data, '\\u001b[0n')) {
        this.__rec.marks.push(['answer', performance.now(), this.__rec.chars]);
      }
      return super.send(data);
    }
  }
  window.WebSocket = Probe;
})();
"""

#: Before each prompt: ask the terminal for a status report and read its answer silently.
PROMPT_COMMAND = "PROMPT_COMMAND='printf \"\\033[5n\"; read -rs -d n -t 10 _'"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="Ctrl-Cs per terminal (default 3)")
    parser.add_argument(
        "--flood-seconds", type=float, default=3.0, help="seconds of `yes` before Ctrl-C"
    )
    parser.add_argument(
        "--seq", type=int, default=200000, help="lines of the bulk round `seq 1 N` (0: none)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    return parser.parse_args(argv)


class Terminal:
    """One terminal tab of the page and its WebSocket (by URL part)."""

    def __init__(self, page: Any, name: str, scope: str, url_part: str) -> None:
        self.page, self.name, self.scope, self.url_part = page, name, scope, url_part

    def marks(self) -> list[list[Any]]:
        return self.page.evaluate(  # type: ignore[no-any-return]
            "part => { const s = window.__bench.filter(r => r.url.includes(part)).pop();"
            " return s ? s.marks : []; }",
            self.url_part,
        )

    def focus(self) -> None:
        self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=self.name).click()
        self.page.locator(f"{self.scope} .xterm-helper-textarea").focus()

    def type(self, text: str) -> None:
        self.focus()
        self.page.keyboard.type(text)

    def wait_for(self, kind: str, count: int, timeout: float = 120.0) -> list[list[Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            marks = self.marks()
            if sum(1 for m in marks if m[0] == kind) >= count:
                return marks
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: no {kind} #{count} in {timeout} s")

    def interrupt_round(self, flood_seconds: float) -> dict[str, float]:
        answers = sum(1 for m in self.marks() if m[0] == "answer")
        self.type("yes\n")
        time.sleep(flood_seconds)
        self.focus()
        self.page.keyboard.press("Control+c")
        marks = self.wait_for("answer", answers + 1)
        interrupt = [m for m in marks if m[0] == "interrupt"][-1]
        question = next(m for m in marks if m[0] == "question" and m[1] >= interrupt[1])
        answer = [m for m in marks if m[0] == "answer"][-1]
        return {
            "total_s": (answer[1] - interrupt[1]) / 1000,
            "arrive_s": (question[1] - interrupt[1]) / 1000,
            "parse_s": (answer[1] - question[1]) / 1000,
            "after_chars": question[2] - interrupt[2],
        }

    def bulk_round(self, lines: int) -> dict[str, float]:
        """`seq 1 <lines>`: Enter -> the prompt after it on screen."""
        answers = sum(1 for m in self.marks() if m[0] == "answer")
        self.type(f"seq 1 {lines}")
        self.page.keyboard.press("Enter")
        marks = self.wait_for("answer", answers + 1)
        enter = [m for m in marks if m[0] == "enter"][-1]
        answer = [m for m in marks if m[0] == "answer"][-1]
        return {"bulk_s": (answer[1] - enter[1]) / 1000, "bulk_chars": answer[2] - enter[2]}


def start_job(lab: LabProcess) -> str:
    products = lab.api("ucloud/api/jobs/retrieveProducts").json()["productsByProvider"]
    reference = next(
        s["support"]["product"]
        for items in products.values()
        for s in items
        if s["support"]["product"]["id"] == "compute-example"
    )
    body = {
        "items": [
            {
                "application": {"name": "terminal", "version": "1"},
                "product": reference,
                "name": "bench",
                "replicas": 1,
                "parameters": {},
                "resources": [],
                "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
            }
        ]
    }
    job_id = str(lab.api("ucloud/api/jobs", method="POST", json=body).json()["responses"][0]["id"])
    for _ in range(300):
        if lab.api(f"ucloud/api/jobs/retrieve?id={job_id}").json()["status"]["state"] == "RUNNING":
            return job_id
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not start")


def open_terminals(page: Any, job_id: str) -> list[Terminal]:
    page.locator(".jp-LauncherCard", has_text="Terminal").first.click()
    stock = Terminal(
        page, "Terminal 1", "#jp-main-dock-panel .jp-Terminal", "/terminals/websocket/"
    )
    page.locator('.lm-TabBar-tab[data-id="jp-ucloud-panel"]').click()
    page.locator(f'.jp-UCloud-job[data-job-id="{job_id}"] .jp-UCloud-open-terminal').click()
    page.locator(".jp-UCloudTerminal[data-phase='open']").wait_for(timeout=30_000)
    ours = Terminal(page, "bench · rank 0", ".jp-UCloudTerminal", "/ucloud/shells/")
    # The stock terminal's tab is the one without our class.
    stock.scope = "#jp-main-dock-panel .jp-MainAreaWidget:not(.jp-UCloudTerminal) .jp-Terminal"
    for terminal in (stock, ours):
        terminal.type(PROMPT_COMMAND + "\n")
        terminal.wait_for("answer", 1, timeout=30)
    return [stock, ours]


def summary(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="jupyter-ucloud-bench-browser-"))
    lab = LabProcess(root, terminal_settings={}).start()
    results: dict[str, list[dict[str, float]]] = {}
    try:
        job_id = start_job(lab)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_init_script(WEBSOCKET_PROBE)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{lab.url}/lab?reset&token={lab.token}")
            page.wait_for_selector(".jp-LauncherCard", timeout=60_000)
            terminals = open_terminals(page, job_id)
            for n in range(args.rounds):
                for terminal in terminals:
                    result = terminal.interrupt_round(args.flood_seconds)
                    if args.seq:
                        result.update(terminal.bulk_round(args.seq))
                    results.setdefault(terminal.name, []).append(result)
                    print(
                        f"round {n + 1} {terminal.name:>16}: prompt after "
                        f"{result['total_s']:.2f} s (arrive {result['arrive_s']:.2f} s, "
                        f"parse {result['parse_s']:.2f} s, "
                        f"{result['after_chars'] / 1e6:.2f} M chars after Ctrl-C)"
                        + (
                            f"; seq 1 {args.seq} on screen in {result['bulk_s']:.2f} s"
                            if args.seq
                            else ""
                        ),
                        flush=True,
                    )
            browser.close()
    finally:
        lab.stop()
        shutil.rmtree(root, ignore_errors=True)
    print("\nmedian of", args.rounds, "rounds (s: Ctrl-C -> prompt on screen)")
    print(
        f"{'terminal':>16} {'total':>7} {'arrive':>7} {'parse':>7} {'chars after':>12} {'seq':>7}"
    )
    for name, rounds in results.items():
        m = summary(rounds)
        print(
            f"{name:>16} {m['total_s']:7.2f} {m['arrive_s']:7.2f} {m['parse_s']:7.2f} "
            f"{m['after_chars']:12.0f} {m.get('bulk_s', float('nan')):7.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
