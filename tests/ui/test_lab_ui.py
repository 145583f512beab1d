"""The UCloud panel and job terminals in a real JupyterLab, driven through headless Chromium.

One flow, in steps that share a page: see the panel and products, start a job (a rejected
request first, shown as the server words it), open a terminal on rank 0 and run a command,
reload and find the same shell with its history, open rank 1, see both in the Running panel,
terminate the job and see the tabs say it has completed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from typing import Any

import pytest

from .conftest import ARTIFACTS, LabProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

JOB_NAME = "ui-flow"
PROMPT = re.compile(r"[#$]\s*$")

# What the steps learn, for the steps after them (tests run in file order).
flow: dict[str, Any] = {}


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def expect_disabled(control: Any, disabled: bool = True) -> None:
    """A JupyterLab toolbar button (`<jp-button>`) is disabled as its toolkit says it:
    `disabled` and `aria-disabled="true"`, and drawn faded (JupyterLab's disabled styling)."""
    if disabled:
        expect()(control).to_have_attribute("aria-disabled", "true")
        expect()(control).to_have_attribute("disabled", "")
    else:
        expect()(control).not_to_have_attribute("aria-disabled", "true")
    opacity = float(control.evaluate("el => getComputedStyle(el).opacity"))
    assert (opacity < 0.75) if disabled else (opacity == 1.0), opacity


def row_matching(page: Any, scope: str, pattern: re.Pattern[str]) -> Any:
    """Terminal rows (xterm's screen-reader tree) under `scope` whose own text matches."""
    return page.locator(f"{scope} .xterm-accessibility-tree > div").filter(has_text=pattern)


def terminal_rows(page: Any, scope: str) -> list[str]:
    return page.locator(f"{scope} .xterm-accessibility-tree > div").all_inner_texts()


def run_in_terminal(page: Any, scope: str, command: str) -> None:
    page.locator(f"{scope} .xterm-helper-textarea").focus()
    page.keyboard.type(command + "\n")


def open_panel(page: Any) -> Any:
    panel = page.locator("#jp-ucloud-panel")
    if not panel.is_visible():
        page.locator('.lm-TabBar-tab[data-id="jp-ucloud-panel"]').click()
    expect()(panel).to_be_visible()
    return panel


def job_row(page: Any) -> Any:
    return page.locator(f'#jp-ucloud-panel .jp-UCloud-job[data-job-id="{flow["job_id"]}"]')


def test_panel_shows_connection_and_products(browser_page: Any) -> None:
    page = browser_page
    panel = open_panel(page)
    expect()(panel.locator('[data-field="mode"]')).to_have_text("embedded server")
    expect()(panel.locator('[data-field="user"]')).not_to_have_text("—")
    example = panel.locator('.jp-UCloud-product[data-product="compute-example"]')
    expect()(example).to_contain_text("1 CPU · 2 GB")
    expect()(example.locator('[data-feature="terminal"]')).to_be_visible()
    # A product without terminals shows the feature as absent, not as supported.
    batch = panel.locator('.jp-UCloud-product[data-product="batch-small"]')
    expect()(batch.locator('[data-feature-absent="terminal"]')).to_be_visible()
    expect()(batch.locator('[data-feature="terminal"]')).to_have_count(0)
    panel.screenshot(path=str(ARTIFACTS / "ucloud-panel.png"))


def fill_start_form(page: Any, replicas: str, submit: bool = True) -> Any:
    dialog = page.locator(".jp-Dialog")
    expect()(dialog.locator(".jp-UCloud-form")).to_be_visible()
    product = dialog.locator('select[name="product"]')
    value = product.locator("option", has_text="compute-multi").get_attribute("value")
    product.select_option(value)
    dialog.locator('input[name="name"]').fill(JOB_NAME)
    dialog.locator('input[name="replicas"]').fill(replicas)
    if submit:
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    return dialog


def product_reference(lab: LabProcess, product_id: str) -> dict[str, Any]:
    """The product reference ``{id, category, provider}`` of ``product_id``, as the proxy's
    ``retrieveProducts`` names it."""
    products = lab.api("ucloud/api/jobs/retrieveProducts").json()["productsByProvider"]
    return next(
        s["support"]["product"]
        for ps in products.values()
        for s in ps
        if s["support"]["product"]["id"] == product_id
    )


def test_start_job_shows_server_validation_then_starts(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    # What the server says about a job with too many ranks, asked directly.
    multi = product_reference(lab, "compute-multi")
    too_many = {
        "items": [
            {
                "application": {"name": "terminal", "version": "1"},
                "product": multi,
                "name": JOB_NAME,
                "replicas": 9,
                "parameters": {},
                "resources": [],
                "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
            }
        ]
    }
    answer = lab.api("ucloud/api/jobs", method="POST", json=too_many)
    assert answer.status_code == 400

    open_panel(page).locator(".jp-UCloud-start-job").click()
    # Too many nodes is caught before anything is sent, in the field's own words.
    dialog = fill_start_form(page, "9", submit=False)
    expect()(dialog.locator("#jp-UCloud-nodes-error")).to_have_text(
        "compute-multi allows at most 4 nodes."
    )
    expect()(dialog.locator(".jp-Dialog-button.jp-mod-accept")).to_be_disabled()
    # A refusal only the server can make (a year and more) comes back in the server's words.
    too_long = {"items": [{**too_many["items"][0], "replicas": 2}]}
    too_long["items"][0]["timeAllocation"] = {"hours": 9000, "minutes": 0, "seconds": 0}
    answer = lab.api("ucloud/api/jobs", method="POST", json=too_long)
    assert answer.status_code == 400
    dialog.locator('input[name="hours"]').fill("9000")
    dialog = fill_start_form(page, "2")
    expect()(dialog.locator(".jp-UCloud-form-error")).to_have_text(answer.json()["message"])
    # The form came back with what was typed; fix the time and submit.
    expect()(dialog.locator('input[name="name"]')).to_have_value(JOB_NAME)
    expect()(dialog.locator('input[name="hours"]')).to_have_value("9000")
    dialog.locator('input[name="hours"]').fill("1")
    fill_start_form(page, "2")
    expect()(page.locator(".jp-Dialog")).to_have_count(0)

    # The dialog closes as the request leaves: the job exists once the server answered it.
    deadline = time.monotonic() + 15
    while True:
        jobs = lab.api("ucloud/api/jobs/browse?itemsPerPage=10").json()["items"]
        named = [j for j in jobs if j["specification"].get("name") == JOB_NAME]
        if named:
            break
        assert time.monotonic() < deadline, "the job from the Start dialog never appeared"
        time.sleep(0.2)
    (job,) = named
    assert job["specification"]["replicas"] == 2
    flow["job_id"] = job["id"]
    row = job_row(page)
    expect()(row).to_have_attribute("data-state", "RUNNING", timeout=30_000)
    expect()(row.locator('[data-field="ranks"]')).to_have_text("2 nodes")
    expect_disabled(row.locator(".jp-UCloud-open-terminal"), False)


def test_terminal_on_rank_0_runs_a_command(browser_page: Any) -> None:
    page = browser_page
    job_row(page).locator(".jp-UCloud-open-terminal").click()
    scope = '.jp-UCloudTerminal[data-rank="0"]'
    tab = page.locator(scope)
    expect()(tab).to_be_visible()
    expect()(tab).to_have_attribute("data-phase", "open")
    expect()(tab.locator(".jp-UCloudTerminal-status")).to_have_text("Connected")
    expect()(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_contain_text(
        f"{JOB_NAME} · rank 0"
    )
    expect()(row_matching(page, scope, PROMPT).first).to_be_attached(timeout=20_000)
    run_in_terminal(page, scope, "echo ucloud-$((6*7))")
    expect()(row_matching(page, scope, re.compile(r"^\s*ucloud-42\s*$")).first).to_be_attached()
    flow["shell"] = tab.get_attribute("data-ucloud-shell")
    assert flow["shell"].startswith(f"ucloud-{flow['job_id']}-0-")
    tab.screenshot(path=str(ARTIFACTS / "ucloud-terminal.png"))


def test_reload_reattaches_the_same_shell_with_history(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    # Wait until the workspace holds the tab, so the reload can restore it.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        workspace = lab.api("lab/api/workspaces/default")
        if workspace.ok and flow["shell"] in workspace.text:
            break
        time.sleep(0.3)
    else:
        pytest.fail("the workspace never recorded the UCloud terminal")
    page.goto(f"{lab.url}/lab?token={lab.token}")
    scope = f'.jp-UCloudTerminal[data-ucloud-shell="{flow["shell"]}"]'
    tab = page.locator(scope)
    expect()(tab).to_have_count(1, timeout=30_000)
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=f"{JOB_NAME} · rank 0").click()
    expect()(tab).to_have_attribute("data-phase", "open")
    # The replay brings back what the shell printed before the reload, once.
    output = row_matching(page, scope, re.compile(r"^\s*ucloud-42\s*$"))
    expect()(output.first).to_be_attached()
    expect()(output).to_have_count(1)
    shells = lab.api("ucloud/shells").json()
    assert [s["name"] for s in shells] == [flow["shell"]], "the reload must not open a new shell"
    run_in_terminal(page, scope, "echo again-$((40+3))")
    expect()(row_matching(page, scope, re.compile(r"^\s*again-43\s*$")).first).to_be_attached()


def test_second_rank_and_running_panel(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    open_panel(page)
    row = job_row(page)
    row.locator(".jp-UCloud-rank select").select_option("1")
    row.locator(".jp-UCloud-open-terminal").click()
    scope = '.jp-UCloudTerminal[data-rank="1"]'
    expect()(page.locator(scope)).to_have_attribute("data-phase", "open")
    expect()(row_matching(page, scope, PROMPT).first).to_be_attached(timeout=20_000)
    run_in_terminal(page, scope, "echo rank-$((0+1))-$((7*6))")
    expect()(row_matching(page, scope, re.compile(r"^\s*rank-1-42\s*$")).first).to_be_attached()
    shells = {s["name"]: s for s in lab.api("ucloud/shells").json()}
    assert sorted(s["rank"] for s in shells.values()) == [0, 1]

    page.locator('.lm-TabBar-tab[data-id="jp-running-sessions"]').click()
    running = page.locator("#jp-running-sessions")
    expect()(running.locator(".lm-AccordionPanel-title", has_text="UCloud Shells")).to_be_visible()
    items = running.locator(".jp-UCloud-runningShell")
    expect()(items).to_have_count(2, timeout=15_000)
    expect()(items.first).to_contain_text(f"{JOB_NAME} · rank")


def test_a_frozen_provider_is_shown_and_typing_survives(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    scope = '.jp-UCloudTerminal[data-rank="1"]'
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="rank 1").click()
    status = page.locator(f"{scope} .jp-UCloudTerminal-status")
    expect()(status).to_have_text("Connected")
    embedded = json.loads((lab.root / "ucloud-local" / "server.json").read_text())["pid"]
    os.kill(embedded, signal.SIGSTOP)  # the job's provider stops answering
    try:
        run_in_terminal(page, scope, "echo thawed-$((5*5))")
        expect()(status).to_have_text("Provider not responding", timeout=12_000)
        expect()(status).to_have_attribute("title", re.compile("not responding"))
    finally:
        os.kill(embedded, signal.SIGCONT)
    expect()(status).to_have_text("Connected", timeout=10_000)
    expect()(row_matching(page, scope, re.compile(r"^\s*thawed-25\s*$")).first).to_be_attached()


def test_terminate_says_the_job_has_completed(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    open_panel(page)
    row = job_row(page)
    row.locator(".jp-UCloud-terminate").click()
    dialog = page.locator(".jp-Dialog")
    expect()(dialog).to_contain_text("Terminate")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect()(row).to_have_attribute("data-state", "SUCCESS", timeout=30_000)
    expect_disabled(row.locator(".jp-UCloud-open-terminal"))
    expect_disabled(row.locator(".jp-UCloud-terminate"))
    expect()(row.locator('[data-field="why-no-terminal"]')).to_have_text(
        "The job has completed, so it has no terminals any more."
    )
    expect()(row.locator(".jp-UCloud-open-terminal")).to_have_attribute(
        "title", "The job has completed, so it has no terminals any more."
    )
    for rank in (0, 1):
        scope = f'.jp-UCloudTerminal[data-rank="{rank}"]'
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=f"rank {rank}").click()
        expect()(page.locator(scope)).to_have_attribute("data-phase", "ended")
        expect()(page.locator(f"{scope} .jp-UCloudTerminal-status")).to_have_text("Ended")
        message = row_matching(page, scope, re.compile("The job has completed"))
        expect()(message.first).to_be_attached()
    # The tab stays readable: what was typed before is still there.
    assert any("ucloud-42" in r for r in terminal_rows(page, '.jp-UCloudTerminal[data-rank="0"]'))
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="rank 0").click()
    page.locator('.jp-UCloudTerminal[data-rank="0"]').screenshot(
        path=str(ARTIFACTS / "ucloud-terminal-ended.png")
    )
