"""Jobs: specification, status, state, updates, the Job resource, the jobs.* request types, and
``jobs.follow`` (``JobsFollowRequest`` / ``JobsFollowMessage``).

Which fields are always written follows Go's JSON of ``Job`` (reference section 3.4): ``JobUpdate``
and ``JobStatus`` fields are ``util.Option`` or plain fields, so they are in ``wire_always`` and
come out as ``null`` when unset; ``providerGeneratedId`` is ``omitempty``. ``JobSpecification``
is what clients send, so only what was set is written. A ``null`` list where Go may write a nil
slice (``updates``, ``permissions.myself``) is read as ``[]``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import ConfigDict, Field, StrictBool, StrictInt, field_validator

from .base import UCloudModel
from .envelopes import FindByStringId
from .products import ComputeProduct, ProductReference, ResolvedSupport

__all__ = [
    "JOBS_FOLLOW_CALL",
    "JOBS_FOLLOW_PATH",
    "AppParameterValue",
    "Application",
    "ApplicationMetadata",
    "InteractiveSessionType",
    "Job",
    "JobFlags",
    "JobOutput",
    "JobOwner",
    "JobPermissions",
    "JobSpecification",
    "JobState",
    "JobStatus",
    "JobUpdate",
    "JobsBrowseRequest",
    "JobsExtendRequestItem",
    "JobsFollowMessage",
    "JobsFollowRequest",
    "JobsOpenInteractiveSessionRequestItem",
    "JobsRetrieveRequest",
    "LogEntry",
    "NameAndVersion",
    "SimpleDuration",
]


def _nil_slice(value: Any) -> Any:
    """Go writes a nil slice as ``null``: read it as an empty list."""
    return [] if value is None else value


class JobState(str, Enum):
    IN_QUEUE = "IN_QUEUE"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"

    @property
    def is_final(self) -> bool:
        return self in (JobState.SUCCESS, JobState.FAILURE, JobState.EXPIRED)

    def __str__(self) -> str:
        return self.value


class InteractiveSessionType(str, Enum):
    SHELL = "SHELL"
    WEB = "WEB"
    VNC = "VNC"

    def __str__(self) -> str:
        return self.value


class SimpleDuration(UCloudModel):
    wire_always = ("hours", "minutes", "seconds")

    hours: StrictInt = 0
    minutes: StrictInt = 0
    seconds: StrictInt = 0

    def to_ms(self) -> int:
        return ((self.hours * 60 + self.minutes) * 60 + self.seconds) * 1000

    @classmethod
    def from_ms(cls, ms: int) -> SimpleDuration:
        """Whole seconds of ``ms``, split into hours, minutes and seconds."""
        total = int(ms) // 1000
        return cls(hours=total // 3600, minutes=total // 60 % 60, seconds=total % 60)


class NameAndVersion(UCloudModel):
    name: str
    version: str


class AppParameterValue(UCloudModel):
    """A parameter or resource value. Which fields matter depends on ``type`` (reference 3.4)."""

    type: str
    path: str | None = None
    mount_path: str | None = None
    read_only: StrictBool | None = None
    value: Any = None
    hostname: str | None = None
    job_id: str | None = None
    id: str | None = None
    specification: dict[str, Any] | None = None
    modules: Any = None
    port: StrictInt | None = None
    tls: StrictBool | None = None
    server: str | None = None
    token: str | None = Field(default=None, repr=False)
    token_type: str | None = None


class JobSpecification(UCloudModel):
    """The body item of ``jobs.create``; the web client sends the app's whole metadata as
    ``application`` (only name and version are read)."""

    product: ProductReference
    application: NameAndVersion
    labels: dict[str, str] | None = None
    name: str | None = None
    hostname: str | None = None
    replicas: StrictInt = 1
    allow_duplicate_job: StrictBool | None = None
    parameters: dict[str, AppParameterValue] | None = None
    resources: list[AppParameterValue] | None = None
    time_allocation: SimpleDuration | None = None
    opened_file: str | None = None
    restart_on_exit: StrictBool | None = None
    ssh_enabled: StrictBool | None = None


class JobUpdate(UCloudModel):
    """One entry of ``Job.updates``: a state change and/or a message. ``timestamp`` in Unix ms."""

    wire_always = (
        "state",
        "output_folder",
        "status",
        "expected_state",
        "expected_different_state",
        "new_time_allocation",
        "allow_restart",
        "resource_list",
        "timestamp",
    )

    state: JobState | None = None
    output_folder: str | None = None
    status: str | None = None
    expected_state: JobState | None = None
    expected_different_state: StrictBool | None = None
    new_time_allocation: StrictInt | None = None
    allow_restart: StrictBool | None = None
    resource_list: list[AppParameterValue] | None = None
    timestamp: StrictInt = 0


class ApplicationMetadata(UCloudModel):
    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    title: str | None = None
    description: str | None = None


class Application(UCloudModel):
    """``status.resolvedApplication``, loosely: unmodelled fields are kept as they came."""

    model_config = ConfigDict(extra="allow")

    metadata: ApplicationMetadata
    invocation: dict[str, Any] | None = None

    @property
    def application_type(self) -> str | None:
        """``BATCH``, ``WEB`` or ``VNC`` when the invocation says so."""
        return (self.invocation or {}).get("applicationType")

    @property
    def backend(self) -> str | None:
        """``DOCKER``/``VIRTUAL_MACHINE``/``NATIVE`` (``invocation.tool.tool.description``)."""
        tool = (self.invocation or {}).get("tool") or {}
        description = (tool.get("tool") or {}).get("description") or {}
        return description.get("backend")


class JobStatus(UCloudModel):
    wire_always = (
        "state",
        "job_parameters_json",
        "started_at",
        "expires_at",
        "resolved_application",
        "resolved_product",
        "resolved_support",
        "allow_restart",
    )

    state: JobState
    job_parameters_json: dict[str, Any] | None = None
    started_at: StrictInt | None = None
    expires_at: StrictInt | None = None
    resolved_application: Application | None = None
    resolved_product: ComputeProduct | None = None
    resolved_support: ResolvedSupport | None = None
    allow_restart: StrictBool | None = False


class JobOwner(UCloudModel):
    wire_always = ("created_by", "project")

    created_by: str
    project: str | None = None


class JobPermissions(UCloudModel):
    """``myself`` is a subset of READ/EDIT/ADMIN/PROVIDER; ``others`` ACL entries stay dicts."""

    wire_always = ("myself", "others")

    myself: list[str] = []
    others: list[dict[str, Any]] | None = []

    @field_validator("myself", mode="before")
    @classmethod
    def _nil_myself(cls, value: Any) -> Any:
        return _nil_slice(value)


class JobOutput(UCloudModel):
    wire_always = ("output_folder",)

    output_folder: str | None = None


class Job(UCloudModel):
    """A job resource (reference section 3.4); timestamps in Unix ms, ``id`` a decimal string."""

    wire_always = (
        "id",
        "created_at",
        "owner",
        "permissions",
        "updates",
        "specification",
        "status",
        "output",
    )

    id: str
    created_at: StrictInt = 0
    owner: JobOwner | None = None
    permissions: JobPermissions | None = None
    provider_generated_id: str | None = None
    updates: list[JobUpdate] = []
    specification: JobSpecification
    status: JobStatus
    output: JobOutput | None = Field(default_factory=JobOutput)

    @field_validator("updates", mode="before")
    @classmethod
    def _nil_updates(cls, value: Any) -> Any:
        return _nil_slice(value)

    @property
    def state(self) -> JobState:
        return self.status.state


class JobFlags(UCloudModel):
    """``JobFlags`` with the embedded ``ResourceFlags``, flattened as query parameters."""

    filter_application: str | None = None
    filter_state: JobState | None = None
    filter_type: str | None = None
    include_parameters: StrictBool | None = None
    include_application: StrictBool | None = None
    include_others: StrictBool | None = None
    include_updates: StrictBool | None = None
    include_support: StrictBool | None = None
    include_product: StrictBool | None = None
    filter_labels: dict[str, str] | None = None
    filter_created_by: str | None = None
    filter_created_after: StrictInt | None = None
    filter_created_before: StrictInt | None = None
    filter_provider: str | None = None
    filter_product_id: str | None = None
    filter_product_category: str | None = None
    hide_product_id: str | None = None
    hide_product_category: str | None = None
    hide_provider: str | None = None
    filter_provider_ids: str | None = None
    filter_ids: str | None = None


class JobsBrowseRequest(JobFlags):
    """Query of ``GET /api/jobs/browse``."""

    items_per_page: StrictInt | None = None
    next: str | None = None
    sort_by: str | None = None
    sort_direction: str | None = None


class JobsRetrieveRequest(JobFlags):
    """Query of ``GET /api/jobs/retrieve``."""

    id: str


class JobsExtendRequestItem(UCloudModel):
    job_id: str
    requested_time: SimpleDuration


class JobsOpenInteractiveSessionRequestItem(UCloudModel):
    id: str
    rank: StrictInt = 0
    session_type: InteractiveSessionType
    target: str | None = None


# --- jobs.follow (reference section 5.2) ----------------------------------------------------------

#: ``jobs.follow`` is a websocket at the path of ``jobs.create`` (a GET with ``Upgrade``).
JOBS_FOLLOW_PATH = "/api/jobs"
JOBS_FOLLOW_CALL = "jobs.follow"


class JobsFollowRequest(UCloudModel):
    """The one text frame a client sends on the ``jobs.follow`` websocket:
    ``{"call": "jobs.follow", "streamId", "payload": {"id"}, "bearer", "project"}``.

    UCloud's core reads only this frame and does not check ``call``; ``bearer`` is the access
    token (websockets carry no ``Authorization`` header)."""

    wire_always = ("call",)

    call: str = JOBS_FOLLOW_CALL
    stream_id: str
    payload: FindByStringId
    bearer: str | None = Field(default=None, repr=False)
    project: str | None = None


class LogEntry(UCloudModel):
    """One ``log`` entry of a ``JobsFollowMessage``: a chunk of one rank's output.

    Go writes all four fields (``null`` when absent). The core forwards every frame of the
    provider's stream as an entry, pings and the final response included, so an entry with
    neither ``stdout``, ``stderr`` nor ``channel`` carries nothing and must be ignored
    (``is_empty``). ``channel`` names other data (``utilization-data``, ``kv``, ...)."""

    wire_always = ("rank", "stdout", "stderr", "channel")

    rank: StrictInt = 0
    stdout: str | None = None
    stderr: str | None = None
    channel: str | None = None

    @property
    def is_empty(self) -> bool:
        """Neither output nor a channel: what clients ignore."""
        return self.stdout is None and self.stderr is None and self.channel is None


class JobsFollowMessage(UCloudModel):
    """The payload of each ``{"type": "message", "streamId", "payload"}`` frame of
    ``jobs.follow``: the first carries ``initial_job`` (the job with product, support and
    updates); later ones new ``updates`` and, when the state changed, ``new_status`` (the whole
    ``JobStatus``); log frames one ``log`` entry each. ``updates`` and ``log`` are always lists
    (Go's ``NonNilSlice``); ``newStatus`` and ``initialJob`` are ``null`` when absent."""

    wire_always = ("updates", "log", "new_status", "initial_job")

    updates: list[JobUpdate] = []
    log: list[LogEntry] = []
    new_status: JobStatus | None = None
    initial_job: Job | None = None

    @field_validator("updates", "log", mode="before")
    @classmethod
    def _nil_lists(cls, value: Any) -> Any:
        return _nil_slice(value)

    @property
    def is_empty(self) -> bool:
        """Nothing a client needs: no job, no status, no update, and no log entry that is
        not empty."""
        return (
            self.initial_job is None
            and self.new_status is None
            and not self.updates
            and all(entry.is_empty for entry in self.log)
        )
