"""Keep or discard: a pure function of the measurement, the incumbent and the policy.

Nothing here touches git, files or processes, so the rule can be read (and tested) on its own:
a measured change is kept only when it beats the incumbent by strictly more than
``min_improvement`` in the metric's direction; a tie is discarded; the first measurement of a
research (there is no incumbent yet) is kept, since it becomes the incumbent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from autoresearch.config import Direction, ResearchConfig
from autoresearch.metrics import is_improvement

__all__ = ["Policy", "Verdict", "judge"]


@dataclass(frozen=True)
class Policy:
    """What counts as better: the metric's direction and the margin a change must beat."""

    direction: Direction
    min_improvement: float = 0.0

    @classmethod
    def from_config(cls, config: ResearchConfig) -> Policy:
        """The policy a configuration sets."""
        return cls(config.metric.direction, config.min_improvement)


@dataclass(frozen=True)
class Verdict:
    """The decision about one measured change, with the reason a record shows."""

    status: Literal["keep", "discard"]
    reason: str


def judge(metric: float, incumbent: float | None, policy: Policy) -> Verdict:
    """Keep ``metric`` if it beats ``incumbent`` (None: nothing to beat) under ``policy``."""
    if is_improvement(metric, incumbent, policy.direction, policy.min_improvement):
        return Verdict("keep", "improved")
    return Verdict("discard", "no improvement")
