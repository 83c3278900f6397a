"""Reading one run: what a finished experiment measured, or why it measured nothing.

:func:`read_run` turns a :class:`RunOutcome` and its log into a :class:`Reading`: the metric
(read exactly or not at all, see :mod:`autoresearch.metrics`), the peak memory, and a status
(``ok``, ``crash`` or ``timeout``) with the reason a record shows. Whether the reading is good
enough to keep is not decided here (see :mod:`autoresearch.decision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from autoresearch.config import ResearchConfig
from autoresearch.metrics import (
    MetricMisreadError,
    PatternTooSlowError,
    find_last_match,
    find_last_number,
    parse_number,
    to_gb,
)
from autoresearch.runner import RunOutcome

__all__ = ["Reading", "read_run"]


@dataclass(frozen=True)
class Reading:
    """What one run measured."""

    status: Literal["ok", "crash", "timeout"]
    metric: float | None
    """The metric read (also for a crash that printed one before failing), or None."""
    memory_gb: float | None
    reason: str
    """Why the run failed ("" when it is ok)."""
    seconds: float
    """How long the run took (wall time)."""


async def read_run(
    outcome: RunOutcome, log: Path, config: ResearchConfig, logs_dir: Path
) -> Reading:
    """Read ``outcome`` (its output in ``log``) as the configuration says."""
    memory = outcome.peak_rss_gb
    seconds = outcome.duration_ms / 1000
    name = config.metric.name
    try:
        raw = await find_last_match(config.metric.pattern, log)
        if config.memory is not None:
            reading = await find_last_number(config.memory.pattern, log)
            memory = to_gb(reading, config.memory.unit) if reading is not None else None
    except (PatternTooSlowError, MetricMisreadError) as exc:
        return Reading("crash", None, memory, str(exc), seconds)
    metric = None if raw is None else parse_number(raw)
    if outcome.error:
        return Reading("crash", metric, memory, outcome.error, seconds)
    if outcome.disk_full and outcome.exit_code != 0 and not outcome.timed_out:
        return Reading(
            "crash",
            None,
            memory,
            f"exit code {outcome.exit_code}; the disk holding {logs_dir} is full (a write "
            "failed with ENOSPC), so the output may be cut off; free some space",
            seconds,
        )
    if outcome.timed_out:
        return Reading(
            "timeout", None, memory, f"timed out after {config.timeout_ms / 1000:g} s", seconds
        )
    if outcome.exit_code != 0:
        return Reading("crash", metric, memory, f"exit code {outcome.exit_code}", seconds)
    if metric is None:
        why = (
            f"no {name} in the output (pattern did not match)"
            if raw is None
            else f"{name} is not a finite number ({raw.strip()[:40]!r})"
        )
        if raw is None and outcome.disk_full:
            why = (
                f"no {name} in the output; the disk holding {logs_dir} filled up, so the log is "
                "probably truncated (free some space)"
            )
        return Reading("crash", None, memory, why, seconds)
    return Reading("ok", metric, memory, "", seconds)
