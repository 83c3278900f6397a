"""The research's record of itself: the finished cycles and where the research stands.

:class:`Ledger` holds the history (runs.jsonl, the source of truth, with results.tsv beside it)
and the state (state.json), and is the one place that changes them: a finished cycle is
appended to both ledgers, then the state is brought in line. The counters, the best and the
baseline are rebuilt from the history when a worker starts, so a damaged or deleted state.json
costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from autoresearch.config import ResearchConfig
from autoresearch.metrics import format_metric
from autoresearch.noise import NoiseFloor
from autoresearch.results import RunRecord
from autoresearch.workspace import ResearchState, Workspace

__all__ = [
    "Ledger",
    "Summary",
    "format_measured",
    "measured_facts",
    "now_iso",
    "summarize",
    "values_of",
]


def now_iso() -> str:
    """The current UTC time as state.json and the records write it (seconds, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Summary:
    """The counts and the headline numbers of a research run, as every view shows them.

    One definition for ``status``, ``results``, ``plot``, ``report`` and the state a worker
    rebuilds: the baseline is the first kept baseline (a crashed one measured nothing to
    compare with), the best is the last kept metric.
    """

    cycles: int
    kept: int
    """Kept cycles, baselines included."""
    discarded: int
    crashed: int
    timed_out: int
    invalid: int
    baseline: float | None
    best: float | None
    best_cycle: int | None
    best_commit: str | None = None
    improvements: int = 0
    """Kept changes, not counting baselines."""
    last: RunRecord | None = None

    @property
    def change_pct(self) -> float | None:
        """How far the best moved from the baseline, in percent of the baseline (signed)."""
        if self.baseline is None or self.best is None or self.baseline == 0:
            return None
        return (self.best - self.baseline) / abs(self.baseline) * 100

    @property
    def failures(self) -> int:
        """Cycles that ended without a usable metric: crash, timeout or invalid."""
        return self.crashed + self.timed_out + self.invalid


def summarize(records: Sequence[RunRecord]) -> Summary:
    """Count the statuses and find the baseline and the best (the last kept metric)."""
    kept = [r for r in records if r.status == "keep"]
    baseline = next((r for r in kept if r.baseline and r.metric is not None), None)
    best = kept[-1] if kept else None
    return Summary(
        cycles=len(records),
        kept=len(kept),
        discarded=sum(r.status == "discard" for r in records),
        crashed=sum(r.status == "crash" for r in records),
        timed_out=sum(r.status == "timeout" for r in records),
        invalid=sum(r.status == "invalid" for r in records),
        baseline=baseline.metric if baseline else None,
        best=best.metric if best else None,
        best_cycle=best.cycle if best else None,
        best_commit=best.commit if best else None,
        improvements=sum(not r.baseline for r in kept),
        last=records[-1] if records else None,
    )


def values_of(record: RunRecord) -> list[float]:
    """Every measurement of ``record``'s commit (its runs' values, else its metric)."""
    if record.measurements:
        return [m.value for m in record.measurements]
    return [record.metric] if record.metric is not None else []


def format_measured(record: RunRecord) -> str:
    """A record's metric as people write it; with repeats, the mean ± its deviation and n."""
    text = format_metric(record.metric) if record.metric is not None else "-"
    if record.measurements and len(record.measurements) > 1 and record.std is not None:
        text += f" ± {record.std:.2g} (n={len(record.measurements)})"
    return text


def measured_facts(
    records: Sequence[RunRecord], gpu_hour_usd: float | None
) -> list[tuple[str, str]]:
    """(label, text) about the noise and the GPU time of a research, when it records them."""
    facts = []
    noise = NoiseFloor.pool(values_of(r) for r in records if r.status in ("keep", "discard"))
    if noise.sigma is not None:
        facts.append(
            ("noise", f"σ={noise.sigma:.3g} (pooled over {noise.df} degrees of freedom)")  # noqa: RUF001
        )
    seconds = sum(r.gpu_seconds for r in records if r.gpu_seconds is not None)
    if seconds:
        cost = f", ${seconds / 3600 * gpu_hour_usd:.2f}" if gpu_hour_usd is not None else ""
        facts.append(("GPU time", f"{seconds / 3600:.2f} GPU-hours{cost}"))
    return facts


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
        summary = summarize(self.history)
        self._state = ResearchState(
            branch=self.config.branch,
            tag=self.config.chosen_tag,
            phase="idle",
            cycle_count=summary.cycles,
            keep_count=summary.kept,
            best_metric=summary.best,
            baseline_metric=summary.baseline,
            best_commit=summary.best_commit or (saved.best_commit if saved else None) or head,
            last_status=summary.last.status if summary.last else None,
            started_at=saved.started_at if saved else now,
            updated_at=now,
            current_cycle=saved.current_cycle if saved else None,
            candidate_commit=saved.candidate_commit if saved else None,
        )

    def incumbent_values(self) -> list[float]:
        """The measurements of the best commit: one value without repeats, none before any.

        They come from the kept record of the best commit (all its runs when it was measured
        more than once); failing that, the best metric alone.
        """
        state = self.state
        for record in reversed(self.history):
            if record.status == "keep" and record.commit == state.best_commit:
                return values_of(record)
        return [state.best_metric] if state.best_metric is not None else []

    def incumbent_curve(self) -> list[tuple[float, float]] | None:
        """The learning curve the best commit's run printed (early abort), if recorded."""
        state = self.state
        for record in reversed(self.history):
            if record.status == "keep" and record.commit == state.best_commit:
                return record.curve
        return None

    def noise(self) -> NoiseFloor:
        """The noise floor pooled over every commit measured more than once so far."""
        return NoiseFloor.pool(
            values_of(r) for r in self.history if r.status in ("keep", "discard")
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
