"""What a cycle leaves behind: its status, its ledger record and the result handed to callers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from autoresearch._model import CamelModel

__all__ = ["STATUSES", "CycleResult", "RunRecord", "Status", "Usage"]

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


class RunRecord(CamelModel):
    """One line of runs.jsonl: the full audit record of a finished cycle.

    Unknown keys are ignored on read so that older engines can read newer ledgers.
    """

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


class CycleResult(CamelModel):
    """What ``run_experiment_cycle`` returns: the seed's result, with both spellings."""

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
