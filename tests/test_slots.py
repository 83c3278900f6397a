"""Parallel slots: several candidates at once, each in its own git worktree, one ledger.

Real repositories, real subprocesses. The experiments sleep a little so that candidates overlap;
nothing here asserts a duration (overlap is read from the order of events).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from autoresearch import Analysis, Edit, NeuroLink, ScriptedProposer, ScriptedStep
from autoresearch.proposers.base import Plan, ResearchContext
from tests.conftest import Recorder, base_config, git, make_repo, run_script, snapshot
from tests.test_cli import _wait_for
from tests.test_reliability import assert_invariants
from tests.test_worker import runs

pytestmark = pytest.mark.anyio

# Two knobs on lines far apart, so that changes to each merge cleanly; metric (A-1)²+(B-1)²+1.
TWO = """\
import os, time
A = 3.0



B = 3.0
if os.environ["AUTORESEARCH_CYCLE"] != "1":  # the baseline is quick; the candidates nap
    time.sleep(float(os.environ.get("NAP", "0.3")))
print(f"slot={os.environ['AUTORESEARCH_SLOT']} gpus={os.environ.get('CUDA_VISIBLE_DEVICES')}")
print(f"data={open('data/x').read()}")
print(f"val_bpb: {(A - 1) ** 2 + (B - 1) ** 2 + 1:.6f}")
"""


def knob(name: str, value: float) -> ScriptedStep:
    """Set one knob in the file the proposer was shown (the best commit of that moment)."""

    def edits(context: ResearchContext) -> list[Edit]:
        text = context.mutable_files["train.py"]
        return [
            Edit(
                path="train.py",
                content=re.sub(rf"^{name} = .*$", f"{name} = {value}", text, flags=re.M),
            )
        ]

    return ScriptedStep(f"{name} -> {value}", edits)


@pytest.fixture
def two(tmp_path: Path) -> Path:
    repo = make_repo(
        tmp_path / "repo", {"train.py": TWO, "program.md": "p\n", ".gitignore": "data/\n"}
    )
    (repo / "data").mkdir()
    (repo / "data" / "x").write_text("shared")  # ignored: the slots reach it through a link
    return repo


def worker(repo: Path, steps: list[ScriptedStep], recorder: Recorder | None = None, **extra: Any):
    neurolink = NeuroLink()
    if recorder is not None:
        neurolink.get_event_emitter().on("*", recorder)
    config = base_config(repo, **{"slots": 2, **extra})
    return neurolink.create_research_worker(config, proposer=ScriptedProposer(steps))


def overlapped(recorder: Recorder, a: int, b: int) -> bool:
    """Whether cycles ``a`` and ``b`` were both in their execute phase at some moment."""
    running: set[int] = set()
    for event in recorder.events:
        if getattr(event, "phase", None) != "execute":
            continue
        if event.type.endswith("enter"):
            running.add(event.cycle)
            if {a, b} <= running:
                return True
        else:
            running.discard(event.cycle)
    return False


async def test_two_slots_run_at_once_and_the_users_checkout_only_moves_on_a_keep(
    two: Path, recorder: Recorder
) -> None:
    w = worker(two, [knob("A", 2.0), knob("A", 5.0)], recorder, gpus=[3, 5])
    results = await w.run(max_cycles=3)
    await w.aclose()
    assert [r.status for r in sorted(results, key=lambda r: r.cycle)] == [
        "keep",
        "keep",
        "discard",
    ]
    assert overlapped(recorder, 2, 3)
    records = {r["cycle"]: r for r in runs(two)}
    assert {records[2]["slot"], records[3]["slot"]} == {1, 2}
    # The user's checkout: on the branch, at the kept candidate, never the discarded one.
    assert git(two, "symbolic-ref", "--short", "HEAD") == "autoresearch/t1"
    assert "A = 2.0" in (two / "train.py").read_text()
    assert git(two, "status", "--porcelain") == ""
    # Each run saw its slot, its GPU and the shared (ignored) data.
    for cycle in (2, 3):
        log = (two / ".autoresearch" / "logs" / f"{cycle}.log").read_text()
        slot = records[cycle]["slot"]
        assert f"slot={slot} gpus={[3, 5][slot - 1]}" in log
        assert "data=shared" in log
    assert_invariants(two)


async def test_a_winner_whose_parent_went_stale_is_replayed_on_the_new_best(
    two: Path,
) -> None:
    w = worker(two, [knob("A", 2.0), knob("B", 2.0)])
    results = await w.run(max_cycles=3)  # the baseline, then both at once
    results += await w.run(max_cycles=1)  # a queued replay goes before any new proposal
    await w.aclose()
    records = {r["cycle"]: r for r in runs(two)}
    first, second = (
        (records[2], records[3])
        if records[2]["status"] == "keep"
        else (
            records[3],
            records[2],
        )
    )
    assert first["status"] == "keep" and first["metric"] == 6.0
    # The other one beat its parent (9.0) but its parent was no longer the best: not kept as
    # measured, replayed on top of the new best and measured there.
    assert second["status"] == "discard" and "replayed on the new best" in second["description"]
    replay = records[4]
    assert replay["replayOf"] == second["cycle"] and replay["status"] == "keep"
    assert replay["metric"] == 3.0 and replay["parentCommit"] == first["commit"]
    text = (two / "train.py").read_text()
    assert "A = 2.0" in text and "B = 2.0" in text
    assert len(results) == 4
    assert_invariants(two)


async def test_a_stale_winner_that_conflicts_is_discarded_with_the_paths(two: Path) -> None:
    w = worker(two, [knob("A", 2.0), knob("A", 1.5)])
    await w.run(max_cycles=3)
    await w.aclose()
    records = {r["cycle"]: r for r in runs(two)}
    losers = [r for r in records.values() if r["cycle"] > 1 and r["status"] == "discard"]
    assert len(losers) == 1
    assert "conflicts with it (train.py)" in losers[0]["description"]
    assert_invariants(two)


async def test_a_timeout_in_one_slot_never_stops_the_other(two: Path) -> None:
    slow = knob("B", 2.0)
    slow_edit = slow.edits
    assert callable(slow_edit)

    def sleepy(context: ResearchContext) -> list[Edit]:
        [edit] = slow_edit(context)
        return [Edit(path="train.py", content=edit.content.replace('"0.3"', '"30"'))]

    w = worker(two, [ScriptedStep("B -> 2.0, slowly", sleepy), knob("A", 2.0)], timeoutMs=3000)
    await w.run(max_cycles=3)
    await w.aclose()
    statuses = {r["description"].split(" (")[0]: r["status"] for r in runs(two)}
    assert statuses["B -> 2.0, slowly"] == "timeout"
    assert statuses["A -> 2.0"] == "keep"
    assert_invariants(two)


class Watching(ScriptedProposer):
    """A scripted proposer that remembers what it was told was in flight."""

    def __init__(self, steps: list[ScriptedStep]) -> None:
        super().__init__(steps)
        self.seen: list[list[str]] = []

    async def plan(self, context: ResearchContext, analysis: Analysis, hint: str | None) -> Plan:
        self.seen.append([p.description for p in analysis.in_flight])
        return await super().plan(context, analysis, hint)


async def test_the_proposer_is_told_what_is_in_flight(two: Path) -> None:
    proposer = Watching([knob("A", 2.0), knob("B", 2.0)])
    w = NeuroLink().create_research_worker(base_config(two, slots=2), proposer=proposer)
    await w.run(max_cycles=3)
    await w.aclose()
    assert proposer.seen == [[], ["A -> 2.0"]]


async def test_the_local_proposer_never_proposes_what_runs_in_another_slot(two: Path) -> None:
    w = NeuroLink().create_research_worker(base_config(two, slots=3, immutablePaths=[]))
    await w.run(max_cycles=7)
    await w.aclose()
    proposals = [
        json.dumps(r["proposal"]["params"], sort_keys=True)
        for r in runs(two)
        if r.get("proposal") and not r.get("replayOf")
    ]
    assert len(proposals) == len(set(proposals)) >= 4
    assert_invariants(two)


KILL_WITH_SLOTS_BUSY = """\
import os, signal, sys, anyio
from pathlib import Path
from autoresearch import NeuroLink, ScriptedProposer
from tests.conftest import base_config
from tests.test_slots import knob

repo = Path(sys.argv[1])

async def main():
    neurolink = NeuroLink()
    busy = set()
    def note(event):
        if event.phase == "execute":
            busy.add(event.cycle)
            if len(busy) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
    neurolink.get_event_emitter().on("autoresearch:phase:enter", note)
    steps = [knob("A", 2.0), knob("B", 2.0), knob("A", 1.5)]
    worker = neurolink.create_research_worker(
        base_config(repo, slots=3), proposer=ScriptedProposer(steps)
    )
    await worker.run(max_cycles=4)

anyio.run(main)
"""


async def test_kill_9_with_three_slots_busy_then_every_cycle_is_recorded_once(
    two: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The baseline first, quickly; then three slow candidates at once, and kill -9.
    monkeypatch.setenv("NAP", "0")
    quick = worker(two, [])
    await quick.run_experiment_cycle()
    await quick.aclose()
    monkeypatch.setenv("NAP", "30")
    proc = run_script(KILL_WITH_SLOTS_BUSY, two.parent / "kill_slots.py", str(two))
    assert proc.returncode == -9, proc.stderr
    state = json.loads((two / ".autoresearch" / "state.json").read_text())
    assert sorted(r["cycle"] for r in state["inFlight"]) == [2, 3, 4]
    assert _runs_of(two), "kill -9 of the engine leaves its experiments running"

    monkeypatch.setenv("NAP", "0")
    again = worker(two, [])
    await again.prepare()
    await again.aclose()
    assert _runs_of(two) == []
    records = runs(two)
    assert [r["cycle"] for r in records] == [1, 2, 3, 4]
    for record in records[1:]:
        assert record["status"] == "crash"
        assert "interrupted in execute (slot" in record["description"]
    assert_invariants(two)


def _runs_of(repo: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("AUTORESEARCH_TAG") == "t1" and str(repo) in proc.cwd():
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


async def test_fewer_slots_later_removes_the_extra_checkouts(two: Path) -> None:
    w = worker(two, [knob("A", 2.0), knob("B", 2.0)], slots=3)
    await w.run(max_cycles=3)
    await w.aclose()
    worktrees = two / ".autoresearch" / "worktrees"
    assert sorted(p.name for p in worktrees.iterdir()) == ["1", "2"]
    one = worker(two, [knob("A", 1.5)], slots=1)
    await one.run_experiment_cycle()
    await one.aclose()
    assert list(worktrees.iterdir()) == []
    assert "autoresearch-t1" not in git(two, "worktree", "list")


async def test_slots_one_is_the_single_cycle_engine(repo: Path) -> None:
    w = NeuroLink().create_research_worker(base_config(repo), proposer=ScriptedProposer([]))
    await w.run_experiment_cycle()
    await w.aclose()
    record = runs(repo)[0]  # runs.jsonl lines as before slots existed: no slot key
    assert "slot" not in record and not (repo / ".autoresearch" / "worktrees").exists()


def test_the_cli_sets_slots_and_gpus_and_refuses_too_few_gpus(two: Path) -> None:
    from typer.testing import CliRunner

    from autoresearch.cli import app

    common = ["--target", "train.py", "--run-command", "python3 train.py"]
    common += ["--metric-name", "val_bpb", "--tag", "t1"]
    runner = CliRunner()
    before = snapshot(two)
    bad = runner.invoke(app, ["init", str(two), *common, "--slots", "4", "--gpus", "0,1"])
    assert bad.exit_code == 2
    assert "4 slot(s) x 1 GPU(s) per slot need 4 GPUs, but only 2 are listed" in bad.stderr
    assert snapshot(two) == before
    bad = runner.invoke(app, ["init", str(two), *common, "--gpus", "0,x"])
    assert bad.exit_code == 2 and "'x' is not a GPU index" in bad.stderr
    ok = runner.invoke(
        app, ["init", str(two), *common, "--slots", "2", "--gpus", "2,3", "--gpus", "4,5"]
    )
    assert ok.exit_code == 0, ok.stderr
    config = json.loads((two / ".autoresearch" / "config.json").read_text())
    assert (config["slots"], config["gpus"], config["gpusPerSlot"]) == (2, [2, 3, 4, 5], 1)
    ran = runner.invoke(app, ["run", str(two), "--max-runs", "3", "-q", "--gpus-per-slot", "2"])
    assert ran.exit_code == 0, ran.stderr
    logs = two / ".autoresearch" / "logs"
    seen = {(logs / f"{n}.log").read_text().split("\n")[0] for n in (2, 3)}
    assert seen == {"slot=1 gpus=2,3", "slot=2 gpus=4,5"}
    status = runner.invoke(app, ["status", str(two), "--json"])
    assert json.loads(status.stdout)["inFlight"] == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_a_signal_with_slots_busy_stops_every_slot_and_records_each_cycle_once(
    two: Path, signum: int
) -> None:
    args = ["--target", "train.py", "--run-command", f"{sys.executable} train.py"]
    args += ["--metric-name", "val_bpb", "--tag", "t1", "--slots", "2"]
    init = subprocess.run(
        [sys.executable, "-m", "autoresearch", "init", str(two), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    state_path = two / ".autoresearch" / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", str(two), "--quiet"],
        env={**os.environ, "NAP": "30"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _executing(state_path) == 2)
        busy = _runs_of(two)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    records = runs(two)
    assert sorted(r["cycle"] for r in records) == [1, 2, 3]
    for record in records[1:]:
        assert record["status"] == "crash" and "cancelled in execute" in record["description"]
    assert busy and _runs_of(two) == []  # every slot's run was killed
    state = json.loads(state_path.read_text())
    assert state["inFlight"] == [] and state["phase"] == "idle"
    assert git(two, "status", "--porcelain") == ""


def _executing(state_path: Path) -> int:
    """How many slots state.json says are in their execute phase."""
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return 0
    return sum(entry["phase"] == "execute" for entry in state.get("inFlight", []))


async def test_slots_finishing_together_never_break_run_log(tmp_path: Path) -> None:
    from autoresearch.workspace import Workspace

    workspace = Workspace(tmp_path)
    workspace.logs_dir.mkdir(parents=True)
    for cycle in range(1, 9):
        workspace.log_path(cycle).write_text(f"log {cycle}\n")
    for _ in range(50):  # eight slots finishing at the same moment, again and again
        async with anyio.create_task_group() as group:
            for cycle in range(1, 9):
                group.start_soon(workspace.publish_log, cycle)
    assert workspace.run_log.read_text() in {f"log {n}\n" for n in range(1, 9)}
    assert not list(workspace.dir.glob(".run.log*.tmp"))


async def test_a_sandboxed_run_works_in_its_slots_checkout(two: Path) -> None:
    """With bwrap, each slot's run still starts in the slot's worktree, never the user's."""
    from tests.conftest import tool

    tool("bwrap", "bubblewrap", linux_only=True)
    script = TWO.replace('print(f"data=', 'print(f"cwd={os.getcwd()}")\nprint(f"data=')
    (two / "train.py").write_text(script)
    git(two, "commit", "-qam", "print the working directory")
    w = worker(two, [knob("A", 2.0), knob("B", 2.0)], sandbox="bwrap")
    results = await w.run(max_cycles=3)
    await w.aclose()
    assert all(r.status in ("keep", "discard") for r in results), results
    logs = two / ".autoresearch" / "logs"
    worktrees = (two / ".autoresearch" / "worktrees").resolve()
    for cycle in (2, 3):
        found = re.search(r"^cwd=(.*)$", (logs / f"{cycle}.log").read_text(), re.M)
        assert found is not None
        assert Path(found.group(1)).resolve().parent == worktrees, found.group(1)
