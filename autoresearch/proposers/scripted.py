"""Test doubles that play back a script: for tests, benchmarks and demos.

:class:`ScriptedProposer` replaces the whole proposer. Each step names a description and the
edits to make (or a function that computes them from the current code). Optional ``repairs``
are handed out, in order, when the engine asks for a repair.

:class:`ScriptedChatModel` replaces only the model behind the LLM proposer, so the real prompts,
reply parsing, repairs and hooks run offline: it answers each request from a script and keeps
every request it was sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from autoresearch.edits import ChangeSet, Edit
from autoresearch.errors import ProposerError, ProviderError
from autoresearch.proposers.base import Analysis, Plan, ResearchContext
from autoresearch.providers.base import ChatRequest, ChatResponse
from autoresearch.results import RunRecord, Usage

__all__ = ["ScriptedChatModel", "ScriptedProposer", "ScriptedReply", "ScriptedStep"]

EditSource = Sequence[Edit] | Callable[[ResearchContext], Sequence[Edit]]


@dataclass
class ScriptedStep:
    """One scripted cycle: what it says it tries and the edits that do it."""

    description: str
    edits: EditSource
    repairs: list[EditSource] = field(default_factory=list)
    usage: Usage | None = None
    fail: str | None = None
    """If set, ``plan`` raises :class:`ProposerError` with this message (a broken proposer)."""


StepSource = Sequence[ScriptedStep] | Callable[[int], ScriptedStep | None]


class ScriptedProposer:
    """Returns the scripted steps one per cycle; a callable script is asked by step index."""

    name = "scripted"

    def __init__(self, steps: StepSource) -> None:
        self._steps = steps
        self._index = 0
        self._current: ScriptedStep | None = None
        self._repairs_used = 0
        self.observed: list[RunRecord] = []
        """Every record the engine reported back, for assertions."""

    async def prime(self, history: Sequence[RunRecord]) -> None:
        """Scripts do not learn."""

    async def observe(self, record: RunRecord) -> None:
        """Remember the record."""
        self.observed.append(record)

    def _next(self) -> ScriptedStep:
        if callable(self._steps):
            step = self._steps(self._index)
        else:
            step = self._steps[self._index] if self._index < len(self._steps) else None
        if step is None:
            raise ProposerError(f"the script has no step {self._index + 1}")
        self._index += 1
        return step

    async def plan(self, context: ResearchContext, analysis: Analysis, hint: str | None) -> Plan:
        """The next step's description."""
        step = self._next()
        self._current, self._repairs_used = step, 0
        if step.fail:
            raise ProposerError(step.fail)
        return Plan(description=step.description, usage=step.usage)

    @staticmethod
    def _resolve(source: EditSource, context: ResearchContext) -> ChangeSet:
        edits = source(context) if callable(source) else source
        return ChangeSet(edits=list(edits))

    async def implement(self, context: ResearchContext, plan: Plan) -> ChangeSet:
        """The step's edits."""
        assert self._current is not None
        return self._resolve(self._current.edits, context)

    async def repair(
        self, context: ResearchContext, plan: Plan, changes: ChangeSet, problem: str
    ) -> ChangeSet | None:
        """The next scripted repair, or ``None`` when there is none left."""
        assert self._current is not None
        if self._repairs_used >= len(self._current.repairs):
            return None
        source = self._current.repairs[self._repairs_used]
        self._repairs_used += 1
        return self._resolve(source, context)


ScriptedReply = str | ChatResponse | Exception
"""One scripted answer: its text, a whole :class:`ChatResponse`, or an exception to raise."""

ReplySource = Sequence[ScriptedReply] | Callable[[ChatRequest], ScriptedReply]


class ScriptedChatModel:
    """A :class:`~autoresearch.providers.base.ChatModel` that answers from a script, offline.

    ``replies`` is a list, answered in order, or a function of the request. A text reply gets
    a usage estimated at four characters a token (input: the system text and the messages);
    a :class:`ChatResponse` is returned as it is; an exception is raised, as a failing
    provider would (a :class:`~autoresearch.errors.ProviderError` subclass to test the
    engine's handling of outages, say). Past the end of a list, ``complete`` raises
    :class:`~autoresearch.errors.ProviderError`, which the engine records as an ``invalid``
    cycle. ``requests`` holds every request sent, in order.
    """

    def __init__(
        self,
        replies: ReplySource,
        *,
        provider: str = "scripted",
        model: str = "scripted-model",
    ) -> None:
        self.provider = provider
        self.model = model
        self.requests: list[ChatRequest] = []
        """Every request the model was sent (with its reply schema), oldest first."""
        self._replies = replies

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Record ``request`` and answer with the next scripted reply."""
        self.requests.append(request)
        if callable(self._replies):
            reply = self._replies(request)
        elif len(self.requests) <= len(self._replies):
            reply = self._replies[len(self.requests) - 1]
        else:
            raise ProviderError(
                f"{self.provider}: the script has no reply for request {len(self.requests)} "
                f"(it has {len(self._replies)})",
                provider=self.provider,
            )
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, ChatResponse):
            return reply
        sent = len(request.system) + sum(len(m.content) for m in request.messages)
        used = Usage(input_tokens=_tokens(sent), output_tokens=_tokens(len(reply)), calls=1)
        return ChatResponse(text=reply, usage=used, model=self.model, stop_reason="stop")


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)
