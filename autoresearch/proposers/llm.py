"""The LLM agent: a proposer that asks a chat model what to try and how to write it.

Each cycle costs one or two model calls when nothing needs repair. ``plan`` sends the system text
and the context message (see :mod:`autoresearch.proposers.prompts`) and reads
``{"description", "rationale"}``; if that reply also carries usable ``edits``, ``implement``
returns them without calling the model again. Every request carries the reply's JSON schema
(:data:`~autoresearch.proposers.replies.PLAN_REPLY` or
:data:`~autoresearch.proposers.replies.EDITS_REPLY`) for providers that constrain their output
to it, unless ``structured=False``. Otherwise ``implement`` shows the model its plan and
asks for ``{"edits": [...]}``. When the engine refuses the edits or they do not validate,
``repair`` shows the model its edits and the problem and asks for a corrected set. Replies are
read leniently (:mod:`autoresearch.proposers.replies`); one that cannot be read raises
:class:`~autoresearch.errors.ProposerError`, which the engine records as an ``invalid`` cycle.

The wire protocol is documented for people who point their own models and test doubles at it in
``docs/agent-protocol.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from autoresearch.edits import ChangeSet, Edit
from autoresearch.proposers.base import Analysis, Plan, ResearchContext
from autoresearch.proposers.prompts import (
    PLAN_TASK,
    Prompt,
    build_prompt,
    echo,
    implement_task,
    repair_task,
)
from autoresearch.proposers.replies import (
    EDITS_REPLY,
    PLAN_REPLY,
    ReplyError,
    find_object,
    read_edits,
    read_plan,
    with_paths,
)
from autoresearch.providers.base import ChatMessage, ChatModel, ChatRequest, ReplySchema
from autoresearch.results import RunRecord, Usage

__all__ = ["LLMProposer"]


@dataclass
class _Turn:
    """What one cycle's plan left for implement and repair (dropped when the cycle ends)."""

    plan: Plan
    analysis: Analysis
    hint: str | None
    edits: list[Edit] | None = None
    """Edits the plan reply already carried, ready for ``implement``."""
    edits_problem: str | None = None
    """Why the edits in the plan reply could not be used, told to the model in ``implement``."""


class LLMProposer:
    """Proposes changes with a chat model (any :class:`~autoresearch.providers.base.ChatModel`).

    ``max_tokens`` and ``temperature`` go into every request; ``history_rows`` is how many of the
    latest results the model sees (fewer if the context budget requires it); ``structured``
    sends the reply schema with every request (see the module docstring). The plan's
    ``metadata`` (``proposal`` in runs.jsonl) names the provider and model and counts the calls
    the cycle made; the prompts themselves are never stored. ``brief``, when set, returns a
    section added to the context message before the task (the hybrid proposer's account of the
    numeric search); it is called once a call.
    """

    name = "llm"

    def __init__(
        self,
        model: ChatModel,
        *,
        max_tokens: int = 4096,
        temperature: float | None = None,
        history_rows: int = 20,
        structured: bool = True,
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        if temperature is not None and not 0.0 <= temperature <= 2.0:
            raise ValueError(f"temperature must be between 0 and 2, got {temperature}")
        if history_rows < 0:
            raise ValueError(f"history_rows cannot be negative, got {history_rows}")
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.history_rows = history_rows
        self.structured = structured
        self.brief: Callable[[ResearchContext], str | None] | None = None
        self._turn: _Turn | None = None

    async def prime(self, history: Sequence[RunRecord]) -> None:
        """Nothing to learn up front: the engine hands over the recent results every cycle."""
        self._turn = None

    async def observe(self, record: RunRecord) -> None:
        """Forget the finished cycle's conversation."""
        self._turn = None

    async def plan(self, context: ResearchContext, analysis: Analysis, hint: str | None) -> Plan:
        """Ask the model for one idea; keep the edits if the reply already holds them."""
        prompt = self._prompt(context, analysis, hint)
        text, usage = await self._call(prompt, self._schema(PLAN_REPLY, context))
        try:
            data = find_object(text)
            description, rationale = read_plan(data)
        except ReplyError as exc:
            exc.usage = usage
            raise
        metadata: dict[str, Any] = {
            "provider": self.model.provider,
            "model": self.model.model,
            "calls": 1,
        }
        if prompt.cuts:
            metadata["contextCuts"] = prompt.cuts
        plan = Plan(description=description, rationale=rationale, metadata=metadata, usage=usage)
        turn = _Turn(plan=plan, analysis=analysis, hint=hint)
        if data.get("edits") is not None:
            try:
                edits = read_edits(data)
            except ReplyError as exc:
                turn.edits_problem = str(exc)
            else:
                turn.edits = edits or None
        self._turn = turn
        return plan

    async def implement(self, context: ResearchContext, plan: Plan) -> ChangeSet:
        """The plan reply's own edits if it had any (no call); otherwise ask for them."""
        turn = self._turn_for(plan)
        if turn.edits:
            edits, turn.edits = turn.edits, None
            return ChangeSet(edits=edits, usage=Usage())
        follow_ups = [
            ChatMessage(role="assistant", content=echo(plan)),
            ChatMessage(role="user", content=implement_task(turn.edits_problem)),
        ]
        prompt = self._prompt(context, turn.analysis, turn.hint, follow_ups)
        text, usage = await self._call(prompt, self._schema(EDITS_REPLY, context))
        self._count(plan)
        edits = _edits(text, usage)
        if not edits:
            raise ReplyError("the model's reply has an empty 'edits' list", usage=usage)
        return ChangeSet(edits=edits, usage=usage)

    async def repair(
        self, context: ResearchContext, plan: Plan, changes: ChangeSet, problem: str
    ) -> ChangeSet | None:
        """Show the model its failed edits and the problem; ``None`` if it answers no edits."""
        turn = self._turn_for(plan)
        follow_ups = [
            ChatMessage(role="assistant", content=echo(plan, changes.edits)),
            ChatMessage(role="user", content=repair_task(problem)),
        ]
        prompt = self._prompt(context, turn.analysis, turn.hint, follow_ups)
        text, usage = await self._call(prompt, self._schema(EDITS_REPLY, context))
        self._count(plan)
        edits = _edits(text, usage)
        return ChangeSet(edits=edits, usage=usage)  # no edits: the model gives up

    def _prompt(
        self,
        context: ResearchContext,
        analysis: Analysis,
        hint: str | None,
        follow_ups: Sequence[ChatMessage] = (),
    ) -> Prompt:
        return build_prompt(
            context,
            analysis,
            hint,
            task=PLAN_TASK,
            follow_ups=follow_ups,
            history_rows=self.history_rows,
            brief=self.brief(context) if self.brief is not None else None,
        )

    @staticmethod
    def _schema(schema: ReplySchema, context: ResearchContext) -> ReplySchema:
        """``schema``, its edit paths limited to the mutable files when those are all files."""
        files = context.mutable_files
        if files and all(path in files for path in context.config.mutable_paths):
            return with_paths(schema, sorted(files))
        return schema

    def _turn_for(self, plan: Plan) -> _Turn:
        """The current cycle's turn, or a fresh one for a plan this proposer did not make."""
        turn = self._turn
        if turn is None or (turn.plan is not plan and turn.plan != plan):
            turn = _Turn(plan=plan, analysis=Analysis(cycle=0), hint=None)
            self._turn = turn
        return turn

    @staticmethod
    def _count(plan: Plan) -> None:
        # The metadata dict is what the engine writes to runs.jsonl when the cycle ends, so the
        # count it holds then covers plan, implement and every repair.
        if isinstance(plan.metadata.get("calls"), int):
            plan.metadata["calls"] += 1

    async def _call(self, prompt: Prompt, schema: ReplySchema) -> tuple[str, Usage]:
        request = ChatRequest(
            system=prompt.system,
            messages=prompt.messages,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            reply_schema=schema if self.structured else None,
        )
        response = await self.model.complete(request)
        usage = response.usage
        if usage.calls == 0:
            usage = usage.model_copy(update={"calls": 1})
        return response.text, usage


def _edits(text: str, usage: Usage) -> list[Edit]:
    """The edits in a reply; an unreadable one raises :class:`ReplyError` carrying ``usage``."""
    try:
        return read_edits(find_object(text))
    except ReplyError as exc:
        exc.usage = usage
        raise
