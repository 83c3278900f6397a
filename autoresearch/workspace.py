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
import fcntl
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import anyio
from pydantic import ConfigDict, ValidationError

from autoresearch._model import CamelModel
from autoresearch.config import ResearchConfig, load_config
from autoresearch.errors import ConfigError, LockedError, NotInitializedError, WorkspaceError
from autoresearch.results import RunRecord, Status

__all__ = ["WORKSPACE_DIR", "ResearchState", "Workspace", "format_tsv_row", "tsv_header"]

WORKSPACE_DIR = ".autoresearch"
"""The folder, at the repository root, that holds everything autoresearch writes."""


class ResearchState(CamelModel):
    """state.json: where the research stands. ``phase`` is ``idle`` between cycles."""

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
    candidate_commit: str | None = None
    """The undecided candidate of the cycle in progress, if one was committed."""
    experiment_pid: int | None = None
    """The running experiment's process (and process group) id, while one runs."""


def tsv_header(metric_name: str) -> str:
    """The first line of results.tsv."""
    return f"commit\t{metric_name}\tmemory_gb\tstatus\tdescription\n"


def _flat(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines()).strip()


def format_tsv_row(record: RunRecord) -> str:
    """One results.tsv line for ``record`` (7-char commit, 6-decimal metric, 1-decimal GB)."""
    metric = f"{record.metric:.6f}" if record.metric is not None else "0.000000"
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

    def log_path(self, cycle: int) -> Path:
        """Where cycle ``cycle``'s output goes."""
        return self.logs_dir / f"{cycle}.log"

    def relative(self, path: Path) -> str:
        """``path`` relative to the repository, for records."""
        try:
            return path.relative_to(self.repo_path).as_posix()
        except ValueError:
            return str(path)

    # -- the one-writer lock ---------------------------------------------------------------

    def _locked_message(self, handle: IO[str]) -> str:
        handle.seek(0)
        holder = handle.read().strip()
        pid = f" (pid {holder})" if holder.isdigit() else ""
        return (
            f"another autoresearch process{pid} is running on this repo ({self.repo_path}); "
            "stop it first, or wait for it to finish"
        )

    def _acquire(self) -> IO[str]:
        self.dir.mkdir(exist_ok=True)
        handle = self.lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = self._locked_message(handle)
            holder = message.split("pid ")[1].split(")")[0] if "(pid " in message else None
            handle.close()
            raise LockedError(message, pid=int(holder) if holder else None) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    async def acquire_lock(self) -> IO[str]:
        """Take the repo's writer lock (``flock`` on .autoresearch/lock) or raise LockedError.

        The lock belongs to the open file: it is released by :meth:`release_lock`, and by the
        operating system when the process dies, so a crashed process never leaves it stale.
        """
        return await anyio.to_thread.run_sync(self._acquire)

    @staticmethod
    async def release_lock(handle: IO[str]) -> None:
        """Give the lock back."""
        with contextlib.suppress(OSError):
            handle.close()

    async def check_unlocked(self) -> None:
        """Raise LockedError if another process holds the lock (without keeping it)."""
        if await anyio.to_thread.run_sync(self.lock_path.exists):
            await self.release_lock(await self.acquire_lock())

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

    def _sync_results(self, records: Sequence[RunRecord], metric_name: str) -> None:
        rows = 0
        if self.results_path.exists():
            with self.results_path.open(encoding="utf-8") as handle:
                rows = max(0, sum(1 for _ in handle) - 1)
        if self.results_path.exists() and rows == len(records):
            return
        text = tsv_header(metric_name) + "".join(format_tsv_row(r) for r in records)
        _write_atomic(self.results_path, text)

    async def load_runs(self, metric_name: str, *, repair: bool = True) -> list[RunRecord]:
        """Every record in runs.jsonl, oldest first.

        With ``repair`` (what a worker does when it starts) a torn last line is cut from both
        ledgers and results.tsv is rebuilt if it does not have one row per record; without it
        the files are only read (what ``status`` and ``results`` do).
        """
        return await anyio.to_thread.run_sync(self._load_runs, metric_name, repair)

    async def append_run(self, record: RunRecord) -> None:
        """Append ``record`` to runs.jsonl, then its row to results.tsv, both fsynced."""
        line = record.model_dump_json(by_alias=True) + "\n"
        row = format_tsv_row(record)

        def write() -> None:
            _append(self.runs_path, line)
            _append(self.results_path, row)

        await anyio.to_thread.run_sync(write)

    async def publish_log(self, cycle: int) -> None:
        """Make run.log the output of ``cycle`` (a hard link when possible, else a copy)."""
        source = self.log_path(cycle)

        def link() -> None:
            if not source.exists():
                return
            tmp = self.run_log.with_name(".run.log.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, self.run_log)

        await anyio.to_thread.run_sync(link)

    async def disk_nearly_full(self, margin_bytes: int = 1 << 20) -> bool:
        """Whether the filesystem holding the logs has less than ``margin_bytes`` free."""

        def check() -> bool:
            try:
                return shutil.disk_usage(self.logs_dir).free < margin_bytes
            except OSError:
                return False

        return await anyio.to_thread.run_sync(check)

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

    async def remove(self) -> bool:
        """Delete the whole ``.autoresearch/`` folder; ``False`` if there was none."""

        def remove() -> bool:
            if not self.dir.exists():
                return False
            shutil.rmtree(self.dir)
            return True

        return await anyio.to_thread.run_sync(remove)
