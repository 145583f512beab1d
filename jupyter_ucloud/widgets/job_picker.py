"""Browse, start and terminate jobs, and pick a job and a rank.

``JobPicker(uc)`` shows the jobs (state, ranks, product, time left), a rank chooser, an
"open terminal" button for the chosen rank, a terminate button and a start form (product,
application, name, replicas, time allocation). :attr:`JobPicker.value` is the chosen job id and
:attr:`JobPicker.rank` the chosen rank; observe them with ``picker.observe(callback, "value")``.

The list holds the newest ``items_per_page`` jobs (100 by default): running ones first, then the
most recently active first; each named as everywhere else (its name, or ``Job <id>``).
Refreshing: the list is reloaded after every action and by the Refresh button. For a live view
call :meth:`JobPicker.start_polling`: a daemon thread in the kernel reloads the list every few
seconds, so cells keep running meanwhile; :meth:`JobPicker.stop_polling` (or ``close()``) ends it.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

from ipywidgets import (
    HTML,
    BoundedIntText,
    Button,
    CallbackDispatcher,
    Dropdown,
    HBox,
    Layout,
    Select,
    Text,
    ToggleButtons,
    VBox,
)
from traitlets import Instance, Int, List, Unicode, observe

from ..client.naming import job_title, job_tooltip, last_status, sort_jobs
from ..protocol import Job, JobSpecification, JobState, NameAndVersion, SimpleDuration
from ._calls import list_applications
from ._display import error_html, status_html
from ._errors import describe_error
from .product_picker import ProductPicker
from .terminal_button import OpenTerminalButton

__all__ = ["JobPicker"]

ACTIVE_STATES = (JobState.RUNNING, JobState.IN_QUEUE, JobState.SUSPENDED)


def _time_left(job: Job, now_ms: int) -> str:
    expires = job.status.expires_at
    if expires is None or job.state.is_final:
        return ""
    left = max(0, expires - now_ms) // 1000
    hours, rest = divmod(left, 3600)
    return f"{hours}h{rest // 60:02d}m left" if hours else f"{rest // 60}m{rest % 60:02d}s left"


def job_label(job: Job, now_ms: int | None = None) -> str:
    """``"my job · RUNNING · 2 nodes · u1-standard-2 · 0h59m left"`` (``Job 42`` when unnamed)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    spec = job.specification
    nodes = f"{spec.replicas} node{'s' if spec.replicas != 1 else ''}"
    parts = [job_title(job), job.state.value, nodes, spec.product.id]
    left = _time_left(job, now_ms)
    return " · ".join([*parts, left] if left else parts)


def terminal_blocker(job: Job) -> str:
    """Why no terminal can be opened on ``job`` (not running), in a person's words."""
    return {
        JobState.IN_QUEUE: "The job is still waiting in the queue: terminals open once it runs.",
        JobState.SUSPENDED: "The job is suspended: terminals open once it runs again.",
        JobState.SUCCESS: "The job has completed, so it has no terminals any more.",
        JobState.FAILURE: "The job has failed, so it has no terminals any more.",
        JobState.EXPIRED: "The job's time ran out, so it has no terminals any more.",
    }.get(job.state, "Terminals need a running job.")


class JobPicker(VBox):
    """Jobs with their state and ranks; start, terminate, open a terminal on a rank."""

    value = Unicode(None, allow_none=True, help="id of the chosen job")
    rank = Int(0, help="chosen rank of the chosen job")
    jobs = List(Instance(Job), help="the jobs listed (active ones, or all)")
    filter = Unicode("active", help="'active' (queued/running/suspended) or 'all'")

    def __init__(
        self, uc: Any, *, filter: str = "active", items_per_page: int = 100, **kwargs: Any
    ) -> None:
        self._uc = uc
        self._items_per_page = items_per_page
        self._lock = threading.RLock()
        self._poll_stop: threading.Event | None = None
        self._poll_thread: threading.Thread | None = None
        self._started_handlers = CallbackDispatcher()
        self._ready = False

        self.filter_buttons = ToggleButtons(options=[("Active", "active"), ("All", "all")])
        self.refresh_button = Button(description="Refresh", icon="refresh")
        self.job_list = Select(rows=6, layout=Layout(width="auto"))
        self.details = HTML()
        self.rank_dropdown = Dropdown(description="Rank", options=[0], layout=Layout(width="12em"))
        self.terminal_button = OpenTerminalButton(disabled=True, tooltip="Choose a running job")
        self.terminate_button = Button(description="Terminate", icon="stop", button_style="danger")
        self.status = HTML()
        self.error = HTML()

        self.product_picker = ProductPicker(uc)
        self.application_dropdown = Dropdown(description="Application")
        self.name_text = Text(description="Name", placeholder="optional")
        self.replicas_input = BoundedIntText(value=1, min=1, max=1024, description="Nodes")
        self.hours_input = BoundedIntText(value=1, min=0, max=10_000, description="Hours")
        self.minutes_input = BoundedIntText(value=0, min=0, max=59, description="Minutes")
        self.start_button = Button(description="Start job", icon="play", button_style="primary")
        start_form = VBox(
            [
                HTML("<b>Start a job</b>"),
                self.product_picker,
                self.application_dropdown,
                self.name_text,
                HBox([self.replicas_input, self.hours_input, self.minutes_input]),
                self.start_button,
            ]
        )
        super().__init__(
            children=[
                HBox([self.filter_buttons, self.refresh_button]),
                self.job_list,
                self.details,
                HBox([self.rank_dropdown, self.terminal_button, self.terminate_button]),
                self.status,
                self.error,
                start_form,
            ],
            **kwargs,
        )
        self.filter = filter
        self.filter_buttons.value = filter
        self.filter_buttons.observe(lambda c: setattr(self, "filter", c["new"]), names="value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.job_list.observe(self._on_list_selection, names="value")
        self.rank_dropdown.observe(self._on_rank_dropdown, names="value")
        self.terminate_button.on_click(lambda _b: self._act(self.terminate))
        self.start_button.on_click(lambda _b: self._act(self._start_from_form))
        self._load_applications()
        self._ready = True
        self.refresh()

    # -- public -------------------------------------------------------------------------------

    @property
    def selected(self) -> Job | None:
        """The chosen job as last loaded, or None."""
        return next((job for job in self.jobs if job.id == self.value), None)

    def refresh(self) -> bool:
        """Reload the jobs; on failure show why on the error line and return False."""
        with self._lock:
            try:
                page = self._uc.jobs.browse(
                    items_per_page=self._items_per_page, include_product=True, include_updates=True
                )
            except Exception as exc:
                self.error.value = error_html(f"Could not load jobs: {describe_error(exc)}")
                return False
            self.error.value = ""
            self.jobs = sort_jobs(
                j for j in page.items if self.filter == "all" or j.state in ACTIVE_STATES
            )
            return True

    def start(
        self,
        product: Any = None,
        application: tuple[str, str] | NameAndVersion | None = None,
        *,
        name: str | None = None,
        replicas: int = 1,
        hours: int = 1,
        minutes: int = 0,
    ) -> str:
        """Start a job (``jobs.create``), list and choose it; returns its id. Raises on failure."""
        product = product if product is not None else self.product_picker.value
        if product is None:
            raise ValueError("Choose a product to start a job on")
        if application is None:
            application = self.application_dropdown.value
        if application is None:
            raise ValueError("Choose an application to start")
        if not isinstance(application, NameAndVersion):
            application = NameAndVersion(name=application[0], version=application[1])
        spec = JobSpecification(
            product=product,
            application=application,
            name=name or None,
            replicas=replicas,
            time_allocation=SimpleDuration(hours=hours, minutes=minutes),
        )
        job_id: str = self._uc.jobs.create(spec)
        self.status.value = status_html(f"Started job {job_id}")
        self.refresh()
        if any(job.id == job_id for job in self.jobs):
            self.value = job_id
        self._started_handlers(self, job_id)
        return job_id

    def terminate(self, job_id: str | None = None) -> None:
        """Terminate ``job_id`` (default: the chosen job). Raises on failure."""
        job_id = job_id or self.value
        if not job_id:
            raise ValueError("Choose a job to terminate")
        self._uc.jobs.terminate(job_id)
        self.status.value = status_html(f"Asked to terminate job {job_id}")
        self.refresh()

    def on_started(self, callback: Callable[[JobPicker, str], Any]) -> None:
        """Call ``callback(picker, job_id)`` after a job was started."""
        self._started_handlers.register_callback(callback)

    def start_polling(self, interval: float = 5.0) -> None:
        """Reload the list every ``interval`` seconds from a daemon thread (cells stay free)."""
        self.stop_polling()
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(interval):
                self.refresh()

        self._poll_stop = stop
        self._poll_thread = threading.Thread(target=poll, name="ucloud-job-picker", daemon=True)
        self._poll_thread.start()

    def stop_polling(self) -> None:
        """Stop the polling thread, if any, and wait for it to finish its round."""
        if self._poll_stop is not None:
            self._poll_stop.set()
        if self._poll_thread is not None and self._poll_thread is not threading.current_thread():
            self._poll_thread.join(timeout=30)
        self._poll_stop = self._poll_thread = None

    @property
    def polling(self) -> bool:
        return self._poll_thread is not None and self._poll_thread.is_alive()

    def close(self) -> None:
        self.stop_polling()
        super().close()

    # -- reactions ----------------------------------------------------------------------------

    def _act(self, action: Callable[[], Any]) -> None:
        """Run a button's action, showing any failure on the error line instead of raising."""
        self.error.value = ""
        try:
            action()
        except Exception as exc:
            self.error.value = error_html(describe_error(exc))

    def _start_from_form(self) -> None:
        self.start(
            name=self.name_text.value.strip() or None,
            replicas=self.replicas_input.value,
            hours=self.hours_input.value,
            minutes=self.minutes_input.value,
        )

    def _load_applications(self) -> None:
        try:
            apps = list_applications(self._uc)
        except Exception as exc:
            self.error.value = error_html(f"Could not load applications: {describe_error(exc)}")
            return
        if not apps:
            self.status.value = status_html(
                "The server offers no applications to start; a Jupyter server in front of a "
                "remote UCloud lists those of c.UCloud.applications"
            )
        self.application_dropdown.options = [
            (f"{app.title or app.name} ({app.name} {app.version})", (app.name, app.version))
            for app in apps
        ]
        if apps and self.application_dropdown.value is None:
            self.application_dropdown.index = 0

    @observe("filter")
    def _on_filter(self, _change: Any) -> None:
        if self.filter not in ("active", "all"):
            raise ValueError(f"filter must be 'active' or 'all', not {self.filter!r}")
        if self.filter_buttons.value != self.filter:
            self.filter_buttons.value = self.filter
        if self._ready:
            self.refresh()

    @observe("jobs")
    def _on_jobs(self, _change: Any) -> None:
        now = int(time.time() * 1000)
        self.job_list.options = [(job_label(job, now), job.id) for job in self.jobs]
        if self.value is not None and self.selected is None:
            self.value = None
        if self.value is None and self.jobs:
            self.value = self.jobs[0].id
        if self.job_list.value != self.value:
            self.job_list.value = self.value
        self._show_selection()

    @observe("value")
    def _on_value(self, change: Any) -> None:
        if self.job_list.value != change["new"] and change["new"] in {j.id for j in self.jobs}:
            self.job_list.value = change["new"]
        job = self.selected
        ranks = list(range(job.specification.replicas)) if job is not None else [0]
        self.rank_dropdown.options = ranks
        self.rank = self.rank if self.rank in ranks else 0
        self.rank_dropdown.value = self.rank
        self._show_selection()

    @observe("rank")
    def _on_rank(self, change: Any) -> None:
        if (
            self.rank_dropdown.value != change["new"]
            and change["new"] in self.rank_dropdown.options
        ):
            self.rank_dropdown.value = change["new"]
        self._show_selection()

    def _on_list_selection(self, change: Any) -> None:
        if change["new"] is not None:
            self.value = change["new"]

    def _on_rank_dropdown(self, change: Any) -> None:
        if change["new"] is not None:
            self.rank = change["new"]

    def _show_selection(self) -> None:
        job = self.selected
        button = self.terminal_button
        if job is None:
            self.details.value = "<i>No job chosen.</i>" if not self.jobs else ""
            button.job_id, button.disabled, button.tooltip = "", True, "Choose a running job"
            self.terminate_button.disabled = True
            return
        spec = job.specification
        last = last_status(job)
        self.details.value = (
            f"<b title='{html.escape(job_tooltip(job))}'>{html.escape(job_title(job))}</b>"
            f" (job {html.escape(job.id)}) · "
            f"<b>{job.state.value}</b> · {spec.replicas} node(s) · "
            f"{html.escape(spec.product.id)} ({html.escape(spec.product.provider)}) · "
            f"{html.escape(spec.application.name)} {html.escape(spec.application.version)}"
            + (f"<br><i>{html.escape(last)}</i>" if last else "")
        )
        self.terminate_button.disabled = job.state.is_final
        button.job_id, button.rank = job.id, self.rank
        if job.state == JobState.RUNNING:
            button.disabled = False
            button.tooltip = f"Open a terminal on rank {self.rank} of {job_tooltip(job)}"
        else:
            button.disabled = True
            button.tooltip = terminal_blocker(job)
