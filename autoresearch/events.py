"""The eleven events a worker emits: one frozen model each, their names, and the union.

Every event's ``type`` field is its name (``"autoresearch:cycle:start"``), so a handler that
receives many kinds can dispatch on it, and ``event.to_json_dict()`` is ready to send to a
browser. Attributes read in both spellings (``event.metric_value`` and ``event.metricValue``).

Every event also names its source (like the sender of a Flask signal): ``event.source`` is an
:class:`EventSource` with the repository, the tag, the parallel slot and the task id. Code does
not pass it around: a worker enters :func:`event_source` (a slot's task :func:`event_slot`), the
task worker sets the task id the same way, and ``EventEmitter.emit`` stamps the current source
on every event that has none. It lives in a context variable, so tasks started inside inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, get_args

from pydantic import Field, TypeAdapter

from autoresearch._model import CamelModel
from autoresearch.results import CycleResult, Status, Usage

__all__ = [
    "EVENT_MODELS",
    "EVENT_NAMES",
    "PHASES",
    "CommitCreatedEvent",
    "CommitRevertedEvent",
    "CycleEndEvent",
    "CycleStartEvent",
    "ErrorEvent",
    "Event",
    "EventSource",
    "MetricRecordedEvent",
    "NoticeEvent",
    "NoticeKind",
    "Phase",
    "PhaseEnterEvent",
    "PhaseExitEvent",
    "StopReason",
    "StoppedEvent",
    "TimeoutEvent",
    "current_event_source",
    "event_slot",
    "event_source",
    "parse_event",
]

Phase = Literal[
    "bootstrap",
    "analyze",
    "plan",
    "implement",
    "validate",
    "commit",
    "execute",
    "evaluate",
    "decide",
]
"""The nine phases of a cycle, in order."""

PHASES: tuple[Phase, ...] = get_args(Phase)

StopReason = Literal[
    "max-runs", "manual", "cancelled", "error", "paused", "failed", "budget-exhausted"
]
"""Why a worker's loop (or a task's run on the task worker) ended.

``max-runs``: it ran its cycles (a task is then ``completed``); ``manual``: stopped by hand (or
the task was deleted); ``cancelled``: the worker was cancelled (or lost a task's lease);
``error``: the engine could not go on. Task runs also end with ``paused``, ``failed`` (too many
failed cycles in a row) and ``budget-exhausted``.
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventSource(CamelModel):
    """Where an event comes from: which worker (repository and tag), slot and task.

    Subscribers on one emitter use it to tell apart the events of concurrent workers and tasks
    (``event.source.repo``, ``event.source.task_id``). Set by :func:`event_source` and
    :func:`event_slot`; read the current one with :func:`current_event_source`.
    """

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        taskId: ClassVar[str | None]

    repo: str
    """The root of the worker's repository (an absolute path, as in ``config.repo_path``)."""
    tag: str | None
    """The worker's run tag (its research branch is ``autoresearch/<tag>``); ``None`` only on
    the ``stopped`` event of a worker that failed to prepare before choosing a tag not given."""
    slot: int | None = None
    """The parallel slot (1-based) that ran the cycle; None when cycles run one at a time, and
    for events about the worker as a whole (preparing it, ``stopped``)."""
    task_id: str | None = None
    """The task whose run emitted the event; None outside the task worker."""


_SOURCE: ContextVar[EventSource | None] = ContextVar("autoresearch_event_source", default=None)
"""The source stamped on events emitted in this context (read by ``EventEmitter.emit``)."""


def current_event_source() -> EventSource | None:
    """The source that events emitted here would carry, or None outside any worker."""
    return _SOURCE.get()


@contextmanager
def event_source(
    repo: str | os.PathLike[str], tag: str | None, *, task_id: str | None = None
) -> Iterator[EventSource]:
    """Events emitted inside (and in tasks started inside) come from this worker.

    Re-entering the enclosing worker's own source (same ``repo`` and ``tag``) keeps its slot, so
    a worker may enter it in every public method. A different worker starts afresh (no slot).
    The task id of an enclosing source is kept unless ``task_id`` names another one.
    """
    repo = os.fspath(repo)
    outer = _SOURCE.get()
    task = task_id
    if task is None and outer is not None:
        task = outer.task_id
    if outer is not None and outer.repo == repo and outer.tag == tag:
        source = outer if task == outer.task_id else outer.model_copy(update={"task_id": task})
    else:
        source = EventSource(repo=repo, tag=tag, task_id=task)
    token = _SOURCE.set(source)
    try:
        yield source
    finally:
        _SOURCE.reset(token)


@contextmanager
def event_slot(slot: int) -> Iterator[EventSource]:
    """Events emitted inside come from parallel slot ``slot`` of the enclosing worker.

    Raises ``RuntimeError`` outside :func:`event_source`: a slot belongs to a worker.
    """
    outer = _SOURCE.get()
    if outer is None:
        raise RuntimeError("event_slot() must be entered inside event_source(repo, tag)")
    source = outer.model_copy(update={"slot": slot})
    token = _SOURCE.set(source)
    try:
        yield source
    finally:
        _SOURCE.reset(token)


class _EventBase(CamelModel):
    at: str = Field(default_factory=_now)
    """When the event was emitted (ISO 8601, UTC)."""
    source: EventSource | None = None
    """Which worker, slot and task emitted it (None outside any worker)."""


class CycleStartEvent(_EventBase):
    """A cycle begins."""

    type: Literal["autoresearch:cycle:start"] = "autoresearch:cycle:start"
    cycle: int
    tag: str
    hint: str | None = None
    baseline: bool = False


class CycleEndEvent(_EventBase):
    """A cycle completed, whatever its status."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        metricValue: ClassVar[float | None]
        commitHash: ClassVar[str | None]
        durationMs: ClassVar[int]
        bestMetric: ClassVar[float | None]

    type: Literal["autoresearch:cycle:end"] = "autoresearch:cycle:end"
    cycle: int
    status: Status
    metric_value: float | None = None
    commit_hash: str | None = None
    description: str = ""
    duration_ms: int = 0
    best_metric: float | None = None
    usage: Usage | None = None

    @classmethod
    def announcing(cls, result: CycleResult) -> CycleEndEvent:
        """The event that reports ``result``."""
        return cls.model_validate(result.model_dump(include=_CYCLE_END_FIELDS))

    def to_result(self) -> CycleResult:
        """The cycle's result as far as the event tells it."""
        return CycleResult.model_validate(self.model_dump(include=_CYCLE_END_FIELDS))


_CYCLE_END_FIELDS = {
    "cycle",
    "status",
    "metric_value",
    "commit_hash",
    "description",
    "duration_ms",
    "best_metric",
    "usage",
}


class PhaseEnterEvent(_EventBase):
    """The worker enters one of the nine phases."""

    type: Literal["autoresearch:phase:enter"] = "autoresearch:phase:enter"
    cycle: int
    phase: Phase


class PhaseExitEvent(_EventBase):
    """The worker leaves a phase: ``ok``, ``skipped`` (baseline) or ``failed``."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        durationMs: ClassVar[int]

    type: Literal["autoresearch:phase:exit"] = "autoresearch:phase:exit"
    cycle: int
    phase: Phase
    duration_ms: int
    outcome: Literal["ok", "skipped", "failed"]


class MetricRecordedEvent(_EventBase):
    """A metric value was parsed from the run's output."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        bestValue: ClassVar[float | None]

    type: Literal["autoresearch:metric:recorded"] = "autoresearch:metric:recorded"
    cycle: int
    name: str
    value: float
    best_value: float | None = None
    """The best value before this cycle (None before the baseline)."""
    improved: bool


class CommitCreatedEvent(_EventBase):
    """A candidate commit was made on the research branch."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        commitHash: ClassVar[str]

    type: Literal["autoresearch:commit:created"] = "autoresearch:commit:created"
    cycle: int
    commit_hash: str
    description: str
    files: list[str]


class CommitRevertedEvent(_EventBase):
    """A candidate was discarded and the branch restored to the best commit."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        commitHash: ClassVar[str]
        restoredTo: ClassVar[str]

    type: Literal["autoresearch:commit:reverted"] = "autoresearch:commit:reverted"
    cycle: int
    commit_hash: str
    restored_to: str
    reason: str


class ErrorEvent(_EventBase):
    """Something went wrong: a phase failed, or an event handler raised."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        errorType: ClassVar[str]

    type: Literal["autoresearch:error"] = "autoresearch:error"
    cycle: int | None = None
    phase: str | None = None
    error_type: str
    message: str


class TimeoutEvent(_EventBase):
    """The experiment ran past its time limit and is being killed."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        timeoutMs: ClassVar[int]
        elapsedMs: ClassVar[int]

    type: Literal["autoresearch:timeout"] = "autoresearch:timeout"
    cycle: int
    timeout_ms: int
    elapsed_ms: int


NoticeKind = Literal["saved", "rebaseline", "stale-lock", "hooks", "proposer"]
"""What a notice is about.

``saved``: content autoresearch did not write was committed under
``refs/autoresearch/<tag>/saved/…`` before a restore replaced it; ``rebaseline``: the research
branch holds a commit autoresearch did not make, which is measured as a new baseline;
``stale-lock``: a git lock file left by an interrupted cycle was removed; ``hooks``: the
repository has git hooks, which candidate commits do not run; ``proposer``: a note from the
proposer about the plan (the agent proposer restored files its agent changed outside the mutable
paths).
"""


class NoticeEvent(_EventBase):
    """Something the user should know, said in one line; nothing went wrong."""

    type: Literal["autoresearch:notice"] = "autoresearch:notice"
    kind: NoticeKind
    message: str
    cycle: int | None = None
    ref: str | None = None
    """The reference the notice is about (the saved commit's), when there is one."""


class StoppedEvent(_EventBase):
    """The worker's loop ended."""

    type: Literal["autoresearch:stopped"] = "autoresearch:stopped"
    reason: StopReason
    cycles: int
    """Cycles run by this loop."""
    message: str | None = None


Event = Annotated[
    CycleStartEvent
    | CycleEndEvent
    | PhaseEnterEvent
    | PhaseExitEvent
    | MetricRecordedEvent
    | CommitCreatedEvent
    | CommitRevertedEvent
    | ErrorEvent
    | TimeoutEvent
    | StoppedEvent
    | NoticeEvent,
    Field(discriminator="type"),
]
"""Any of the eleven events (a discriminated union on ``type``)."""

EVENT_MODELS: dict[str, type[_EventBase]] = {
    model.model_fields["type"].default: model
    for model in (
        CycleStartEvent,
        CycleEndEvent,
        PhaseEnterEvent,
        PhaseExitEvent,
        MetricRecordedEvent,
        CommitCreatedEvent,
        CommitRevertedEvent,
        ErrorEvent,
        TimeoutEvent,
        StoppedEvent,
        NoticeEvent,
    )
}
"""Event name → model class."""

EVENT_NAMES: tuple[str, ...] = tuple(EVENT_MODELS)
"""The eleven event names: the seed's ten in its order, then ``autoresearch:notice``."""

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: object) -> Event:
    """Rebuild an event from its JSON form (for example, one received over server-sent events)."""
    return _ADAPTER.validate_python(data)
