"""Reading research after the fact: one cycle in full (record, diff, log), without a lock.

What ``autoresearch show`` prints, for programs too: :func:`cycle_detail` only reads, so it
works while a worker runs on the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio

from autoresearch.errors import ConfigError
from autoresearch.gitrepo import GitRepo
from autoresearch.results import RunRecord
from autoresearch.workspace import Workspace

__all__ = ["CycleDetail", "cycle_detail"]


@dataclass(frozen=True)
class CycleDetail:
    """One cycle: its ledger record, its change as a patch and the end of its output."""

    record: RunRecord
    metric_name: str
    diff: str
    """The candidate's change against its parent ("" for a baseline or no commit)."""
    log_tail: str | None
    """The last characters of the run's output, or None when it has no log."""


async def cycle_detail(repo_path: str | Path, cycle: int, *, tail_chars: int = 3000) -> CycleDetail:
    """Cycle ``cycle`` of the repository at ``repo_path``.

    Raises :class:`ConfigError` (field ``cycle``) naming the cycles there are when there is no
    such cycle, and :class:`NotInitializedError` for a repository never set up.
    """
    root = await anyio.to_thread.run_sync(lambda: Path(repo_path).expanduser().resolve())
    workspace = Workspace(root)
    config = await workspace.read_config()
    records = await workspace.load_runs(config.metric.name, repair=False)
    record = next((r for r in records if r.cycle == cycle), None)
    if record is None:
        last = max((r.cycle for r in records), default=0)
        raise ConfigError(
            f"cycle: there is no cycle {cycle} (this repository has cycles 1 to {last})"
            if last
            else f"cycle: there is no cycle {cycle} (no cycle has run yet)",
            field="cycle",
        )
    diff = ""
    if not record.baseline and record.commit != record.parent_commit:
        git = await GitRepo.open(root)
        diff = await git.diff(record.commit)
    tail = await workspace.read_log_tail(cycle, tail_chars)
    return CycleDetail(record, config.metric.name, diff, tail)
