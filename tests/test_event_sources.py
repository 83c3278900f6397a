"""Every event names its source: the emitter stamps it from the context; workers and tasks set it.

The emitter tests need no worker. The task test runs real tasks through the task worker. The
worker tests run two real workers on two real repositories against one emitter, and a worker
with two slots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from autoresearch import (
    CycleEndEvent,
    CycleStartEvent,
    Edit,
    ErrorEvent,
    EventEmitter,
    EventSource,
    NeuroLink,
    ScriptedProposer,
    ScriptedStep,
    StoppedEvent,
    current_event_source,
    current_task_id,
    event_slot,
    event_source,
    parse_event,
)
from autoresearch.tasks import TaskManager
from tests.conftest import TRAIN, Recorder, base_config, make_repo

pytestmark = pytest.mark.anyio


def start(n: int) -> CycleStartEvent:
    return CycleStartEvent(cycle=n, tag="t")


# -- the emitter stamps the context's source ----------------------------------------------------


async def test_an_event_emitted_inside_event_source_carries_it(tmp_path: Path) -> None:
    emitter = EventEmitter()
    handled = Recorder()
    emitter.on("*", handled)
    event = start(1)
    async with emitter.stream() as events:
        with event_source(tmp_path, "t") as source:
            assert current_event_source() is source
            await emitter.emit(event)
        streamed = []
        async for delivered in events:
            streamed.append(delivered)
            break
    assert source == EventSource(repo=str(tmp_path), tag="t")
    (got,) = handled.events
    assert got.source == source and streamed == [got]  # handlers and streams see the same copy
    assert (got.cycle, got.tag, got.at) == (1, "t", event.at)  # the rest is unchanged
    assert event.source is None  # the emitted model itself is frozen and left alone
    assert current_event_source() is None


async def test_outside_any_context_the_source_stays_none() -> None:
    emitter = EventEmitter()
    handled = Recorder()
    emitter.on("autoresearch:cycle:start", handled)
    event = start(1)
    await emitter.emit(event)
    assert handled.events == [event] and handled.events[0] is event
    assert handled.events[0].source is None
    assert current_task_id() is None


async def test_an_event_that_names_its_source_is_delivered_as_is() -> None:
    emitter = EventEmitter()
    handled = Recorder()
    emitter.on("*", handled)
    theirs = EventSource(repo="/elsewhere", tag="other", slot=3, task_id="remote")
    event = CycleEndEvent(cycle=2, status="keep", source=theirs)
    with event_source("/here", "mine", task_id="local"), event_slot(1):
        await emitter.emit(event)
    assert handled.events[0] is event and handled.events[0].source is theirs


async def test_slots_nest_and_tasks_started_inside_inherit_them() -> None:
    emitter = EventEmitter()
    handled = Recorder()
    emitter.on("autoresearch:cycle:start", handled)

    async def cycle_in_slot(slot: int) -> None:
        with event_slot(slot):
            await anyio.sleep(0.01 * (2 - slot))  # interleave the two slots
            await emitter.emit(start(slot))

    with event_source("/repo", "t"):
        await emitter.emit(start(100))  # engine-wide: no slot
        async with anyio.create_task_group() as group:
            group.start_soon(cycle_in_slot, 0)
            group.start_soon(cycle_in_slot, 1)
        with event_slot(5):
            async with anyio.create_task_group() as group:
                group.start_soon(emitter.emit, start(5))  # inherits the slot it was started in
            with event_slot(6):
                await emitter.emit(start(6))
            await emitter.emit(start(55))
        await emitter.emit(start(101))
    slots = {e.cycle: e.source.slot for e in handled.events}
    assert slots == {100: None, 0: 0, 1: 1, 5: 5, 6: 6, 55: 5, 101: None}
    assert {(e.source.repo, e.source.tag) for e in handled.events} == {("/repo", "t")}


async def test_reentering_a_worker_keeps_its_slot_and_another_worker_starts_afresh() -> None:
    with event_source("/a", "t", task_id="job"), event_slot(2):
        with event_source("/a", "t") as same:
            assert (same.slot, same.task_id) == (2, "job")
        with event_source("/b", "t") as other:  # another worker: no slot, the same task
            assert (other.repo, other.slot, other.task_id) == ("/b", None, "job")
            assert current_task_id() == "job"
        with event_source("/a", "t", task_id="another") as renamed:
            assert (renamed.slot, renamed.task_id) == (2, "another")
        assert current_event_source() == EventSource(repo="/a", tag="t", slot=2, task_id="job")
    assert current_event_source() is None


def test_a_slot_needs_a_worker() -> None:
    with (
        pytest.raises(RuntimeError, match=r"event_slot\(\) must be entered inside event_source"),
        event_slot(0),
    ):
        pass  # pragma: no cover
    assert current_event_source() is None


async def test_a_failing_handler_is_reported_with_the_failing_events_source() -> None:
    emitter = EventEmitter()
    errors = Recorder()

    def bad(event: object) -> None:
        raise KeyError("boom")

    emitter.on("autoresearch:cycle:start", bad)
    emitter.on("autoresearch:error", errors)
    theirs = EventSource(repo="/elsewhere", tag="other")
    with event_source("/here", "mine"), event_slot(0):
        await emitter.emit(start(1))
        await emitter.emit(CycleStartEvent(cycle=2, tag="other", source=theirs))
    first, second = errors.events
    assert isinstance(first, ErrorEvent) and isinstance(second, ErrorEvent)
    assert first.source == EventSource(repo="/here", tag="mine", slot=0)
    assert second.source is theirs


def test_the_source_round_trips_through_json() -> None:
    source = EventSource(repo="/r", tag="t", slot=1, task_id="lr")
    event = StoppedEvent(reason="max-runs", cycles=2, source=source)
    data = event.to_json_dict()
    assert data["source"] == {"repo": "/r", "tag": "t", "slot": 1, "taskId": "lr"}
    assert parse_event(data) == event
    assert event.source is not None and event.source.taskId == "lr"  # both spellings
    assert start(1).to_json_dict()["source"] is None


# -- tasks: the task worker names the task -------------------------------------------------------

TASK_TRAIN = 'X = 3.0\nprint(f"val_bpb: {(X - 1) ** 2 + 1:.6f}")\n'


def walk_down(index: int) -> ScriptedStep:
    value = 3.0 - 0.1 * (index + 1)
    return ScriptedStep(
        description=f"X -> {value:.1f}",
        edits=[Edit(path="train.py", content=TASK_TRAIN.replace("X = 3.0", f"X = {value:.1f}"))],
    )


async def test_the_events_of_concurrent_tasks_carry_their_task_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTORESEARCH_HOME", str(tmp_path / "ar-home"))
    repos = {
        task_id: make_repo(tmp_path / task_id, {"train.py": TASK_TRAIN, "program.md": "Lower.\n"})
        for task_id in ("alpha", "beta")
    }
    neurolink = NeuroLink()
    handled = Recorder()
    asked: list[tuple[str | None, str]] = []
    emitter = neurolink.get_event_emitter()
    emitter.on("*", handled)
    emitter.on(  # the old way still works: it reads the same context
        CycleEndEvent, lambda e: asked.append((current_task_id(), e.source.task_id))
    )
    manager = TaskManager(
        neurolink=neurolink, proposer_factory=lambda task: ScriptedProposer(walk_down)
    )
    for task_id, repo in repos.items():
        config = base_config(repo, tag=f"tag-{task_id}")
        await manager.save({"id": task_id, "autoresearch": config, "maxRuns": 2})

    await manager.start_worker(poll_interval=0.05, lease_seconds=2.0, stop_when_idle=True)

    assert len(asked) == 4 and all(asked_id == stamped for asked_id, stamped in asked)
    by_task: dict[str, list[Any]] = {"alpha": [], "beta": []}
    for event in handled.events:
        assert event.source is not None, event
        by_task[event.source.task_id].append(event)
    for task_id, events in by_task.items():
        repo = str(repos[task_id].resolve())
        assert {(e.source.repo, e.source.tag) for e in events} == {(repo, f"tag-{task_id}")}
        assert [e.cycle for e in events if e.type == "autoresearch:cycle:end"] == [1, 2]
        (stopped,) = [e for e in events if e.type == "autoresearch:stopped"]
        assert stopped.message == f"task {task_id}: ran 2 cycles (max_runs 2)"
    assert current_task_id() is None


# -- workers: they name themselves -------------------------------------------------------------


def set_x(value: float) -> ScriptedStep:
    text = TRAIN.replace("X = 3.0", f"X = {value}")
    return ScriptedStep(description=f"X -> {value}", edits=[Edit(path="train.py", content=text)])


async def test_two_workers_on_one_emitter_are_told_apart_by_source(tmp_path: Path) -> None:
    program = {"train.py": TRAIN, "program.md": "# Research program\nMake val_bpb lower.\n"}
    repo_a = make_repo(tmp_path / "a", program)
    repo_b = make_repo(tmp_path / "b", program)
    neurolink = NeuroLink()
    workers = {
        "a": neurolink.create_research_worker(
            base_config(repo_a, tag="ta"), proposer=ScriptedProposer([set_x(2.0)])
        ),
        "b": neurolink.create_research_worker(
            base_config(repo_b, tag="tb"), proposer=ScriptedProposer([set_x(1.5)])
        ),
    }
    received: list[Any] = []
    with anyio.fail_after(60):
        async with (
            neurolink.get_event_emitter().stream() as events,
            anyio.create_task_group() as group,
        ):
            for worker in workers.values():
                group.start_soon(worker.run, 2)
            stopped = 0
            async for event in events:  # one consumer for both workers
                received.append(event)
                stopped += event.type == "autoresearch:stopped"
                if stopped == 2:
                    break

    assert all(event.source is not None for event in received), [
        e.type for e in received if e.source is None
    ]
    by_repo: dict[str, list[Any]] = {}
    for event in received:
        by_repo.setdefault(event.source.repo, []).append(event)
    repos = {name: str(worker.config.repo_path) for name, worker in workers.items()}
    assert set(by_repo) == set(repos.values())
    for name, tag, improved in (("a", "ta", 2.0), ("b", "tb", 1.25)):
        mine = by_repo[repos[name]]
        assert {e.source.tag for e in mine} == {tag}
        assert {e.source.task_id for e in mine} == {None}
        starts = [e for e in mine if e.type == "autoresearch:cycle:start"]
        ends = [e for e in mine if e.type == "autoresearch:cycle:end"]
        assert [e.tag for e in starts] == [tag, tag]
        assert [(e.cycle, e.status) for e in ends] == [(1, "keep"), (2, "keep")]
        assert ends[1].metric_value == pytest.approx(improved)  # this worker's own change
        assert [e.type for e in mine].count("autoresearch:stopped") == 1
        assert {e.source.slot for e in mine} == {None}  # one cycle at a time: no slot


async def test_each_event_of_a_slot_cycle_names_its_slot(repo: Path) -> None:
    neurolink = NeuroLink()
    handled = Recorder()
    neurolink.get_event_emitter().on("*", handled)
    steps = [set_x(2.5), set_x(2.0), set_x(1.5), set_x(1.2)]
    worker = neurolink.create_research_worker(
        base_config(repo, slots=2), proposer=ScriptedProposer(steps)
    )
    await worker.run(5)

    assert all(e.source is not None for e in handled.events), handled.types()
    slot_of: dict[int, int | None] = {}
    for event in handled.events:
        cycle = getattr(event, "cycle", None)
        if cycle is None:
            continue
        slot_of.setdefault(cycle, event.source.slot)
        assert event.source.slot == slot_of[cycle], (event.type, cycle)  # one slot per cycle
    assert sorted(slot_of) == [1, 2, 3, 4, 5]
    assert set(slot_of.values()) == {1, 2}  # the cycles after the baseline share both slots
    (stopped,) = handled.of("stopped")
    assert stopped.source.slot is None  # about the worker as a whole
    assert {(e.source.repo, e.source.tag) for e in handled.events} == {
        (str(worker.config.repo_path), "t1")
    }
