"""What a task is: its definition (:class:`Task`), its options, its budget and what the store says.

A task is the seed's ``{"id", "type": "autoresearch", "autoresearch": {...}}`` plus the options
that make it run unattended: the interval between cycles, how many cycles, hints, how many
failures in a row end it, and a budget in tokens and/or US dollars. Dollars come from a per-model
price table (:data:`DEFAULT_PRICES`, extended by ``prices.json`` next to the store, by
``TaskManager(prices=...)`` and by a task's own ``budget.price``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_snake

from autoresearch._model import CamelModel
from autoresearch.config import ResearchConfig, load_config
from autoresearch.errors import ConfigError
from autoresearch.results import Status, Usage

__all__ = [
    "DEFAULT_PRICES",
    "FINISHED_STATUSES",
    "TASK_STATUSES",
    "TASK_TYPE",
    "LeaseInfo",
    "ModelPrice",
    "Task",
    "TaskBudget",
    "TaskCycle",
    "TaskInfo",
    "TaskOptions",
    "TaskStatus",
    "load_task",
    "price_for",
]

TASK_TYPE = "autoresearch"
"""The only task type this package runs."""

TaskStatus = Literal["active", "paused", "stopped", "completed", "failed", "budget-exhausted"]
"""Where a task stands.

``active``: a worker runs it (or will, at its next poll); ``paused``: kept, resumable;
``stopped``: stopped by hand; ``completed``: ran its ``max_runs`` cycles; ``failed``: too many
failed cycles in a row, or the engine could not go on (``reason`` says why);
``budget-exhausted``: its token or dollar budget was spent.
"""

TASK_STATUSES: tuple[TaskStatus, ...] = (
    "active",
    "paused",
    "stopped",
    "completed",
    "failed",
    "budget-exhausted",
)

FINISHED_STATUSES: tuple[TaskStatus, ...] = ("stopped", "completed", "failed", "budget-exhausted")
"""The statuses in which no worker runs the task until it is resumed or saved again."""

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelPrice(CamelModel):
    """What one model costs, in US dollars per million tokens.

    Cache reads and writes cost the input price unless given (an overestimate for most
    providers, so a budget is never overrun because of a missing number).
    """

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        inputPerMtok: ClassVar[float]
        outputPerMtok: ClassVar[float]
        cacheReadPerMtok: ClassVar[float | None]
        cacheWritePerMtok: ClassVar[float | None]

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_read_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_per_mtok: float | None = Field(default=None, ge=0)

    def cost(self, usage: Usage) -> float:
        """The price of ``usage`` in US dollars."""
        cache_read = self.cache_read_per_mtok
        cache_write = self.cache_write_per_mtok
        if cache_read is None:
            cache_read = self.input_per_mtok
        if cache_write is None:
            cache_write = self.input_per_mtok
        return (
            usage.input_tokens * self.input_per_mtok
            + usage.output_tokens * self.output_per_mtok
            + usage.cache_read_tokens * cache_read
            + usage.cache_write_tokens * cache_write
        ) / 1_000_000


def _price(
    per_in: float, per_out: float, read: float | None, write: float | None = None
) -> ModelPrice:
    return ModelPrice(
        input_per_mtok=per_in,
        output_per_mtok=per_out,
        cache_read_per_mtok=read,
        cache_write_per_mtok=write,
    )


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "claude-opus-4": _price(15, 75, 1.5, 18.75),
    "claude-opus-4-5": _price(5, 25, 0.5, 6.25),
    "claude-sonnet-4": _price(3, 15, 0.3, 3.75),
    "claude-3-7-sonnet": _price(3, 15, 0.3, 3.75),
    "claude-haiku-4-5": _price(1, 5, 0.1, 1.25),
    "claude-3-5-haiku": _price(0.8, 4, 0.08, 1),
    "gpt-5": _price(1.25, 10, 0.125),
    "gpt-5-mini": _price(0.25, 2, 0.025),
    "gpt-5-nano": _price(0.05, 0.4, 0.005),
    "gpt-4.1": _price(2, 8, 0.5),
    "gpt-4.1-mini": _price(0.4, 1.6, 0.1),
    "gpt-4.1-nano": _price(0.1, 0.4, 0.025),
    "gpt-4o": _price(2.5, 10, 1.25),
    "gpt-4o-mini": _price(0.15, 0.6, 0.075),
    "o3": _price(2, 8, 0.5),
    "o4-mini": _price(1.1, 4.4, 0.275),
    "gemini-2.5-pro": _price(1.25, 10, 0.31),
    "gemini-2.5-flash": _price(0.3, 2.5, 0.075),
    "gemini-2.5-flash-lite": _price(0.1, 0.4, 0.025),
    "gemini-2.0-flash": _price(0.1, 0.4, 0.025),
}
"""List prices (USD per million tokens) of common models, matched by the longest name prefix.

Prices change: check your provider's page and override or add entries in ``prices.json`` next
to the task store, with ``TaskManager(prices=...)``, or in a task's ``budget.price``.
"""


def price_for(model: str | None, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The price of ``model``: an exact entry, else the longest entry its name starts with.

    A provider prefix (``anthropic/claude-sonnet-4``, ``models/gemini-2.5-pro``) is ignored.
    ``None`` when the model is unnamed or unknown.
    """
    if not model:
        return None
    for name in dict.fromkeys((model, model.rsplit("/", 1)[-1])):
        if name in prices:
            return prices[name]
        matches = [key for key in prices if name.startswith(key)]
        if matches:
            return prices[max(matches, key=len)]
    return None


class TaskBudget(CamelModel):
    """How much a task may spend on the model: tokens (input + output) and/or US dollars.

    The task ends as ``budget-exhausted`` before a cycle that would start at or over either
    limit. ``price`` fixes the dollar price for this task whatever the price table says.
    """

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        maxTokens: ClassVar[int | None]
        maxUsd: ClassVar[float | None]

    max_tokens: int | None = Field(default=None, ge=1)
    max_usd: float | None = Field(default=None, gt=0)
    price: ModelPrice | None = None

    @field_validator("max_usd")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number of dollars")
        return value


class TaskOptions(CamelModel):
    """How a task runs: pacing, length, hints, failure tolerance and budget.

    ``hint`` (one string) is accepted as a shorthand for ``hints``; with several hints, cycle
    *n* of the task uses hint *n* modulo their number.
    """

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        maxRuns: ClassVar[int | None]
        maxConsecutiveFailures: ClassVar[int]

    interval: float = Field(default=0.0, ge=0)
    """Seconds from the end of one cycle to the start of the next (0: back to back)."""
    max_runs: int | None = Field(default=None, ge=1)
    """Cycles this task runs in all (across restarts) before it is ``completed``; None: no end.

    Counted when a cycle starts, so a task with parallel ``slots`` never starts more."""
    hints: list[str] = Field(default_factory=list)
    max_consecutive_failures: int = Field(default=3, ge=1)
    """This many ``crash``/``timeout``/``invalid`` cycles in a row end the task as ``failed``."""
    budget: TaskBudget | None = None

    @model_validator(mode="before")
    @classmethod
    def _hint_shorthand(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "hint" in data:
            data = dict(data)
            hint = data.pop("hint")
            if hint is not None:
                data["hints"] = [*data.get("hints", []), hint]
        return data

    @field_validator("interval")
    @classmethod
    def _finite_interval(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number of seconds")
        return value

    @field_validator("hints")
    @classmethod
    def _no_blank_hints(cls, value: list[str]) -> list[str]:
        return [hint for hint in value if hint.strip()]


class Task(TaskOptions):
    """A saved research task: the seed's task dict, in either spelling, plus its options."""

    id: str
    type: str = TASK_TYPE
    autoresearch: ResearchConfig

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(
                f"{value!r} is not a usable task id; use up to 128 letters, digits, '.', '_' "
                "and '-', starting with a letter or digit"
            )
        return value

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        if value != TASK_TYPE:
            raise ValueError(
                f"{value!r} is not a task type this worker runs; the only type is {TASK_TYPE!r}"
            )
        return value

    @property
    def config(self) -> ResearchConfig:
        """The research configuration (the ``autoresearch`` section)."""
        return self.autoresearch

    def hint_for(self, index: int) -> str | None:
        """The hint of the task's ``index``-th cycle (0-based), if it has hints."""
        return self.hints[index % len(self.hints)] if self.hints else None


def _config_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    error = exc.errors()[0]
    field = prefix + ".".join(to_snake(str(p)) for p in error["loc"] if isinstance(p, str))
    field = field or "task"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        message = "is not a known task setting (check its spelling)"
    return ConfigError(f"{field}: {message}", field=field)


def load_task(data: Task | Mapping[str, Any]) -> Task:
    """A :class:`Task` from a model or a mapping (camelCase or snake_case keys).

    ``provider`` and ``model`` may be given at the top level of the task too; they go into the
    research configuration (where they are stored). Raises :class:`ConfigError` naming the
    field: ``type`` for a type other than ``autoresearch``, ``autoresearch.<field>`` for the
    research configuration.
    """
    if isinstance(data, Task):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"task: expected a mapping or a Task, got {type(data).__name__}", field="task"
        )
    fields = dict(data)
    kind = fields.get("type", TASK_TYPE)
    if kind != TASK_TYPE:
        raise ConfigError(
            f"type: {kind!r} is not a task type this worker runs; the only type is {TASK_TYPE!r}",
            field="type",
        )
    section = fields.get("autoresearch")
    if section is None:
        raise ConfigError(
            "autoresearch: is required (the research configuration: repoPath, mutablePaths, "
            "runCommand, metric)",
            field="autoresearch",
        )
    if not isinstance(section, ResearchConfig | Mapping):
        raise ConfigError("autoresearch: must be a mapping of settings", field="autoresearch")
    chosen = {key: fields.pop(key) for key in ("provider", "model") if key in fields}
    try:
        config = load_config(section)
    except ConfigError as exc:
        field = f"autoresearch.{exc.field or 'config'}"
        raise ConfigError(f"autoresearch.{exc}", field=field) from exc
    for key, value in chosen.items():
        current = getattr(config, key)
        if value is not None and current is not None and current != value:
            raise ConfigError(
                f"{key}: the task names {value!r} but autoresearch.{key} is {current!r}; "
                "give it once",
                field=key,
            )
    fields["autoresearch"] = load_config(config, **{k: v for k, v in chosen.items() if v})
    try:
        return Task.model_validate(fields)
    except ValidationError as exc:
        raise _config_error(exc) from exc


class LeaseInfo(CamelModel):
    """Which worker holds a task and until when (unix time); renewed while it runs."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        expiresAt: ClassVar[float]
        acquiredAt: ClassVar[float]

    owner: str
    expires_at: float
    acquired_at: float


class TaskCycle(CamelModel):
    """One cycle of a task's history, as the store keeps it."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        taskId: ClassVar[str]
        commitHash: ClassVar[str | None]
        startedAt: ClassVar[str | None]
        finishedAt: ClassVar[str]
        durationMs: ClassVar[int]
        costUsd: ClassVar[float]

    task_id: str
    cycle: int
    """The repository's cycle number (as in runs.jsonl)."""
    status: Status
    metric: float | None = None
    commit_hash: str | None = None
    description: str = ""
    started_at: str | None = None
    finished_at: str
    duration_ms: int = 0
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    worker: str | None = None
    """The worker (lease owner) that recorded the cycle."""


class TaskInfo(CamelModel):
    """A task as stored: its definition, its status and what it has done and spent so far."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        createdAt: ClassVar[str]
        updatedAt: ClassVar[str]
        costUsd: ClassVar[float]
        lastCycleAt: ClassVar[str | None]
        stopNow: ClassVar[bool]
        firstCycle: ClassVar[int | None]

    task: Task
    status: TaskStatus
    reason: str | None = None
    """Why the task is in its status (set when it failed, finished or was stopped)."""
    created_at: str
    updated_at: str
    cycles: int = 0
    """Cycles recorded for this task."""
    failures: int = 0
    """Failed cycles in a row (reset by a good cycle and by resume)."""
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    last_cycle_at: str | None = None
    stop_now: bool = False
    """``stop --now`` was asked and the running cycle has not been cancelled yet."""
    lease: LeaseInfo | None = None
    first_cycle: int | None = None
    """The repository's cycle number where the task began (None until a worker first ran it)."""

    @property
    def id(self) -> str:
        """The task's id."""
        return self.task.id

    @property
    def repo_path(self) -> str:
        """The repository the task researches."""
        return str(self.task.autoresearch.repo_path)
