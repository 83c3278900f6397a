"""The research worker: one cycle is nine phases, and the loop runs cycles.

Read :meth:`ResearchWorker._cycle` top to bottom: it is the seed's list. Each phase is a
coroutine that takes what the previous one produced; :meth:`ResearchWorker._phase` wraps every
one of them to write the phase into state.json, emit ``phase:enter``/``phase:exit`` and time it.

A failed *experiment* is a status on the result (``crash``, ``timeout``, ``invalid``), never an
exception. Whatever ends a cycle — a decision, an engine error or cancellation — the tree is
left at the best commit, the cycle is written to both ledgers and ``cycle:end`` is emitted; the
cleanup runs shielded from cancellation.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

from autoresearch.config import ResearchConfig
from autoresearch.context import ContextCache, build_analysis
from autoresearch.decision import Policy, judge
from autoresearch.edits import AppliedChanges, ChangeSet, PathPolicy, apply_changes, check_syntax
from autoresearch.emitter import EventEmitter, handlers_within
from autoresearch.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    EditError,
    HeadMovedError,
    ProposerError,
    ProviderError,
)
from autoresearch.events import (
    CommitCreatedEvent,
    CommitRevertedEvent,
    CycleEndEvent,
    CycleStartEvent,
    ErrorEvent,
    Event,
    EventSource,
    MetricRecordedEvent,
    Phase,
    PhaseEnterEvent,
    PhaseExitEvent,
    StoppedEvent,
    StopReason,
    TimeoutEvent,
    event_slot,
    event_source,
)
from autoresearch.executor import Executor, LocalExecutor, Preparing, RunRequest, executor_for
from autoresearch.gitrepo import TEMP_SUFFIX, Expect, GitRepo
from autoresearch.keeper import Keeper, Settled
from autoresearch.ledger import Ledger, now_iso
from autoresearch.measure import Reading, read_run
from autoresearch.noise import one_sided_t
from autoresearch.preflight import Preflight, check_repository
from autoresearch.progress import CurveWatch, curve_of
from autoresearch.proposers.base import Analysis, Plan, Proposer, ResearchContext
from autoresearch.results import CycleResult, Measurement, RunRecord, Status, Usage
from autoresearch.runner import RunOutcome
from autoresearch.sandbox import sandbox_tmp, sandboxed_command
from autoresearch.slots import SlotCheckouts
from autoresearch.workspace import Measured, ResearchState, RunningCycle, Workspace

__all__ = ["AfterCycle", "BeforeCycle", "ResearchWorker", "Stop"]

logger = logging.getLogger("autoresearch")
T = TypeVar("T")

CLEANUP_TIMEOUT_S = 30.0
"""How long the shielded cleanup after a cancelled cycle may take."""

HANDLER_GRACE_S = 0.5
"""How long async event handlers get, in all, for the events of one cleanup after a cancel."""


@contextmanager
def _cleanup() -> Iterator[None]:
    """The cleanup after a cancellation: shielded, under a deadline, with handlers cut short."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(CLEANUP_TIMEOUT_S),
        handlers_within(HANDLER_GRACE_S),
    ):
        yield


_DURABLE_PHASES = frozenset({"bootstrap", "execute"})

MAX_BASELINE_FAILURES = 3
"""``run`` stops when the unmodified code fails this many times in a row (the setup is wrong)."""

MAX_INVALID_STREAK = 10
"""``run`` stops after this many ``invalid`` cycles in a row (the proposer cannot help)."""


def _give_up(results: list[CycleResult]) -> str | None:
    """Why the loop should stop by itself, if the recent results say it is going nowhere."""
    tail = results[-MAX_INVALID_STREAK:]
    if len(tail) == MAX_INVALID_STREAK and all(r.status == "invalid" for r in tail):
        return (
            f"{MAX_INVALID_STREAK} invalid cycles in a row; the proposer cannot produce a usable "
            f"change (last: {tail[-1].description})"
        )
    tail = results[-MAX_BASELINE_FAILURES:]
    if len(tail) == MAX_BASELINE_FAILURES and all(r.baseline and r.status != "keep" for r in tail):
        return (
            f"the baseline (the unmodified code) failed {MAX_BASELINE_FAILURES} times in a row "
            f"({tail[-1].description}); check run_command and metric.pattern"
        )
    return None


class _Invalid(Exception):
    """Internal: the change did not apply or validate; the cycle ends as ``invalid``."""


@dataclass
class _Cycle:
    """What one cycle has accumulated so far."""

    number: int
    hint: str | None
    baseline: bool
    started_at: str
    started: float
    parent: str
    phase: Phase = "bootstrap"
    plan: Plan | None = None
    applied: AppliedChanges | None = None
    candidate: str | None = None
    outcome: RunOutcome | None = None
    usage: Usage = field(default_factory=Usage)
    repairs: int = 0
    durations: dict[str, int] = field(default_factory=dict)
    rebaseline: str | None = None
    """Why this baseline re-measures the branch (a commit the engine did not make)."""
    notes: list[str] = field(default_factory=list)
    slot: int | None = None
    """The parallel slot running the cycle; None when cycles run one at a time."""
    place: GitRepo | None = None
    """The slot's checkout (None: the main checkout)."""
    running: RunningCycle | None = None
    """The cycle's entry in state.json's ``inFlight`` (slots only)."""
    incumbent: list[float] = field(default_factory=list)
    """The best commit's measurements when the cycle started: what its change must beat."""
    runs: list[_Run] = field(default_factory=list)
    incumbent_curve: list[tuple[float, float]] | None = None
    """With early abort: the best commit's learning curve when the cycle started."""
    replay_of: int | None = None
    """For a replay: the cycle whose change it applies again."""
    original: Plan | None = None
    """For a replay: the plan as first proposed (without "replay of")."""

    def written(self) -> dict[str, str] | None:
        """The blob ids of what the engine wrote this cycle before committing it."""
        return self.applied.blobs if self.applied is not None else None


@dataclass(frozen=True)
class Stop:
    """A reason for :meth:`ResearchWorker.run` to end (``before_cycle`` returns one)."""

    reason: StopReason
    message: str | None = None


BeforeCycle = Callable[[list[CycleResult]], Awaitable["Stop | str | None"]]
"""Awaited before each cycle with the results so far: a :class:`Stop`, or the cycle's hint."""

AfterCycle = Callable[[CycleResult], Awaitable[None]]
"""Awaited with each cycle's result once it is recorded."""


@dataclass(frozen=True)
class _Rules:
    """When :meth:`ResearchWorker.run` stops, and what it tells its caller."""

    max_cycles: int | None
    hint: str | None
    before_cycle: BeforeCycle | None
    after_cycle: AfterCycle | None


@dataclass(frozen=True)
class _Replay:
    """A change that beat its parent after the best moved on, applied again on the new best."""

    of: int
    """The cycle whose change it is."""
    plan: Plan
    source: str
    """The original candidate and its parent: the change to apply on top of the best."""
    source_parent: str


@dataclass(frozen=True)
class _Run:
    """One run of the experiment in a cycle: what happened, where its output is, its seed."""

    outcome: RunOutcome
    log: Path
    seed: int
    curve: list[tuple[float, float]] | None = None
    """With early abort: the run's learning curve, thinned."""
    stopped: str | None = None
    """Why early abort stopped the run, if it did."""


@dataclass(frozen=True)
class _Reading:
    """A run's reading, with the seed it was given."""

    reading: Reading
    seed: int

    @property
    def value(self) -> float:
        assert self.reading.metric is not None
        return self.reading.metric

    @property
    def status(self) -> Literal["ok", "crash", "timeout"]:
        return self.reading.status

    @property
    def metric(self) -> float | None:
        return self.reading.metric

    @property
    def memory_gb(self) -> float | None:
        return self.reading.memory_gb

    @property
    def reason(self) -> str:
        return self.reading.reason


@dataclass(frozen=True)
class _Verdict:
    status: Literal["keep", "discard"]
    reason: str
    threshold: float | None


def _mean(readings: list[_Reading]) -> float:
    return sum(r.value for r in readings) / len(readings)


@dataclass(frozen=True)
class _Measurement:
    status: Status
    metric: float | None
    memory_gb: float | None
    reason: str
    readings: list[_Reading] = field(default_factory=list)
    threshold: float | None = None

    def judged(self, verdict: _Verdict) -> _Measurement:
        """The same measurement with ``verdict``'s status, reason and threshold."""
        return replace(
            self, status=verdict.status, reason=verdict.reason, threshold=verdict.threshold
        )


class ResearchWorker:
    """Runs AutoResearch cycles on one repository.

    Create it with :meth:`NeuroLink.create_research_worker`. The first cycle on a fresh branch
    is the baseline (the unmodified code); every later cycle asks the proposer for one change.
    The seed's camelCase names (``runExperimentCycle``) are aliases of the snake_case ones.
    """

    def __init__(
        self,
        config: ResearchConfig,
        *,
        emitter: EventEmitter,
        proposer: Proposer,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.emitter = emitter
        self.proposer = proposer
        self.workspace = Workspace(config.repo_path)
        self.executor: Executor = (
            executor if executor is not None else executor_for(config, self.workspace.dir)
        )
        # The validate command checks the change; only experiments go to a cluster.
        self._checker: Executor = LocalExecutor() if config.backend == "ray" else self.executor
        self._git: GitRepo | None = None
        self._ledger: Ledger | None = None
        self._keeper: Keeper | None = None
        self._contexts = ContextCache()
        self._layout: list[str] = []
        self._prepared = False
        self._prepare_lock = anyio.Lock()
        self._cycle_lock = anyio.Lock()
        self._stop_requested = False
        self._lock: IO[str] | None = None
        self._next_cycle = 1
        self._finished: dict[int, RunRecord] = {}  # recorded, not yet shown to the proposer
        self._slots: SlotCheckouts | None = None
        self._propose_lock = anyio.Lock()
        self._decide_lock = anyio.Lock()
        self._in_flight: dict[int, Plan] = {}
        self._replays: deque[_Replay] = deque()

    @property
    def _books(self) -> Ledger:
        assert self._ledger is not None, "used before prepare()"
        return self._ledger

    @property
    def _keep(self) -> Keeper:
        assert self._keeper is not None, "used before prepare()"
        return self._keeper

    @property
    def _state(self) -> ResearchState | None:
        return self._ledger.state if self._ledger is not None and self._ledger.loaded else None

    @property
    def _history(self) -> list[RunRecord]:
        return self._ledger.history if self._ledger is not None else []

    # -- public API ----------------------------------------------------------------------

    @property
    def state(self) -> ResearchState | None:
        """The current state (as in state.json), or ``None`` before :meth:`prepare`."""
        return self._state

    @property
    def history(self) -> list[RunRecord]:
        """Every finished cycle, oldest first (a copy)."""
        return list(self._history)

    async def prepare(self) -> None:
        """Check the repository and set it up; runs once, before the first cycle, by itself.

        Raises :class:`ConfigError` (naming the field) before anything is written when the repo
        or the paths cannot be used. Then: ``.autoresearch/`` is excluded from git, the branch
        ``autoresearch/<tag>`` is created and checked out, config.json is written and an
        interrupted cycle from an earlier process is recorded as a crash.
        """
        async with self._prepare_lock:
            if not self._prepared:
                await self._prepare()
                self._prepared = True

    async def run_experiment_cycle(self, hint: str | None = None) -> CycleResult:
        """Run one full cycle and return its result (a failed experiment is a status)."""
        await self.prepare()
        with self._source():
            async with self._cycle_lock:
                if self.config.slots > 1:
                    return await self._slot_cycle(1, hint)
                return await self._run_cycle(hint)

    async def run(
        self,
        max_cycles: int | None = None,
        hint: str | None = None,
        *,
        before_cycle: BeforeCycle | None = None,
        after_cycle: AfterCycle | None = None,
        announce: bool = True,
    ) -> list[CycleResult]:
        """Run cycles until a stop rule says so or cancellation; emit ``stopped``.

        The one loop for the SDK, the CLI and the task worker. It ends (in-flight cycles of
        other slots finish first) at ``max_cycles`` (reason ``max-runs``), after :meth:`stop`
        (``manual``), by itself when more cycles cannot help (``error``: the baseline failed
        three times in a row, or ten cycles in a row were ``invalid``), or when
        ``before_cycle`` returns a :class:`Stop`. ``before_cycle`` is awaited with the results
        so far before each cycle starts (with slots, when a slot frees up) and may instead
        return that cycle's hint; ``after_cycle`` is awaited with each result once it is
        recorded. ``announce=False`` leaves ``autoresearch:stopped`` to the caller.
        """
        if max_cycles is not None and max_cycles < 1:
            raise ConfigError("max_cycles: must be at least 1", field="max_cycles")
        self._stop_requested = False
        results: list[CycleResult] = []
        rules = _Rules(max_cycles, hint, before_cycle, after_cycle)
        try:
            await self.prepare()
            with self._source():
                loop = self._run_slots if self.config.slots > 1 else self._run_serial
                stop = await loop(rules, results)
        except anyio.get_cancelled_exc_class():
            if announce:
                with anyio.CancelScope(shield=True), handlers_within(HANDLER_GRACE_S):
                    await self._emit(StoppedEvent(reason="cancelled", cycles=len(results)))
            raise
        except Exception as exc:
            if announce:
                message = f"{type(exc).__name__}: {exc}"
                await self._emit(StoppedEvent(reason="error", cycles=len(results), message=message))
            raise
        if announce:
            await self._emit(
                StoppedEvent(reason=stop.reason, cycles=len(results), message=stop.message)
            )
        return results

    async def _next(
        self, rules: _Rules, results: list[CycleResult], started: int
    ) -> Stop | str | None:
        """Whether another cycle starts now: the stop that ends the loop, or its hint."""
        if rules.max_cycles is not None and started >= rules.max_cycles:
            return Stop("max-runs")
        if self._stop_requested:
            return Stop("manual")
        message = _give_up(results)
        if message is not None:
            return Stop("error", message)
        if rules.before_cycle is None:
            return rules.hint
        step = await rules.before_cycle(list(results))
        return rules.hint if step is None else step

    async def _record_result(
        self, rules: _Rules, results: list[CycleResult], result: CycleResult
    ) -> None:
        results.append(result)
        if rules.after_cycle is not None:
            await rules.after_cycle(result)

    def stop(self) -> None:
        """Ask :meth:`run` to end after the cycle in progress (reason ``manual``).

        With several slots, no new cycle starts and the ones running finish.
        """
        self._stop_requested = True

    async def _run_serial(self, rules: _Rules, results: list[CycleResult]) -> Stop:
        """One cycle at a time, in the user's checkout."""
        while not isinstance(step := await self._next(rules, results, len(results)), Stop):
            await self._record_result(rules, results, await self.run_experiment_cycle(step))
        return step

    async def _run_slots(self, rules: _Rules, results: list[CycleResult]) -> Stop:
        """Up to ``slots`` cycles at once, each in its own checkout; decisions one at a time.

        A slot that frees up takes a queued replay, else a new proposal made against the best
        commit of that moment. A baseline (the first one, or a commit the engine did not make
        on the research branch) runs alone. An engine error in one slot cancels the others
        (their cycles are recorded) and is raised; a crash or timeout is only that cycle's.
        """
        slots = self.config.slots
        send, receive = anyio.create_memory_object_stream[int](slots)
        for slot in range(1, slots + 1):
            send.send_nowait(slot)
        failure: list[BaseException] = []
        started = 0

        async def one(slot: int, hint: str | None, group: TaskGroup) -> None:
            try:
                await self._record_result(rules, results, await self._slot_cycle(slot, hint))
            except Exception as exc:
                failure.append(exc)
                group.cancel_scope.cancel()
            finally:
                send.send_nowait(slot)

        async with send, receive, anyio.create_task_group() as group:
            while True:
                slot = await receive.receive()
                step = await self._next(rules, results, started)
                if isinstance(step, Stop):
                    stop = step
                    break
                started += 1
                if await self._needs_baseline():
                    held = [slot] + [await receive.receive() for _ in range(slots - 1)]
                    await self._record_result(rules, results, await self._slot_cycle(slot, step))
                    for free in held:
                        send.send_nowait(free)
                else:
                    group.start_soon(one, slot, step, group)
        if failure:
            raise failure[0]
        return stop

    async def _needs_baseline(self) -> bool:
        """Whether the next cycle must measure the research branch as it is (alone)."""
        assert self._state is not None and self._git is not None
        state = self._state
        if state.baseline_metric is None and state.best_metric is None:
            return True
        await self._git.check_head(Expect(self.config.branch))
        return await self._git.head_commit() != state.best_commit

    # -- a cycle in a slot ---------------------------------------------------------------

    async def _slot_cycle(self, slot: int, hint: str | None) -> CycleResult:
        """One cycle in slot ``slot``'s checkout: propose, commit, run there; decide here."""
        with event_slot(slot):  # every event of this cycle names its slot
            return await self._cycle_in_slot(slot, hint)

    async def _cycle_in_slot(self, slot: int, hint: str | None) -> CycleResult:
        c = await self._new_cycle(hint, slot)
        replay = None if c.baseline or not self._replays else self._replays.popleft()
        if replay is not None:
            c.replay_of, c.original = replay.of, replay.plan
        try:
            measurement = await self._slot_phases(c, replay)
        except anyio.get_cancelled_exc_class():
            with _cleanup():
                await self._abandon(c, f"cancelled in {c.phase}", None)
            raise
        except Exception as exc:
            with anyio.CancelScope(shield=True):
                await self._abandon(c, f"engine error in {c.phase}: {exc}", exc)
            raise
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_S):
            async with self._decide_lock:
                result = await self._conclude(c, measurement)
        await self._observe(c.number)
        return result

    async def _slot_phases(self, c: _Cycle, replay: _Replay | None) -> _Measurement:
        """The phases up to the measurement, in the slot's checkout."""
        assert c.slot is not None
        c.place = await self._slots_of().checkout(c.slot, c.parent)
        if c.baseline or replay is not None:
            await self._phase(c, "bootstrap", self._bootstrap, c)
            await self._phase(c, "analyze", self._analyze, c)
            for phase in ("plan", "implement", "validate", "commit"):
                await self._skip(c, phase)
            c.candidate = c.parent
            if replay is not None:
                c.plan = replay.plan.model_copy(
                    update={"description": f"{replay.plan.description} (replay of #{replay.of})"}
                )
                c.candidate = await self._replayed(c, replay)
                if c.candidate is None:
                    why = f"the change of cycle {replay.of} no longer applies on the best commit"
                    return _Measurement("invalid", None, None, why)
                await c.place.checkout_detached(c.candidate)
        else:
            try:
                async with self._propose_lock:  # one proposal at a time, seeing the others
                    context = await self._phase(c, "bootstrap", self._bootstrap, c)
                    analysis = await self._phase(c, "analyze", self._analyze, c)
                    c.plan = await self._phase(c, "plan", self._plan, c, context, analysis)
                    self._in_flight[c.number] = c.plan
                    changes = await self._phase(c, "implement", self._implement, c, context)
                await self._phase(c, "validate", self._validate, c, context, changes)
                c.candidate = await self._phase(c, "commit", self._commit, c)
            except _Invalid as exc:
                return _Measurement("invalid", None, None, str(exc))
        assert c.running is not None
        c.running.candidate_commit = c.candidate
        c.outcome = await self._phase(c, "execute", self._execute, c)
        return await self._phase(c, "evaluate", self._evaluate, c)

    async def _replayed(self, c: _Cycle, replay: _Replay) -> str | None:
        """The replay's commit on top of the current best; None if it no longer applies."""
        assert self._git is not None
        merged = await self._git.replay(
            replay.source,
            base=replay.source_parent,
            onto=c.parent,
            message=f"{self._keep.commit_title(c.number)}{replay.plan.description} "
            f"(replay of #{replay.of})",
        )
        return merged if isinstance(merged, str) else None

    async def _judge_slot(self, c: _Cycle, m: _Measurement) -> _Measurement:
        """The verdict on a slot's measurement against the best commit of now.

        A candidate whose parent is still the best is kept or discarded as usual. One whose
        parent is no longer the best is never kept: if it beat its parent, its change is
        applied again on top of the new best (a three-way merge) and queued to be measured
        there; a conflict is a discard with the paths.
        """
        assert self._state is not None and self._git is not None and c.candidate is not None
        state = self._state
        if c.baseline or m.status not in ("keep", "discard") or m.metric is None:
            return m
        if c.parent == state.best_commit:
            verdict = self._verdict(c, m.readings, self._incumbent())
            return m.judged(verdict)
        if self._verdict(c, m.readings, c.incumbent).status != "keep":
            return replace(m, status="discard", reason="no improvement")
        assert c.plan is not None and state.best_commit is not None
        plan = c.original or c.plan
        merged = await self._git.replay(
            c.candidate, base=c.parent, onto=state.best_commit, message=None
        )
        if isinstance(merged, list):
            return _Measurement(
                "discard",
                m.metric,
                m.memory_gb,
                f"beat its parent, but the best moved on and the change conflicts with it "
                f"({', '.join(merged[:5])})",
                m.readings,
            )
        self._replays.append(
            _Replay(of=c.number, plan=plan, source=c.candidate, source_parent=c.parent)
        )
        return _Measurement(
            "discard",
            m.metric,
            m.memory_gb,
            "beat its parent, but the best moved on; replayed on the new best, to be measured",
            m.readings,
        )

    async def aclose(self) -> None:
        """Release the repository's writer lock; the worker prepares again if used later."""
        async with self._prepare_lock:
            if self._lock is not None:
                await self.workspace.release_lock(self._lock)
                self._lock = None
            self._prepared = False

    async def __aenter__(self) -> ResearchWorker:
        await self.prepare()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def announce_hooks(self) -> None:
        """Say once (a ``hooks`` notice) that candidate commits skip the repository's git hooks.

        ``init`` calls it: commits are made through libgit2, which runs no hooks, and that is
        the right default (a formatter hook would change what is measured), but users should
        know. Nothing is said when the repository has no commit hooks.
        """
        await self.prepare()
        with self._source():
            assert self._git is not None
            hooks = await self._git.hooks()
            if hooks:
                await self._keep.notice(
                    "hooks",
                    f"candidate commits do not run your git hooks ({', '.join(hooks)}); put checks "
                    "that must pass in --validate-command (validate_command)",
                )

    def _source(self) -> AbstractContextManager[EventSource]:
        """Events emitted inside name this worker (its repository and tag) as their source.

        Entered once the worker has prepared (its tag is then chosen), and around the
        ``stopped`` event, whose tag is ``None`` when preparing failed before choosing it.
        """
        return event_source(self.config.repo_path, self.config.tag)

    # The seed's spellings.
    runExperimentCycle = run_experiment_cycle
    runLoop = run

    # -- preparation ---------------------------------------------------------------------

    async def _prepare(self) -> None:
        found = await check_repository(self.config)
        self.config = found.config  # its tag chosen
        if isinstance(self.executor, Preparing):  # a cluster that cannot be used stops us here
            await self.executor.prepare()
        # Nothing has been written up to here; from now on the repository is ours to set up,
        # and no other process may write to it while this worker lives.
        self._lock = await self.workspace.acquire_lock()
        try:
            with self._source():
                await self._set_up(found)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.workspace.release_lock(self._lock)
            self._lock = None
            raise

    async def _set_up(self, found: Preflight) -> None:
        git, config, state = found.git, self.config, found.state
        self._keeper = keeper = Keeper(git, config, self.emitter)
        await git.exclude("/.autoresearch/")
        await git.exclude(f".*{TEMP_SUFFIX}")
        for lock in found.stale_locks:
            await anyio.to_thread.run_sync(partial(lock.unlink, missing_ok=True))
            await keeper.notice(
                "stale-lock", f"removed {lock}, a git lock file the interrupted cycle left"
            )
        await git.ensure_branch(config.branch)
        await self.workspace.write_config(config)
        self._git = git
        self._layout = await git.tracked_files(limit=500)
        self._ledger = ledger = Ledger(self.workspace, config)
        await ledger.load(state, await git.head_commit())
        self._next_cycle = await keeper.first_free_cycle(ledger, self.workspace, state)
        if found.interrupted and state is not None:
            await keeper.recover(ledger, state)
        if state is not None and state.in_flight:
            await keeper.recover_slots(ledger, state)
        self._slots = SlotCheckouts(git, config, self.workspace)
        await self._slots.prune(keep=config.slots if config.slots > 1 else 0)
        await ledger.save()
        await self.proposer.prime(self.history)

    # -- one cycle -----------------------------------------------------------------------

    async def _run_cycle(self, hint: str | None) -> CycleResult:
        cycle = await self._new_cycle(hint)
        try:
            measurement = await self._cycle(cycle)
        except anyio.get_cancelled_exc_class():
            with _cleanup():
                await self._abandon(cycle, f"cancelled in {cycle.phase}", None)
            raise
        except Exception as exc:
            reason = (
                str(exc)
                if isinstance(exc, HeadMovedError)
                else f"engine error in {cycle.phase}: {exc}"
            )
            with anyio.CancelScope(shield=True):
                result = await self._abandon(cycle, reason, exc)
            if isinstance(exc, HeadMovedError) and exc.kind == "commit":
                return result  # recorded; the next cycle measures the user's commit
            raise
        # The outcome is known: carrying out the decision and recording it must finish even if
        # a signal arrives meanwhile, or a kept change could be reverted and called a crash.
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_S):
            result = await self._conclude(cycle, measurement)
        await self._observe(cycle.number)
        return result

    async def _new_cycle(self, hint: str | None, slot: int | None = None) -> _Cycle:
        """Number a new cycle on top of HEAD, note it in the state and announce it.

        HEAD must be on the research branch (never start on the user's checkout); when it is
        not the best commit, the cycle is a baseline that measures it.
        """
        state, git = self._state, self._git
        assert state is not None and git is not None
        await git.check_head(Expect(self.config.branch))
        head = await git.head_commit()
        number = self._next_cycle
        self._next_cycle += 1
        rebaseline = await self._announce_rebaseline(head, number)
        c = _Cycle(
            number=number,
            hint=hint,
            baseline=rebaseline is not None
            or (state.baseline_metric is None and state.best_metric is None),
            started_at=now_iso(),
            started=time.monotonic(),
            parent=head,
            rebaseline=rebaseline,
            slot=slot,
            incumbent=self._books.incumbent_values(),
            incumbent_curve=self._books.incumbent_curve(),
        )
        if slot is None:
            state.current_cycle, state.parent_commit = number, head
        else:
            c.running = RunningCycle(cycle=number, slot=slot, parent_commit=head)
            state.in_flight.append(c.running)
        await self._emit(
            CycleStartEvent(
                cycle=number, tag=self.config.chosen_tag, hint=hint, baseline=c.baseline
            )
        )
        return c

    async def _announce_rebaseline(self, head: str, number: int) -> str | None:
        """If HEAD is not the best commit (a commit the engine did not make), say so."""
        assert self._state is not None and self._state.best_commit is not None
        best = self._state.best_commit
        if head == best:
            return None
        await self._keep.notice(
            "rebaseline",
            f"{self.config.branch} is at {head[:7]}, a commit autoresearch did not make "
            f"(its best is {best[:7]}); measuring it as a new baseline",
            cycle=number,
        )
        return f"re-measured: {head[:7]} is a commit autoresearch did not make"

    async def _cycle(self, c: _Cycle) -> _Measurement:
        """The phases up to the measurement, in the seed's order (``decide`` comes after)."""
        context = await self._phase(c, "bootstrap", self._bootstrap, c)
        analysis = await self._phase(c, "analyze", self._analyze, c)
        if c.baseline:
            for phase in ("plan", "implement", "validate", "commit"):
                await self._skip(c, phase)
            c.candidate = c.parent
            assert self._state is not None
            self._state.candidate_commit = c.parent
        else:
            try:
                c.plan = await self._phase(c, "plan", self._plan, c, context, analysis)
                changes = await self._phase(c, "implement", self._implement, c, context)
                await self._phase(c, "validate", self._validate, c, context, changes)
                c.candidate = await self._phase(c, "commit", self._commit, c)
            except _Invalid as exc:
                return _Measurement("invalid", None, None, str(exc))
        c.outcome = await self._phase(c, "execute", self._execute, c)
        return await self._phase(c, "evaluate", self._evaluate, c)

    async def _conclude(self, c: _Cycle, m: _Measurement) -> CycleResult:
        """Record the measurement, carry out the decision, write the ledgers (shielded)."""
        if m.status == "invalid":
            return await self._finish(c, m)
        assert self._state is not None and c.candidate is not None
        if c.slot is not None:
            m = await self._judge_slot(c, m)
            # The main checkout is at the best commit; only a keep writes to it.
            self._state.current_cycle, self._state.parent_commit = c.number, self._state.best_commit
        self._state.measured = Measured(
            status=m.status,
            metric=m.metric,
            memory_gb=m.memory_gb,
            reason=m.reason,
            baseline=c.baseline,
        )
        self._state.candidate_commit = c.candidate
        self._state.phase, self._state.updated_at = "decide", now_iso()
        try:  # first, so a failure below cannot lose the metric (a kill, not a power cut)
            await self._books.save(durable=False)
        except OSError:
            logger.exception("could not write state.json before deciding cycle %d", c.number)
        m, settled = await self._phase(c, "decide", self._decide, c, m, saved=True)
        result = await self._finish(c, m, pending=settled.pending)
        if settled.stop is not None:
            raise settled.stop
        return result

    async def _phase(
        self,
        c: _Cycle,
        phase: Phase,
        func: Callable[..., Awaitable[T]],
        *args: Any,
        saved: bool = False,
    ) -> T:
        """Record, announce and time one phase (``saved``: state.json already says it)."""
        assert self._state is not None
        c.phase = phase
        if c.running is not None:
            c.running.phase = phase
            self._state.phase = "running"
        else:
            self._state.phase = phase
        # Fsync only when recovery needs the change: the cycle began (bootstrap) or a candidate
        # was committed (execute). Other phase changes are atomic, not forced; with slots they
        # are not written at all (recovery needs none of them, and the slots share the file).
        if not saved and (c.running is None or phase in _DURABLE_PHASES):
            self._state.updated_at = now_iso()
            await self._books.save(durable=phase in _DURABLE_PHASES)
        await self._emit(PhaseEnterEvent(cycle=c.number, phase=phase))
        started = time.monotonic()
        outcome = "failed"
        cancelled = False
        try:
            result = await func(*args)
            outcome = "ok"
            return result
        except anyio.get_cancelled_exc_class():
            cancelled = True
            raise
        finally:
            elapsed = int((time.monotonic() - started) * 1000)
            c.durations[phase] = elapsed
            with (
                anyio.CancelScope(shield=True),
                handlers_within(HANDLER_GRACE_S) if cancelled else nullcontext(),
            ):
                await self._emit(
                    PhaseExitEvent(
                        cycle=c.number, phase=phase, duration_ms=elapsed, outcome=outcome
                    )
                )

    async def _skip(self, c: _Cycle, phase: Phase) -> None:
        await self._emit(PhaseEnterEvent(cycle=c.number, phase=phase))
        c.durations[phase] = 0
        await self._emit(
            PhaseExitEvent(cycle=c.number, phase=phase, duration_ms=0, outcome="skipped")
        )

    # -- the phases ----------------------------------------------------------------------

    async def _bootstrap(self, c: _Cycle) -> ResearchContext:
        assert self._state is not None
        context = await self._contexts.get(self.config, self._state.best_commit, self._layout)
        return context.model_copy(update={"workdir": self._root(c)})

    async def _analyze(self, c: _Cycle) -> Analysis:
        assert self._state is not None
        failure_tail = None
        last_failure = next(
            (r for r in reversed(self._history[-20:]) if r.status in ("crash", "timeout")), None
        )
        if last_failure is not None:
            failure_tail = await self.workspace.read_log_tail(last_failure.cycle)
        analysis = build_analysis(
            c.number,
            self._history,
            best_metric=self._state.best_metric,
            baseline_metric=self._state.baseline_metric,
            best_commit=self._state.best_commit,
            last_failure_log_tail=failure_tail,
        )
        if self._in_flight:
            analysis = analysis.model_copy(update={"in_flight": list(self._in_flight.values())})
        return analysis

    async def _plan(self, c: _Cycle, context: ResearchContext, analysis: Analysis) -> Plan:
        plan = await self._ask(c, self.proposer.plan(context, analysis, c.hint))
        if plan.usage:
            c.usage += plan.usage
        for note in plan.notes:
            c.notes.append(note)
            await self._keep.notice("proposer", note, cycle=c.number)
        return plan

    async def _implement(self, c: _Cycle, context: ResearchContext) -> ChangeSet:
        assert c.plan is not None
        changes = await self._ask(c, self.proposer.implement(context, c.plan))
        return await self._apply_with_repairs(c, context, changes, problem=None)

    async def _ask(self, c: _Cycle, call: Awaitable[T], problem: str | None = None) -> T:
        """Await a proposer call; its failures make the cycle invalid (and still count usage).

        A model that cannot be reached or keeps failing after retries also makes the cycle
        invalid, so a night's loop survives an outage; rejected credentials or a rejected
        request (a wrong model name) are configuration mistakes and stop the run.
        """
        prefix = f"{problem}; repair failed" if problem else "the proposer failed"
        try:
            return await call
        except ProposerError as exc:
            if exc.usage:
                c.usage += exc.usage
            raise _Invalid(f"{prefix}: {exc}") from exc
        except (AuthenticationError, BadRequestError):
            raise
        except ProviderError as exc:
            raise _Invalid(f"{prefix}: the model call failed: {exc}") from exc

    async def _validate(self, c: _Cycle, context: ResearchContext, changes: ChangeSet) -> None:
        while (problem := await self._validation_problem(c)) is not None:
            problem = f"the change does not validate: {problem}"
            changes = await self._apply_with_repairs(c, context, changes, problem=problem)

    async def _commit(self, c: _Cycle) -> str:
        assert self._git is not None and c.plan is not None and c.applied is not None
        message = self._keep.commit_title(c.number) + c.plan.description
        if c.plan.rationale:
            message += f"\n\n{c.plan.rationale}"
        git = c.place or self._git
        commit = await git.commit_paths(
            self.config.mutable_paths,
            message,
            exclude=self.config.immutable_paths,
            expect=Expect(None if c.place else self.config.branch, c.parent),
            untracked=c.applied.created,
        )
        if commit is None:
            await self._undo_edits(c)
            raise _Invalid("the change is empty (the edits left every file as it was)")
        assert self._state is not None
        c.candidate = commit
        if c.running is not None:
            c.running.candidate_commit = commit
        else:
            self._state.candidate_commit = commit
        await self._git.set_ref(f"refs/autoresearch/{self.config.chosen_tag}/{c.number}", commit)
        await self._emit(
            CommitCreatedEvent(
                cycle=c.number,
                commit_hash=commit,
                description=c.plan.description,
                files=c.applied.files,
            )
        )
        return commit

    async def _execute(self, c: _Cycle) -> RunOutcome:
        """Run the experiment: once, or ``repeats`` times (``baseline_repeats`` for a baseline).

        The repeats stop at the first run that fails, and a candidate's repeats stop as soon
        as its runs so far are worse than the incumbent beyond the noise: more runs could not
        make it a keep, and the runs saved go to the next idea. Each run gets its own seed
        (``AUTORESEARCH_SEED``) and log (``logs/<cycle>.log``, then ``<cycle>.r2.log`` …).
        """
        count = self.config.baseline_repeats if c.baseline else self.config.repeats
        await self._run_more(c, count)
        assert c.runs
        return c.runs[0].outcome

    async def _run_more(self, c: _Cycle, count: int) -> None:
        """Run the experiment ``count`` more times for ``c`` (stopping early, see above)."""
        for index in range(count):
            repeat = len(c.runs) + 1
            run = await self._run_once(c, repeat)
            c.runs.append(run)
            if run.outcome.exit_code != 0 or run.outcome.error or run.stopped:
                return
            if index < count - 1 and not c.baseline and await self._hopeless(c):
                return

    async def _hopeless(self, c: _Cycle) -> bool:
        """Whether the candidate's runs so far are worse than the incumbent beyond the noise."""
        incumbent = c.incumbent if c.slot is not None else self._incumbent()
        noise = self._books.noise()
        if not incumbent or noise.sigma is None:
            return False
        readings = await self._read(c, c.runs)
        if any(r.status != "ok" for r in readings):
            return False
        worse = one_sided_t(  # the incumbent against the candidate: the test turned around
            incumbent,
            [r.value for r in readings],
            noise,
            lower_is_better=self.config.metric.direction == "lower",
            confidence=self.config.confidence,
        )
        return worse.better

    async def _run_once(self, c: _Cycle, repeat: int) -> _Run:
        config = self.config

        async def on_timeout(elapsed_ms: int) -> None:
            await self._emit(
                TimeoutEvent(cycle=c.number, timeout_ms=config.timeout_ms, elapsed_ms=elapsed_ms)
            )

        async def on_start(pid: int) -> None:  # so a restart can kill what a crash left running
            assert self._state is not None
            if c.slot is not None:
                return  # several runs at once: a restart finds them by AUTORESEARCH_CYCLE
            self._state.experiment_pid = pid
            # Not fsynced: the pid matters after the engine crashes, and a power cut that
            # could lose the write also ends the experiment.
            await self._books.save(durable=False)

        if config.sandbox != "none":
            await anyio.to_thread.run_sync(
                lambda: sandbox_tmp(config).mkdir(parents=True, exist_ok=True)
            )
        seed = c.number * 100 + repeat
        log = self.workspace.log_path(c.number, repeat)
        abort = anyio.Event()
        watch = None
        if config.progress is not None:
            watch = CurveWatch(
                config.progress,
                log,
                None if c.baseline else c.incumbent_curve,
                lower_is_better=config.metric.direction == "lower",
            )
        request = RunRequest(
            sandboxed_command(config.run_command, config, self._root(c)),
            cwd=self._root(c),
            log_path=log,
            timeout_s=config.timeout_ms / 1000,
            kill_grace_s=config.kill_grace_ms / 1000,
            env={
                **self._run_env(c),
                "AUTORESEARCH_SEED": str(seed),
                "AUTORESEARCH_REPEAT": str(repeat),
            },
            on_timeout=on_timeout,
            on_start=on_start,
            abort=abort,
        )
        async with anyio.create_task_group() as group:
            if watch is not None:
                group.start_soon(watch.follow, abort)
            outcome = await self.executor.run(request)
            group.cancel_scope.cancel()
        if watch is not None:
            await anyio.to_thread.run_sync(watch.finish)
        assert self._state is not None
        self._state.experiment_pid = None
        try:
            await self.workspace.publish_log(c.number, repeat)
        except OSError:  # run.log is a convenience: the cycle's own log is what counts
            logger.warning("could not point run.log at cycle %d's log", c.number, exc_info=True)
        return _Run(
            outcome,
            log,
            seed,
            curve_of(watch.points) if watch is not None else None,
            watch.reason if watch is not None and outcome.aborted else None,
        )

    def _run_env(self, c: _Cycle) -> dict[str, str]:
        """What the experiment (and the validate command) learn about the cycle."""
        slot = c.slot or 1
        env = {
            "AUTORESEARCH_CYCLE": str(c.number),
            "AUTORESEARCH_TAG": self.config.chosen_tag,
            "AUTORESEARCH_COMMIT": c.candidate or c.parent,
            "AUTORESEARCH_SLOT": str(slot),
        }
        gpus = self.config.slot_gpus(slot)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in gpus)
        return env

    def _root(self, c: _Cycle) -> Path:
        """Where the cycle's files are: its slot's checkout, or the repository."""
        return c.place.root if c.place is not None else self.config.repo_path

    async def _evaluate(self, c: _Cycle) -> _Measurement:
        """Read every run; judge the mean; give an apparent winner its confirmation runs."""
        assert self._state is not None
        config = self.config
        stopped = next((run for run in c.runs if run.stopped), None)
        if stopped is not None:  # early abort: behind the incumbent's curve, not a failure
            memory = stopped.outcome.peak_rss_gb
            return _Measurement("discard", None, memory, stopped.stopped or "stopped early")
        readings = await self._read(c, c.runs)
        failed = next((r for r in readings if r.status != "ok"), None)
        incumbent = c.incumbent if c.slot is not None else self._incumbent()
        confirming = failed is None and not c.baseline and config.confirm
        if confirming and self._verdict(c, readings, incumbent).status == "keep":
            done = len(c.runs)
            await self._run_more(c, config.confirm)  # measured again before it may be kept
            readings += await self._read(c, c.runs[done:])
            failed = next((r for r in readings if r.status != "ok"), None)
        memory = max((r.memory_gb for r in readings if r.memory_gb is not None), default=None)
        verdict = None if failed is not None else self._verdict(c, readings, incumbent)
        metric = _mean(readings) if failed is None else (failed.metric if readings else None)
        if metric is not None:
            await self._emit(
                MetricRecordedEvent(
                    cycle=c.number,
                    name=config.metric.name,
                    value=metric,
                    best_value=self._state.best_metric,
                    improved=verdict is not None and verdict.status == "keep",
                )
            )
        if failed is not None:
            status: Status = "timeout" if failed.status == "timeout" else "crash"
            return _Measurement(status, failed.metric, memory, failed.reason, readings)
        assert verdict is not None
        return _Measurement(
            verdict.status, metric, memory, verdict.reason, readings, verdict.threshold
        )

    async def _read(self, c: _Cycle, runs: list[_Run]) -> list[_Reading]:
        found = []
        for run in runs:
            reading = await read_run(run.outcome, run.log, self.config, self.workspace.logs_dir)
            found.append(_Reading(reading, run.seed))
        return found

    @property
    def _noisy(self) -> bool:
        """Whether decisions use repeated measurements (any noise setting above its default)."""
        config = self.config
        return config.repeats > 1 or config.baseline_repeats > 1 or config.confirm > 0

    def _incumbent(self) -> list[float]:
        """The measurements of the best commit (one value without repeats; none before any)."""
        return self._books.incumbent_values()

    def _verdict(self, c: _Cycle, readings: list[_Reading], incumbent: list[float]) -> _Verdict:
        """Keep or discard the cycle's measurements against ``incumbent``'s.

        A baseline is always kept. Without repeats this is :func:`judge` on the one value, as
        it always was; with them, the one-sided t-test against the pooled noise floor.
        """
        config = self.config
        values = [r.value for r in readings]
        if c.baseline or not incumbent:
            return _Verdict("keep", "improved", None)
        if not self._noisy:
            plain = judge(values[0], incumbent[0], Policy.from_config(config))
            return _Verdict(plain.status, plain.reason, None)
        test = one_sided_t(
            values,
            incumbent,
            self._books.noise(),
            lower_is_better=config.metric.direction == "lower",
            confidence=config.confidence,
            min_improvement=config.min_improvement,
            name=config.metric.name,
        )
        return _Verdict("keep" if test.better else "discard", test.reason, test.threshold)

    async def _decide(self, c: _Cycle, m: _Measurement) -> tuple[_Measurement, Settled]:
        """Keep the candidate or go back to the parent.

        The mutable files are restored either way, so whatever the run wrote into them is
        undone (and saved first when the engine did not write it). Tracked files outside the
        mutable paths that the run changed are named in the record and left as they are.
        """
        assert self._state is not None and self._git is not None and c.candidate is not None
        keep = m.status == "keep"
        if c.slot is not None:  # the run was in the slot's checkout: the main one is at best
            settled = Settled()
            if keep:
                settled = await self._settle(c, c.candidate, m.reason, here=self._state.best_commit)
            elif c.candidate != c.parent:
                await self._emit(
                    CommitRevertedEvent(
                        cycle=c.number,
                        commit_hash=c.candidate,
                        restored_to=c.parent,
                        reason=m.reason,
                    )
                )
        else:
            settled = await self._settle(c, c.candidate if keep else c.parent, m.reason)
        if settled.moved:
            m = replace(m, status="crash", reason=settled.problem or "")
        elif settled.problem:
            m = replace(m, reason=f"{m.reason}; {settled.problem}")
        if m.status == "keep":
            self._state.best_commit = c.candidate
            self._state.best_metric = m.metric
            if self._state.baseline_metric is None:
                self._state.baseline_metric = m.metric
        if not settled.moved and c.slot is None:
            outside = await self._keep.changed_outside_targets()
            if outside:
                c.notes.append(
                    "the run changed tracked files outside the mutable paths, left as they "
                    f"are: {', '.join(outside[:5])}"
                )
        return m, settled

    # -- applying, repairing, restoring --------------------------------------------------

    async def _apply_with_repairs(
        self, c: _Cycle, context: ResearchContext, changes: ChangeSet, problem: str | None
    ) -> ChangeSet:
        """Apply ``changes`` (after asking for a repair when ``problem`` is set).

        Repairs are counted over the whole cycle; when they run out the cycle is invalid and
        the mutable files are back as they were.
        """
        assert c.plan is not None and self._git is not None and self._state is not None
        tracked = frozenset(await (c.place or self._git).tracked_under(self.config.mutable_paths))
        policy = PathPolicy.from_config(self.config, tracked, root=self._root(c))
        while True:
            if problem is not None:
                await self._undo_edits(c)
                if c.repairs >= self.config.max_repairs:
                    raise _Invalid(problem)
                c.repairs += 1
                repaired = await self._ask(
                    c, self.proposer.repair(context, c.plan, changes, problem), problem
                )
                if repaired is None or not repaired.edits:  # the proposer gives up
                    if repaired is not None and repaired.usage:
                        c.usage += repaired.usage
                    raise _Invalid(problem)
                changes = repaired
            if changes.usage:
                c.usage += changes.usage
            try:
                c.applied = await apply_changes(policy, changes)
            except EditError as exc:
                problem = f"the edit was refused: {exc}"
                continue
            # So that recovery knows this content as the engine's own (state.json gets it with
            # the next phase; a kill before that only makes recovery save it needlessly).
            self._state.written = dict(c.applied.blobs)
            return changes

    async def _validation_problem(self, c: _Cycle) -> str | None:
        assert c.applied is not None
        problem = await check_syntax(self._root(c), c.applied.files)
        if problem is None and self.config.validate_command:
            outcome = await self._checker.run(
                RunRequest(
                    sandboxed_command(self.config.validate_command, self.config, self._root(c)),
                    cwd=self._root(c),
                    log_path=self.workspace.logs_dir / f"{c.number}.validate.log",
                    timeout_s=self.config.timeout_ms / 1000,
                    kill_grace_s=self.config.kill_grace_ms / 1000,
                    env=self._run_env(c),
                )
            )
            if outcome.exit_code != 0:
                if outcome.timed_out:
                    why = f"timed out after {self.config.timeout_ms / 1000:g} s"
                else:
                    why = outcome.error or f"exit code {outcome.exit_code}"
                problem = f"the validate command failed ({why}): {outcome.tail[-1500:]}"
        return problem

    async def _undo_edits(self, c: _Cycle) -> None:
        """Put the mutable files back as at the parent (nothing was committed)."""
        if c.place is not None and c.slot is not None:  # the engine's own checkout
            if c.applied is not None:
                await self._slots_of().forget(c.slot, c.applied.created)
            await c.place.checkout_detached(c.parent)
            return
        await self._keep.restore(c.number, c.parent, expect=c.parent, ours=(), written=c.written())

    async def _settle(
        self, c: _Cycle, target: str, reason: str, here: str | None = None
    ) -> Settled:
        """Bring the tree to ``target`` at the end of ``c`` (see :meth:`Keeper.settle`)."""
        return await self._keep.settle(
            c.number,
            parent=here or c.parent,
            candidate=c.candidate,
            written=None if c.slot is not None else c.written(),
            target=target,
            reason=reason,
            here=here,
        )

    # -- ending a cycle ------------------------------------------------------------------

    async def _abandon(self, c: _Cycle, reason: str, exc: Exception | None) -> CycleResult:
        """Cleanup when a cycle is cancelled or the engine fails: restore, record, announce."""
        if exc is not None:
            # Debug only: the exception reaches the caller and the error event says it too.
            logger.debug("cycle %d failed: %s", c.number, reason, exc_info=exc)
            await self._emit(
                ErrorEvent(
                    cycle=c.number, phase=c.phase, error_type=type(exc).__name__, message=reason
                )
            )
        if c.slot is not None:  # nothing of the main checkout to restore
            settled = Settled()
            if c.applied is not None and c.candidate is None:
                await self._slots_of().forget(c.slot, c.applied.created)
        else:
            settled = await self._settle(c, c.parent, reason)
        if settled.problem and not isinstance(exc, HeadMovedError):
            reason += f" ({settled.problem})"
        return await self._finish(
            c, _Measurement("crash", None, None, reason), pending=settled.pending
        )

    async def _finish(self, c: _Cycle, m: _Measurement, *, pending: bool = False) -> CycleResult:
        assert self._state is not None
        outcome = c.outcome
        if c.baseline:
            description = "baseline" if c.rebaseline is None else f"baseline ({c.rebaseline})"
        elif c.plan is not None:
            description = c.plan.description
        else:
            description = ""
        if m.reason and (
            m.status in ("crash", "timeout", "invalid")
            or (m.status == "discard" and m.reason != "no improvement")
        ):
            description = f"{description} ({m.reason})" if description else m.reason
        for note in c.notes:
            description = f"{description} ({note})" if description else note
        duration = int((time.monotonic() - c.started) * 1000)
        commit = c.candidate or c.parent
        record = RunRecord(
            cycle=c.number,
            commit=commit,
            parent_commit=c.parent,
            status=m.status,
            metric=m.metric,
            memory_gb=m.memory_gb,
            description=description,
            hint=c.hint,
            started_at=c.started_at,
            duration_ms=duration,
            exit_code=outcome.exit_code if outcome else None,
            log_path=self.workspace.relative(self.workspace.log_path(c.number))
            if outcome
            else None,
            phase_durations_ms=c.durations,
            usage=c.usage if c.usage.calls or c.usage.total_tokens else None,
            baseline=c.baseline,
            proposal=c.plan.metadata if c.plan and c.plan.metadata else None,
            slot=c.slot,
            replay_of=c.replay_of,
            **self._measurement_fields(c, m),
        )
        self._in_flight.pop(c.number, None)
        if c.running is not None and c.running in self._state.in_flight:
            self._state.in_flight.remove(c.running)
        try:
            await self._books.record(record, pending=pending)
        except Exception as exc:  # the ledgers could not be written (a full disk, say)
            shown = "-" if m.metric is None else f"{m.metric:g}"
            await self._emit(
                ErrorEvent(
                    cycle=c.number,
                    phase=c.phase,
                    error_type=type(exc).__name__,
                    message=f"could not record cycle {c.number} ({m.status}, "
                    f"{self.config.metric.name} {shown}): {exc}; the next run recovers it",
                )
            )
            raise
        self._finished[c.number] = record
        result = CycleResult(
            cycle=c.number,
            status=m.status,
            metric_value=m.metric,
            commit_hash=commit,
            description=description,
            duration_ms=duration,
            memory_gb=m.memory_gb,
            best_metric=self._state.best_metric,
            baseline=c.baseline,
            usage=record.usage,
        )
        await self._emit(CycleEndEvent.announcing(result))
        return result

    def _measurement_fields(self, c: _Cycle, m: _Measurement) -> dict[str, Any]:
        """The record fields of repeated measurements and of GPU time (only when in use)."""
        fields: dict[str, Any] = {}
        valid = [r for r in m.readings if r.status == "ok"]
        if self._noisy and valid:
            values = [r.value for r in valid]
            fields["measurements"] = [Measurement(value=r.value, seed=r.seed) for r in valid]
            fields["std"] = statistics.stdev(values) if len(values) > 1 else None
            fields["threshold"] = m.threshold
        if self.config.progress is not None and c.runs and c.runs[0].curve:
            fields["curve"] = c.runs[0].curve
        if self.config.gpu_hour_usd is not None and c.runs:
            seconds = sum(run.outcome.duration_ms for run in c.runs) / 1000
            gpus = self.config.slot_gpus(c.slot or 1)
            fields["gpu_seconds"] = seconds * max(1, len(gpus or []))
        return fields

    async def _observe(self, cycle: int) -> None:
        """Tell the proposer how the cycle went (its failure is logged, never fatal)."""
        record = self._finished.pop(cycle, None)
        if record is None:
            return
        try:
            await self.proposer.observe(record)
        except Exception:
            logger.exception("the proposer failed to take in cycle %d", cycle)

    def _slots_of(self) -> SlotCheckouts:
        assert self._slots is not None, "slots are set up when slots > 1"
        return self._slots

    async def _emit(self, event: Event) -> None:
        with self._source():  # inside a cycle: the same source, its slot kept
            await self.emitter.emit(event)
