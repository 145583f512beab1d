#!/usr/bin/env python
"""The screenshots of the README and docs/notebooks.md, taken from a real session.

Starts JupyterLab with the extension on a fresh embedded UCloud server (tests/ui/conftest.py's
`LabProcess`, default terminal settings), starts a few jobs (a running 2-node job, a finished and
a failed one), and photographs in headless Chromium: the UCloud panel in the light and the dark
theme, the Start dialog, a job page with live output on two ranks, a job terminal, and a notebook
with the widgets. Writes PNGs to
docs/images/ (commit them). Run: `./dev screenshots` (or `python docs/screenshots.py`).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, LabProcess  # noqa: E402

IMAGES = REPO / "docs" / "images"

NOTEBOOK_CELLS = [
    "from jupyter_ucloud import UCloud\n"
    "from jupyter_ucloud.widgets import InlineTerminal, JobPicker\n"
    "uc = UCloud()",
    "JobPicker(uc)",
    "InlineTerminal.for_job(uc, {job!r}, rank=1, rows=8)",
]


def reference(lab: LabProcess, product: str) -> dict[str, Any]:
    products = lab.api("ucloud/api/jobs/retrieveProducts").json()["productsByProvider"]
    return next(
        s["support"]["product"]
        for items in products.values()
        for s in items
        if s["support"]["product"]["id"] == product
    )


def create(lab: LabProcess, product: str, app: str, **spec: Any) -> str:
    item = {
        "application": {"name": app, "version": "1"},
        "product": reference(lab, product),
        "replicas": 1,
        "parameters": {},
        "resources": [],
        "timeAllocation": {"hours": 2, "minutes": 0, "seconds": 0},
        **spec,
    }
    answer = lab.api("ucloud/api/jobs", method="POST", json={"items": [item]})
    answer.raise_for_status()
    return str(answer.json()["responses"][0]["id"])


def wait_state(lab: LabProcess, job_id: str, *states: str) -> None:
    for _ in range(300):
        if lab.api(f"ucloud/api/jobs/retrieve?id={job_id}").json()["status"]["state"] in states:
            return
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not reach {states}")


def make_jobs(lab: LabProcess) -> str:
    """A finished job, a failed batch job, and a running 2-node job (its id is returned)."""
    done = create(lab, "compute-example", "terminal", name="data-prep")
    wait_state(lab, done, "RUNNING")
    failed = create(
        lab,
        "batch-small",
        "batch",
        name="train-model",
        parameters={"command": {"type": "text", "value": "python train.py"}},
    )
    wait_state(lab, failed, "FAILURE")
    lab.api("ucloud/api/jobs/terminate", method="POST", json={"items": [{"id": done}]})
    wait_state(lab, done, "SUCCESS")
    running = create(lab, "compute-multi", "terminal", name="analysis", replicas=2)
    wait_state(lab, running, "RUNNING")
    return running


def change_theme(page: Any, theme: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Settings$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{theme}$")).click()
    page.wait_for_selector(f'body[data-jp-theme-name="{theme}"]', state="attached")
    page.wait_for_timeout(800)


def panel_shots(page: Any) -> None:
    page.locator('.lm-TabBar-tab[data-id="jp-ucloud-panel"]').click()
    panel = page.locator("#jp-ucloud-panel")
    panel.locator('input[name="jp-UCloud-filter"][value="all"]').check()
    panel.locator(".jp-UCloud-refresh").click()
    page.wait_for_selector('#jp-ucloud-panel .jp-UCloud-job[data-state="FAILURE"]')
    page.wait_for_timeout(500)
    panel.screenshot(path=str(IMAGES / "panel-light.png"))
    change_theme(page, "JupyterLab Dark")
    panel.screenshot(path=str(IMAGES / "panel-dark.png"))
    change_theme(page, "JupyterLab Light")


def dialog_shot(page: Any) -> None:
    page.locator("#jp-ucloud-panel .jp-UCloud-start-job").click()
    dialog = page.locator(".jp-Dialog-content")
    application = dialog.locator('select[name="application"]')
    application.select_option(
        application.locator("option", has_text="Batch command").get_attribute("value")
    )
    dialog.locator('[data-parameter="command"] input').fill("python train.py --epochs 10")
    dialog.locator('input[name="name"]').fill("train-model")
    page.wait_for_timeout(300)
    dialog.screenshot(path=str(IMAGES / "start-dialog.png"))
    page.locator(".jp-Dialog-button.jp-mod-reject").click()


TRAINING = (
    'echo "rank $UCLOUD_RANK of $UCLOUD_NODES: loading data"; '
    "for epoch in 1 2 3 4 5 6; do sleep 0.4; "
    'echo "rank $UCLOUD_RANK: epoch $epoch/6 loss=0.$((91 - epoch * 12))"; done; '
    'sleep 0.5; echo "rank $UCLOUD_RANK: warning: no checkpoint directory set, using ./ckpt" >&2; '
    "sleep 600"
)


def job_page_shot(lab: LabProcess, page: Any) -> str:
    """A running 2-node batch job's page, with rank 0's output (its id is returned)."""
    job_id = create(
        lab,
        "compute-multi",
        "batch",
        name="train-ddp",
        replicas=2,
        parameters={"command": {"type": "text", "value": TRAINING}},
    )
    wait_state(lab, job_id, "RUNNING")
    page.locator("#jp-ucloud-panel .jp-UCloud-refresh").click()
    card = page.locator(f'#jp-ucloud-panel .jp-UCloud-job[data-job-id="{job_id}"]')
    card.locator(".jp-UCloud-job-facts").click()
    page.wait_for_selector(f'.jp-UCloudJobPage[data-job-id="{job_id}"]')
    page.get_by_text("using ./ckpt").first.wait_for()
    page.wait_for_timeout(800)
    page.screenshot(path=str(IMAGES / "job-page.png"))
    return job_id


def terminal_shot(page: Any, job_id: str) -> None:
    card = page.locator(f'#jp-ucloud-panel .jp-UCloud-job[data-job-id="{job_id}"]')
    card.locator(".jp-UCloud-open-terminal").click()
    page.wait_for_selector(".jp-UCloudTerminal[data-phase='open']")
    page.wait_for_timeout(1500)
    page.locator(".jp-UCloudTerminal .xterm-helper-textarea").focus()
    page.keyboard.type('echo "rank $UCLOUD_RANK of $UCLOUD_NODES on job $UCLOUD_JOB_ID"; uptime\n')
    page.wait_for_timeout(1500)
    page.screenshot(path=str(IMAGES / "job-terminal.png"))


def notebook_shot(lab: LabProcess, page: Any, job_id: str) -> None:
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": cell.format(job=job_id),
                "outputs": [],
                "execution_count": None,
            }
            for cell in NOTEBOOK_CELLS
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab.root / "work" / "widgets.ipynb").write_text(json.dumps(notebook))
    page.goto(f"{lab.url}/lab/tree/widgets.ipynb?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
    page.locator('.lm-TabBar-tab[data-id="jp-ucloud-panel"]').click()  # more room
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
    page.wait_for_selector(".jp-UCloud-inlineTerminal[data-ucloud-shell]", timeout=60_000)
    page.wait_for_timeout(1500)
    page.locator(".jp-UCloud-inlineTerminal .xterm-helper-textarea").focus()
    page.keyboard.type("hostname; echo rank $UCLOUD_RANK\n")
    page.wait_for_timeout(1500)
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").evaluate(
        "el => { el.scrollTop = 0; }"
    )
    page.wait_for_timeout(500)
    page.locator(".jp-Notebook").screenshot(path=str(IMAGES / "notebook-widgets.png"))


def main() -> int:
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="jupyter-ucloud-shots-"))
    lab = LabProcess(root, terminal_settings={})
    lab.start()
    try:
        running = make_jobs(lab)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(30_000)
            page.goto(f"{lab.url}/lab?reset&token={lab.token}")
            page.wait_for_selector(".jp-LauncherCard", timeout=60_000)
            panel_shots(page)
            dialog_shot(page)
            training = job_page_shot(lab, page)
            terminal_shot(page, running)
            notebook_shot(lab, page, running)
            browser.close()
        for job_id in (running, training):
            lab.api("ucloud/api/jobs/terminate", method="POST", json={"items": [{"id": job_id}]})
    finally:
        lab.stop()
        shutil.rmtree(root, ignore_errors=True)
    for image in sorted(IMAGES.glob("*.png")):
        print(image.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
