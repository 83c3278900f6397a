"""The proposer protocol: what the engine asks of whatever invents the changes.

A proposer turns what the engine knows (:class:`ResearchContext`, :class:`Analysis`) into a
:class:`Plan` and then into a :class:`~autoresearch.edits.ChangeSet`; when the change does not
apply or validate, ``repair`` gets the problem explained and may try again. ``prime`` and
``observe`` let a proposer learn from the ledger without re-reading it every cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import Field

from autoresearch._model import CamelModel
from autoresearch.config import ResearchConfig
from autoresearch.edits import ChangeSet
from autoresearch.results import RunRecord, Usage

__all__ = ["Analysis", "Plan", "Proposer", "ResearchContext"]


class ResearchContext(CamelModel):
    """What the bootstrap phase read: the program, the code and the repository layout."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        mutableFiles: ClassVar[dict[str, str]]
        immutableFiles: ClassVar[dict[str, str]]

    config: ResearchConfig
    program: str | None = None
    mutable_files: dict[str, str]
    """Every mutable file, in full, keyed by its repo-relative path."""
    immutable_files: dict[str, str] = Field(default_factory=dict)
    """Read-only files, each capped in size."""
    layout: list[str] = Field(default_factory=list)
    """Tracked file paths of the repository (capped)."""
    workdir: Path | None = None
    """Where this cycle's files are: the repository, or with parallel slots the slot's own
    checkout. A proposer that works on files in place (the agent proposer) works there."""


class Analysis(CamelModel):
    """What the analyze phase found in the results so far."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        bestMetric: ClassVar[float | None]
        baselineMetric: ClassVar[float | None]
        bestCommit: ClassVar[str | None]
        recentFailures: ClassVar[list[RunRecord]]
        lastFailureLogTail: ClassVar[str | None]
        nearMisses: ClassVar[list[RunRecord]]
        totalCycles: ClassVar[int]
        inFlight: ClassVar[list[Plan]]

    cycle: int
    best_metric: float | None = None
    baseline_metric: float | None = None
    best_commit: str | None = None
    recent: list[RunRecord] = Field(default_factory=list)
    """The last results, oldest first."""
    recent_failures: list[RunRecord] = Field(default_factory=list)
    last_failure_log_tail: str | None = None
    near_misses: list[RunRecord] = Field(default_factory=list)
    """Discarded runs that came within a few percent of the best."""
    total_cycles: int = 0
    in_flight: list[Plan] = Field(default_factory=list)
    """With parallel slots: the plans of the candidates running now (do not propose them)."""


class Plan(CamelModel):
    """One idea to try: what and why. ``metadata`` is stored in runs.jsonl as ``proposal``."""

    description: str
    rationale: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    usage: Usage | None = None
    notes: list[str] = Field(default_factory=list)
    """What the user should know about how the plan came about (the agent proposer says what
    it restored): each is announced as an ``autoresearch:notice`` and added, in parentheses,
    to the cycle's description (not to the commit subject)."""


@runtime_checkable
class Proposer(Protocol):
    """Invents one change per cycle. The LLM agent, the offline local search and test scripts."""

    name: str

    async def prime(self, history: Sequence[RunRecord]) -> None:
        """Learn from the whole ledger once, when the worker starts."""

    async def observe(self, record: RunRecord) -> None:
        """Learn from one finished cycle."""

    async def plan(self, context: ResearchContext, analysis: Analysis, hint: str | None) -> Plan:
        """Decide what to try next."""
        ...

    async def implement(self, context: ResearchContext, plan: Plan) -> ChangeSet:
        """Write the edits that carry out ``plan``."""
        ...

    async def repair(
        self, context: ResearchContext, plan: Plan, changes: ChangeSet, problem: str
    ) -> ChangeSet | None:
        """Fix ``changes`` given why they failed.

        ``None``, or a change set with no edits (which can carry the usage the attempt cost),
        gives up: the cycle is invalid.
        """
        ...
