"""What a cycle leaves behind: its status, its ledger record and the result handed to callers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from autoresearch._model import CamelModel

__all__ = [
    "EXTENSION_FIELDS",
    "STATUSES",
    "CycleResult",
    "Measurement",
    "RunRecord",
    "Status",
    "Usage",
]

Status = Literal["keep", "discard", "crash", "timeout", "invalid"]
"""How a cycle ended.

``keep``: the metric improved and the commit stays on the branch (the baseline is a keep too);
``discard``: it ran but did not improve, the tree is back at the best commit;
``crash``: non-zero exit or no readable metric; ``timeout``: killed at the time limit;
``invalid``: the change did not apply or validate, so nothing was committed or run.
"""

STATUSES: tuple[Status, ...] = ("keep", "discard", "crash", "timeout", "invalid")


class Usage(CamelModel):
    """Model token usage (zero for the offline proposer)."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        inputTokens: ClassVar[int]
        outputTokens: ClassVar[int]
        cacheReadTokens: ClassVar[int]
        cacheWriteTokens: ClassVar[int]
        costUsd: ClassVar[float]

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    calls: int = 0
    cost_usd: float = Field(default=0.0, ge=0.0, exclude_if=lambda value: not value)
    """What the calls cost in US dollars, when the proposer was told (a coding agent's CLI
    reports it); 0 when unknown, and then tasks price the tokens instead. Left out of JSON when
    0, so ledgers without a reported cost read as before."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            calls=self.calls + other.calls,
            cost_usd=self.cost_usd + other.cost_usd,
        )

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class Measurement(CamelModel):
    """One run of a commit: the value read, and the seed it was given."""

    model_config = ConfigDict(frozen=True)

    value: float
    seed: int


class RunRecord(CamelModel):
    """One line of runs.jsonl: the full audit record of a finished cycle.

    Unknown keys are ignored on read so that older engines can read newer ledgers.
    """

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        parentCommit: ClassVar[str | None]
        memoryGb: ClassVar[float | None]
        startedAt: ClassVar[str]
        durationMs: ClassVar[int]
        exitCode: ClassVar[int | None]
        logPath: ClassVar[str | None]
        phaseDurationsMs: ClassVar[dict[str, int]]
        replayOf: ClassVar[int | None]
        gpuSeconds: ClassVar[float | None]

    model_config = ConfigDict(extra="ignore")

    cycle: int
    commit: str
    parent_commit: str | None = None
    status: Status
    metric: float | None = None
    memory_gb: float | None = None
    description: str = ""
    hint: str | None = None
    started_at: str
    duration_ms: int = 0
    exit_code: int | None = None
    log_path: str | None = None
    phase_durations_ms: dict[str, int] = Field(default_factory=dict)
    usage: Usage | None = None
    baseline: bool = False
    proposal: dict[str, Any] | None = None
    """What the proposer attached to its plan (the local proposer stores its parameters)."""
    slot: int | None = None
    """The parallel slot that ran the cycle (None when research runs one cycle at a time)."""
    replay_of: int | None = None
    """For a replay: the cycle whose change was applied again on top of a newer best."""
    measurements: list[Measurement] | None = None
    """With repeats: every run's value and seed (``metric`` is then their mean)."""
    std: float | None = None
    """The standard deviation of ``measurements``."""
    threshold: float | None = None
    """With repeats: the gain the decision required (t quantile x standard error + margin)."""
    curve: list[tuple[float, float]] | None = None
    """With early abort: the run's progress (step, value), thinned to at most 200 points."""
    gpu_seconds: float | None = None
    """With a GPU-hour price: run time times the slot's GPUs, for costs and budgets."""


EXTENSION_FIELDS = frozenset(
    {"slot", "replay_of", "measurements", "std", "threshold", "curve", "gpu_seconds"}
)
"""Record fields written to runs.jsonl only when set, so a research that uses none of the
features behind them writes the same lines as before they existed."""


class CycleResult(CamelModel):
    """What ``run_experiment_cycle`` returns: the seed's result, with both spellings."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        metricValue: ClassVar[float | None]
        commitHash: ClassVar[str | None]
        durationMs: ClassVar[int]
        memoryGb: ClassVar[float | None]
        bestMetric: ClassVar[float | None]

    cycle: int
    status: Status
    metric_value: float | None = None
    commit_hash: str | None = None
    description: str = ""
    duration_ms: int = 0
    memory_gb: float | None = None
    best_metric: float | None = None
    baseline: bool = False
    usage: Usage | None = None
