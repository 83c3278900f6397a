"""The public API used the way README.md and the docs use it, in both spellings.

``tests/test_type_checkers.py`` runs mypy --strict and pyright (strict) over this file: both
must accept every line. Never run; only type-checked.
"""

from __future__ import annotations

import anyio

from autoresearch import (
    ConfigError,
    CycleEndEvent,
    CycleResult,
    NeuroLink,
    ResearchConfig,
    ResearchOptions,
    Stop,
    load_config,
)


async def python_spelling() -> CycleResult:
    neurolink = NeuroLink()
    worker = neurolink.create_research_worker(
        repo_path="/path/to/repo",
        mutable_paths=["train.py"],
        immutable_paths=["program.md"],
        run_command="python3 train.py",
        metric={"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)", "direction": "lower"},
        timeout_ms=120_000,
    )
    emitter = neurolink.get_event_emitter()
    emitter.on("autoresearch:cycle:end", lambda e: print(e.cycle, e.status, e.metric_value))
    result = await worker.run_experiment_cycle("Reduce validation loss")
    print(result.status, result.metric_value, result.commit_hash)
    await worker.run(max_cycles=20)
    return result


async def neurolink_spelling() -> float | None:
    neurolink = NeuroLink(provider="anthropic", model="claude-sonnet-4-5")
    worker = neurolink.createResearchWorker(
        repoPath="/path/to/repo",
        mutablePaths=["train.py"],
        runCommand="python3 train.py",
        metric={"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)", "direction": "lower"},
        timeoutMs=120_000,
    )
    neurolink.getEventEmitter().on("autoresearch:cycle:end", lambda e: print(e.cycle, e.status))
    result = await worker.runExperimentCycle("try a warmup")
    print(result.status, result.metricValue, result.commitHash, result.bestMetric)
    return result.metricValue


async def configurations() -> None:
    config = ResearchConfig(
        repoPath="/path/to/repo",
        mutablePaths=["train.py"],
        runCommand="python3 train.py",
        metric={"name": "val_bpb"},
    )
    same = ResearchConfig(
        repo_path="/path/to/repo",
        mutable_paths=("train.py",),
        run_command="python3 train.py",
        metric={"name": "val_bpb", "direction": "higher"},
        sandbox="bwrap",
        gpus=[0, 1],
    )
    timeout: int = config.timeoutMs + same.timeout_ms
    print(config.repoPath, config.mutablePaths, config.branch, timeout)
    neurolink = NeuroLink()
    worker = neurolink.create_research_worker(config, timeout_ms=60_000, tag="run1")
    print(worker.config.tag)
    saved = await neurolink.load_research_worker("/path/to/repo", timeoutMs=30_000)
    await neurolink.init_research(config, force=True, minImprovement=0.01)
    print(load_config(config, max_repairs=2).max_repairs, saved.config.killGraceMs)

    options: ResearchOptions = {"repoPath": "/path/to/repo", "runCommand": "python3 train.py"}
    neurolink.create_research_worker(**options)
    try:
        neurolink.create_research_worker({"repoPath": "/path/to/repo"})
    except ConfigError as exc:
        print(exc.field)


async def events_and_stops(result: CycleResult, event: CycleEndEvent) -> Stop | None:
    print(event.metricValue, event.commitHash, event.durationMs, result.durationMs)
    return Stop("manual", "enough") if result.status == "keep" else None


anyio.run(python_spelling)
