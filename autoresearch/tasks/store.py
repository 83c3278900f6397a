"""The task store: one SQLite file (``$AUTORESEARCH_HOME/tasks.db``) shared by every process.

stdlib ``sqlite3`` in WAL mode, so a worker and the CLI in other terminals read and write it at
once. Every call runs in a worker thread (``anyio.to_thread``) on a connection of its own,
opened for that call; writes run in ``BEGIN IMMEDIATE`` transactions, so a read-decide-write
(save, pause, take a lease) is atomic across processes.

The schema is versioned with ``PRAGMA user_version``: :data:`MIGRATIONS` lists the steps from
each version to the next and a store is brought up to date when it is opened. A file that is not
an SQLite database, an SQLite database of another program, or a store written by a newer version
is refused with :class:`TaskError`, and nothing is written to it. Reading a store that does not
exist yet does not create it.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import anyio

from autoresearch.errors import TaskError
from autoresearch.results import Usage
from autoresearch.tasks.models import (
    FINISHED_STATUSES,
    LeaseInfo,
    Task,
    TaskCycle,
    TaskInfo,
    TaskStatus,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TaskStore", "now_iso"]

T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0
"""How long a call waits for another process's write transaction before it fails."""

_USAGE_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "calls",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: tasks, their cycle history and their leases.
    (
        """CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            repo_path TEXT NOT NULL UNIQUE,
            definition TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'stopped', 'completed',
                                                   'failed', 'budget-exhausted')),
            reason TEXT,
            stop_now INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            first_cycle INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE task_cycles (
            task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
            cycle INTEGER NOT NULL,
            status TEXT NOT NULL,
            metric REAL,
            commit_hash TEXT,
            description TEXT NOT NULL DEFAULT '',
            started_at TEXT,
            finished_at TEXT NOT NULL,
            duration_ms INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            calls INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            worker TEXT,
            PRIMARY KEY (task_id, cycle)
        )""",
        """CREATE TABLE task_leases (
            task_id TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
            owner TEXT NOT NULL,
            acquired_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )""",
    ),
)
"""``MIGRATIONS[n]`` takes a store from schema version ``n`` to ``n + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes."""

_INFO_QUERY = f"""
SELECT t.*, l.owner, l.acquired_at, l.expires_at,
       COALESCE(c.n, 0) AS n_cycles, COALESCE(c.cost, 0) AS cost, c.last_at,
       {", ".join(f"COALESCE(c.{col}, 0) AS sum_{col}" for col in _USAGE_COLUMNS)}
FROM tasks t
LEFT JOIN task_leases l ON l.task_id = t.id
LEFT JOIN (
    SELECT task_id, COUNT(*) AS n, SUM(cost_usd) AS cost, MAX(finished_at) AS last_at,
           {", ".join(f"SUM({col}) AS {col}" for col in _USAGE_COLUMNS)}
    FROM task_cycles GROUP BY task_id
) c ON c.task_id = t.id
"""


def now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds (``2025-11-25T10:00:00.000Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _definition(task: Task) -> str:
    return json.dumps(task.to_json_dict(), sort_keys=True)


def _info(row: sqlite3.Row) -> TaskInfo:
    lease = None
    if row["owner"] is not None:
        lease = LeaseInfo(
            owner=row["owner"], acquired_at=row["acquired_at"], expires_at=row["expires_at"]
        )
    return TaskInfo(
        task=Task.model_validate(json.loads(row["definition"])),
        status=row["status"],
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        cycles=row["n_cycles"],
        failures=row["failures"],
        usage=Usage(**{col: row[f"sum_{col}"] for col in _USAGE_COLUMNS}),
        cost_usd=row["cost"],
        last_cycle_at=row["last_at"],
        stop_now=bool(row["stop_now"]),
        lease=lease,
        first_cycle=row["first_cycle"],
    )


def _cycle(row: sqlite3.Row) -> TaskCycle:
    return TaskCycle(
        task_id=row["task_id"],
        cycle=row["cycle"],
        status=row["status"],
        metric=row["metric"],
        commit_hash=row["commit_hash"],
        description=row["description"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=row["duration_ms"],
        usage=Usage(**{col: row[col] for col in _USAGE_COLUMNS}),
        cost_usd=row["cost_usd"],
        worker=row["worker"],
    )


def unknown_task(task_id: str) -> TaskError:
    """The error for an id the store does not hold."""
    return TaskError(f"no task {task_id!r} (see `autoresearch task list`)")


Transition = Callable[[TaskInfo], "tuple[TaskStatus, str | None] | None"]
"""Given a task, its new status and reason; ``None`` to leave it; or raise :class:`TaskError`."""


class _NoStore(Exception):
    """Internal: the store file does not exist (and the call must not create it)."""


class TaskStore:
    """The SQLite task store at ``path`` (created, with its folder, on the first write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._checked = False

    # -- connections ---------------------------------------------------------------------

    def _refuse(self, why: str) -> TaskError:
        return TaskError(
            f"{self.path} {why}; move it away or point AUTORESEARCH_HOME (--home) elsewhere"
        )

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if not create and not self.path.exists():
            return None
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TaskError(f"cannot create {self.path.parent}: {exc.strerror}") from exc
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._refuse(f"cannot be opened as a task store ({exc})") from exc
        conn.row_factory = sqlite3.Row
        try:
            if not self._checked:
                self._upgrade(conn)
                self._checked = True
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._refuse(f"is not a task database ({exc})") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Check what the file is and bring its schema up to :data:`SCHEMA_VERSION`."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # fails on a non-database
        if version > SCHEMA_VERSION:
            raise self._refuse(
                f"was written by a newer autoresearch (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade autoresearch"
            )
        if version == 0:
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise self._refuse("is an SQLite database of another program, not a task store")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while this one waited for the write lock.
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                for step in MIGRATIONS[version:]:
                    for statement in step:
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")

    def _sync(self, func: Callable[[sqlite3.Connection], T], write: bool, create: bool) -> T:
        conn = self._connect(create=create)
        if conn is None:
            raise _NoStore
        with closing(conn):
            try:
                if not write:
                    return func(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = func(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
            except sqlite3.DatabaseError as exc:
                raise TaskError(f"the task store {self.path} failed: {exc}") from exc

    async def _read(self, func: Callable[[sqlite3.Connection], T], default: T) -> T:
        """Run ``func`` on a connection; ``default`` when the store does not exist yet."""
        try:
            return await anyio.to_thread.run_sync(self._sync, func, False, False)
        except _NoStore:
            return default

    async def _write(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func`` in a write transaction, creating the store if needed."""
        return await anyio.to_thread.run_sync(self._sync, func, True, True)

    async def _update(self, task_id: str, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func`` in a write transaction on an existing store; unknown id if none."""
        try:
            return await anyio.to_thread.run_sync(self._sync, func, True, False)
        except _NoStore:
            raise unknown_task(task_id) from None

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _get(conn: sqlite3.Connection, task_id: str) -> TaskInfo | None:
        row = conn.execute(f"{_INFO_QUERY} WHERE t.id = ?", (task_id,)).fetchone()
        return _info(row) if row is not None else None

    @classmethod
    def _require(cls, conn: sqlite3.Connection, task_id: str) -> TaskInfo:
        info = cls._get(conn, task_id)
        if info is None:
            raise unknown_task(task_id)
        return info

    async def get(self, task_id: str) -> TaskInfo | None:
        """The task ``task_id``, or ``None``."""
        return await self._read(lambda conn: self._get(conn, task_id), None)

    async def list(self, status: TaskStatus | None = None) -> builtins.list[TaskInfo]:
        """Every task (or those in ``status``), oldest first."""

        def query(conn: sqlite3.Connection) -> builtins.list[TaskInfo]:
            where, args = ("WHERE t.status = ?", (status,)) if status else ("", ())
            rows = conn.execute(f"{_INFO_QUERY} {where} ORDER BY t.created_at, t.id", args)
            return [_info(row) for row in rows]

        return await self._read(query, [])

    async def find_repo(self, repo_path: Path) -> TaskInfo | None:
        """The task on ``repo_path`` (resolved), if there is one."""

        def query(conn: sqlite3.Connection) -> TaskInfo | None:
            row = conn.execute(f"{_INFO_QUERY} WHERE t.repo_path = ?", (str(repo_path),))
            found = row.fetchone()
            return _info(found) if found is not None else None

        return await self._read(query, None)

    async def cycles(self, task_id: str) -> builtins.list[TaskCycle]:
        """The task's cycle history, oldest first (:class:`TaskError` for an unknown id)."""

        def query(conn: sqlite3.Connection) -> builtins.list[TaskCycle]:
            self._require(conn, task_id)
            rows = conn.execute(
                "SELECT * FROM task_cycles WHERE task_id = ? ORDER BY cycle", (task_id,)
            )
            return [_cycle(row) for row in rows]

        try:
            return await anyio.to_thread.run_sync(self._sync, query, False, False)
        except _NoStore:
            raise unknown_task(task_id) from None

    # -- saving and status ---------------------------------------------------------------

    async def save(self, task: Task) -> tuple[TaskInfo, bool]:
        """Insert or update ``task``; returns it and whether anything changed.

        A new task is ``active``. Saving an existing id with the same definition changes
        nothing; with a new definition it replaces the definition (refused while a worker holds
        the task) and a finished task becomes ``active`` again. A second task on a repository
        that already has one is refused.
        """
        definition = _definition(task)
        repo = str(task.autoresearch.repo_path)

        def save(conn: sqlite3.Connection) -> tuple[TaskInfo, bool]:
            other = conn.execute(
                "SELECT id, status FROM tasks WHERE repo_path = ? AND id != ?", (repo, task.id)
            ).fetchone()
            if other is not None:
                raise TaskError(
                    f"{repo} already has task {other['id']!r} ({other['status']}); one repository "
                    f"runs one task (one branch, one writer): change or delete that task "
                    f"(`autoresearch task delete {other['id']}`)"
                )
            existing = self._get(conn, task.id)
            now = now_iso()
            if existing is None:
                conn.execute(
                    "INSERT INTO tasks (id, type, repo_path, definition, status, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?)",
                    (task.id, task.type, repo, definition, now, now),
                )
                return self._require(conn, task.id), True
            if _definition(existing.task) == definition:
                return existing, False
            if existing.lease is not None and existing.lease.expires_at > time.time():
                raise TaskError(
                    f"task {task.id!r} is running (worker {existing.lease.owner}); pause it "
                    "before changing its definition"
                )
            finished = existing.status in FINISHED_STATUSES
            conn.execute(
                "UPDATE tasks SET definition = ?, repo_path = ?, updated_at = ?, "
                "status = CASE WHEN ? THEN 'active' ELSE status END, "
                "reason = CASE WHEN ? THEN NULL ELSE reason END, "
                "failures = CASE WHEN ? THEN 0 ELSE failures END WHERE id = ?",
                (definition, repo, now, finished, finished, finished, task.id),
            )
            return self._require(conn, task.id), True

        return await self._write(save)

    async def transition(
        self, task_id: str, rule: Transition, *, stop_now: bool = False
    ) -> TaskInfo:
        """Apply ``rule`` to the task atomically; :class:`TaskError` for an unknown id.

        A new status of ``active`` also clears the failure streak and any pending stop;
        ``stop_now`` asks the worker running the task to cancel its cycle.
        """

        def apply(conn: sqlite3.Connection) -> TaskInfo:
            info = self._require(conn, task_id)
            change = rule(info)
            if change is None:
                return info
            status, reason = change
            reset = status == "active"
            conn.execute(
                "UPDATE tasks SET status = ?, reason = ?, updated_at = ?, "
                "stop_now = CASE WHEN ? THEN 0 WHEN ? THEN 1 ELSE stop_now END, "
                "failures = CASE WHEN ? THEN 0 ELSE failures END WHERE id = ?",
                (status, reason, now_iso(), reset, stop_now, reset, task_id),
            )
            return self._require(conn, task_id)

        return await self._update(task_id, apply)

    async def finish(self, task_id: str, status: TaskStatus, reason: str | None) -> bool:
        """Move an ``active`` task to ``status`` (a worker ending it); ``False`` if not active."""

        def apply(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE tasks SET status = ?, reason = ?, updated_at = ? "
                "WHERE id = ? AND status = 'active'",
                (status, reason, now_iso(), task_id),
            )
            return cursor.rowcount == 1

        return await self._write(apply)

    async def clear_stop_now(self, task_id: str) -> None:
        """Forget a ``stop --now`` request once the worker has acted on it."""
        await self._write(
            lambda conn: conn.execute("UPDATE tasks SET stop_now = 0 WHERE id = ?", (task_id,))
        )

    async def delete(self, task_id: str) -> None:
        """Delete the task and its history; refused while a worker holds it."""

        def delete(conn: sqlite3.Connection) -> None:
            info = self._require(conn, task_id)
            if info.lease is not None and info.lease.expires_at > time.time():
                raise TaskError(
                    f"task {task_id!r} is running (worker {info.lease.owner}); stop it first "
                    f"(`autoresearch stop {info.repo_path}`)"
                )
            conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))

        await self._update(task_id, delete)

    # -- what workers use ----------------------------------------------------------------

    async def acquire(self, task_id: str, owner: str, lease_s: float) -> bool:
        """Take the task's lease if it is active and nobody else holds a live lease on it."""

        def acquire(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None or row["status"] != "active":
                return False
            now = time.time()
            lease = conn.execute(
                "SELECT owner, expires_at FROM task_leases WHERE task_id = ?", (task_id,)
            ).fetchone()
            if lease is not None and lease["owner"] != owner and lease["expires_at"] > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO task_leases (task_id, owner, acquired_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (task_id, owner, now, now + lease_s),
            )
            return True

        return await self._write(acquire)

    async def renew(self, task_id: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease; ``False`` if it no longer holds it."""

        def renew(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE task_leases SET expires_at = ? WHERE task_id = ? AND owner = ?",
                (time.time() + lease_s, task_id, owner),
            )
            return cursor.rowcount == 1

        return await self._write(renew)

    async def release(self, task_id: str, owner: str) -> None:
        """Give the lease back (if ``owner`` still holds it)."""
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM task_leases WHERE task_id = ? AND owner = ?", (task_id, owner)
            )
        )

    async def set_first_cycle(self, task_id: str, cycle: int) -> int:
        """Record where the task began unless already recorded; returns the recorded value."""

        def apply(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE tasks SET first_cycle = ? WHERE id = ? AND first_cycle IS NULL",
                (cycle, task_id),
            )
            row = conn.execute("SELECT first_cycle FROM tasks WHERE id = ?", (task_id,))
            found = row.fetchone()
            return cycle if found is None else int(found[0])

        return await self._write(apply)

    async def record_cycles(
        self, task_id: str, cycles: Sequence[TaskCycle], *, count_failures: bool
    ) -> None:
        """Add cycles to the history (ones already there are skipped).

        With ``count_failures`` each new cycle updates the failure streak: ``crash``,
        ``timeout`` and ``invalid`` add one, ``keep`` and ``discard`` reset it.
        """

        def record(conn: sqlite3.Connection) -> None:
            for c in cycles:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO task_cycles (task_id, cycle, status, metric, "
                    "commit_hash, description, started_at, finished_at, duration_ms, "
                    f"{', '.join(_USAGE_COLUMNS)}, cost_usd, worker) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        task_id,
                        c.cycle,
                        c.status,
                        c.metric,
                        c.commit_hash,
                        c.description,
                        c.started_at,
                        c.finished_at,
                        c.duration_ms,
                        *(getattr(c.usage, col) for col in _USAGE_COLUMNS),
                        c.cost_usd,
                        c.worker,
                    ),
                )
                if cursor.rowcount == 1 and count_failures:
                    failed = c.status in ("crash", "timeout", "invalid")
                    conn.execute(
                        "UPDATE tasks SET failures = CASE WHEN ? THEN failures + 1 ELSE 0 END "
                        "WHERE id = ?",
                        (failed, task_id),
                    )

        await self._write(record)

    async def stop_now_requested(self, task_id: str) -> bool:
        """Whether ``stop --now`` was asked for the task (or the task was deleted)."""

        def query(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT stop_now FROM tasks WHERE id = ?", (task_id,)).fetchone()
            return row is None or bool(row[0])

        return await self._read(query, True)

    # -- for tests and tools -------------------------------------------------------------

    async def schema_version(self) -> int:
        """The schema version of the file (0 if it does not exist)."""
        return await self._read(
            lambda conn: int(conn.execute("PRAGMA user_version").fetchone()[0]), 0
        )
