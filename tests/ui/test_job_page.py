"""The job page in a real JupyterLab through headless Chromium (issue 12): a batch job's output
on two ranks live, stdout and stderr told apart, the final state; an interactive job opened from
the palette, a terminal from the page, its time extended, the page restored after a reload, and
its termination seen on the page and in the panel without a refresh; a rank printing tens of MB
with the DOM kept bounded and the page responsive; the page readable in both themes.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from .conftest import ARTIFACTS, LabProcess
from .test_lab_ui import expect, expect_disabled, open_panel
from .test_panel_ux import CONTRAST_JS, card, change_theme, create_job, show_all_jobs, wait_state

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

#: What the log view holds at most (logview.ts VIEW_CHARS, plus a block of two BLOCK_CHARS).
VIEW_CHARS = 256 * 1024
MAX_DOM_CHARS = VIEW_CHARS + 2 * 16 * 1024

# What the steps learn, for the steps after them (tests run in file order).
flow: dict[str, Any] = {}


def job_page(page: Any, job_id: str) -> Any:
    return page.locator(f'.jp-UCloudJobPage[data-job-id="{job_id}"]')


def tab_of(page: Any, label: str) -> Any:
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=label)


def log_text(page: Any, job_id: str) -> Any:
    return job_page(page, job_id).locator(".jp-UCloudLog-text")


def batch(command: str) -> dict[str, Any]:
    return {"command": {"type": "text", "value": command}}


def test_a_batch_job_on_two_ranks_shows_its_output_live(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    command = (
        'echo "start-$UCLOUD_RANK"; echo "oops-$UCLOUD_RANK" >&2; sleep 4; '
        'echo "later-$UCLOUD_RANK"; sleep 1'
    )
    job_id = create_job(
        lab, "compute-multi", app="batch", name="two-ranks", replicas=2, parameters=batch(command)
    )
    flow["batch"] = job_id
    show_all_jobs(page)
    # A click on the card (not on its buttons) opens the job page.
    card(page, job_id).locator(".jp-UCloud-job-facts").click()
    view = job_page(page, job_id)
    expect()(view).to_be_visible()
    expect()(tab_of(page, "two-ranks")).to_have_count(1)
    expect()(view.locator('[data-field="name"]')).to_have_text("two-ranks")
    expect()(view.locator('[data-field="id"]')).to_have_text(job_id)
    expect()(view.locator('[data-field="application"]')).to_have_text("batch 1")
    expect()(view.locator('[data-field="product"]')).to_contain_text("compute-multi")
    expect()(view.locator('[data-field="ranks"]')).to_have_text("2 nodes")

    text = log_text(page, job_id)
    expect()(text).to_contain_text("start-0", timeout=30_000)
    # Live: the first lines are there while the job runs and the later ones are not yet.
    expect()(view).to_have_attribute("data-state", "RUNNING")
    assert "later-0" not in text.inner_text()
    stderr = text.locator(".jp-UCloudLog-stderr", has_text="oops-0")
    expect()(stderr).to_be_visible()
    stdout = text.locator(".jp-UCloudLog-stdout", has_text="start-0")
    probe = page.evaluate(
        """() => { const d = document.createElement('div');
                   d.style.color = 'var(--jp-error-color1)'; document.body.append(d);
                   const c = getComputedStyle(d).color; d.remove(); return c; }"""
    )
    # stderr in JupyterLab's error colour, stdout not
    assert stderr.evaluate("el => getComputedStyle(el).color") == probe
    assert stdout.evaluate("el => getComputedStyle(el).color") != probe
    expect()(text).to_contain_text("later-0", timeout=15_000)

    # The other rank's output, through the rank selector.
    view.locator(".jp-UCloudJobPage-rank select").select_option("1")
    expect()(view.locator(".jp-UCloudLog")).to_have_attribute("data-rank", "1")
    expect()(text).to_contain_text("start-1")
    expect()(text).to_contain_text("later-1")
    expect()(text.locator(".jp-UCloudLog-stderr", has_text="oops-1")).to_be_visible()
    assert "start-0" not in text.inner_text()

    # The end comes without a reload: the final state, the timeline, no time left.
    expect()(view).to_have_attribute("data-state", "SUCCESS", timeout=30_000)
    expect()(view.locator('[data-field="state"]')).to_have_text("SUCCESS")
    expect()(view.locator('[data-field="time-left"]')).to_have_count(0)
    expect()(view.locator('[data-field="phase"]')).to_have_text("Final", timeout=15_000)
    timeline = view.locator(".jp-UCloudJobPage-timeline li")
    states = [s for s in timeline.evaluate_all("els => els.map(e => e.dataset.state)") if s]
    assert states[:2] == ["IN_QUEUE", "RUNNING"], states
    assert states[-1] == "SUCCESS", states
    toolbar = page.locator(".jp-UCloudJobPage-tab:visible .jp-Toolbar")
    expect_disabled(toolbar.locator(".jp-UCloudJobPage-terminate"))
    # The output is all still there after the end.
    assert text.inner_text().count("later-1") == 1
    page.locator(".jp-UCloudJobPage-tab:visible").screenshot(
        path=str(ARTIFACTS / "ucloud-job-page.png")
    )


def test_the_job_page_is_readable_in_both_themes(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    job_id = flow["batch"]
    tab_of(page, "two-ranks").click()
    view = job_page(page, job_id)
    expect()(view.locator(".jp-UCloudLog-stderr").first).to_be_visible()
    failures = {}
    try:
        for theme in ("JupyterLab Light", "JupyterLab Dark"):
            if theme == "JupyterLab Dark":
                change_theme(page, theme)
                tab_of(page, "two-ranks").click()
            results = page.locator(".jp-UCloudJobPage-tab:visible").evaluate(CONTRAST_JS)
            assert any(r["text"].startswith("oops-1") for r in results), results
            assert any(r["text"] == "SUCCESS" for r in results)
            failures[theme] = [r for r in results if r["ratio"] < 4.5]
    finally:
        change_theme(page, "JupyterLab Light")
    assert failures == {"JupyterLab Light": [], "JupyterLab Dark": []}


def open_from_palette(page: Any, job_label: str) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Open UCloud Job")
    page.locator('.lm-CommandPalette-item[data-command="ucloud:open-job"]').click()
    dialog = page.locator(".jp-Dialog")
    select = dialog.locator("select")
    value = select.locator("option", has_text=job_label).first.get_attribute("value")
    select.select_option(value)
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect()(page.locator(".jp-Dialog")).to_have_count(0)


def test_an_interactive_job_from_the_palette_with_terminal_and_extension(
    lab: LabProcess, browser_page: Any
) -> None:
    page = browser_page
    follows: list[Any] = []  # every follow websocket from now on (before the job exists)
    page.on("websocket", lambda ws: follows.append(ws) if "jobs/follow?" in ws.url else None)
    job_id = create_job(lab, "compute-multi", name="interactive-page", replicas=2)
    flow["interactive"] = job_id
    wait_state(lab, job_id, "RUNNING")
    # The panel follows the job's state (no output) ...
    show_all_jobs(page)
    expect()(card(page, job_id)).to_have_attribute("data-state", "RUNNING")
    open_from_palette(page, f"interactive-page (job {job_id}) · RUNNING")
    view = job_page(page, job_id)
    expect()(view).to_be_visible()
    expect()(view).to_have_attribute("data-state", "RUNNING")
    expect()(view.locator('[data-field="phase"]')).to_have_text("Live")
    # ... and the page shares its stream: one socket for the job in this tab, now with output.
    page.wait_for_timeout(500)
    sockets = [ws for ws in follows if re.search(f"[?&]id={job_id}(&|$)", ws.url)]
    live = [ws.url for ws in sockets if not ws.is_closed()]
    assert len(live) == 1, [ws.url for ws in sockets]
    assert "logs=0" not in live[0]
    assert any("logs=0" in ws.url for ws in sockets), [ws.url for ws in sockets]
    left = view.locator('[data-field="time-left"]')
    expect()(left).to_have_text(re.compile(r"^5\dm left$"))
    expect()(view.locator('[data-field="allocation"]')).to_have_text("1 h")
    toolbar = page.locator(".jp-UCloudJobPage-tab:visible .jp-Toolbar")

    # A terminal on rank 1 from the page (the rank chosen for the output is the terminal's).
    view.locator(".jp-UCloudJobPage-rank select").select_option("1")
    toolbar.locator(".jp-UCloudJobPage-terminal").click()
    terminal = page.locator(f'.jp-UCloudTerminal[data-job-id="{job_id}"][data-rank="1"]')
    expect()(terminal).to_have_attribute("data-phase", "open", timeout=20_000)
    flow["shell"] = terminal.get_attribute("data-ucloud-shell")
    tab_of(page, "interactive-page").first.click()

    # Extend by 2 hours: the time left grows, and the timeline says so.
    toolbar.locator(".jp-UCloudJobPage-extend").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option(label="2 hours")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect()(left).to_have_text(re.compile(r"^2h 5\dm left$"), timeout=5_000)
    expect()(view.locator('[data-field="allocation"]')).to_have_text("3 h")
    expect()(view.locator(".jp-UCloudJobPage-timeline")).to_contain_text("Time allocation now 3 h")
    job = lab.api(f"ucloud/api/jobs/retrieve?id={job_id}").json()
    assert job["specification"]["timeAllocation"]["hours"] == 3


def test_the_job_page_survives_a_reload(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    job_id = flow["interactive"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        workspace = lab.api("lab/api/workspaces/default")
        if workspace.ok and f"ucloud-job:{job_id}" in workspace.text:
            break
        time.sleep(0.3)
    else:
        pytest.fail("the workspace never recorded the job page")
    page.goto(f"{lab.url}/lab?token={lab.token}")
    view = job_page(page, job_id)
    expect()(view).to_have_count(1, timeout=30_000)
    tab_of(page, "interactive-page").first.click()
    expect()(view).to_have_attribute("data-state", "RUNNING")
    expect()(view.locator('[data-field="time-left"]')).to_have_text(re.compile(r"^2h 5\dm left$"))
    expect()(view.locator('[data-field="phase"]')).to_have_text("Live")


def test_terminate_shows_on_the_page_and_in_the_panel_without_a_refresh(
    lab: LabProcess, browser_page: Any
) -> None:
    page = browser_page
    job_id = flow["interactive"]
    panel = open_panel(page)
    panel.locator('input[name="jp-UCloud-filter"][value="all"]').check()
    panel_card = card(page, job_id)
    expect()(panel_card).to_have_attribute("data-state", "RUNNING", timeout=20_000)
    tab_of(page, "interactive-page").first.click()
    view = job_page(page, job_id)
    page.locator(".jp-UCloudJobPage-tab:visible .jp-UCloudJobPage-terminate").click()
    dialog = page.locator(".jp-Dialog")
    expect()(dialog).to_contain_text("Terminate interactive-page")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    # When the server has the job ended, the page and the panel show it within ~1 s: the panel
    # lists jobs only every 30 s, so this is the pushed state.
    wait_state(lab, job_id, "SUCCESS")
    ended = time.monotonic()
    expect()(view).to_have_attribute("data-state", "SUCCESS", timeout=2_000)
    expect()(panel_card).to_have_attribute("data-state", "SUCCESS", timeout=2_000)
    assert time.monotonic() - ended < 2.0
    expect()(view.locator('[data-field="state"]')).to_have_text("SUCCESS")
    expect()(view.locator('[data-field="time-left"]')).to_have_count(0)
    toolbar = page.locator(".jp-UCloudJobPage-tab:visible .jp-Toolbar")
    for action in ("terminal", "extend", "terminate"):
        expect_disabled(toolbar.locator(f".jp-UCloudJobPage-{action}"))
    expect()(toolbar.locator(".jp-UCloudJobPage-extend")).to_have_attribute(
        "title", "The job has ended: there is no time left to extend."
    )


def test_a_flood_of_output_keeps_the_dom_bounded_and_the_page_responsive(
    lab: LabProcess, browser_page: Any
) -> None:
    page = browser_page
    # 40 MB in 1 MB bursts, over 8 s at least, so that output still flows while the test scrolls.
    command = (
        "for i in $(seq 1 40); do head -c 1048576 /dev/zero | tr '\\0' x | fold -w 99; "
        "sleep 0.2; done; echo flood-done-$((6*7)); sleep 600"
    )
    job_id = create_job(lab, "batch-small", app="batch", name="flood", parameters=batch(command))
    flow["flood"] = job_id
    show_all_jobs(page)
    card(page, job_id).locator(".jp-UCloud-job-name").click()
    view = job_page(page, job_id)
    log = view.locator(".jp-UCloudLog")
    text = log.locator(".jp-UCloudLog-text")
    expect()(text).to_contain_text("xxxx", timeout=30_000)

    # While the flood runs: the page answers, the user can scroll up and stays there.
    started = time.monotonic()
    page.evaluate("() => 1")
    assert time.monotonic() - started < 2.0, "the page did not answer while output flowed"
    log.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    expect()(log).to_have_attribute("data-following", "false")
    page.wait_for_timeout(1000)
    away = log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight")
    assert away > 200, away
    assert "flood-done-42" not in (text.text_content() or ""), "the flood ended too soon"
    # Back to the tail: it follows again.
    view.locator(".jp-UCloudJobPage-follow").click()
    expect()(log).to_have_attribute("data-following", "true")
    sizes = []
    deadline = time.monotonic() + 180
    while "flood-done-42" not in (text.text_content() or ""):
        assert time.monotonic() < deadline, "the end of the flood never showed"
        sizes.append(text.evaluate("el => el.textContent.length"))
        page.wait_for_timeout(300)
    final = len(text.text_content() or "")
    assert max([*sizes, final]) <= MAX_DOM_CHARS, (max(sizes), final)
    assert final >= VIEW_CHARS - 100  # it shows the most recent output, not just a little
    expect()(view.locator(".jp-UCloudLog-note")).to_be_visible()
    expect()(view.locator(".jp-UCloudLog-note")).to_contain_text("Earlier output not shown")
    # Following the tail: the last line is in view.
    away = log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight")
    assert away <= 8, away
    blocks = log.locator(".jp-UCloudLog-block").count()
    assert blocks <= VIEW_CHARS // (16 * 1024) + 2, blocks
    # Still responsive: the palette opens and closes.
    started = time.monotonic()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Control+Shift+C")
    expect()(page.locator(".lm-CommandPalette-input")).to_be_visible()
    page.keyboard.press("Escape")
    assert time.monotonic() - started < 5.0
    lab.api("ucloud/api/jobs/terminate", method="POST", json={"items": [{"id": job_id}]})
    expect()(view).to_have_attribute("data-state", "SUCCESS", timeout=20_000)


def test_cleanup_closes_the_tabs_and_the_shell(lab: LabProcess, browser_page: Any) -> None:
    """The lab is shared with the other modules: leave no tab in its workspace, no shell."""
    page = browser_page
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Close All Tabs$")).click()
    expect()(page.locator(".jp-UCloudJobPage")).to_have_count(0)
    expect()(page.locator(".jp-UCloudTerminal")).to_have_count(0)
    if flow.get("shell"):
        lab.api(f"ucloud/shells/{flow['shell']}", method="DELETE")
    assert lab.api("ucloud/shells").json() == []
