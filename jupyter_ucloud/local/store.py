"""SQLite persistence of the embedded server: jobs, their updates, refresh and API tokens.

One file, ``<data-dir>/jobs.sqlite``, in WAL mode with ``synchronous=NORMAL``. The queries are
tiny (indexed lookups on a few rows, one small write per state change), so they run inline on
the event loop: each takes well under a millisecond, which is cheaper than a thread hop. Nothing
here scans unbounded data except ``browse_jobs``, which is bounded by ``LIMIT``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..protocol import JobSpecification, JobState, JobUpdate, NameAndVersion

__all__ = ["ApiTokenRow", "BrowseFilters", "JobRecord", "Store", "StoreError", "parse_id"]

ACTIVE_STATES = (JobState.IN_QUEUE, JobState.RUNNING, JobState.SUSPENDED)

#: An id or a numeric cursor: ASCII decimal digits only (``str.isdigit`` and ``int`` also take
#: Unicode digits, superscript two or Arabic-Indic one), at most 18 so that it fits an int64.
_ID = re.compile(r"[0-9]{1,18}")


def parse_id(text: object) -> int | None:
    """The number of a job id or a numeric cursor, or ``None`` when ``text`` is not one
    (the caller answers "not found" or "invalid request", never parses it otherwise)."""
    if not isinstance(text, str) or _ID.fullmatch(text) is None:
        return None
    return int(text)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    project TEXT,
    specification TEXT NOT NULL,
    parameters_json TEXT,
    state TEXT NOT NULL,
    provider_generated_id TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    time_allocation_ms INTEGER,
    work_dir TEXT NOT NULL,
    backend_state TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, project, id);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE TABLE IF NOT EXISTS job_updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_updates_job ON job_updates (job_id, seq);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_sha256 TEXT NOT NULL,
    owner TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
"""


@dataclass
class JobRecord:
    """A job as the server and its backends see it (the wire ``Job`` is built from this)."""

    id: str
    owner: str
    project: str | None
    specification: JobSpecification
    state: JobState
    created_at: int
    work_dir: Path
    started_at: int | None = None
    time_allocation_ms: int | None = None
    provider_generated_id: str | None = None
    parameters_json: dict[str, Any] | None = None
    #: Private data of the backend that runs the job (pids, Slurm ids, ...), stored as JSON.
    backend_state: dict[str, Any] = field(default_factory=dict)

    @property
    def replicas(self) -> int:
        return self.specification.replicas

    @property
    def application(self) -> NameAndVersion:
        return self.specification.application

    @property
    def expires_at(self) -> int | None:
        if self.started_at is None or self.time_allocation_ms is None:
            return None
        return self.started_at + self.time_allocation_ms

    def rank_dir(self, rank: int) -> Path:
        """The working directory of ``rank`` (``<data>/jobs/<id>/rank-<r>``)."""
        return self.work_dir / f"rank-{rank}"


@dataclass
class BrowseFilters:
    """The ``jobs.browse`` filters the store applies (see ``Store.browse_jobs``)."""

    state: JobState | None = None
    application: str | None = None
    provider: str | None = None
    product_id: str | None = None
    product_category: str | None = None
    hide_product_id: str | None = None
    hide_product_category: str | None = None
    hide_provider: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    ids: list[str] | None = None
    labels: dict[str, str] | None = None


@dataclass
class ApiTokenRow:
    id: int
    token_sha256: str
    owner: str
    expires_at: int | None


class StoreError(Exception):
    """``jobs.sqlite`` cannot be used; the message names the file, the problem and the remedy."""


class Store:
    """Access to ``jobs.sqlite``. Not thread-safe: use it from the event loop thread only.

    Opening checks the file (``PRAGMA quick_check``, before anything is written to it) and
    raises ``StoreError`` for a damaged or unreadable one, leaving the file as it is."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as err:
            raise StoreError(_unusable(path, err)) from None
        try:
            self._db.row_factory = sqlite3.Row
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(problems))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            self._db.close()
            raise StoreError(_unusable(path, err)) from None
        path.chmod(0o600)

    def close(self) -> None:
        self._db.close()

    # --- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        owner: str,
        project: str | None,
        specification: JobSpecification,
        created_at: int,
        time_allocation_ms: int | None,
        jobs_root: Path,
        parameters_json: dict[str, Any] | None,
    ) -> JobRecord:
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO jobs (owner, project, specification, parameters_json, state,"
                " created_at, time_allocation_ms, work_dir) VALUES (?, ?, ?, ?, ?, ?, ?, '')",
                (
                    owner,
                    project,
                    json.dumps(specification.to_wire()),
                    json.dumps(parameters_json) if parameters_json is not None else None,
                    JobState.IN_QUEUE.value,
                    created_at,
                    time_allocation_ms,
                ),
            )
            job_id = int(cursor.lastrowid or 0)
            work_dir = jobs_root / str(job_id)
            self._db.execute("UPDATE jobs SET work_dir = ? WHERE id = ?", (str(work_dir), job_id))
        job = self.get_job(str(job_id))
        assert job is not None
        return job

    def get_job(self, job_id: str) -> JobRecord | None:
        number = parse_id(job_id)
        if number is None:
            return None
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (number,)).fetchone()
        return _job_from_row(row) if row is not None else None

    def active_jobs(self) -> list[JobRecord]:
        marks = ",".join("?" * len(ACTIVE_STATES))
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id",  # noqa: S608
            [state.value for state in ACTIVE_STATES],
        ).fetchall()
        return [_job_from_row(row) for row in rows]

    def browse_jobs(
        self,
        *,
        owner: str,
        project: str | None,
        filters: BrowseFilters,
        before_id: int | None = None,
        offset: int = 0,
        limit: int = 50,
        order: str = "id DESC",
    ) -> list[JobRecord]:
        """The owner's jobs in the workspace matching ``filters``, ``order``ed, from ``offset``
        (and with an id below ``before_id``), at most ``limit``."""
        where = ["owner = ?", "project IS ?"]
        args: list[Any] = [owner, project]
        spec = "json_extract(specification, '$.{}')".format
        conditions: list[tuple[str, Any]] = [
            ("state = ?", filters.state.value if filters.state else None),
            (f"{spec('application.name')} = ?", filters.application),
            (f"{spec('product.provider')} = ?", filters.provider),
            (f"{spec('product.id')} = ?", filters.product_id),
            (f"{spec('product.category')} = ?", filters.product_category),
            (f"{spec('product.id')} != ?", filters.hide_product_id),
            (f"{spec('product.category')} != ?", filters.hide_product_category),
            (f"{spec('product.provider')} != ?", filters.hide_provider),
            ("created_at >= ?", filters.created_after),
            ("created_at <= ?", filters.created_before),
            ("id < ?", before_id),
        ]
        for condition, value in conditions:
            if value is not None:
                where.append(condition)
                args.append(value)
        if filters.ids is not None:
            ids = [n for n in map(parse_id, filters.ids) if n is not None]
            where.append(f"id IN ({','.join('?' * len(ids))})" if ids else "0")
            args += ids
        for key, value in (filters.labels or {}).items():
            where.append("json_extract(specification, ?) = ?")
            args += [f"$.labels.{json.dumps(key)}", value]
        assert order in _ORDERS, order
        sql = (
            f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY {order}"  # noqa: S608
            " LIMIT ? OFFSET ?"
        )
        rows = self._db.execute(sql, [*args, limit, offset]).fetchall()
        return [_job_from_row(row) for row in rows]

    def set_state(self, job_id: str, state: JobState, *, started_at: int | None = None) -> None:
        with self._db:
            self._db.execute("UPDATE jobs SET state = ? WHERE id = ?", (state.value, int(job_id)))
            if started_at is not None:
                self._db.execute(
                    "UPDATE jobs SET started_at = ? WHERE id = ? AND started_at IS NULL",
                    (started_at, int(job_id)),
                )

    def set_time_allocation(
        self, job_id: str, allocation_ms: int, specification: JobSpecification
    ) -> None:
        with self._db:
            self._db.execute(
                "UPDATE jobs SET time_allocation_ms = ?, specification = ? WHERE id = ?",
                (allocation_ms, json.dumps(specification.to_wire()), int(job_id)),
            )

    def set_provider_generated_id(self, job_id: str, provider_id: str | None) -> None:
        with self._db:
            self._db.execute(
                "UPDATE jobs SET provider_generated_id = ? WHERE id = ?",
                (provider_id, int(job_id)),
            )

    def set_backend_state(self, job_id: str, state: dict[str, Any]) -> None:
        with self._db:
            self._db.execute(
                "UPDATE jobs SET backend_state = ? WHERE id = ?", (json.dumps(state), int(job_id))
            )

    def add_update(self, job_id: str, update: JobUpdate) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO job_updates (job_id, body) VALUES (?, ?)",
                (int(job_id), json.dumps(update.to_wire())),
            )

    def updates(self, job_id: str) -> list[JobUpdate]:
        rows = self._db.execute(
            "SELECT body FROM job_updates WHERE job_id = ? ORDER BY seq", (int(job_id),)
        ).fetchall()
        return [JobUpdate.model_validate(json.loads(row["body"])) for row in rows]

    # --- tokens ----------------------------------------------------------------------------

    def add_refresh_token(
        self, token_sha256: str, username: str, csrf_token: str, created_at: int
    ) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO refresh_tokens (token_sha256, username, csrf_token, created_at)"
                " VALUES (?, ?, ?, ?)",
                (token_sha256, username, csrf_token, created_at),
            )

    def find_refresh_token(self, token_sha256: str) -> tuple[str, str, int | None] | None:
        """``(username, csrf_token, expires_at)`` of a refresh token, or ``None``."""
        row = self._db.execute(
            "SELECT username, csrf_token, expires_at FROM refresh_tokens WHERE token_sha256 = ?",
            (token_sha256,),
        ).fetchone()
        return (row["username"], row["csrf_token"], row["expires_at"]) if row else None

    def add_api_token(
        self, token_sha256: str, owner: str, title: str, created_at: int, expires_at: int | None
    ) -> int:
        """Insert a token row first with a placeholder hash (the id is part of the token)."""
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO api_tokens (token_sha256, owner, title, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (token_sha256, owner, title, created_at, expires_at),
            )
        return int(cursor.lastrowid or 0)

    def set_api_token_hash(self, token_id: int, token_sha256: str) -> None:
        with self._db:
            self._db.execute(
                "UPDATE api_tokens SET token_sha256 = ? WHERE id = ?", (token_sha256, token_id)
            )

    def find_api_token(self, token_id: int) -> ApiTokenRow | None:
        row = self._db.execute(
            "SELECT id, token_sha256, owner, expires_at FROM api_tokens WHERE id = ?", (token_id,)
        ).fetchone()
        if row is None:
            return None
        return ApiTokenRow(row["id"], row["token_sha256"], row["owner"], row["expires_at"])


def _unusable(path: Path, err: sqlite3.Error) -> str:
    """One line: which file, what is wrong with it, what to do."""
    problem = " ".join(str(err).split())[:200] or type(err).__name__
    if isinstance(err, sqlite3.OperationalError) and "unable to open" in problem:
        return (
            f"cannot open the job store {path} ({problem}): check that it is a file this user"
            " may read and write"
        )
    return (
        f"the job store {path} is damaged ({problem}): move it away to start with an empty"
        " job store (its jobs are then forgotten), or restore it from a backup"
    )


_ORDERS = {
    "id DESC",
    "id ASC",
    "created_at DESC, id DESC",
    "created_at ASC, id ASC",
    "owner ASC, id DESC",
    "owner DESC, id DESC",
}


def _job_from_row(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=str(row["id"]),
        owner=row["owner"],
        project=row["project"],
        specification=JobSpecification.model_validate(json.loads(row["specification"])),
        state=JobState(row["state"]),
        created_at=row["created_at"],
        work_dir=Path(row["work_dir"]),
        started_at=row["started_at"],
        time_allocation_ms=row["time_allocation_ms"],
        provider_generated_id=row["provider_generated_id"],
        parameters_json=json.loads(row["parameters_json"]) if row["parameters_json"] else None,
        backend_state=json.loads(row["backend_state"] or "{}"),
    )
