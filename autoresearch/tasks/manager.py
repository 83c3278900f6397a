"""``TaskManager``: save research tasks, change their status, and run the worker that executes them.

Saving only persists (as the seed says): it checks the definition and the repository (without
writing to it) and stores the task as ``active``. :meth:`TaskManager.start_worker` runs the
active tasks. ``pause``/``resume``/``stop`` only change the stored status, so they work from any
process; a worker reads the status before every cycle starts (and ``stop(now=True)`` while cycles
run).
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import ValidationError

from autoresearch.errors import ConfigError, TaskError
from autoresearch.preflight import check_repository
from autoresearch.proposers.base import Proposer
from autoresearch.tasks.models import (
    DEFAULT_PRICES,
    FINISHED_STATUSES,
    ModelPrice,
    Task,
    TaskCycle,
    TaskInfo,
    TaskStatus,
    load_task,
    price_for,
)
from autoresearch.tasks.store import TaskStore

if TYPE_CHECKING:
    from autoresearch.facade import NeuroLink

__all__ = [
    "HOME_ENV",
    "PRICES_FILE",
    "STORE_FILE",
    "ProposerFactory",
    "TaskManager",
    "default_home",
    "default_store_path",
]

HOME_ENV = "AUTORESEARCH_HOME"
"""The environment variable naming the folder of the task store (default ``~/.autoresearch``)."""

STORE_FILE = "tasks.db"
"""The store's file name in the home folder."""

PRICES_FILE = "prices.json"
"""Optional price table next to the store: ``{"model": {"inputPerMtok": 3, ...}}``."""

ProposerFactory = Callable[[Task], Proposer]
"""Builds the proposer for a task (tests and custom agents); by default the facade chooses."""


def default_home() -> Path:
    """``$AUTORESEARCH_HOME``, or ``~/.autoresearch``."""
    return Path(os.environ.get(HOME_ENV) or "~/.autoresearch").expanduser()


def default_store_path() -> Path:
    """Where the task store lives unless told otherwise: ``<home>/tasks.db``."""
    return default_home() / STORE_FILE


class TaskManager:
    """Saves, lists and controls research tasks in one store, and runs the task worker.

    ``store_path`` is the SQLite file (default ``$AUTORESEARCH_HOME/tasks.db``). Workers are
    created through ``neurolink.create_research_worker``, so they report to the facade's
    emitter and use its provider and model unless a task's configuration names its own.
    ``prices`` adds to or overrides the price table used for dollar budgets;
    ``proposer_factory`` replaces the proposer the facade would choose.
    """

    def __init__(
        self,
        store_path: str | Path | None = None,
        *,
        neurolink: NeuroLink,
        prices: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        proposer_factory: ProposerFactory | None = None,
    ) -> None:
        self.path = Path(store_path).expanduser() if store_path else default_store_path()
        self.store = TaskStore(self.path)
        self.neurolink = neurolink
        self.proposer_factory = proposer_factory
        try:
            self._prices = {
                name: ModelPrice.model_validate(price) for name, price in (prices or {}).items()
            }
        except ValidationError as exc:
            raise ConfigError(f"prices: {exc.errors()[0]['msg']}", field="prices") from exc

    # -- prices --------------------------------------------------------------------------

    async def prices(self) -> dict[str, ModelPrice]:
        """The price table: the defaults, then ``prices.json`` beside the store, then ``prices``."""
        path = self.path.parent / PRICES_FILE

        def read() -> dict[str, ModelPrice]:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                return {name: ModelPrice.model_validate(p) for name, p in data.items()}
            except FileNotFoundError:
                return {}
            except (OSError, ValueError, AttributeError) as exc:
                raise ConfigError(
                    f"prices: {path} is not a valid price table ({exc}); it maps model names to "
                    '{"inputPerMtok": ..., "outputPerMtok": ...}',
                    field="prices",
                ) from exc

        return {**DEFAULT_PRICES, **await anyio.to_thread.run_sync(read), **self._prices}

    def model_of(self, task: Task) -> tuple[str, str | None]:
        """The provider and model a task's worker uses (its own, else the facade's)."""
        config = task.autoresearch
        provider = config.provider or self.neurolink.provider or "local"
        return provider, config.model or self.neurolink.model

    async def price_of(self, task: Task) -> ModelPrice | None:
        """What the task's model costs: ``budget.price`` if set, else the price table's entry."""
        if task.budget is not None and task.budget.price is not None:
            return task.budget.price
        return price_for(self.model_of(task)[1], await self.prices())

    # -- saving --------------------------------------------------------------------------

    async def save(self, task: Task | Mapping[str, Any]) -> TaskInfo:
        """Check and persist a task (the seed's ``saveTask``); the worker executes it.

        Accepts the seed's dict (``{"id", "type": "autoresearch", "autoresearch": {...}}``, in
        either spelling, with the options at the top level) or a :class:`Task`. Bad definitions
        and repositories raise :class:`ConfigError`; a second task on the same repository
        raises :class:`TaskError`. Nothing is written unless everything checks out. Saving the
        same definition again changes nothing, so a script that saves then starts the worker
        can be re-run after a restart.
        """
        checked = load_task(task)
        config = (await check_repository(checked.autoresearch)).config
        checked = checked.model_copy(update={"autoresearch": config})
        await self._check_runnable(checked)
        info, _ = await self.store.save(checked)
        return info

    async def _check_runnable(self, task: Task) -> None:
        """The proposer can be built, and a dollar budget has a price to count with."""
        if self.proposer_factory is None:
            self.neurolink.create_research_worker(task.autoresearch)  # builds, writes nothing
        budget = task.budget
        if budget is None or budget.max_usd is None:
            return
        provider, model = self.model_of(task)
        if provider != "local" and await self.price_of(task) is None:
            raise ConfigError(
                f"budget.max_usd: no price is known for model {model!r}; add it to "
                f"{self.path.parent / PRICES_FILE}, pass prices= to the TaskManager, or set "
                "budget.price",
                field="budget.max_usd",
            )

    # -- reading -------------------------------------------------------------------------

    async def get(self, task_id: str) -> TaskInfo:
        """The task ``task_id``; :class:`TaskError` if there is none."""
        info = await self.store.get(task_id)
        if info is None:
            raise TaskError(f"no task {task_id!r} (see `autoresearch task list`)")
        return info

    async def list(self, status: TaskStatus | None = None) -> builtins.list[TaskInfo]:
        """Every task, oldest first (only those in ``status`` if given)."""
        return await self.store.list(status)

    async def cycles(self, task_id: str) -> builtins.list[TaskCycle]:
        """The cycles the task has run, oldest first."""
        return await self.store.cycles(task_id)

    async def find(self, repo_path: str | Path) -> TaskInfo | None:
        """The task on ``repo_path``, if any."""
        root = await anyio.to_thread.run_sync(lambda: Path(repo_path).expanduser().resolve())
        return await self.store.find_repo(root)

    # -- changing status -----------------------------------------------------------------

    async def pause(self, task_id: str) -> TaskInfo:
        """Pause an active task: its worker finishes the cycles in progress and starts no more."""

        def rule(info: TaskInfo) -> tuple[TaskStatus, str | None] | None:
            if info.status == "paused":
                return None
            if info.status != "active":
                raise TaskError(
                    f"task {task_id!r} is {info.status}; only an active task can be paused"
                )
            return "paused", "paused by hand"

        return await self.store.transition(task_id, rule)

    async def resume(self, task_id: str) -> TaskInfo:
        """Make a paused, stopped, failed or budget-exhausted task active again.

        Its failure streak starts over. A completed task is refused: save it again with a
        larger ``max_runs`` to run more cycles.
        """

        def rule(info: TaskInfo) -> tuple[TaskStatus, str | None] | None:
            if info.status == "active":
                return None
            if info.status == "completed":
                raise TaskError(
                    f"task {task_id!r} is completed ({info.cycles} cycles, max_runs "
                    f"{info.task.max_runs}); save it again with a larger max_runs to run more"
                )
            return "active", None

        return await self.store.transition(task_id, rule)

    async def stop(self, task_id: str, *, now: bool = False) -> TaskInfo:
        """Stop a task after its cycles in progress; with ``now``, cancel them too.

        Cancelled cycles are handled like Ctrl-C: the experiments are killed, the tree restored
        and every cycle in flight recorded once as ``crash``. Stopping a finished task changes
        nothing.
        """

        def rule(info: TaskInfo) -> tuple[TaskStatus, str | None] | None:
            if info.status in FINISHED_STATUSES and not (now and info.status == "stopped"):
                return None
            return "stopped", "stopped by hand" + (" (now)" if now else "")

        return await self.store.transition(task_id, rule, stop_now=now)

    async def delete(self, task_id: str) -> None:
        """Delete a task and its history from the store (the repository is left as it is)."""
        await self.store.delete(task_id)

    # -- running -------------------------------------------------------------------------

    async def start_worker(
        self,
        *,
        concurrency: int | None = None,
        poll_interval: float = 1.0,
        stop_when_idle: bool = False,
        lease_seconds: float = 30.0,
    ) -> None:
        """Run the active tasks until cancelled (or, with ``stop_when_idle``, none is active).

        Up to ``concurrency`` tasks run at once (default: every active task; one per
        repository always). The store is polled every ``poll_interval`` seconds for new tasks,
        status changes and ``stop --now``. A task is held under a lease of ``lease_seconds``,
        renewed while it runs, so two workers never run one task and a crashed worker's tasks
        are taken over once its leases expire.
        """
        from autoresearch.tasks.runner import TaskRunner

        runner = TaskRunner(
            self,
            concurrency=concurrency,
            poll_interval=poll_interval,
            stop_when_idle=stop_when_idle,
            lease_seconds=lease_seconds,
        )
        await runner.run()

    # The seed's spellings.
    saveTask = save
    startWorker = start_worker
