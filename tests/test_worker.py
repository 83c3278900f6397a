"""The research cycle end to end: real repos, real subprocesses, the scripted proposer."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import anyio
import pygit2
import pytest

from autoresearch import (
    Edit,
    NeuroLink,
    ResearchWorker,
    ScriptedProposer,
    ScriptedStep,
    Usage,
)
from tests.conftest import PY, TRAIN, Recorder, base_config, git

pytestmark = pytest.mark.anyio

NINE_PHASES = [  # the seed's order, written out so a change to the engine's list is caught
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


def set_x(value: float, **extra: float) -> ScriptedStep:
    """A step that sets X (and any other module constant) in train.py."""

    def edits(context: object) -> list[Edit]:
        text = TRAIN.replace("X = 3.0", f"X = {value}")
        for name, v in extra.items():
            text = re.sub(rf"^{name} = .*$", f"{name} = {v}", text, flags=re.MULTILINE)
        return [Edit(path="train.py", content=text)]

    label = ", ".join([f"X -> {value}", *(f"{k} -> {v}" for k, v in extra.items())])
    return ScriptedStep(description=label, edits=edits)


def worker_for(
    repo: Path, steps: list[ScriptedStep], recorder: Recorder | None = None, **overrides: object
) -> ResearchWorker:
    neurolink = NeuroLink()
    if recorder is not None:
        neurolink.get_event_emitter().on("*", recorder)
    config = {k: v for k, v in base_config(repo, **overrides).items() if v is not None}
    return neurolink.create_research_worker(config, proposer=ScriptedProposer(steps))


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def runs(repo: Path) -> list[dict[str, object]]:
    lines = (repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


async def test_baseline_then_keep_then_discard(repo: Path, recorder: Recorder) -> None:
    worker = worker_for(repo, [set_x(2.0), set_x(2.5)], recorder)
    original = (repo / "train.py").read_bytes()

    base = await worker.run_experiment_cycle()
    assert (base.status, base.cycle, base.baseline, base.description) == (
        "keep",
        1,
        True,
        "baseline",
    )
    assert base.metric_value == pytest.approx(5.0)
    assert base.commitHash == head(repo)
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "autoresearch/t1"

    kept = await worker.runExperimentCycle("try X=2")
    assert kept.status == "keep"
    assert kept.metricValue == pytest.approx(2.0)
    assert kept.commit_hash == head(repo)
    assert "X = 2.0" in (repo / "train.py").read_text()
    best_bytes = (repo / "train.py").read_bytes()
    assert best_bytes != original

    discarded = await worker.run_experiment_cycle()
    assert discarded.status == "discard"
    assert discarded.metric_value == pytest.approx(3.25)
    # The tree is back at the best commit byte for byte; the candidate stays reachable.
    assert head(repo) == kept.commit_hash
    assert (repo / "train.py").read_bytes() == best_bytes
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "refs/autoresearch/t1/3") == discarded.commit_hash
    assert discarded.commit_hash != kept.commit_hash

    state = json.loads((repo / ".autoresearch" / "state.json").read_text())
    assert state["cycleCount"] == 3
    assert state["keepCount"] == 2
    assert state["bestMetric"] == pytest.approx(2.0)
    assert state["baselineMetric"] == pytest.approx(5.0)
    assert state["bestCommit"] == kept.commit_hash
    assert state["lastStatus"] == "discard"
    assert state["phase"] == "idle"
    assert state["branch"] == "autoresearch/t1"

    tsv = (repo / ".autoresearch" / "results.tsv").read_text().splitlines()
    assert tsv[0] == "commit\tval_bpb\tmemory_gb\tstatus\tdescription"
    assert tsv[1].split("\t")[:2] == [base.commit_hash[:7], "5.000000"]
    assert tsv[2].split("\t")[3:] == ["keep", "X -> 2.0"]
    assert tsv[3].split("\t")[3] == "discard"

    records = runs(repo)
    assert [r["cycle"] for r in records] == [1, 2, 3]
    assert records[2]["parentCommit"] == kept.commit_hash
    assert list(records[0]["phaseDurationsMs"]) == NINE_PHASES
    assert records[1]["logPath"] == ".autoresearch/logs/2.log"
    assert "val_bpb: 2.000000" in (repo / ".autoresearch" / "logs" / "2.log").read_text()
    assert "val_bpb: 3.250000" in (repo / ".autoresearch" / "run.log").read_text()
    # .autoresearch/ is excluded through .git/info/exclude, never through .gitignore
    assert "/.autoresearch/" in (repo / ".git" / "info" / "exclude").read_text()
    assert not (repo / ".gitignore").exists()


async def test_event_order_and_payloads(repo: Path, recorder: Recorder) -> None:
    worker = worker_for(repo, [set_x(4.0)], recorder)
    await worker.run(max_cycles=2, hint="lower it")
    cycle_two = [
        e.type.removeprefix("autoresearch:")
        for e in recorder.events
        if getattr(e, "cycle", None) == 2
    ]
    assert cycle_two == [
        "cycle:start",
        "phase:enter",
        "phase:exit",  # bootstrap
        "phase:enter",
        "phase:exit",  # analyze
        "phase:enter",
        "phase:exit",  # plan
        "phase:enter",
        "phase:exit",  # implement
        "phase:enter",
        "phase:exit",  # validate
        "phase:enter",
        "commit:created",
        "phase:exit",
        "phase:enter",
        "phase:exit",  # execute
        "phase:enter",
        "metric:recorded",
        "phase:exit",
        "phase:enter",
        "commit:reverted",
        "phase:exit",
        "cycle:end",
    ]
    entered = [e.phase for e in recorder.of("phase:enter") if e.cycle == 2]
    assert entered == NINE_PHASES

    start = recorder.of("cycle:start")[1]
    assert (start.cycle, start.tag, start.hint) == (2, "t1", "lower it")
    baseline_exits = [e for e in recorder.of("phase:exit") if e.cycle == 1]
    assert {e.phase: e.outcome for e in baseline_exits}["plan"] == "skipped"
    assert {e.phase: e.outcome for e in baseline_exits}["execute"] == "ok"
    metric = recorder.of("metric:recorded")[1]
    assert (metric.name, metric.value, metric.best_value, metric.improved) == (
        "val_bpb",
        pytest.approx(10.0),
        pytest.approx(5.0),
        False,
    )
    created = recorder.of("commit:created")[0]
    assert created.files == ["train.py"] and created.description == "X -> 4.0"
    reverted = recorder.of("commit:reverted")[0]
    assert reverted.commit_hash == created.commit_hash
    assert reverted.restored_to == recorder.of("cycle:end")[0].commit_hash
    end = recorder.of("cycle:end")[1]
    assert (end.status, end.metricValue, end.commitHash) == ("discard", 10.0, created.commitHash)
    assert end.duration_ms >= 0
    stopped = recorder.of("stopped")
    assert [(s.reason, s.cycles) for s in stopped] == [("max-runs", 2)]


async def test_tie_is_discarded_and_min_improvement(repo: Path) -> None:
    worker = worker_for(repo, [set_x(3.0, SLEEP=0.001), set_x(2.99)], minImprovement=0.5)
    await worker.run_experiment_cycle()
    tie = await worker.run_experiment_cycle()
    assert tie.status == "discard" and tie.metric_value == pytest.approx(5.0)
    small = await worker.run_experiment_cycle()
    assert small.status == "discard"  # 4.9601 is better, but not by more than 0.5


async def test_higher_is_better(repo: Path) -> None:
    worker = worker_for(
        repo,
        [set_x(4.0), set_x(2.0)],
        metric={"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)", "direction": "higher"},
    )
    await worker.run_experiment_cycle()
    up = await worker.run_experiment_cycle()
    down = await worker.run_experiment_cycle()
    assert (up.status, down.status) == ("keep", "discard")
    assert worker.state is not None and worker.state.best_metric == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("step", "why"),
    [
        (set_x(2.0, EXIT=3), "exit code 3"),
        (
            ScriptedStep("no metric", [Edit(path="train.py", content="print('hello')\n")]),
            "no val_bpb",
        ),
        (
            ScriptedStep("nan", [Edit(path="train.py", content="print('val_bpb: nan')\n")]),
            "val_bpb is not a finite number ('nan')",
        ),
    ],
)
async def test_crash_restores_best(repo: Path, step: ScriptedStep, why: str) -> None:
    worker = worker_for(
        repo,
        [step],
        metric={"name": "val_bpb", "pattern": r"^val_bpb:\s+(\S+)", "direction": "lower"},
    )
    base = await worker.run_experiment_cycle()
    before = (repo / "train.py").read_bytes()
    result = await worker.run_experiment_cycle()
    assert result.status == "crash"
    assert why in result.description
    assert head(repo) == base.commit_hash
    assert (repo / "train.py").read_bytes() == before
    assert git(repo, "status", "--porcelain") == ""


async def test_timeout_kills_and_records(repo: Path, recorder: Recorder) -> None:
    worker = worker_for(repo, [set_x(2.0, SLEEP=60)], recorder, timeoutMs=3_000, killGraceMs=200)
    await worker.run_experiment_cycle()
    result = await worker.run_experiment_cycle()
    assert result.status == "timeout"
    timeout = recorder.of("timeout")[0]
    assert timeout.timeout_ms == 3_000 and timeout.elapsed_ms >= 3_000
    assert git(repo, "status", "--porcelain") == ""
    assert "X = 3.0" in (repo / "train.py").read_text()


async def test_invalid_syntax_nothing_committed(repo: Path) -> None:
    broken = ScriptedStep("break it", [Edit(path="train.py", search="X = 3.0", replace="X = = 2")])
    worker = worker_for(repo, [broken], maxRepairs=0)
    base = await worker.run_experiment_cycle()
    result = await worker.run_experiment_cycle()
    assert result.status == "invalid"
    assert "syntax error" in result.description
    assert head(repo) == base.commit_hash
    assert (repo / "train.py").read_text() == TRAIN
    assert git(repo, "status", "--porcelain") == ""
    assert runs(repo)[1]["exitCode"] is None  # nothing ran


async def test_repair_round_fixes_the_edit(repo: Path) -> None:
    step = ScriptedStep(
        "X to 2",
        [Edit(path="train.py", search="X = 2.0", replace="X = 1.5")],  # does not match
        repairs=[[Edit(path="train.py", search="X = 3.0", replace="X = 2.0")]],
    )
    worker = worker_for(repo, [step])
    await worker.run_experiment_cycle()
    result = await worker.run_experiment_cycle()
    assert result.status == "keep" and result.metric_value == pytest.approx(2.0)


@pytest.mark.parametrize(
    "edit",
    [
        Edit(path="program.md", content="hacked"),
        Edit(path="../outside.py", content="x = 1"),
        Edit(path="/etc/passwd", content="x"),
        Edit(path=".git/config", content="x"),
        Edit(path=".autoresearch/state.json", content="{}"),
        Edit(path="other.py", content="x = 1"),
    ],
)
async def test_refused_edits_are_invalid_and_write_nothing(repo: Path, edit: Edit) -> None:
    worker = worker_for(repo, [ScriptedStep("bad", [edit])])
    await worker.run_experiment_cycle()
    before = {p: p.read_bytes() for p in repo.iterdir() if p.is_file()}
    result = await worker.run_experiment_cycle()
    assert result.status == "invalid"
    assert "refused" in result.description
    assert {p: p.read_bytes() for p in repo.iterdir() if p.is_file()} == before
    assert not (repo.parent / "outside.py").exists()
    assert git(repo, "status", "--porcelain") == ""


async def test_empty_change_is_invalid(repo: Path) -> None:
    worker = worker_for(repo, [ScriptedStep("noop", [Edit(path="train.py", content=TRAIN)])])
    await worker.run_experiment_cycle()
    result = await worker.run_experiment_cycle()
    assert result.status == "invalid" and "empty" in result.description


async def test_proposer_failure_is_invalid(repo: Path) -> None:
    worker = worker_for(repo, [ScriptedStep("x", [], fail="model said nonsense")])
    await worker.run_experiment_cycle()
    result = await worker.run_experiment_cycle()
    assert result.status == "invalid" and "model said nonsense" in result.description


async def test_failing_handler_reported_once_and_cycle_continues(
    repo: Path, recorder: Recorder
) -> None:
    neurolink = NeuroLink()
    emitter = neurolink.get_event_emitter()
    emitter.on("*", recorder)

    def broken(event: object) -> None:
        raise RuntimeError("handler bug")

    emitter.on("autoresearch:cycle:start", broken)
    worker = neurolink.create_research_worker(base_config(repo), proposer=ScriptedProposer([]))
    result = await worker.run_experiment_cycle()
    assert result.status == "keep"
    errors = recorder.of("error")
    assert len(errors) == 1
    assert errors[0].error_type == "RuntimeError" and "handler bug" in errors[0].message


async def test_memory_pattern_and_env(repo: Path) -> None:
    script = (
        "import os\n"
        "print('val_bpb: 1.5')\n"
        "print('cycle', os.environ['AUTORESEARCH_CYCLE'], os.environ['AUTORESEARCH_TAG'],"
        " os.environ['AUTORESEARCH_COMMIT'])\n"
        "print('peak_vram_mb: 3072.0')\n"
    )
    (repo / "train.py").write_text(script)
    git(repo, "commit", "-qam", "env script")
    worker = worker_for(repo, [], memory={"pattern": r"^peak_vram_mb:\s+([\d.]+)", "unit": "mb"})
    result = await worker.run_experiment_cycle()
    assert result.memory_gb == pytest.approx(3.0)
    log = (repo / ".autoresearch" / "logs" / "1.log").read_text()
    assert f"cycle 1 t1 {result.commit_hash}" in log
    assert (repo / ".autoresearch" / "results.tsv").read_text().splitlines()[1].split("\t")[
        2
    ] == "3.0"


async def test_run_stops_on_request_and_on_cancel(repo: Path, recorder: Recorder) -> None:
    worker = worker_for(repo, [set_x(2.0), set_x(2.5, SLEEP=30), set_x(1.5)], recorder)

    def stop_after_two(event: object) -> None:
        if getattr(event, "cycle", 0) == 2:
            worker.stop()

    worker.emitter.on("autoresearch:cycle:end", stop_after_two)
    results = await worker.run()
    assert [r.status for r in results] == ["keep", "keep"]
    assert recorder.of("stopped")[-1].reason == "manual"
    best = head(repo)

    async def cancel_when_running(event: object) -> None:
        if getattr(event, "phase", None) == "execute":
            await anyio.sleep(0.5)
            scope.cancel()

    worker.emitter.on("autoresearch:phase:enter", cancel_when_running)
    with anyio.CancelScope() as scope:
        await worker.run()
    assert scope.cancelled_caught
    assert recorder.of("stopped")[-1].reason == "cancelled"
    # The cancelled cycle is recorded, the tree is back at the best commit.
    last = runs(repo)[-1]
    assert last["status"] == "crash" and "cancelled in" in str(last["description"])
    assert head(repo) == best
    assert git(repo, "status", "--porcelain") == ""
    assert recorder.of("cycle:end")[-1].status == "crash"
    state = json.loads((repo / ".autoresearch" / "state.json").read_text())
    assert state["cycleCount"] == 3 and state["phase"] == "idle"


async def test_a_new_worker_continues_the_research(repo: Path) -> None:
    first = worker_for(repo, [set_x(2.0)])
    await first.run(max_cycles=2)
    await first.aclose()
    second = worker_for(repo, [set_x(1.5)], tag=None)
    result = await second.run_experiment_cycle()
    assert (result.cycle, result.status, result.baseline) == (3, "keep", False)


async def test_usage_is_recorded(repo: Path) -> None:
    step = set_x(2.0)
    step.usage = Usage(input_tokens=100, output_tokens=20, calls=1)
    worker = worker_for(repo, [step])
    await worker.run_experiment_cycle()
    result = await worker.run_experiment_cycle()
    assert result.usage is not None and result.usage.total_tokens == 120
    assert runs(repo)[1]["usage"]["inputTokens"] == 100


async def test_metric_found_after_large_output(repo: Path) -> None:
    script = "import sys\nfor _ in range(200000): print('x' * 60)\nprint('val_bpb: 1.25')\n"
    (repo / "train.py").write_text(script)
    git(repo, "commit", "-qam", "noisy")
    result = await worker_for(repo, []).run_experiment_cycle()
    assert result.metric_value == pytest.approx(1.25)
    assert not math.isnan(result.metric_value)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_core_cycle_on_trio(repo: Path) -> None:
    worker = worker_for(repo, [set_x(2.0), set_x(2.5)])
    results = await worker.run(max_cycles=3)
    assert [r.status for r in results] == ["keep", "keep", "discard"]
    repo_obj = pygit2.Repository(str(repo))
    assert str(repo_obj.head.target) == results[1].commit_hash


async def test_run_gives_up_on_a_proposer_that_cannot_help(repo: Path, recorder: Recorder) -> None:
    steps = [ScriptedStep("x", [], fail="nothing to tune") for _ in range(30)]
    worker = worker_for(repo, steps, recorder)
    results = await worker.run(max_cycles=30)
    assert len(results) == 11  # the baseline, then ten invalid cycles in a row
    stopped = recorder.of("stopped")[-1]
    assert stopped.reason == "error" and "10 invalid cycles in a row" in stopped.message


async def test_run_gives_up_when_the_baseline_keeps_failing(repo: Path, recorder: Recorder) -> None:
    worker = worker_for(repo, [], recorder, runCommand=f"{PY} -c 'raise SystemExit(1)'")
    results = await worker.run(max_cycles=10)
    assert [r.status for r in results] == ["crash"] * 3
    assert all(r.baseline for r in results)
    assert "baseline" in recorder.of("stopped")[-1].message


async def test_a_slow_handler_cannot_hold_up_the_cleanup_after_a_cancel(repo: Path) -> None:
    neurolink = NeuroLink()
    finished: list[str] = []
    started: list[str] = []

    async def slow(event: object) -> None:
        kind = getattr(event, "type", "")
        started.append(kind)
        late = getattr(event, "cycle", None) == 2 or kind == "autoresearch:stopped"
        if late and kind in ("autoresearch:cycle:end", "autoresearch:stopped"):
            await anyio.sleep(4)  # a handler that takes its time
        finished.append(kind)

    neurolink.get_event_emitter().on("*", slow)
    slow_run = TRAIN.replace("SLEEP = 0.0", "SLEEP = 30.0")
    steps = [ScriptedStep("slow", [Edit(path="train.py", content=slow_run)])]
    worker = neurolink.create_research_worker(base_config(repo), proposer=ScriptedProposer(steps))
    await worker.run_experiment_cycle()
    with anyio.move_on_after(1.0):
        await worker.run()
    await worker.aclose()
    # The cycle was recorded and announced, but the handler was cut off, not awaited for 4 s.
    assert runs(repo)[-1]["status"] == "crash"
    assert "autoresearch:cycle:end" in started and "autoresearch:stopped" in started
    assert started.count("autoresearch:cycle:end") == 2  # the baseline's, the cancelled one's
    assert finished.count("autoresearch:cycle:end") == 1  # only the baseline's ran to its end
    assert "autoresearch:stopped" not in finished
