"""The research's record of itself: the finished cycles and where the research stands.

:class:`Ledger` holds the history (runs.jsonl, the source of truth, with results.tsv beside it)
and the state (state.json), and is the one place that changes them: a finished cycle is
appended to both ledgers, then the state is brought in line. The counters, the best and the
baseline are rebuilt from the history when a worker starts, so a damaged or deleted state.json
costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio

from autoresearch.config import ResearchConfig
from autoresearch.results import RunRecord
from autoresearch.workspace import ResearchState, Workspace

__all__ = ["Ledger", "now_iso"]


def now_iso() -> str:
    """The current UTC time as state.json and the records write it (seconds, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Ledger:
    """The history and the state of one repository's research (see the module docstring)."""

    def __init__(self, workspace: Workspace, config: ResearchConfig) -> None:
        self.workspace = workspace
        self.config = config
        self.history: list[RunRecord] = []
        self._state: ResearchState | None = None
        self._writing = anyio.Lock()

    @property
    def state(self) -> ResearchState:
        """The state; only after :meth:`load`."""
        assert self._state is not None, "the ledger is not loaded"
        return self._state

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` has run."""
        return self._state is not None

    async def load(self, saved: ResearchState | None, head: str) -> None:
        """Read the history (repairing torn lines) and rebuild the state from it.

        Counters, best and baseline come from the history; the start time and an interrupted
        cycle's bookkeeping come from ``saved`` (the previous state.json); with no kept cycle
        the best commit is the saved one, else ``head``.
        """
        self.history = await self.workspace.load_runs(self.config.metric.name)
        now = now_iso()
        keeps = [r for r in self.history if r.status == "keep"]
        baseline = next((r for r in self.history if r.baseline and r.status == "keep"), None)
        best = keeps[-1] if keeps else None
        last = self.history[-1] if self.history else None
        self._state = ResearchState(
            branch=self.config.branch,
            tag=self.config.tag,
            phase="idle",
            cycle_count=len(self.history),
            keep_count=len(keeps),
            best_metric=best.metric if best else None,
            baseline_metric=baseline.metric if baseline else None,
            best_commit=best.commit if best else (saved.best_commit if saved else None) or head,
            last_status=last.status if last else None,
            started_at=saved.started_at if saved else now,
            updated_at=now,
            current_cycle=saved.current_cycle if saved else None,
            candidate_commit=saved.candidate_commit if saved else None,
        )

    def has(self, cycle: int) -> bool:
        """Whether the history holds a record of ``cycle``."""
        return any(r.cycle == cycle for r in self.history)

    async def save(self, *, durable: bool = True) -> None:
        """Write state.json (``durable`` also fsyncs; see :meth:`Workspace.write_state`).

        Writes are one at a time: parallel slots share the file.
        """
        async with self._writing:
            await self.workspace.write_state(self.state, durable=durable)

    async def record(self, record: RunRecord, *, pending: bool = False) -> None:
        """Append ``record`` to both ledgers, then bring state.json in line.

        ``pending``: the tree could not be restored, so state.json keeps the cycle open and
        the next start finishes the restore (without recording the cycle twice).
        """
        await self.workspace.append_run(record)
        self.history.append(record)
        state = self.state
        state.cycle_count = len(self.history)
        state.keep_count += record.status == "keep"
        state.last_status = record.status
        state.updated_at = now_iso()
        if not pending:
            self.close_cycle()
        state.experiment_pid = None
        await self.save()

    def close_cycle(self) -> None:
        """Forget the cycle in progress: the state is idle again (not written)."""
        state = self.state
        state.phase = "running" if state.in_flight else "idle"
        state.current_cycle = state.parent_commit = state.candidate_commit = None
        state.written = state.measured = None
