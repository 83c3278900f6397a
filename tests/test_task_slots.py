"""A task whose configuration has ``slots`` > 1: the worker's loop runs its cycles at once.

Real repositories, the real task worker (in this process, as tests/test_tasks.py runs it) and
real experiments. Overlap is made certain rather than likely: every experiment after the
baseline waits at a gate (a file) that the test opens only once two experiments wait, so two
cycles are always in execute together. Nothing here asserts a duration; overlap is read from
the order of ``phase:enter``/``phase:exit`` events of the execute phase.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep
from autoresearch.tasks import Task, TaskManager
from tests.conftest import PY, Recorder, base_config, git, make_repo
from tests.test_tasks import home  # noqa: F401  (the autouse fixture: a private AUTORESEARCH_HOME)

pytestmark = pytest.mark.anyio

# Every cycle after the baseline waits for its gate (at most GATE_S, so that a broken test
# ends in a failed assertion rather than a hang; under the 20 s timeout of base_config).
TRAIN = """\
import os, pathlib, sys, time
X = 3.0
GATE_S = 15
cycle = int(os.environ["AUTORESEARCH_CYCLE"])
gate = pathlib.Path(sys.argv[1]) / str(cycle)
deadline = time.monotonic() + GATE_S
while cycle > 1 and not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
print(f"val_bpb: {(X - 1) ** 2 + 1:.6f}")
"""


def worse(index: int) -> ScriptedStep:
    """Cycle ``index``'s change: X moves away from 1, so every candidate is a discard.

    (Nothing is kept after the baseline, so no candidate is ever replayed: every cycle is one
    proposal that reaches the execute phase.)
    """
    value = 3.0 + 0.1 * (index + 1)
    return ScriptedStep(
        description=f"X -> {value:.1f}",
        edits=[Edit(path="train.py", content=TRAIN.replace("X = 3.0", f"X = {value:.1f}"))],
    )


class Gates:
    """Opens the experiments' gates two at a time: each pair is in execute together.

    ``on_pair`` is awaited with each pair of waiting cycles before their gates open; it may
    return ``False`` to leave them shut (the test then stops the task).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.waiting: list[int] = []
        self.pairs: list[tuple[int, int]] = []
        self.on_pair: Callable[[tuple[int, int]], Awaitable[bool]] | None = None

    async def __call__(self, event: Any) -> None:
        if event.type != "autoresearch:phase:enter" or event.phase != "execute":
            return
        if event.cycle == 1:  # the baseline runs alone and has no gate
            return
        self.waiting.append(event.cycle)
        if len(self.waiting) < 2:
            return
        a, b = self.waiting
        self.waiting.clear()
        self.pairs.append((a, b))
        if self.on_pair is not None and not await self.on_pair((a, b)):
            return
        for cycle in (a, b):
            (self.folder / str(cycle)).touch()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"train.py": TRAIN, "program.md": "Lower val_bpb.\n"})


@pytest.fixture
def gates(tmp_path: Path) -> Gates:
    return Gates(tmp_path / "gates")


def setup(recorder: Recorder, gates: Gates) -> TaskManager:
    neurolink = NeuroLink()
    neurolink.get_event_emitter().on("*", recorder)
    neurolink.get_event_emitter().on("autoresearch:phase:enter", gates)

    def proposer(task: Task) -> ScriptedProposer:
        return ScriptedProposer(worse)

    return TaskManager(neurolink=neurolink, proposer_factory=proposer)


def slot_task(repo: Path, gates: Gates, **options: Any) -> dict[str, Any]:
    config = base_config(repo, slots=2, runCommand=f"{PY} train.py {gates.folder}")
    return {"id": "lr", "autoresearch": config, **options}


async def run_until_idle(manager: TaskManager) -> None:
    with anyio.fail_after(90):
        await manager.start_worker(poll_interval=0.05, lease_seconds=2.0, stop_when_idle=True)


def ledger(repo: Path) -> list[dict[str, Any]]:
    lines = (repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def executing(recorder: Recorder) -> list[set[int]]:
    """The cycles in their execute phase after each execute enter/exit, in event order."""
    running: set[int] = set()
    moments: list[set[int]] = []
    for event in recorder.events:
        if getattr(event, "phase", None) != "execute" or not event.type.startswith(
            "autoresearch:phase:"
        ):
            continue
        if event.type.endswith("enter"):
            running.add(event.cycle)
        else:
            running.discard(event.cycle)
        moments.append(set(running))
    return moments


async def test_a_task_with_two_slots_runs_two_cycles_at_once_and_stops_at_max_runs(
    repo: Path, gates: Gates, recorder: Recorder
) -> None:
    manager = setup(recorder, gates)
    await manager.save(slot_task(repo, gates, maxRuns=5))

    await run_until_idle(manager)

    info = await manager.get("lr")
    assert info.status == "completed" and info.reason == "ran 5 cycles (max_runs 5)"
    assert info.cycles == 5 and info.lease is None
    records = ledger(repo)
    assert sorted(r["cycle"] for r in records) == [1, 2, 3, 4, 5]  # exactly max_runs
    assert [r["status"] for r in records] == ["keep"] + ["discard"] * 4
    assert {r["slot"] for r in records[1:]} == {1, 2}
    assert sorted(c.cycle for c in await manager.cycles("lr")) == [1, 2, 3, 4, 5]
    # Two at a time, never more: both cycles of each pair were in execute together.
    moments = executing(recorder)
    assert max(len(m) for m in moments) == 2
    assert sorted(map(sorted, gates.pairs)) == [[2, 3], [4, 5]]
    for a, b in gates.pairs:
        assert {a, b} in moments
    (stopped,) = recorder.of("stopped")
    assert stopped.reason == "max-runs" and stopped.cycles == 5
    assert stopped.message == "task lr: ran 5 cycles (max_runs 5)"
    assert git(repo, "rev-parse", "HEAD") == records[0]["commit"]
    assert git(repo, "status", "--porcelain") == ""


async def test_pausing_a_task_with_cycles_in_flight_then_resuming_loses_none(
    repo: Path, gates: Gates, recorder: Recorder
) -> None:
    manager = setup(recorder, gates)
    await manager.save(slot_task(repo, gates, maxRuns=7))

    async def pause_the_first_pair(pair: tuple[int, int]) -> bool:
        if len(gates.pairs) == 1:  # both cycles wait in execute: pause now, then let them go
            await manager.pause("lr")
        return True

    gates.on_pair = pause_the_first_pair
    await run_until_idle(manager)

    paused = await manager.get("lr")
    assert paused.status == "paused" and paused.lease is None
    assert paused.cycles == 3  # the baseline and the two cycles that were in flight
    assert sorted(r["cycle"] for r in ledger(repo)) == [1, 2, 3]
    assert [e.reason for e in recorder.of("stopped")] == ["paused"]

    assert (await manager.resume("lr")).status == "active"
    await run_until_idle(manager)

    done = await manager.get("lr")
    assert done.status == "completed" and done.reason == "ran 7 cycles (max_runs 7)"
    records = ledger(repo)
    numbers = [r["cycle"] for r in records]
    assert sorted(numbers) == list(range(1, 8)) and len(set(numbers)) == len(numbers)
    history = await manager.cycles("lr")
    assert sorted(c.cycle for c in history) == sorted(numbers) and done.cycles == 7
    by_cycle = {r["cycle"]: r for r in records}
    assert all(c.status == by_cycle[c.cycle]["status"] for c in history)
    assert all(c.commit_hash == by_cycle[c.cycle]["commit"] for c in history)
    assert sorted(map(sorted, gates.pairs)) == [[2, 3], [4, 5], [6, 7]]
    moments = executing(recorder)
    assert all({a, b} in moments for a, b in gates.pairs)  # before and after the pause
    assert [e.reason for e in recorder.of("stopped")] == ["paused", "max-runs"]
    assert git(repo, "status", "--porcelain") == ""


async def test_stop_now_with_two_cycles_in_flight_records_both_once_as_crash(
    repo: Path, gates: Gates, recorder: Recorder
) -> None:
    manager = setup(recorder, gates)
    await manager.save(slot_task(repo, gates))

    async def stop_now(pair: tuple[int, int]) -> bool:
        await manager.stop("lr", now=True)
        return False  # the gates stay shut: the two experiments run until cancelled

    gates.on_pair = stop_now
    await run_until_idle(manager)

    records = ledger(repo)
    assert [r["cycle"] for r in records[:1]] == [1] and records[0]["status"] == "keep"
    crashed = records[1:]
    assert sorted(r["cycle"] for r in crashed) == [2, 3]  # each once
    assert all(r["status"] == "crash" for r in crashed)
    assert all("cancelled in execute" in r["description"] for r in crashed)
    info = await manager.get("lr")
    assert info.status == "stopped" and not info.stop_now and info.lease is None
    assert info.cycles == 3 and info.failures == 0  # cancelled cycles are not failures
    history = await manager.cycles("lr")
    assert sorted((c.cycle, c.status) for c in history) == [(1, "keep"), (2, "crash"), (3, "crash")]
    assert {e.cycle for e in recorder.of("cycle:end")} == {1, 2, 3}
    assert len(recorder.of("cycle:end")) == 3
    (stopped,) = recorder.of("stopped")
    assert stopped.reason == "manual"
    assert (
        stopped.message == "task lr: stopped now: the 2 running cycles were cancelled and recorded"
    )
    assert git(repo, "rev-parse", "HEAD") == records[0]["commit"]
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "train.py").read_text() == TRAIN


async def test_stop_now_seen_between_cycles_still_cancels_the_cycle_in_flight(
    repo: Path, gates: Gates, recorder: Recorder
) -> None:
    # One cycle of the pair ends; `stop --now` comes with its end, so the task reads it when
    # the freed slot asks for the next cycle (the heartbeat, polling every 5 s, has not seen it
    # yet). The other cycle still runs: it is cancelled, not left to finish.
    manager = setup(recorder, gates)
    await manager.save(slot_task(repo, gates))
    first: list[int] = []

    async def let_one_go(pair: tuple[int, int]) -> bool:
        first.append(pair[0])
        (gates.folder / str(pair[0])).touch()
        return False

    async def stop_now_when_it_ends(event: Any) -> None:
        if first and event.cycle == first[0]:
            await manager.stop("lr", now=True)

    gates.on_pair = let_one_go
    manager.neurolink.get_event_emitter().on("autoresearch:cycle:end", stop_now_when_it_ends)
    with anyio.fail_after(90):
        await manager.start_worker(poll_interval=5.0, lease_seconds=30.0, stop_when_idle=True)

    (a,) = first
    records = {r["cycle"]: r for r in ledger(repo)}
    assert sorted(records) == [1, 2, 3]
    (b,) = {2, 3} - {a}
    assert records[a]["status"] == "discard"
    assert records[b]["status"] == "crash" and "cancelled in execute" in records[b]["description"]
    info = await manager.get("lr")
    assert info.status == "stopped" and not info.stop_now and info.cycles == 3
    (stopped,) = recorder.of("stopped")
    assert stopped.reason == "manual"
    assert stopped.message == "task lr: stopped now: the running cycle was cancelled and recorded"
    assert git(repo, "status", "--porcelain") == ""
