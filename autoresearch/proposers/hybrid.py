"""The hybrid proposer: a sampler moves the numeric knobs, a chat model changes the code.

Both share one search space (discovered from the best commit's files, as the offline proposer
does) and one history (the ledger, which each of them learns from). Most cycles the sampler
proposes the next configuration. The model gets a turn when the sampler stalls (its last
``patience`` proposals were not kept), when ``code_every`` sampler cycles have passed since
the model's last turn, or when the sampler has nothing left to try. On its turn the model sees
everything the LLM proposer shows (program, code, results, the last failure) and also the
search space with the sampler's best point, and is asked for a change to the code rather than
to those values. A kept code change becomes the sampler's new starting point: the space is
discovered again from the new files (a knob the model added is tuned from then on) and the
sampler keeps what it learned.

Each plan's metadata (``proposal`` in runs.jsonl) says who made it (``by``: ``sampler`` or
``model``) and, for the model, why it had the turn (``turn``), so a restarted proposer
replays the ledger and takes the next turn where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from autoresearch.edits import ChangeSet
from autoresearch.errors import ProposerError
from autoresearch.params.model import Param
from autoresearch.params.rewrite import format_value
from autoresearch.proposers.base import Analysis, Plan, ResearchContext
from autoresearch.proposers.llm import LLMProposer
from autoresearch.proposers.local import LocalProposer
from autoresearch.results import RunRecord

__all__ = ["HybridProposer"]

Turn = Literal["sampler", "model"]

_BRIEF_PARAMS = 40
"""At most this many parameters are listed for the model (the rest are counted)."""


class HybridProposer:
    """A sampler for the numeric knobs and a chat model for code changes, sharing one history.

    ``sampler`` is the offline proposer (any sampler: ours, random, TPE, CMA-ES) and ``model``
    the LLM proposer. The model has a turn after ``patience`` sampler proposals in a row that
    were not kept, after ``code_every`` sampler proposals since its last turn, and whenever
    the sampler finds nothing to try. ``model.brief`` is set to :meth:`brief`, so give the
    hybrid an LLM proposer of its own.
    """

    name = "hybrid"

    def __init__(
        self,
        sampler: LocalProposer,
        model: LLMProposer,
        *,
        patience: int = 3,
        code_every: int = 6,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        if code_every < 1:
            raise ValueError(f"code_every must be at least 1, got {code_every}")
        self.sampler = sampler
        self.model = model
        self.patience = patience
        self.code_every = code_every
        self._since_model = 0
        self._stalled = 0
        model.brief = self.brief

    @property
    def stalled(self) -> int:
        """Sampler proposals in a row, since its last keep or the model's last turn, not kept."""
        return self._stalled

    @property
    def since_model(self) -> int:
        """Sampler proposals since the model's last turn."""
        return self._since_model

    async def prime(self, history: Sequence[RunRecord]) -> None:
        """Both learn the whole ledger; the turn counters are replayed from it."""
        self._since_model = self._stalled = 0
        await self.sampler.prime(history)
        await self.model.prime(history)
        for record in history:
            self._count(record)

    async def observe(self, record: RunRecord) -> None:
        """Both learn from one finished cycle."""
        await self.sampler.observe(record)
        await self.model.observe(record)
        self._count(record)

    def next_turn(self) -> tuple[Turn, str | None]:
        """Who proposes next and, for the model, why (before the sampler is asked)."""
        if self._stalled >= self.patience:
            return "model", f"the sampler's last {self._stalled} proposals were not kept"
        if self._since_model >= self.code_every:
            return "model", f"{self._since_model} sampler proposals since the last code change"
        return "sampler", None

    async def plan(self, context: ResearchContext, analysis: Analysis, hint: str | None) -> Plan:
        """The sampler's next configuration, or on the model's turn a code change."""
        turn, why = self.next_turn()
        if turn == "sampler":
            try:
                plan = await self.sampler.plan(context, analysis, hint)
            except ProposerError as exc:
                why = f"the sampler has nothing to try ({exc})"
            else:
                plan.metadata["by"] = "sampler"
                return plan
        plan = await self.model.plan(context, analysis, hint)
        plan.metadata["by"] = "model"
        plan.metadata["turn"] = why
        return plan

    async def implement(self, context: ResearchContext, plan: Plan) -> ChangeSet:
        """Written by whoever made the plan."""
        return await self._author(plan).implement(context, plan)

    async def repair(
        self, context: ResearchContext, plan: Plan, changes: ChangeSet, problem: str
    ) -> ChangeSet | None:
        """Repaired by whoever made the plan (the sampler gives up; the model may fix it)."""
        return await self._author(plan).repair(context, plan, changes, problem)

    def brief(self, context: ResearchContext) -> str | None:
        """What the model is told about the numeric search: the space and the best point."""
        try:
            space = self.sampler.space(context)
        except ProposerError:
            return None
        no_effect = self.sampler.no_effect
        tuned = [p for p in space.tuned if p.key not in no_effect]
        lines = [
            "# The numeric search (a sampler tunes these values)",
            "A sampler tunes the hyperparameters below, one configuration a cycle; the values "
            "are the best it has found so far. This cycle, propose a change to the code "
            "instead: the model, the algorithm, the training procedure, the data pipeline. "
            "Leave these values as they are; the sampler keeps tuning them on your new code, "
            "including any hyperparameter you add as a constant, an argparse default or a "
            "config entry.",
        ]
        if not tuned:
            lines.append("(The sampler found no numeric hyperparameter to tune in this code.)")
        lines += [_brief_line(p) for p in tuned[:_BRIEF_PARAMS]]
        if len(tuned) > _BRIEF_PARAMS:
            lines.append(f"- … and {len(tuned) - _BRIEF_PARAMS} more")
        if no_effect:
            lines.append("Changing these showed no effect: " + ", ".join(sorted(no_effect)) + ".")
        return "\n".join(lines)

    def _author(self, plan: Plan) -> LocalProposer | LLMProposer:
        return self.model if plan.metadata.get("by") == "model" else self.sampler

    def _count(self, record: RunRecord) -> None:
        by = (record.proposal or {}).get("by")
        if by == "model":
            self._since_model = self._stalled = 0
        elif by == "sampler":
            self._since_model += 1
            self._stalled = 0 if record.status == "keep" else self._stalled + 1


def _brief_line(param: Param) -> str:
    """``- KEY = value (path line N; range, scale)`` for the model."""
    if param.kind == "choice":
        shown = ", ".join(format_value(param, c) for c in param.choices or [param.value])
        where = f"one of {shown}"
    else:
        where = f"range {_bound(param.low)}..{_bound(param.high)}, {param.scale}"
    return (
        f"- {param.key} = {format_value(param, param.value)} "
        f"({param.path} line {param.line}; {where})"
    )


def _bound(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
