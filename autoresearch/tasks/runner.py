"""The task worker: runs active tasks under leases, each through the research worker's loop.

:class:`TaskRunner` polls the store for active tasks and starts a :class:`_TaskRun` for each one
whose lease it gets (up to the concurrency limit, one per repository). A task run is a lease and
a heartbeat around :meth:`ResearchWorker.run`, the one loop of the SDK, the CLI and tasks:

1. create the research worker through the facade and prepare it (this recovers a cycle that a
   crashed worker left undecided, from state.json);
2. ``before_cycle`` (whenever the loop would start a cycle; with ``slots`` > 1 whenever a slot
   frees up) reads the task: paused, stopped or deleted ends the loop; ``max_runs`` (cycles
   started), the failure streak and the budget may end the task; the interval is waited out;
   otherwise the cycle gets the task's hint;
3. while the loop runs, a heartbeat renews the lease and watches for ``stop --now`` (which
   cancels the whole loop: the engine kills the experiments, restores the tree and records
   every cycle in flight as ``crash``);
4. ``after_cycle`` copies each finished cycle from the ledger into the task's history. A cycle
   the engine could not finish (a model outage makes it ``invalid``) counts towards
   ``max_consecutive_failures``; an error the engine raises (a rejected key, a broken
   repository) ends the task as ``failed``, and so does the loop's own rule that more cycles
   cannot help (the baseline failed three times, ten invalid cycles in a row).

Whatever ends it, the repository lock and the lease are given back and ``autoresearch:stopped``
says why (except when the repository is busy with another process: the task stays active and is
tried again later). Every event of a task's run names the task in ``event.source.task_id``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import anyio

from autoresearch.errors import AutoResearchError, ConfigError, LockedError, TaskError
from autoresearch.events import (
    ErrorEvent,
    Event,
    StoppedEvent,
    StopReason,
    current_event_source,
    event_source,
)
from autoresearch.results import CycleResult, RunRecord, Usage
from autoresearch.tasks.models import ModelPrice, TaskCycle, TaskInfo, TaskStatus
from autoresearch.tasks.store import now_iso
from autoresearch.worker import Stop

if TYPE_CHECKING:
    from autoresearch.tasks.manager import TaskManager
    from autoresearch.worker import ResearchWorker

__all__ = ["TaskRunner", "current_task_id"]

logger = logging.getLogger("autoresearch")

_END_REASONS: dict[TaskStatus, StopReason] = {
    "completed": "max-runs",
    "failed": "failed",
    "budget-exhausted": "budget-exhausted",
}


def current_task_id() -> str | None:
    """The id of the task whose worker is emitting the event being handled, if any.

    The same as ``event.source.task_id`` (the task run sets it with :func:`event_source`); a
    handler that has no event at hand, or code the task's worker calls, can ask here.
    """
    source = current_event_source()
    return source.task_id if source is not None else None


def _seconds_since(iso: str) -> float:
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return time.time() - then.timestamp()


class TaskRunner:
    """One worker process's scheduler: which active tasks run here, and when."""

    def __init__(
        self,
        manager: TaskManager,
        *,
        concurrency: int | None,
        poll_interval: float,
        stop_when_idle: bool,
        lease_seconds: float,
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise ConfigError("concurrency: must be at least 1", field="concurrency")
        if poll_interval <= 0:
            raise ConfigError("poll_interval: must be positive", field="poll_interval")
        if lease_seconds <= 2 * poll_interval:
            raise ConfigError(
                "lease_seconds: must be more than twice poll_interval (the lease is renewed "
                "at most once per poll)",
                field="lease_seconds",
            )
        self.manager = manager
        self.store = manager.store
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.stop_when_idle = stop_when_idle
        self.lease_seconds = lease_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """This worker's name in leases and in the cycle history."""
        self._running: dict[str, str] = {}  # task id -> repository
        self._retry_after: dict[str, float] = {}  # task id -> monotonic time
        self._wake = anyio.Event()

    async def run(self) -> None:
        """Schedule tasks until cancelled (or idle, with ``stop_when_idle``)."""
        async with anyio.create_task_group() as group:
            while True:
                active = await self.store.list("active")
                if self.stop_when_idle and not active and not self._running:
                    break
                for info in active:
                    if self.concurrency is not None and len(self._running) >= self.concurrency:
                        break
                    if self._may_start(info) and await self.store.acquire(
                        info.id, self.owner, self.lease_seconds
                    ):
                        self._running[info.id] = info.repo_path
                        group.start_soon(self._run_task, info)
                self._wake = anyio.Event()
                with anyio.move_on_after(self.poll_interval):
                    await self._wake.wait()

    def _may_start(self, info: TaskInfo) -> bool:
        if info.id in self._running or info.repo_path in self._running.values():
            return False
        return self._retry_after.get(info.id, 0.0) <= time.monotonic()

    async def _run_task(self, info: TaskInfo) -> None:
        task_id = info.id
        # Every event of this run (the worker's and ours) names the task as its source.
        with event_source(info.repo_path, info.task.autoresearch.chosen_tag, task_id=task_id):
            try:
                await _TaskRun(self, task_id).run()
            except Exception:  # a bug in one task's run must not stop the others
                logger.exception("task %s: the task worker failed", task_id)
                self.retry_later(task_id)
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await self.store.release(task_id, self.owner)
                    except TaskError:
                        logger.warning("could not release the lease of task %s", task_id)
                self._running.pop(task_id, None)
                self._wake.set()

    def retry_later(self, task_id: str) -> None:
        """Leave the task alone for a lease's length (its repository is busy)."""
        self._retry_after[task_id] = time.monotonic() + self.lease_seconds


class _Heartbeat:
    """Renews the lease and, while cycles run, cancels the loop when ``stop --now`` is asked."""

    def __init__(self, runner: TaskRunner, task_id: str, busy: Callable[[], bool]) -> None:
        self.runner = runner
        self.task_id = task_id
        self.busy = busy
        """Whether a cycle is in flight (``stop --now`` only cancels a loop that runs one)."""
        self.loop_scope: anyio.CancelScope | None = None
        self.lost = False

    async def run(self) -> None:
        runner, store = self.runner, self.runner.store
        renew_every = runner.lease_seconds / 3
        renewed = time.monotonic()
        while True:
            await anyio.sleep(min(runner.poll_interval, renew_every))
            try:
                if time.monotonic() - renewed >= renew_every:
                    if not await store.renew(self.task_id, runner.owner, runner.lease_seconds):
                        self.lost = True
                        self.cancel_loop()
                        return
                    renewed = time.monotonic()
                if self.busy() and await store.stop_now_requested(self.task_id):
                    self.cancel_loop()
            except TaskError as exc:  # a busy store: try again at the next beat
                logger.warning("task %s: heartbeat failed: %s", self.task_id, exc)

    def cancel_loop(self) -> None:
        """Cancel the worker's loop (its cycles in flight are recorded as ``crash``)."""
        if self.loop_scope is not None:
            self.loop_scope.cancel()


class _TaskRun:
    """One task on this worker, from taking its lease to giving it back."""

    def __init__(self, runner: TaskRunner, task_id: str) -> None:
        self.runner = runner
        self.manager = runner.manager
        self.store = runner.store
        self.task_id = task_id
        self.heartbeat = _Heartbeat(runner, task_id, busy=lambda: self.in_flight > 0)
        self.worker: ResearchWorker | None = None
        self.first_cycle = 1
        self.price: ModelPrice | None = None
        self.recorded: set[int] = set()
        self.counted = 0
        """Cycles of the task recorded before this run's loop started (``max_runs`` counts on)."""
        self.started = 0
        """Cycles this run's loop started (``before_cycle`` said go)."""
        self.cycles_run = 0
        """Cycles this run's loop finished and recorded (``after_cycle`` saw them)."""
        self.stop: Stop | None = None
        """Why ``before_cycle`` ended the loop, once it has."""

    @property
    def in_flight(self) -> int:
        """Cycles started and not finished yet (up to the config's ``slots``)."""
        return self.started - self.cycles_run

    async def run(self) -> None:
        outcome: tuple[StopReason, str | None] | None = None
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self.heartbeat.run)
                try:
                    outcome = await self._drive()
                except Exception as exc:  # handled below, outside the group
                    error = exc
                group.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._record(count_failures=False)
                await self._close()
                await self._emit(self._stopped("cancelled", "the worker is shutting down"))
            raise
        with anyio.CancelScope(shield=True):
            if isinstance(error, LockedError):  # busy with another process: try again later
                self.runner.retry_later(self.task_id)
                await self._emit(ErrorEvent(error_type="LockedError", message=self._who(error)))
            elif error is not None:
                if not isinstance(error, AutoResearchError):
                    logger.error("task %s failed", self.task_id, exc_info=error)
                message = f"{type(error).__name__}: {error}"
                outcome = ("error", message)
                await self._record(count_failures=False)
                await self._end("failed", message)
            await self._close()
            if outcome is not None:
                await self._emit(self._stopped(*outcome))

    # -- the lease around the worker's loop ----------------------------------------------

    async def _drive(self) -> tuple[StopReason, str | None]:
        info = await self.store.get(self.task_id)
        if info is None or info.status != "active":
            return "manual", "the task is no longer active"
        task = info.task
        factory = self.manager.proposer_factory
        self.worker = self.manager.neurolink.create_research_worker(
            task.autoresearch, proposer=factory(task) if factory else None
        )
        await self.worker.prepare()
        state = self.worker.state
        assert state is not None
        self.first_cycle = info.first_cycle or await self.store.set_first_cycle(
            self.task_id, state.cycle_count + 1
        )
        self.recorded = {c.cycle for c in await self.store.cycles(self.task_id)}
        self.price = await self.manager.price_of(task)
        await self._record(count_failures=False)  # a cycle the engine recovered while preparing
        self.counted = len(self.recorded)
        with anyio.CancelScope() as scope:
            self.heartbeat.loop_scope = scope
            try:
                results = await self.worker.run(
                    before_cycle=self._before_cycle,
                    after_cycle=self._after_cycle,
                    announce=False,
                )
            finally:
                self.heartbeat.loop_scope = None
        if scope.cancelled_caught:
            return await self._after_cancel()
        if self.stop is not None:
            return self.stop.reason, self.stop.message
        return await self._engine_gave_up(results)

    async def _before_cycle(self, results: list[CycleResult]) -> Stop | str | None:
        """The worker's ``before_cycle``: the next cycle's hint, or why the task stops.

        Waits out the interval first (reading the task again at every poll, so a pause takes
        effect without waiting it out).
        """
        while not isinstance(step := await self._read(), Stop):
            wait = self._wait_left(step)
            if wait <= 0:
                index = self.counted + self.started  # the task's own numbering, from 0
                self.started += 1
                return step.task.hint_for(index)
            await anyio.sleep(min(wait, self.runner.poll_interval))
        self.stop = step
        return step

    async def _after_cycle(self, result: CycleResult) -> None:
        """The worker's ``after_cycle``: copy the finished cycle into the task's history."""
        self.cycles_run += 1
        await self._record(count_failures=True)

    async def _after_cancel(self) -> tuple[StopReason, str | None]:
        """The heartbeat cancelled the loop: the engine recorded its cycles as ``crash``."""
        cancelled = self.in_flight
        await self._record(count_failures=False)
        if self.heartbeat.lost:
            return "cancelled", "another worker took over the lease"
        await self.store.clear_stop_now(self.task_id)
        what = "the running cycle was" if cancelled <= 1 else f"the {cancelled} running cycles were"
        await self._end("stopped", f"stopped by hand (now): {what} cancelled")
        return "manual", f"stopped now: {what} cancelled and recorded"

    async def _engine_gave_up(self, results: list[CycleResult]) -> tuple[StopReason, str | None]:
        """The worker's loop ended by its own rule (more cycles cannot help).

        The task's own rules are read first (three failed baselines are also three failed
        cycles in a row); otherwise the task ends ``failed`` with the last cycle as the reason.
        """
        step = await self._read()
        if isinstance(step, Stop):
            return step.reason, step.message
        last = results[-1] if results else None
        why = "the research loop stopped: more cycles cannot help"
        if last is not None:
            why += f" (last: cycle {last.cycle} {last.status}: {last.description})"
        await self._end("failed", why)
        return "error", why

    async def _read(self) -> TaskInfo | Stop:
        """Read the task between cycles: the task to go on with, or why to stop."""
        while True:
            info = await self.store.get(self.task_id)
            if info is None:
                return Stop("manual", "the task was deleted")
            if self.heartbeat.lost:
                return Stop("cancelled", "another worker took over the lease")
            if info.status == "paused":
                return Stop("paused", info.reason)
            if info.status != "active":
                if info.stop_now and self.in_flight:  # before the heartbeat saw it
                    self.heartbeat.cancel_loop()
                elif info.stop_now:
                    await self.store.clear_stop_now(self.task_id)
                return Stop("manual", info.reason or f"the task is {info.status}")
            verdict = await self._limit_reached(info)
            if verdict is None:
                return info
            status, why = verdict
            if await self._end(status, why):
                return Stop(_END_REASONS[status], why)
            # someone changed the status meanwhile: read it again

    async def _limit_reached(self, info: TaskInfo) -> tuple[TaskStatus, str] | None:
        task = info.task
        started = self.counted + self.started  # with slots, cycles in flight count already
        if task.max_runs is not None and started >= task.max_runs:
            return "completed", f"ran {started} cycles (max_runs {task.max_runs})"
        if info.failures >= task.max_consecutive_failures:
            last = (await self.store.cycles(self.task_id))[-1]
            return "failed", (
                f"{info.failures} failed cycles in a row (last: cycle {last.cycle} {last.status}: "
                f"{last.description})"
            )
        budget = task.budget
        if budget is not None:
            tokens = info.usage.total_tokens
            if budget.max_tokens is not None and tokens >= budget.max_tokens:
                return "budget-exhausted", f"used {tokens} of {budget.max_tokens} tokens"
            if budget.max_usd is not None and info.cost_usd >= budget.max_usd:
                return "budget-exhausted", f"spent ${info.cost_usd:.4f} of ${budget.max_usd:g}"
            if budget.max_usd is not None and task.autoresearch.gpu_hour_usd is not None:
                # GPU time is paid whether or not the cycle helps: stop before the cycle that
                # would go over, judging by the dearest of the last few.
                recent = (await self.store.cycles(self.task_id))[-5:]
                next_cost = max((c.cost_usd for c in recent), default=0.0)
                if info.cost_usd + next_cost > budget.max_usd:
                    return "budget-exhausted", (
                        f"spent ${info.cost_usd:.4f} of ${budget.max_usd:g}; the next cycle "
                        f"would cost about ${next_cost:.4f} (GPU time and tokens)"
                    )
        return None

    @staticmethod
    def _wait_left(info: TaskInfo) -> float:
        if info.task.interval <= 0 or info.last_cycle_at is None:
            return 0.0
        return info.task.interval - _seconds_since(info.last_cycle_at)

    # -- bookkeeping ---------------------------------------------------------------------

    async def _record(self, *, count_failures: bool) -> None:
        """Copy the ledger's new cycles of this task into its history."""
        if self.worker is None:
            return
        new = [
            r
            for r in self.worker.history
            if r.cycle >= self.first_cycle and r.cycle not in self.recorded
        ]
        if not new:
            return
        rows = [self._row(r) for r in new]
        try:
            await self.store.record_cycles(self.task_id, rows, count_failures=count_failures)
        except TaskError as exc:
            logger.warning("task %s: could not record cycles: %s", self.task_id, exc)
            return
        self.recorded.update(r.cycle for r in new)

    def _row(self, record: RunRecord) -> TaskCycle:
        usage = record.usage or Usage()
        return TaskCycle(
            task_id=self.task_id,
            cycle=record.cycle,
            status=record.status,
            metric=record.metric,
            commit_hash=record.commit,
            description=record.description,
            started_at=record.started_at,
            finished_at=now_iso(),
            duration_ms=record.duration_ms,
            usage=usage,
            cost_usd=(usage.cost_usd or (self.price.cost(usage) if self.price is not None else 0.0))
            + self._gpu_cost(record),
            worker=self.runner.owner,
        )

    def _gpu_cost(self, record: RunRecord) -> float:
        """What the cycle's GPU time cost, at the research's price per GPU-hour (else 0)."""
        price = self.worker.config.gpu_hour_usd if self.worker is not None else None
        if price is None or record.gpu_seconds is None:
            return 0.0
        return record.gpu_seconds / 3600 * price

    async def _end(self, status: TaskStatus, why: str) -> bool:
        try:
            return await self.store.finish(self.task_id, status, why)
        except TaskError as exc:
            logger.warning("task %s: could not set status %s: %s", self.task_id, status, exc)
            return False

    async def _close(self) -> None:
        if self.worker is not None:
            await self.worker.aclose()

    def _who(self, message: object) -> str:
        return f"task {self.task_id}: {message}" if message else f"task {self.task_id}"

    def _stopped(self, reason: StopReason, message: str | None) -> StoppedEvent:
        return StoppedEvent(reason=reason, cycles=self.cycles_run, message=self._who(message))

    async def _emit(self, event: Event) -> None:
        await self.manager.neurolink.get_event_emitter().emit(event)
