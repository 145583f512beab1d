"""What a new user meets in the panel, the Start dialog and the terminal tabs (issue 13), in a
real JupyterLab through headless Chromium: every parameter type in the Start dialog, checks
before submitting, a warning for products without terminals, node limits, disabled actions that
look disabled and say why, the last status message, the order of jobs, one naming rule, Reconnect
once the job ended, JupyterLab's own UI components, and text contrast in both themes.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from .conftest import ARTIFACTS, LabProcess
from .test_lab_ui import expect, expect_disabled, open_panel, product_reference

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

LONG_NAME = "a-job-name-far-too-long-to-fit-on-one-line-of-the-ucloud-side-panel"

# What the steps learn, for the steps after them (tests run in file order).
flow: dict[str, Any] = {}


def create_job(lab: LabProcess, product: str, app: str = "terminal", **spec: Any) -> str:
    item = {
        "application": {"name": app, "version": "1"},
        "product": product_reference(lab, product),
        "replicas": 1,
        "parameters": {},
        "resources": [],
        "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
        **spec,
    }
    answer = lab.api("ucloud/api/jobs", method="POST", json={"items": [item]})
    assert answer.ok, answer.text
    return str(answer.json()["responses"][0]["id"])


def wait_state(lab: LabProcess, job_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = lab.api(f"ucloud/api/jobs/retrieve?id={job_id}").json()
        if job["status"]["state"] in states:
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not reach {states}")


def jobs_named(lab: LabProcess, name: str) -> list[dict[str, Any]]:
    items = lab.api("ucloud/api/jobs/browse?itemsPerPage=250").json()["items"]
    return [j for j in items if j["specification"].get("name") == name]


def job_named(lab: LabProcess, name: str, timeout: float = 15) -> dict[str, Any]:
    """The one job called ``name``, once it exists (the Start dialog closes as its request
    leaves, before the server answered it)."""
    deadline = time.monotonic() + timeout
    while not (named := jobs_named(lab, name)):
        assert time.monotonic() < deadline, f"no job {name!r} appeared"
        time.sleep(0.2)
    (job,) = named
    return job


def card(page: Any, job_id: str) -> Any:
    return page.locator(f'#jp-ucloud-panel .jp-UCloud-job[data-job-id="{job_id}"]')


def show_all_jobs(page: Any) -> Any:
    panel = open_panel(page)
    panel.locator('input[name="jp-UCloud-filter"][value="all"]').check()
    panel.locator(".jp-UCloud-refresh").click()
    return panel


def open_start_dialog(page: Any) -> Any:
    open_panel(page).locator(".jp-UCloud-start-job").click()
    dialog = page.locator(".jp-Dialog")
    expect()(dialog.locator(".jp-UCloud-form")).to_be_visible()
    return dialog


def choose(dialog: Any, select: str, text: str) -> None:
    element = dialog.locator(f'select[name="{select}"]')
    element.select_option(element.locator("option", has_text=text).first.get_attribute("value"))


def test_start_dialog_renders_and_checks_every_parameter_type(
    lab: LabProcess, browser_page: Any
) -> None:
    page = browser_page
    dialog = open_start_dialog(page)
    choose(dialog, "application", "Every parameter type")
    fields = dialog.locator(".jp-UCloud-parameters .jp-UCloud-field")
    expect()(fields).to_have_count(5)
    text = dialog.locator('[data-parameter="text"]')
    expect()(text.locator("label")).to_have_text("Some text *")
    expect()(text.locator(".jp-UCloud-form-help")).to_have_text("Any words.")
    expect()(text.locator('input[type="text"]')).to_have_value("")
    count = dialog.locator('[data-parameter="count"]')
    expect()(count.locator("label")).to_have_text("A count (optional)")
    expect()(count.locator('input[type="number"]')).to_have_value("3")  # its default
    ratio = dialog.locator('[data-parameter="ratio"] input[type="number"]')
    expect()(ratio).to_have_value("")
    flag = dialog.locator('[data-parameter="flag"] select')
    assert flag.locator("option").all_inner_texts() == ["Choose…", "Yes", "No"]
    size = dialog.locator('[data-parameter="size"]')
    assert size.locator("option").all_inner_texts() == ["Choose…", "Small", "Large"]
    expect()(size.locator(".jp-UCloud-form-help")).to_have_text("How big.")
    # Every select is JupyterLab's HTMLSelect, with its caret.
    for select in dialog.locator("select").all():
        assert select.evaluate(
            "el => el.parentElement.classList.contains('jp-HTMLSelect')"
            " && !!el.parentElement.querySelector('svg')"
        )

    # Required values missing: nothing is sent, the form says which, and keeps what was typed.
    dialog.locator('input[name="name"]').fill("every")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog = page.locator(".jp-Dialog")
    expect()(dialog.locator(".jp-UCloud-form-error")).to_have_text(
        "Please correct the fields marked below."
    )
    for name, title in (("text", "Some text"), ("flag", "A flag"), ("size", "A size")):
        expect()(dialog.locator(f'[data-parameter="{name}"] .jp-UCloud-field-error')).to_have_text(
            f"{title} is required."
        )
    expect()(dialog.locator('input[name="name"]')).to_have_value("every")
    expect()(dialog.locator('[data-parameter="count"] input')).to_have_value("3")
    assert jobs_named(lab, "every") == []
    # A value of the wrong kind is reported as it is typed, and Start waits for a good one.
    count = dialog.locator('[data-parameter="count"]')
    count.locator("input").fill("1.5")
    expect()(count.locator(".jp-UCloud-field-error")).to_have_text("A whole number, e.g. 42.")
    expect()(dialog.locator(".jp-Dialog-button.jp-mod-accept")).to_be_disabled()

    dialog.locator('[data-parameter="text"] input').fill("hello")
    dialog.locator('[data-parameter="count"] input').fill("7")
    dialog.locator('[data-parameter="ratio"] input').fill("0.25")
    choose(dialog, "param-flag", "Yes")
    choose(dialog, "param-size", "Large")
    expect()(dialog.locator(".jp-UCloud-field-error")).to_have_count(0)
    dialog.screenshot(path=str(ARTIFACTS / "ucloud-start-dialog.png"))
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect()(page.locator(".jp-Dialog")).to_have_count(0)
    job = job_named(lab, "every")
    given = {
        name: (value["type"], value["value"])
        for name, value in job["specification"]["parameters"].items()
    }
    assert given == {
        "text": ("text", "hello"),
        "count": ("integer", 7),
        "ratio": ("floating_point", 0.25),
        "flag": ("boolean", True),
        "size": ("text", "l"),  # an enumeration's value goes as text, as UCloud's client sends it
    }
    assert wait_state(lab, job["id"], "SUCCESS", "FAILURE")["status"]["state"] == "SUCCESS"


def test_batch_job_from_the_dialog_warns_and_says_why_it_failed(
    lab: LabProcess, browser_page: Any
) -> None:
    page = browser_page
    dialog = open_start_dialog(page)
    warning = dialog.locator(".jp-UCloud-form-warning")
    expect()(warning).to_have_count(0)  # the preselected product has terminals
    choose(dialog, "product", "batch-small")
    expect()(warning).to_have_text(
        "batch-small has no terminal support: you will not be able to open a terminal on this job."
    )
    choose(dialog, "application", "Batch command")
    expect()(dialog.locator('[data-parameter="command"] label')).to_have_text("Command to run *")
    shell = dialog.locator('[data-parameter="shell"] select')
    expect()(shell).to_have_value("/bin/bash")  # the enumeration's default
    assert shell.locator("option").all_inner_texts() == ["bash", "sh"]
    dialog.locator('[data-parameter="command"] input').fill("echo about to fail; exit 3")
    dialog.locator('input[name="name"]').fill("failing")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect()(page.locator(".jp-Dialog")).to_have_count(0)
    job = job_named(lab, "failing")
    flow["failed"] = job["id"]
    wait_state(lab, job["id"], "FAILURE")

    show_all_jobs(page)
    failed = card(page, job["id"])
    expect()(failed).to_have_attribute("data-state", "FAILURE", timeout=15_000)
    expect()(failed.locator('[data-field="status"]')).to_have_text("Rank 0 exited with status 3")
    expect()(failed.locator(".jp-UCloud-state")).to_have_attribute(
        "title", "FAILURE: Rank 0 exited with status 3"
    )
    expect_disabled(failed.locator(".jp-UCloud-open-terminal"))
    expect_disabled(failed.locator(".jp-UCloud-terminate"))
    expect()(failed.locator('[data-field="why-no-terminal"]')).to_have_text(
        "The job has failed, so it has no terminals any more."
    )
    expect()(failed.locator(".jp-UCloud-terminate")).to_have_attribute(
        "title", "The job has already failed."
    )


def test_a_running_job_without_terminals_says_so(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    job_id = create_job(
        lab,
        "batch-small",
        app="batch",
        name="no-terminal",
        parameters={"command": {"type": "text", "value": "sleep 600"}},
    )
    wait_state(lab, job_id, "RUNNING")
    show_all_jobs(page)
    running = card(page, job_id)
    expect()(running).to_have_attribute("data-state", "RUNNING", timeout=15_000)
    expect_disabled(running.locator(".jp-UCloud-open-terminal"))
    expect_disabled(running.locator(".jp-UCloud-terminate"), False)
    expect()(running.locator('[data-field="why-no-terminal"]')).to_have_text(
        "batch-small does not offer terminals, so this job has none."
    )
    lab.api("ucloud/api/jobs/terminate", method="POST", json={"items": [{"id": job_id}]})
    wait_state(lab, job_id, "SUCCESS")


def test_products_show_their_node_limit_and_time_extension(browser_page: Any) -> None:
    page = browser_page
    panel = open_panel(page)
    multi = panel.locator('.jp-UCloud-product[data-product="compute-multi"]')
    expect()(multi.locator(".jp-UCloud-product-resources")).to_have_text(
        "2 CPU · 4 GB · up to 4 nodes"
    )
    expect()(multi.locator('[data-feature="extension"]')).to_have_text("time extension")
    example = panel.locator('.jp-UCloud-product[data-product="compute-example"]')
    expect()(example.locator(".jp-UCloud-product-resources")).to_contain_text("up to 1 node")
    expect()(example.locator('[data-feature-absent="extension"]')).to_be_visible()

    dialog = open_start_dialog(page)
    choose(dialog, "product", "compute-multi")
    expect()(dialog.locator('[data-field="product-summary"]')).to_have_text(
        "2 CPU · 4 GB · up to 4 nodes · terminal · logs · time extension"
    )
    expect()(dialog.locator('label[for="jp-UCloud-nodes"]')).to_have_text("Nodes")
    nodes = dialog.locator('input[name="replicas"]')
    nodes.fill("0")
    expect()(dialog.locator("#jp-UCloud-nodes-error")).to_have_text(
        "A job needs at least 1 node (a whole number)."
    )
    nodes.fill("5")
    expect()(dialog.locator("#jp-UCloud-nodes-error")).to_have_text(
        "compute-multi allows at most 4 nodes."
    )
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    expect()(page.locator(".jp-Dialog")).to_have_count(0)


def test_running_first_then_most_recent_with_one_naming_rule(
    lab: LabProcess, browser_page: Any
) -> None:
    page = browser_page
    unnamed = create_job(lab, "compute-example")
    long_named = create_job(lab, "compute-example", name=LONG_NAME)
    wait_state(lab, unnamed, "RUNNING")
    wait_state(lab, long_named, "RUNNING")
    # The long-named job started before the failure above but ends after it: it comes first.
    lab.api("ucloud/api/jobs/terminate", method="POST", json={"items": [{"id": long_named}]})
    wait_state(lab, long_named, "SUCCESS")
    flow["unnamed"] = unnamed

    panel = show_all_jobs(page)
    expect()(card(page, long_named)).to_have_attribute("data-state", "SUCCESS", timeout=15_000)
    cards = panel.locator(".jp-UCloud-job")
    ids = [c.get_attribute("data-job-id") for c in cards.all()]
    states = [c.get_attribute("data-state") for c in cards.all()]
    running = [state == "RUNNING" for state in states]
    assert running == sorted(running, reverse=True), states  # running ones first
    assert ids.index(unnamed) < ids.index(long_named) < ids.index(flow["failed"])

    name = card(page, unnamed).locator(".jp-UCloud-job-name")
    expect()(name).to_have_text(f"Job {unnamed}")
    expect()(name).to_have_attribute("title", f"Job {unnamed}")
    long = card(page, long_named).locator(".jp-UCloud-job-name")
    expect()(long).to_have_text(LONG_NAME)
    expect()(long).to_have_attribute("title", f"{LONG_NAME} (job {long_named})")
    assert long.evaluate("el => el.scrollWidth > el.clientWidth"), "the name should be cut"


def tab(page: Any, label: str) -> Any:
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab .lm-TabBar-tabLabel").filter(
        has_text=re.compile(f"^{re.escape(label)}$")
    )


def test_two_shells_on_a_rank_get_their_own_titles_and_reconnect_ends_with_the_job(
    lab: LabProcess, browser_page: Any
) -> None:
    page = browser_page
    job_id = flow["unnamed"]
    for _ in range(2):
        show_all_jobs(page)
        card(page, job_id).locator(".jp-UCloud-open-terminal").click()
    first, second = f"Job {job_id} · rank 0", f"Job {job_id} · rank 0 (2)"
    expect()(tab(page, first)).to_have_count(1, timeout=20_000)
    expect()(tab(page, second)).to_have_count(1, timeout=20_000)
    scope = f'.jp-UCloudTerminal[data-job-id="{job_id}"]'
    for terminal in page.locator(scope).all():
        expect()(terminal).to_have_attribute("data-phase", "open")

    page.locator('.lm-TabBar-tab[data-id="jp-running-sessions"]').click()
    items = page.locator(f"#jp-running-sessions .jp-UCloud-runningShell:has-text('Job {job_id}')")
    expect()(items).to_have_count(2, timeout=15_000)
    labels = sorted(items.locator(".jp-RunningSessions-itemLabel").all_inner_texts())
    assert labels == [first, second]

    tab(page, second).click()
    reconnect = page.locator(
        f"{scope}:visible .jp-UCloudTerminal-reconnect .jp-ToolbarButtonComponent"
    )
    expect_disabled(reconnect, False)
    lab.api("ucloud/api/jobs/terminate", method="POST", json={"items": [{"id": job_id}]})
    expect()(page.locator(f"{scope}:visible")).to_have_attribute(
        "data-phase", "ended", timeout=20_000
    )
    expect_disabled(reconnect)
    expect()(reconnect).to_have_attribute(
        "title", "The job has ended: there is nothing to reconnect to"
    )


def test_jupyterlab_components_and_icons(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    panel = open_panel(page)
    expect()(
        panel.locator('.jp-UCloud-refresh [data-icon="ui-components:refresh"]')
    ).to_be_visible()
    job_id = create_job(lab, "compute-multi", replicas=2, name="two-nodes")
    wait_state(lab, job_id, "RUNNING")
    show_all_jobs(page)
    rank = card(page, job_id).locator(".jp-UCloud-rank")
    expect()(rank).to_have_class(re.compile(r"\bjp-HTMLSelect\b"))
    expect()(rank.locator("select option")).to_have_count(2)
    expect()(rank.locator("svg")).to_have_count(1)  # the caret
    flow["two_nodes"] = job_id

    page.locator('.lm-TabBar-tab[data-id="jp-running-sessions"]').click()  # leave the panel
    page.keyboard.press("Control+Shift+L")  # a new launcher
    launcher = page.locator(".jp-LauncherCard:visible", has_text="UCloud Terminal").first
    expect()(launcher).to_be_visible()
    expect()(launcher.locator('[data-icon="jupyter-ucloud:terminal"]')).to_have_count(1)
    expect()(launcher.locator('[data-icon="ui-components:terminal"]')).to_have_count(0)


CONTRAST_JS = """
root => {
  const parse = value => {
    const m = value.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, bottom) => {
    const a = top.a + bottom.a * (1 - top.a);
    const mix = k => (top[k] * top.a + bottom[k] * bottom.a * (1 - top.a)) / a;
    return {r: mix('r'), g: mix('g'), b: mix('b'), a};
  };
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = {r: 255, g: 255, b: 255, a: 1};
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const luminance = c => {
    const ch = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  };
  const results = [];
  for (const el of root.querySelectorAll('*')) {
    if (['OPTION', 'SCRIPT', 'STYLE', 'svg'].includes(el.tagName)) continue;
    const own = [...el.childNodes]
      .filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent.trim()).join(' ').trim();
    if (!own || !el.getClientRects().length) continue;
    // Inactive controls are exempt from WCAG's contrast minimum (and drawn faded on purpose).
    if (el.closest('[aria-disabled="true"], :disabled')) continue;
    const bg = background(el);
    let fg = parse(getComputedStyle(el).color);
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    fg = over({...fg, a: fg.a * opacity}, bg);
    const [l1, l2] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    const rgb = c => `rgb(${c.r | 0},${c.g | 0},${c.b | 0})`;
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    results.push({text: own.slice(0, 40), ratio, fg: rgb(fg), bg: rgb(bg)});
  }
  return results;
}
"""


def change_theme(page: Any, theme: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Settings$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{theme}$")).click()
    expect()(page.locator("body")).to_have_attribute("data-jp-theme-name", theme, timeout=20_000)
    page.wait_for_timeout(500)  # the theme's stylesheet applies


def test_panel_text_is_readable_in_both_themes(lab: LabProcess, browser_page: Any) -> None:
    page = browser_page
    panel = show_all_jobs(page)
    # Every kind of text is on screen: chips, absent features, RUNNING/SUCCESS/FAILURE badges,
    # a status line, a note, buttons, the rank select.
    for state in ("RUNNING", "SUCCESS", "FAILURE"):
        expect()(panel.locator(f'.jp-UCloud-job[data-state="{state}"]').first).to_be_visible()
    failures = {}
    try:
        for theme, shot in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            if theme == "JupyterLab Dark":
                change_theme(page, theme)
                panel = show_all_jobs(page)
            results = panel.evaluate(CONTRAST_JS)
            assert len(results) > 30, results
            assert any(r["text"] == "RUNNING" for r in results)
            assert any(r["text"] == "terminal" for r in results)
            failures[theme] = [r for r in results if r["ratio"] < 4.5]
            panel.screenshot(path=str(ARTIFACTS / f"ucloud-panel-{shot}.png"))
    finally:
        change_theme(page, "JupyterLab Light")
        lab.api(
            "ucloud/api/jobs/terminate",
            method="POST",
            json={"items": [{"id": flow["two_nodes"]}]},
        )
    assert failures == {"JupyterLab Light": [], "JupyterLab Dark": []}
