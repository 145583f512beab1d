"""Configuration of the embedded server: products, applications, tokens, limits.

A config file is JSON (``.json``) or TOML (``.toml``) with the snake_case keys of ``LocalConfig``;
``products`` and ``applications``, when given, replace the built-in defaults. Example (TOML)::

    provider_id = "local"
    [[products]]
    name = "big"
    cpu = 8
    memory_in_gigs = 32
    max_replicas = 2
    time_extension = true
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "ApplicationSpec",
    "ConfigError",
    "EnumOptionSpec",
    "LocalConfig",
    "ParameterSpec",
    "ProductSpec",
    "load_config",
]

MIB = 1024 * 1024


class ConfigError(Exception):
    """The config file cannot be read or is invalid (the message says where and why)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductSpec(_Spec):
    """A compute product (machine type) of the embedded provider."""

    name: str
    category: str = ""
    description: str = ""
    cpu: int = 1
    memory_in_gigs: int = 1
    gpu: int = 0
    price: int = 1
    backend: Literal["docker", "native", "virtual_machine"] = "docker"
    terminal: bool = True
    time_extension: bool = False
    max_replicas: int = Field(default=1, ge=1)
    #: Environment variables set in every job on this product (see ``backends.environment``).
    environment: dict[str, str] = Field(default_factory=dict)
    #: Names of the server's environment variables passed on to jobs on this product.
    pass_environment: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _default_category(self) -> ProductSpec:
        if not self.category:
            object.__setattr__(self, "category", self.name)
        return self


class EnumOptionSpec(_Spec):
    """One choice of an ``enumeration`` parameter: ``name`` is shown, ``value`` is sent."""

    name: str
    value: str


class ParameterSpec(_Spec):
    """A parameter of an application: ``text``, ``integer``, ``floating_point``, ``boolean``, or
    ``enumeration`` (one of ``options``; UCloud sends its value as a ``text`` value)."""

    name: str
    type: Literal["text", "integer", "floating_point", "boolean", "enumeration"] = "text"
    title: str = ""
    description: str = ""
    optional: bool = False
    default: Any = None
    options: list[EnumOptionSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _options_fit(self) -> ParameterSpec:
        if self.type == "enumeration":
            if not self.options:
                raise ValueError(f"enumeration parameter {self.name!r} needs options")
            values = [option.value for option in self.options]
            if self.default is not None and self.default not in values:
                raise ValueError(
                    f"the default of {self.name!r} ({self.default!r}) is not one of its options"
                )
        elif self.options:
            raise ValueError(f"only enumeration parameters have options ({self.name!r})")
        return self

    @property
    def value_type(self) -> str:
        """The type of an ``AppParameterValue`` for this parameter (``text`` for enumerations)."""
        return "text" if self.type == "enumeration" else self.type


class ApplicationSpec(_Spec):
    """An application: what each rank runs.

    ``interactive`` applications run ``command`` (default: wait forever) until terminated or
    expired; ``batch`` applications end when every rank's ``command`` exits: SUCCESS when all
    exit 0, FAILURE otherwise. ``{name}`` in an argument is replaced by parameter ``name``.
    """

    name: str
    version: str
    title: str = ""
    description: str = ""
    kind: Literal["interactive", "batch"] = "batch"
    command: list[str] = Field(default_factory=lambda: ["sleep", "infinity"])
    parameters: list[ParameterSpec] = Field(default_factory=list)
    default_time_allocation_seconds: int | None = 3600
    backend: Literal["DOCKER", "NATIVE", "VIRTUAL_MACHINE"] = "DOCKER"
    #: Environment variables set in every job of this application.
    environment: dict[str, str] = Field(default_factory=dict)
    #: Names of the server's environment variables passed on to this application's jobs.
    pass_environment: list[str] = Field(default_factory=list)

    def parameter(self, name: str) -> ParameterSpec | None:
        return next((p for p in self.parameters if p.name == name), None)

    def argv(self, values: dict[str, Any]) -> list[str]:
        """``command`` with ``{parameter}`` placeholders replaced by ``values``."""

        def substitute(match: re.Match[str]) -> str:
            value = values.get(match.group(1))
            return "" if value is None else str(value)

        return [re.sub(r"\{(\w+)\}", substitute, arg) for arg in self.command]


class ApiTokenSpec(_Spec):
    """An API token given in the config, hashed: ``sha256`` of the whole ``uc<id>-<secret>``."""

    id: int
    sha256: str
    owner: str = "user"
    expires_at: int | None = None


def default_products() -> list[ProductSpec]:
    return [
        ProductSpec(
            name="compute-example",
            description="An example machine",
            cpu=1,
            memory_in_gigs=2,
            terminal=True,
        ),
        ProductSpec(
            name="batch-small",
            description="A batch machine without terminal access",
            cpu=1,
            memory_in_gigs=1,
            terminal=False,
        ),
        ProductSpec(
            name="compute-multi",
            description="A machine for jobs of up to 4 nodes, with time extension",
            cpu=2,
            memory_in_gigs=4,
            terminal=True,
            time_extension=True,
            max_replicas=4,
        ),
    ]


def default_applications() -> list[ApplicationSpec]:
    return [
        ApplicationSpec(
            name="terminal",
            version="1",
            title="Terminal",
            description="An interactive shell on every node; runs until terminated or expired.",
            kind="interactive",
            command=["sleep", "infinity"],
        ),
        ApplicationSpec(
            name="batch",
            version="1",
            title="Batch command",
            description="Runs a shell command on every node; its exit code decides the outcome.",
            kind="batch",
            command=["{shell}", "-c", "{command}"],
            parameters=[
                ParameterSpec(
                    name="command",
                    type="text",
                    title="Command to run",
                    description="A shell command line, run on every node.",
                ),
                ParameterSpec(
                    name="shell",
                    type="enumeration",
                    title="Shell",
                    description="The shell that runs the command.",
                    optional=True,
                    default="/bin/bash",
                    options=[
                        EnumOptionSpec(name="bash", value="/bin/bash"),
                        EnumOptionSpec(name="sh", value="/bin/sh"),
                    ],
                ),
            ],
        ),
    ]


class LocalConfig(BaseModel):
    """Everything the embedded server can be told (CLI flags override the file)."""

    model_config = ConfigDict(extra="forbid")

    provider_id: str = Field(default="local", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    username: str = Field(default="user", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.#@-]{0,63}$")
    ip: str = "127.0.0.1"
    port: int = Field(default=8790, ge=0, le=65535)
    data_dir: Path | None = None
    #: Public base URL of this server (``http(s)://host:port``) when behind a proxy.
    public_url: str | None = None
    backend: str = "process"
    access_token_lifetime: float = Field(default=600.0, gt=0)
    session_init_timeout: float = Field(default=30.0, gt=0)
    session_unused_ttl: float = Field(default=300.0, gt=0)
    max_body_bytes: int = Field(default=MIB, gt=0)
    max_frame_bytes: int = Field(default=MIB, gt=0)
    #: Seconds a connection may take to send a request's headers; also how long an idle
    #: keep-alive connection is kept (tornado waits for the next request's headers).
    header_timeout: float = Field(default=20.0, gt=0)
    #: Seconds a connection may take to send a request's body.
    body_timeout: float = Field(default=60.0, gt=0)
    websocket_ping_interval: float = Field(default=30.0, ge=0)
    terminate_grace: float = Field(default=3.0, ge=0)
    #: Stop the server after this many seconds without a job, a websocket or a request
    #: (``None``: never; the Jupyter extension starts its embedded server with 600).
    idle_timeout: float | None = Field(default=None, ge=0)
    #: Bound of each rank's captured stdout and of its stderr (process backend).
    log_limit_bytes: int = Field(default=256 * MIB, gt=0)
    #: CPU priority (nice value, and that of the session's autogroup) of the process backend's
    #: ranks and shells: they run on the machine JupyterLab runs on, where UCloud's run on nodes
    #: of their own. At 10 a busy job yields the CPU to JupyterLab, the servers and the
    #: terminals' echo (echo p99 with 10 shells streaming: 13 ms against 82 ms at 0), but a job
    #: terminal's bulk output then comes in small pieces when the CPUs are busy (23 MB/s against
    #: 61 MB/s at 0; docs/benchmarks.md). 0 (the default): as any process.
    job_nice: int = Field(default=0, ge=0, le=19)
    #: CPU priority (nice value of the session's autogroup) of a job terminal that streams
    #: output while another terminal is being typed into (process backend; see
    #: ``local/foreground.py``): ``yes`` in one terminal no longer slows the echo in another
    #: (with the 5 ms read gap of ``foreground``; echo p99 with 10 terminals streaming: 30 ms,
    #: against 49 ms for JupyterLab's own terminal and 100 ms before; docs/benchmarks.md). It
    #: gets its priority back 2 s after the last keystroke, or at once when it is typed into.
    #: 0: terminals keep their priority.
    background_nice: int = Field(default=10, ge=0, le=19)
    products: list[ProductSpec] = Field(default_factory=default_products)
    applications: list[ApplicationSpec] = Field(default_factory=default_applications)
    #: project id -> usernames of its members (none by default).
    projects: dict[str, list[str]] = Field(default_factory=dict)
    api_tokens: list[ApiTokenSpec] = Field(default_factory=list)
    #: Settings of the Slurm backend, passed to it as they are.
    slurm: dict[str, Any] = Field(default_factory=dict)

    def product(self, name: str) -> ProductSpec | None:
        return next((p for p in self.products if p.name == name), None)

    def application(self, name: str, version: str) -> ApplicationSpec | None:
        return next((a for a in self.applications if a.name == name and a.version == version), None)

    def application_for(self, spec: Any) -> ApplicationSpec | None:
        """The application of a ``JobSpecification``."""
        return self.application(spec.application.name, spec.application.version)


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> LocalConfig:
    """Read ``path`` (JSON or TOML; ``None``: defaults only) and apply ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err
        try:
            if path.suffix.lower() == ".toml":
                try:
                    import tomllib
                except ImportError as err:  # Python 3.10
                    raise ConfigError("TOML config files need Python 3.11; use JSON") from err
                data = tomllib.loads(text)
            else:
                data = json.loads(text)
        except ValueError as err:
            raise ConfigError(f"config file {path} does not parse: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold an object")
    data.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return LocalConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid configuration{f' in {path}' if path else ''}:\n{err}") from err
