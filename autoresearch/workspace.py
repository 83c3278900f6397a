"""Everything under ``<repo>/.autoresearch/``: config, state, the two ledgers and the logs.

- ``config.json`` and ``state.json`` are replaced atomically (temp file, fsync, rename), so a
  crash leaves either the old or the new document, never half of one.
- ``runs.jsonl`` (the audit log, the source of truth) and ``results.tsv`` (the human table) are
  appended with flush + fsync, runs.jsonl first. On open, a torn last line is cut off and
  results.tsv is rebuilt from runs.jsonl if the two disagree.
- ``logs/<cycle>.log`` holds each run's output; ``run.log`` is the latest one.

All blocking file work runs in worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

import anyio
from pydantic import ConfigDict, Field, ValidationError

from autoresearch._model import CamelModel
from autoresearch.config import ResearchConfig, load_config
from autoresearch.errors import ConfigError, LockedError, NotInitializedError, WorkspaceError
from autoresearch.results import EXTENSION_FIELDS, RunRecord, Status

__all__ = [
    "WORKSPACE_DIR",
    "Measured",
    "ResearchState",
    "RunningCycle",
    "Workspace",
    "format_tsv_row",
    "tsv_header",
]

WORKSPACE_DIR = ".autoresearch"
"""The folder, at the repository root, that holds everything autoresearch writes."""


class Measured(CamelModel):
    """A cycle's measured outcome, kept in state.json until the ledgers have it."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        memoryGb: ClassVar[float | None]

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Status
    metric: float | None = None
    memory_gb: float | None = None
    reason: str = ""
    baseline: bool = False


class RunningCycle(CamelModel):
    """A cycle in progress in one of the parallel slots (state.json's ``inFlight``)."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        parentCommit: ClassVar[str]
        candidateCommit: ClassVar[str | None]

    model_config = ConfigDict(extra="ignore", frozen=False)

    cycle: int
    slot: int
    phase: str = "bootstrap"
    parent_commit: str
    candidate_commit: str | None = None
    description: str = ""


class ResearchState(CamelModel):
    """state.json: where the research stands. ``phase`` is ``idle`` between cycles."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        cycleCount: ClassVar[int]
        keepCount: ClassVar[int]
        bestMetric: ClassVar[float | None]
        baselineMetric: ClassVar[float | None]
        bestCommit: ClassVar[str | None]
        lastStatus: ClassVar[Status | None]
        startedAt: ClassVar[str]
        updatedAt: ClassVar[str]
        currentCycle: ClassVar[int | None]
        parentCommit: ClassVar[str | None]
        candidateCommit: ClassVar[str | None]
        experimentPid: ClassVar[int | None]
        inFlight: ClassVar[list[RunningCycle]]

    model_config = ConfigDict(extra="ignore", frozen=False)

    branch: str
    tag: str
    phase: str = "idle"
    cycle_count: int = 0
    keep_count: int = 0
    best_metric: float | None = None
    baseline_metric: float | None = None
    best_commit: str | None = None
    last_status: Status | None = None
    started_at: str
    updated_at: str
    current_cycle: int | None = None
    """The cycle in progress (None when idle); lets a restart detect an interrupted cycle."""
    parent_commit: str | None = None
    """The commit the cycle in progress started from (where a discard goes back to)."""
    candidate_commit: str | None = None
    """The undecided candidate of the cycle in progress, if one was committed."""
    experiment_pid: int | None = None
    """The running experiment's process (and process group) id, while one runs."""
    written: dict[str, str] | None = None
    """Files the cycle in progress wrote before committing them: path -> git blob id.

    Recovery restores these without saving them first: their content is the engine's own.
    """
    measured: Measured | None = None
    """The decided outcome of the cycle in progress, written before the decision is carried
    out, so that recovery finishes the cycle as decided instead of calling it a crash."""
    in_flight: list[RunningCycle] = Field(default_factory=list)
    """With parallel slots: the cycles running in them (the cycle fields above then describe
    the one whose decision is being carried out in the main checkout)."""


def tsv_header(metric_name: str) -> str:
    """The first line of results.tsv."""
    return f"commit\t{metric_name}\tmemory_gb\tstatus\tdescription\n"


def _flat(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines()).strip()


def format_tsv_row(record: RunRecord) -> str:
    """One results.tsv line for ``record`` (7-char commit, the metric, 1-decimal GB).

    The metric is written by :func:`~autoresearch.metrics.format_metric`: 6 decimals in the usual
    range, ``1e-05`` rather than ``0.000000`` for tiny values; ``0.000000`` when there is none.
    """
    from autoresearch.metrics import format_metric

    metric = format_metric(record.metric) if record.metric is not None else "0.000000"
    memory = f"{record.memory_gb:.1f}" if record.memory_gb is not None else "0.0"
    return (
        f"{record.commit[:7]}\t{metric}\t{memory}\t{record.status}\t{_flat(record.description)}\n"
    )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str, durable: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line that lacks its newline (a write interrupted by a crash)."""
    if not path.exists():
        return
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        back = min(size, 1 << 20)
        while True:
            handle.seek(size - back)
            block = handle.read(back)
            cut = block.rfind(b"\n")
            if cut != -1 or back == size:
                keep = size - back + cut + 1 if cut != -1 else 0
                break
            back = min(size, back * 2)
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())


class Workspace:
    """The ``.autoresearch/`` folder of one repository."""

    def __init__(self, repo_path: Path) -> None:
        self.repo_path = repo_path
        self.dir = repo_path / WORKSPACE_DIR
        self.config_path = self.dir / "config.json"
        self.state_path = self.dir / "state.json"
        self.results_path = self.dir / "results.tsv"
        self.runs_path = self.dir / "runs.jsonl"
        self.logs_dir = self.dir / "logs"
        self.run_log = self.dir / "run.log"
        self.lock_path = self.dir / "lock"

    def log_path(self, cycle: int, repeat: int = 1) -> Path:
        """Where cycle ``cycle``'s output goes (``<cycle>.r<k>.log`` for its k-th repeat)."""
        if repeat == 1:
            return self.logs_dir / f"{cycle}.log"
        return self.logs_dir / f"{cycle}.r{repeat}.log"

    def relative(self, path: Path) -> str:
        """``path`` relative to the repository, for records."""
        try:
            return path.relative_to(self.repo_path).as_posix()
        except ValueError:
            return str(path)

    # -- the one-writer lock ---------------------------------------------------------------
    #
    # Ownership is an flock on .autoresearch/lock, held for the writer's lifetime; the file
    # holds the owner's pid. Writing that pid and reading it happen under a second, momentary
    # lock on the same file (a POSIX range lock, independent of the flock): a contender holds it
    # from before its flock attempt until it has written its pid (the winner) or read the
    # owner's (a loser, or `status`). So nobody reads the file between the owner's flock and
    # its write, and a loser always names the pid of the process that beat it.

    def _locked_message(self, pid: int | None) -> str:
        holder = f" (pid {pid})" if pid is not None else ""
        return (
            f"another autoresearch process{holder} is running on this repo ({self.repo_path}); "
            "stop it first, or wait for it to finish"
        )

    @staticmethod
    def _read_pid(fd: int) -> int | None:
        first = os.pread(fd, 64, 0).split(b"\n", 1)[0].strip()
        return int(first) if first.isdigit() else None

    @staticmethod
    @contextlib.contextmanager
    def _pid_guard(fd: int, *, exclusive: bool) -> Iterator[None]:
        """Hold the short lock that orders pid writes and reads (waiting at most 2 s for it).

        Its holders keep it for microseconds; if it cannot be had (a filesystem without POSIX
        locks, a holder stopped mid-write) the caller goes on without it rather than hang.
        """
        kind = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + 2.0
        while True:
            try:
                fcntl.lockf(fd, kind | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > deadline:
                    break
                time.sleep(0.001)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.lockf(fd, fcntl.LOCK_UN)

    def _acquire(self) -> IO[str]:
        self.dir.mkdir(exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        handle = os.fdopen(fd, "r+", encoding="utf-8")
        try:
            with self._pid_guard(fd, exclusive=True):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pid = self._read_pid(fd)
                    raise LockedError(self._locked_message(pid), pid=pid) from None
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            handle.close()
            raise
        return handle

    async def acquire_lock(self) -> IO[str]:
        """Take the repo's writer lock (``flock`` on .autoresearch/lock) or raise LockedError.

        The lock belongs to the open file: it is released by :meth:`release_lock`, and by the
        operating system when the process dies, so a crashed process never leaves it stale.
        The file holds the owner's pid, written so that a loser never reads it half-written:
        :class:`LockedError` names the pid of the process that holds the lock.
        """
        return await anyio.to_thread.run_sync(self._acquire)

    @staticmethod
    async def release_lock(handle: IO[str]) -> None:
        """Give the lock back."""
        with contextlib.suppress(OSError):
            handle.close()

    def _probe(self) -> tuple[bool, int | None]:
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False, None
        try:
            with self._pid_guard(fd, exclusive=False):
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True, self._read_pid(fd)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return False, None
        finally:
            os.close(fd)

    async def probe_lock(self) -> tuple[bool, int | None]:
        """Whether a process holds the writer lock now, and its pid (``None`` if unknown).

        Only looks: it takes no lock a writer could trip over (its momentary shared lock is
        taken inside the pid guard, which a contender waits for), so it is safe to call while
        research runs; ``status`` uses it to tell a live run from an interrupted one.
        """
        return await anyio.to_thread.run_sync(self._probe)

    async def check_unlocked(self) -> None:
        """Raise LockedError if another process holds the lock (without taking it)."""
        held, pid = await self.probe_lock()
        if held:
            raise LockedError(self._locked_message(pid), pid=pid)

    # -- config --------------------------------------------------------------------------

    def _read_json(self, path: Path, what: str) -> Any:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WorkspaceError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkspaceError(
                f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix it by hand or {what}"
            ) from exc

    async def read_config(self) -> ResearchConfig:
        """The persisted configuration; :class:`NotInitializedError` if there is none."""
        data = await anyio.to_thread.run_sync(
            self._read_json, self.config_path, "run `autoresearch init --force`"
        )
        if data is None:
            raise NotInitializedError(
                f"{self.repo_path} is not initialised for autoresearch; run "
                f"`autoresearch init {self.repo_path}` first",
                field="repo_path",
            )
        if not isinstance(data, dict):
            raise WorkspaceError(f"{self.config_path} must hold a JSON object")
        data.pop("repoPath", None)
        try:
            return load_config(data, repo_path=self.repo_path)
        except ConfigError as exc:
            raise ConfigError(f"{self.config_path}: {exc}", field=exc.field) from exc

    async def write_config(self, config: ResearchConfig) -> None:
        """Write config.json (creating .autoresearch/)."""
        text = json.dumps(config.to_file_dict(), indent=2) + "\n"

        def write() -> None:
            self.dir.mkdir(exist_ok=True)
            _write_atomic(self.config_path, text)

        await anyio.to_thread.run_sync(write)

    # -- state ---------------------------------------------------------------------------

    async def read_state(self) -> ResearchState | None:
        """state.json, or ``None`` before the first cycle."""
        data = await anyio.to_thread.run_sync(
            self._read_json, self.state_path, "delete it to rebuild it from runs.jsonl"
        )
        if data is None:
            return None
        try:
            return ResearchState.model_validate(data)
        except ValidationError as exc:
            raise WorkspaceError(
                f"{self.state_path} is malformed ({exc.errors()[0]['msg']}); "
                "delete it to rebuild it from runs.jsonl"
            ) from exc

    async def write_state(self, state: ResearchState, *, durable: bool = True) -> None:
        """Replace state.json atomically (a reader sees the old or the new document).

        ``durable`` also fsyncs, so the change survives a power cut, not only a crash of the
        process; the worker asks for it whenever recovery would need the change.
        """
        text = json.dumps(state.to_json_dict(), indent=2) + "\n"
        await anyio.to_thread.run_sync(_write_atomic, self.state_path, text, durable)

    # -- ledgers -------------------------------------------------------------------------

    def _load_runs(self, metric_name: str, repair: bool) -> list[RunRecord]:
        if repair:
            self.dir.mkdir(exist_ok=True)
            _cut_torn_tail(self.runs_path)
            _cut_torn_tail(self.results_path)
        records: list[RunRecord] = []
        if self.runs_path.exists():
            with self.runs_path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip() or not line.endswith("\n"):
                        continue  # blank, or a torn last line that repair would cut
                    try:
                        records.append(RunRecord.model_validate_json(line))
                    except ValidationError as exc:
                        raise WorkspaceError(
                            f"{self.runs_path} line {number} is not a valid record "
                            f"({exc.errors()[0]['msg']}); remove that line to continue"
                        ) from exc
        if repair:
            self._sync_results(records, metric_name)
        return records

    def _check_rows(self, records: int) -> int:
        rows = self._tsv_rows()
        if rows > records:
            raise WorkspaceError(
                f"{self.runs_path} has {records} records but {self.results_path} has "
                f"{rows} rows: runs.jsonl lost records. Restore runs.jsonl from a backup, or "
                "move results.tsv aside to go on (nothing was changed)"
            )
        return rows

    def _sync_results(self, records: Sequence[RunRecord], metric_name: str) -> None:
        rows = self._check_rows(len(records))
        if self.results_path.exists() and rows == len(records):
            return
        text = tsv_header(metric_name) + "".join(format_tsv_row(r) for r in records)
        _write_atomic(self.results_path, text)

    def _tsv_rows(self) -> int:
        """Complete rows of results.tsv (a torn last line does not count)."""
        try:
            with self.results_path.open(encoding="utf-8") as handle:
                return max(0, sum(1 for line in handle if line.endswith("\n")) - 1)
        except FileNotFoundError:
            return 0

    def highest_logged_cycle(self) -> int:
        """The highest cycle number any file under .autoresearch/ speaks of (0 if none).

        Logs (``logs/<n>.log``, ``logs/<n>.validate.log``) and the rows of results.tsv count,
        so a new cycle never takes a number whose files already exist.
        """
        highest = self._tsv_rows()
        try:
            names = os.listdir(self.logs_dir)
        except FileNotFoundError:
            names = []
        for name in names:
            head = name.split(".", 1)[0]
            if head.isdigit():
                highest = max(highest, int(head))
        return highest

    async def load_runs(self, metric_name: str, *, repair: bool = True) -> list[RunRecord]:
        """Every record in runs.jsonl, oldest first.

        With ``repair`` (what a worker does when it starts) a torn last line is cut from both
        ledgers and results.tsv is rebuilt if it does not have one row per record; without it
        the files are only read (what ``status`` and ``results`` do).
        """
        return await anyio.to_thread.run_sync(self._load_runs, metric_name, repair)

    async def check_ledgers(self) -> None:
        """Raise :class:`WorkspaceError` if results.tsv has rows runs.jsonl lost (reads only).

        A worker would otherwise rebuild results.tsv from the shorter ledger and lose rows.
        """

        def check() -> None:
            records = 0
            if self.runs_path.exists():
                with self.runs_path.open(encoding="utf-8") as handle:
                    records = sum(1 for line in handle if line.strip() and line.endswith("\n"))
            self._check_rows(records)

        await anyio.to_thread.run_sync(check)

    async def append_run(self, record: RunRecord) -> None:
        """Append ``record`` to runs.jsonl, then its row to results.tsv, both fsynced."""
        unset = {name for name in EXTENSION_FIELDS if getattr(record, name) is None}
        line = record.model_dump_json(by_alias=True, exclude=unset) + "\n"
        row = format_tsv_row(record)

        def write() -> None:
            _append(self.runs_path, line)
            _append(self.results_path, row)

        await anyio.to_thread.run_sync(write)

    async def publish_log(self, cycle: int, repeat: int = 1) -> None:
        """Make run.log the output of ``cycle`` (a hard link when possible, else a copy).

        Each run uses a temporary name of its own, so slots finishing at the same moment
        never move each other's file; the last one to finish wins.
        """
        source = self.log_path(cycle, repeat)

        def link() -> None:
            if not source.exists():
                return
            tmp = self.run_log.with_name(f".run.log.{cycle}.{repeat}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, self.run_log)
            # rename(2) does nothing when both names are links to one file (run.log already
            # was this log): the temporary name must not stay behind.
            tmp.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(link)

    async def read_log_tail(self, cycle: int, max_bytes: int = 4000) -> str | None:
        """The last ``max_bytes`` of a cycle's log, or ``None`` if it has none."""
        path = self.log_path(cycle)

        def read() -> str | None:
            try:
                with path.open("rb") as handle:
                    size = handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, size - max_bytes))
                    return handle.read().decode("utf-8", errors="replace")
            except FileNotFoundError:
                return None

        return await anyio.to_thread.run_sync(read)

    def archive_dir(self, stamp: str) -> Path:
        """Where :meth:`archive` puts a session archived at ``stamp``."""
        return self.dir / "archive" / stamp

    async def archive(self, stamp: str) -> Path | None:
        """Move the session's files into ``archive/<stamp>/``; None if there was nothing.

        Everything under ``.autoresearch/`` moves (config, state, ledgers, logs) except the
        lock and earlier archives; nothing is deleted. A new session then starts from cycle 1
        with no file name in common with this one.
        """
        target = self.archive_dir(stamp)

        def move() -> Path | None:
            if not self.dir.is_dir():
                return None
            entries = [e for e in self.dir.iterdir() if e.name not in ("archive", "lock")]
            if not entries:
                return None
            target.mkdir(parents=True)  # fails if that archive exists: never merge two
            for entry in entries:
                os.replace(entry, target / entry.name)
            _fsync_dir(self.dir)
            return target

        return await anyio.to_thread.run_sync(move)
