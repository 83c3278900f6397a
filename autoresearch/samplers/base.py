"""The sampler protocol: which point of the search space to try next.

A sampler sees parameters and trials, never source code (the rewriter writes values into files,
the proposer replays the ledger into trials). ``tell`` gives it one finished trial; ``ask``
returns a full configuration that ``request.seen`` does not know (neither tried before nor
running in another slot), or ``None`` when it finds none.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from autoresearch.params.model import Param, Value

__all__ = ["AskRequest", "Sampler", "Trial", "config_key"]

Config = dict[str, Value]


def config_key(config: Mapping[str, Value]) -> tuple[tuple[str, str], ...]:
    """A hashable form of a configuration (``1`` and ``1.0`` and ``True`` stay different)."""
    return tuple(sorted((key, repr(value)) for key, value in config.items()))


@dataclass(frozen=True, slots=True)
class Trial:
    """One finished cycle as a sampler sees it.

    ``score`` is the metric turned so that lower is better (None when the run crashed, timed
    out or was invalid); ``incumbent`` is the best score before it; ``changed`` maps each moved
    parameter to its old value.
    """

    number: int
    params: Mapping[str, Value]
    changed: Mapping[str, Value]
    status: str
    score: float | None
    incumbent: float | None


@dataclass(slots=True)
class AskRequest:
    """What a sampler gets to choose from: the tuned parameters and the current best values."""

    params: Sequence[Param]
    incumbent: Config
    seen: Callable[[Mapping[str, Value]], bool]
    rng: random.Random
    seed: int = 0
    hint_weights: Mapping[str, float] = field(default_factory=dict)
    """Extra weight per parameter from the user's hint (1.0 when not mentioned)."""


@runtime_checkable
class Sampler(Protocol):
    """Chooses the next configuration; ours (``local``), ``random``, Optuna's ``tpe``/``cmaes``."""

    name: str

    def reset(self) -> None:
        """Forget every trial (before the ledger is replayed)."""

    def tell(self, trial: Trial) -> None:
        """Learn from one finished trial, oldest first."""

    def ask(self, request: AskRequest) -> Config | None:
        """A full configuration of ``request.params`` not seen before, or None."""
        ...
