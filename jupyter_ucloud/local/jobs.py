"""The Jobs API of the embedded server: validation, state, and the wire ``Job``.

``JobService`` is what the HTTP handlers call (one method per UCloud call) and what backends
report to (``post_update``, the ``JobUpdateSink``). It follows ``core2/pkg/orchestrator/job.go``
where the reference describes it: the validation messages, the include flags of browse and
retrieve, 404 ``Permission denied or job not found (<id>)`` for terminate/extend/sessions and
403 ``Write permission is required`` from retrieve.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..protocol import (
    FindByStringId,
    InteractiveSessionType,
    Job,
    JobFlags,
    JobOutput,
    JobOwner,
    JobPermissions,
    JobsBrowseRequest,
    JobsExtendRequestItem,
    JobsOpenInteractiveSessionRequestItem,
    JobSpecification,
    JobsRetrieveRequest,
    JobState,
    JobStatus,
    JobUpdate,
    OpenSessionShell,
    OpenSessionWithProvider,
    PageV2,
    SimpleDuration,
    SupportByProvider,
)
from .auth import Principal
from .backends.base import Backend, BackendError
from .catalog import Catalog
from .config import LocalConfig
from .errors import ApiError
from .sessions import ShellSessions
from .store import BrowseFilters, JobRecord, Store, parse_id

__all__ = ["JobService", "normalise_items_per_page"]

log = logging.getLogger("jupyter_ucloud.local")

JobEndListener = Callable[[JobRecord], None]
#: ``(job as it is now, the update just recorded, whether the state changed)``.
JobUpdateListener = Callable[[JobRecord, JobUpdate, bool], None]

_PARAMETER_CHECKS: dict[str, Callable[[Any], bool]] = {
    "text": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "floating_point": lambda v: (
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ),
    "boolean": lambda v: isinstance(v, bool),
}

_SORTS = {
    ("createdAt", "ascending"): "created_at ASC, id ASC",
    ("createdAt", "descending"): "created_at DESC, id DESC",
    ("createdBy", "ascending"): "owner ASC, id DESC",
    ("createdBy", "descending"): "owner DESC, id DESC",
}


MAX_INT64 = 2**63 - 1
MAX_FILTER_IDS = 1000
#: Longest time allocation accepted (a year), which keeps every timestamp within int64.
MAX_ALLOCATION_MS = 366 * 24 * 3600 * 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


def normalise_items_per_page(value: int | None) -> int:
    """``fnd.ItemsPerPage``: <=0 (or absent) -> 50, >1000 -> 1000."""
    if value is None or value <= 0:
        return 50
    return min(value, 1000)


class JobService:
    """The Jobs API on top of the store, a backend and the shell session registry."""

    def __init__(
        self,
        config: LocalConfig,
        store: Store,
        catalog: Catalog,
        sessions: ShellSessions,
        data_dir: Path,
    ) -> None:
        self.config = config
        self.store = store
        self.catalog = catalog
        self.sessions = sessions
        self.jobs_root = data_dir / "jobs"
        self.backend: Backend | None = None  # set by the server once created
        #: ``ws(s)://host:port`` of this server's provider websocket (set once listening).
        self.provider_domain = ""
        self._end_listeners: dict[str, set[JobEndListener]] = {}
        self._update_listeners: dict[str, set[JobUpdateListener]] = {}

    # --- jobs.retrieveProducts --------------------------------------------------------------

    def retrieve_products(self) -> SupportByProvider:
        return self.catalog.support_by_provider()

    # --- jobs.browse / jobs.retrieve --------------------------------------------------------

    def browse(
        self, who: Principal, project: str | None, request: JobsBrowseRequest
    ) -> PageV2[Job]:
        per_page = normalise_items_per_page(request.items_per_page)
        filters = self._filters(request)
        if request.filter_created_by not in (None, who.username):
            return PageV2[Job](items=[], items_per_page=per_page, next=None)
        sort = (request.sort_by, request.sort_direction or "descending")
        if request.sort_by is not None and sort in _SORTS:
            offset = self._parse_next(request.next)
            records = self.store.browse_jobs(
                owner=who.username,
                project=project,
                filters=filters,
                offset=offset,
                limit=per_page + 1,
                order=_SORTS[sort],
            )
            more = len(records) > per_page
            next_token = str(offset + per_page) if more else None
        else:
            before = self._parse_next(request.next) or None
            records = self.store.browse_jobs(
                owner=who.username,
                project=project,
                filters=filters,
                before_id=before,
                limit=per_page + 1,
            )
            more = len(records) > per_page
            next_token = records[per_page - 1].id if more else None
        items = [self.to_job(r, request, strip=True) for r in records[:per_page]]
        return PageV2[Job](items=items, items_per_page=per_page, next=next_token)

    @staticmethod
    def _parse_next(value: str | None) -> int:
        if value is None or value == "":
            return 0
        number = parse_id(value)
        if number is None:
            raise ApiError.invalid_request()
        return number

    @staticmethod
    def _filters(request: JobFlags) -> BrowseFilters:
        ids = [i.strip() for i in request.filter_ids.split(",")] if request.filter_ids else None
        if ids is not None and len(ids) > MAX_FILTER_IDS:
            raise ApiError.invalid_request()
        for moment in (request.filter_created_after, request.filter_created_before):
            if moment is not None and not -MAX_INT64 <= moment <= MAX_INT64:
                raise ApiError.invalid_request()
        return BrowseFilters(
            state=request.filter_state,
            application=request.filter_application,
            provider=request.filter_provider,
            product_id=request.filter_product_id,
            product_category=request.filter_product_category,
            hide_product_id=request.hide_product_id,
            hide_product_category=request.hide_product_category,
            hide_provider=request.hide_provider,
            created_after=request.filter_created_after,
            created_before=request.filter_created_before,
            ids=ids,
            labels=request.filter_labels,
        )

    def retrieve(self, who: Principal, request: JobsRetrieveRequest) -> Job:
        job = self._owned(who, request.id)
        if job is None:
            raise ApiError(403, "Write permission is required")
        return self.to_job(job, request, strip=False)

    def to_job(self, job: JobRecord, flags: JobFlags, *, strip: bool) -> Job:
        """The wire ``Job``; ``strip`` applies browse's rules for the include flags."""
        support = self.catalog.resolved_support(job.specification.product.id)
        application = self.catalog.application(job.application.name, job.application.version)
        status = JobStatus(
            state=job.state,
            job_parameters_json=job.parameters_json
            if not strip or flags.include_parameters
            else None,
            started_at=job.started_at,
            expires_at=job.expires_at,
            resolved_application=application if not strip or flags.include_application else None,
            resolved_product=support.product if support and flags.include_product else None,
            resolved_support=support if support and flags.include_support else None,
            allow_restart=False,
        )
        fields: dict[str, Any] = {}
        if job.provider_generated_id:
            fields["provider_generated_id"] = job.provider_generated_id
        return Job(
            id=job.id,
            created_at=job.created_at,
            owner=JobOwner(created_by=job.owner, project=job.project),
            permissions=JobPermissions(myself=["ADMIN", "READ", "EDIT"], others=[]),
            updates=self.store.updates(job.id) if not strip or flags.include_updates else [],
            specification=job.specification,
            status=status,
            output=JobOutput(output_folder=None),
            **fields,
        )

    # --- jobs.create ----------------------------------------------------------------------------

    async def create(
        self, who: Principal, project: str | None, specifications: list[JobSpecification]
    ) -> list[FindByStringId]:
        if not specifications:
            raise ApiError(400, "No jobs were requested")
        prepared = [self._validate(spec) for spec in specifications]
        backend = self._backend()
        ids = []
        for spec, allocation_ms, parameters_json in prepared:
            job = self.store.create_job(
                owner=who.username,
                project=project,
                specification=spec,
                created_at=_now_ms(),
                time_allocation_ms=allocation_ms,
                jobs_root=self.jobs_root,
                parameters_json=parameters_json,
            )
            job.work_dir.mkdir(parents=True, exist_ok=True)
            self.store.add_update(
                job.id,
                JobUpdate(
                    state=JobState.IN_QUEUE,
                    status="Your job is now in the queue",
                    timestamp=_now_ms(),
                ),
            )
            log.info("job %s created (%s on %s)", job.id, job.application.name, spec.product.id)
            try:
                await backend.submit(job)
            except BackendError as err:
                await self.post_update(
                    job.id, JobState.FAILURE, f"The job could not start: {err.why}"
                )
            ids.append(FindByStringId(id=job.id))
        return ids

    def _validate(
        self, spec: JobSpecification
    ) -> tuple[JobSpecification, int | None, dict[str, Any]]:
        app = self.config.application_for(spec)
        if app is None:
            raise ApiError(400, "Unknown application requested")
        found = self.catalog.find_product(spec.product)
        if found is None:
            raise ApiError(400, "Bad machine type requested")
        product, support = found
        backend_key = {"DOCKER": "docker", "NATIVE": "native", "VIRTUAL_MACHINE": "vm"}[app.backend]
        if not support.supports("enabled", backend_key):
            raise ApiError(400, "The application is not supported on this machine type")
        if spec.replicas < 1:
            raise ApiError(400, "You must request at least 1 node")
        if spec.replicas > product.max_replicas:
            raise ApiError(
                400,
                f"This machine type allows at most {product.max_replicas} "
                f"node{'s' if product.max_replicas != 1 else ''}",
            )
        allocation_ms: int | None = None
        if spec.time_allocation is not None:
            allocation_ms = spec.time_allocation.to_ms()
            if allocation_ms <= 0:
                raise ApiError(400, "Time allocated for job is too short")
            if allocation_ms > MAX_ALLOCATION_MS:
                raise ApiError(400, "Time allocated for job is too long (at most 366 days)")
        elif app.default_time_allocation_seconds is not None:
            allocation_ms = app.default_time_allocation_seconds * 1000
        if spec.ssh_enabled:
            raise ApiError(400, "This application does not support SSH")
        for name, value in (spec.parameters or {}).items():
            if name.startswith("_injected_"):
                continue
            parameter = app.parameter(name)
            if parameter is None:
                raise ApiError(400, f"Unknown parameter supplied: '{name}'")
            expected = parameter.value_type  # an enumeration's value comes as text
            if value.type != expected or not _PARAMETER_CHECKS[expected](value.value):
                raise ApiError(400, f"Bad value supplied for '{name}'")
            choices = [option.value for option in parameter.options]
            if choices and value.value not in choices:
                raise ApiError(
                    400, f"Bad value supplied for '{name}' (one of: {', '.join(choices)})"
                )
        for parameter in app.parameters:
            given = (spec.parameters or {}).get(parameter.name)
            if given is None and not parameter.optional and parameter.default is None:
                raise ApiError(400, f"Missing value for '{parameter.name}'")
        spec = spec.model_copy(deep=True)
        if allocation_ms is not None:
            spec.time_allocation = SimpleDuration.from_ms(allocation_ms)
        wire = spec.to_wire()
        parameters_json = {
            "siteVersion": 3,
            "request": {
                **wire,
                "parameters": wire.get("parameters") or {},
                "resources": wire.get("resources") or [],
                "resolvedProduct": support.product.to_wire(),
                "resolvedSupport": support.to_wire(),
            },
            "resolvedResources": {"ingress": None},
            "machineType": {"cpu": product.cpu, "memoryInGigs": product.memory_in_gigs},
        }
        return spec, allocation_ms, parameters_json

    # --- jobs.terminate / jobs.extend ------------------------------------------------------

    async def terminate(self, who: Principal, ids: list[FindByStringId]) -> list[dict[str, Any]]:
        jobs = [self._owned_or_404(who, item.id) for item in ids]
        backend = self._backend()
        for job in jobs:
            if not job.state.is_final:
                await backend.terminate(job)
        return [{} for _ in jobs]

    async def extend(
        self, who: Principal, items: list[JobsExtendRequestItem]
    ) -> list[dict[str, Any]]:
        jobs = [self._owned_or_404(who, item.job_id) for item in items]
        backend = self._backend()
        for job, item in zip(jobs, items, strict=True):
            support = self.catalog.resolved_support(job.specification.product.id)
            if support is None or not support.supports("time_extension"):
                raise ApiError(400, "Time extension is not supported by this provider")
            requested = item.requested_time.to_ms()
            if requested <= 0:
                raise ApiError(400, "Time allocated for job is too short")
            if job.state.is_final:
                raise ApiError(400, f"The job has already ended ({job.state.value})")
            current = job.time_allocation_ms or 0
            new_allocation = current + requested
            if new_allocation > MAX_ALLOCATION_MS:
                raise ApiError(400, "Time allocated for job is too long (at most 366 days)")
            try:
                await backend.extend(job, new_allocation)
            except BackendError as err:
                raise ApiError(err.status, err.why, err.error_code) from err
            duration = SimpleDuration.from_ms(requested)
            await self.post_update(
                job.id,
                None,
                f"The time allocation was extended by {duration.hours:02d}:"
                f"{duration.minutes:02d}:{duration.seconds:02d}",
                new_time_allocation_ms=new_allocation,
            )
        return [{} for _ in jobs]

    # --- jobs.openInteractiveSession --------------------------------------------------------

    def open_interactive_session(
        self, who: Principal, items: list[JobsOpenInteractiveSessionRequestItem]
    ) -> list[OpenSessionWithProvider]:
        jobs = [self._owned_or_404(who, item.id) for item in items]
        for job, item in zip(jobs, items, strict=True):
            support = self.catalog.resolved_support(job.specification.product.id)
            if item.session_type is InteractiveSessionType.WEB:
                raise ApiError(400, "Web access is not supported by this provider")
            if item.session_type is InteractiveSessionType.VNC:
                raise ApiError(400, "Remote desktop access is not supported by this provider")
            if support is None or not support.supports_terminal:
                raise ApiError(400, "Terminal access is not supported by this provider")
            if not 0 <= item.rank < job.replicas:
                last = job.replicas - 1
                raise ApiError(
                    400,
                    f"Rank {item.rank} is out of range: job {job.id} has {job.replicas} "
                    f"node{'s' if job.replicas != 1 else ''} (ranks 0 to {last})",
                )
            if job.state.is_final:
                raise ApiError(400, f"The job has already ended ({job.state.value})")
        responses = []
        for job, item in zip(jobs, items, strict=True):
            session = self.sessions.create(job.id, item.rank, who.username)
            responses.append(
                OpenSessionWithProvider(
                    provider_domain=self.provider_domain,
                    provider_id=self.config.provider_id,
                    session=OpenSessionShell(
                        job_id=job.id,
                        rank=item.rank,
                        session_identifier=session.identifier,
                        domain_override=self.provider_domain,
                    ),
                )
            )
        return responses

    # --- JobUpdateSink ----------------------------------------------------------------------

    async def post_update(
        self,
        job_id: str,
        state: JobState | None,
        status: str | None,
        *,
        new_time_allocation_ms: int | None = None,
        provider_generated_id: str | None = None,
    ) -> None:
        job = self.store.get_job(job_id)
        if job is None:
            return
        if state is not None and job.state.is_final:
            return  # as the core: nothing moves a job out of a final state
        now = _now_ms()
        update = JobUpdate(
            state=state,
            status=status,
            new_time_allocation=new_time_allocation_ms,
            timestamp=now,
        )
        self.store.add_update(job_id, update)
        if provider_generated_id is not None:
            self.store.set_provider_generated_id(job_id, provider_generated_id)
        if new_time_allocation_ms is not None:
            spec = job.specification.model_copy(deep=True)
            spec.time_allocation = SimpleDuration.from_ms(new_time_allocation_ms)
            self.store.set_time_allocation(job_id, new_time_allocation_ms, spec)
        changed = state is not None and state is not job.state
        if state is not None and changed:
            self.store.set_state(
                job_id, state, started_at=now if state is JobState.RUNNING else None
            )
            log.info("job %s is now %s", job_id, state.value)
        self._notify_update(job_id, update, changed)
        if state is not None and changed and state.is_final:
            self._notify_end(job_id)

    def save_backend_state(self, job_id: str, state: dict[str, Any]) -> None:
        self.store.set_backend_state(job_id, state)

    # --- update listeners (jobs.follow) ----------------------------------------------------

    def on_update(self, job_id: str, listener: JobUpdateListener) -> Callable[[], None]:
        """Call ``listener`` with every update of ``job_id`` as it is recorded (from
        ``post_update``, before its end listeners); returns an unsubscribe."""
        self._update_listeners.setdefault(job_id, set()).add(listener)

        def unsubscribe() -> None:
            listeners = self._update_listeners.get(job_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._update_listeners[job_id]

        return unsubscribe

    def _notify_update(self, job_id: str, update: JobUpdate, changed: bool) -> None:
        listeners = self._update_listeners.get(job_id)
        if not listeners:
            return
        job = self.store.get_job(job_id)
        if job is None:
            return
        for listener in list(listeners):
            try:
                listener(job, update, changed)
            except Exception:  # a broken listener must not break the state change
                log.exception("job update listener failed")

    # --- job end listeners (shell sockets) -------------------------------------------------

    def on_job_end(self, job_id: str, listener: JobEndListener) -> Callable[[], None]:
        """Call ``listener`` when ``job_id`` reaches a final state; returns an unsubscribe."""
        self._end_listeners.setdefault(job_id, set()).add(listener)

        def unsubscribe() -> None:
            listeners = self._end_listeners.get(job_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._end_listeners[job_id]

        return unsubscribe

    def _notify_end(self, job_id: str) -> None:
        job = self.store.get_job(job_id)
        for listener in list(self._end_listeners.pop(job_id, ())):
            if job is not None:
                try:
                    listener(job)
                except Exception:  # a broken listener must not break the state change
                    log.exception("job end listener failed")

    # --- helpers ----------------------------------------------------------------------------

    def get_job(self, job_id: str) -> JobRecord | None:
        return self.store.get_job(job_id)

    def _owned(self, who: Principal, job_id: str) -> JobRecord | None:
        job = self.store.get_job(job_id)
        if job is None or job.owner != who.username:
            return None
        return job

    def _owned_or_404(self, who: Principal, job_id: str) -> JobRecord:
        job = self._owned(who, job_id)
        if job is None:
            raise ApiError.job_not_found(job_id)
        return job

    def _backend(self) -> Backend:
        if self.backend is None:
            raise ApiError(503, "Service provider is unavailable")
        return self.backend
