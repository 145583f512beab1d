"""The notebook widgets' front end (registered by the labextension), in a real notebook.

A notebook run in the browser shows an inline terminal on rank 0 (typed into, output read back
from its rows) and an "open terminal" button that opens a JupyterLab tab on rank 1.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from .conftest import ARTIFACTS, LabProcess
from .test_lab_ui import expect, product_reference, row_matching, run_in_terminal

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

PROMPT = re.compile(r"[#$]\s*$")


def start_job(lab: LabProcess) -> str:
    multi = product_reference(lab, "compute-multi")
    body = {
        "items": [
            {
                "application": {"name": "terminal", "version": "1"},
                "product": multi,
                "name": "widgets",
                "replicas": 2,
                "parameters": {},
                "resources": [],
                "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
            }
        ]
    }
    answer = lab.api("ucloud/api/jobs", method="POST", json=body)
    assert answer.ok, answer.text
    job_id = answer.json()["responses"][0]["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = lab.api(f"ucloud/api/jobs/retrieve?id={job_id}").json()
        if job["status"]["state"] == "RUNNING":
            return job_id
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not start")


def write_notebook(lab: LabProcess, job_id: str) -> str:
    cells = [
        "from jupyter_ucloud import UCloud\n"
        "from jupyter_ucloud.widgets import InlineTerminal, OpenTerminalButton\n"
        "uc = UCloud()",
        f"InlineTerminal.for_job(uc, {job_id!r}, rank=0, rows=8)",
        f"button = OpenTerminalButton({job_id!r}, rank=1, label='Open rank 1')\nbutton",
    ]
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": src,
                "outputs": [],
                "execution_count": None,
            }
            for src in cells
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab.root / "work" / "widgets.ipynb").write_text(json.dumps(notebook))
    return "widgets.ipynb"


# What the first test learns, for the second.
flow: dict[str, Any] = {}


def run_all_cells(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()


def test_inline_terminal_and_open_terminal_button(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    flow["console"] = console
    job_id = start_job(lab)
    flow["job_id"] = job_id
    path = write_notebook(lab, job_id)
    page.goto(f"{lab.url}/lab/tree/{path}?token={lab.token}")
    expect()(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=30_000)
    expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=30_000)
    run_all_cells(page)
    expect()(page.locator(".jp-InputPrompt", has_text="[1]:")).to_be_visible(timeout=30_000)

    scope = ".jp-UCloud-inlineTerminal"
    expect()(page.locator(scope)).to_have_attribute(
        "data-ucloud-shell", re.compile(f"^ucloud-{job_id}-0-"), timeout=30_000
    )
    expect()(row_matching(page, scope, PROMPT).first).to_be_attached(timeout=20_000)
    # Sized to the widget's `rows`, not xterm's default 24.
    expect()(page.locator(f"{scope} .xterm-accessibility-tree > div")).to_have_count(8)
    # Framed like an output, in the theme's border colour.
    frame = page.locator(scope).evaluate(
        "el => [getComputedStyle(el).borderTopWidth, getComputedStyle(el).borderTopStyle]"
    )
    assert frame == ["1px", "solid"], frame
    run_in_terminal(page, scope, "echo inline-$((5*5))")
    expect()(row_matching(page, scope, re.compile(r"^\s*inline-25\s*$")).first).to_be_attached()
    page.locator(scope).screenshot(path=str(ARTIFACTS / "ucloud-inline-terminal.png"))

    button = page.locator(".jp-UCloud-widget-button", has_text="Open rank 1")
    expect()(button).to_be_enabled()
    button.click()
    tab = page.locator(f'.jp-UCloudTerminal[data-job-id="{job_id}"][data-rank="1"]')
    expect()(tab).to_have_attribute("data-phase", "open", timeout=20_000)
    expect()(
        row_matching(page, f'.jp-UCloudTerminal[data-job-id="{job_id}"]', PROMPT).first
    ).to_be_attached(timeout=20_000)

    shells = lab.api("ucloud/shells").json()
    assert sorted((s["jobId"], s["rank"]) for s in shells if s["jobId"] == job_id) == [
        (job_id, 0),
        (job_id, 1),
    ]
    flow["inline_shell"] = page.locator(scope).get_attribute("data-ucloud-shell")


def test_rerunning_the_cell_replaces_the_inline_shell(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    job_id, old = flow["job_id"], flow["inline_shell"]
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="widgets.ipynb").click()
    run_all_cells(page)
    scope = ".jp-UCloud-inlineTerminal"
    expect()(page.locator(scope)).to_have_count(1)
    expect()(page.locator(scope)).not_to_have_attribute("data-ucloud-shell", old, timeout=30_000)
    expect()(page.locator(scope)).to_have_attribute(
        "data-ucloud-shell", re.compile(f"^ucloud-{job_id}-0-"), timeout=30_000
    )
    expect()(row_matching(page, scope, PROMPT).first).to_be_attached(timeout=20_000)
    # The previous run's shell was closed: one shell on rank 0, not two.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        on_rank_0 = [s["name"] for s in lab.api("ucloud/shells").json() if s["jobId"] == job_id]
        on_rank_0 = [name for name in on_rank_0 if name.startswith(f"ucloud-{job_id}-0-")]
        if len(on_rank_0) == 1:
            break
        time.sleep(0.2)
    assert on_rank_0 == [page.locator(scope).get_attribute("data-ucloud-shell")]
    run_in_terminal(page, scope, "echo again-$((6*6))")
    expect()(row_matching(page, scope, re.compile(r"^\s*again-36\s*$")).first).to_be_attached()
    errors = [line for line in flow["console"] if "not attached" in line]
    assert errors == []
    lab.api("ucloud/api/jobs/terminate", method="POST", json={"items": [{"id": job_id}]})
