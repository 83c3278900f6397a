"""The task manager in one process: save, the worker loop, budgets, statuses, bad input, the CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from autoresearch import ConfigError, Edit, NeuroLink, ScriptedProposer, ScriptedStep, Usage
from autoresearch.cli.tasks import REPO_COMMANDS, task_app
from autoresearch.errors import AuthenticationError, ServerError, TaskError
from autoresearch.tasks import (
    SCHEMA_VERSION,
    ModelPrice,
    Task,
    TaskManager,
    current_task_id,
    load_task,
    price_for,
)
from tests.conftest import PY, Recorder, base_config, git, make_repo, snapshot

pytestmark = pytest.mark.anyio

TRAIN = 'X = 3.0\nprint(f"val_bpb: {(X - 1) ** 2 + 1:.6f}")\n'


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own AUTORESEARCH_HOME (the real one is never touched)."""
    folder = tmp_path / "ar-home"
    monkeypatch.setenv("AUTORESEARCH_HOME", str(folder))
    return folder


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"train.py": TRAIN, "program.md": "Lower val_bpb.\n"})


def step(index: int, tokens: int = 0) -> ScriptedStep:
    """Cycle ``index``'s scripted change: X walks down towards 1 (every cycle improves)."""
    value = 3.0 - 0.1 * (index + 1)
    return ScriptedStep(
        description=f"X -> {value:.1f}",
        edits=[Edit(path="train.py", content=TRAIN.replace("X = 3.0", f"X = {value:.1f}"))],
        usage=Usage(input_tokens=tokens, calls=1) if tokens else None,
    )


def scripted(tokens: int = 0) -> Callable[[Task], ScriptedProposer]:
    return lambda task: ScriptedProposer(lambda i: step(i, tokens))


def task_dict(repo: Path, task_id: str = "lr", **options: Any) -> dict[str, Any]:
    return {"id": task_id, "type": "autoresearch", "autoresearch": base_config(repo), **options}


def manager_for(recorder: Recorder | None = None, tokens: int = 0, **kwargs: Any) -> TaskManager:
    neurolink = NeuroLink()
    if recorder is not None:
        neurolink.get_event_emitter().on("*", recorder)
    return TaskManager(neurolink=neurolink, proposer_factory=scripted(tokens), **kwargs)


async def run_until_idle(manager: TaskManager) -> None:
    await manager.start_worker(poll_interval=0.05, lease_seconds=2.0, stop_when_idle=True)


def ledger(repo: Path) -> list[dict[str, Any]]:
    lines = (repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def store_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        tasks = conn.execute("SELECT id, status, definition FROM tasks ORDER BY id").fetchall()
        cycles = conn.execute("SELECT task_id, cycle FROM task_cycles").fetchall()
    return [*tasks, *cycles]


# -- the happy path ------------------------------------------------------------------------


async def test_save_then_worker_runs_n_cycles_then_completed(
    repo: Path, home: Path, recorder: Recorder
) -> None:
    manager = manager_for(recorder)
    seen: list[str | None] = []
    manager.neurolink.get_event_emitter().on(
        "autoresearch:cycle:end", lambda e: seen.append(current_task_id())
    )
    saved = await manager.save(task_dict(repo, maxRuns=3, hints=["a", "b"]))
    assert saved.status == "active" and saved.cycles == 0
    assert manager.path == home / "tasks.db" and manager.path.exists()
    assert not (repo / ".autoresearch").exists()  # saving only persists

    await run_until_idle(manager)

    info = await manager.get("lr")
    assert info.status == "completed" and info.reason == "ran 3 cycles (max_runs 3)"
    assert info.cycles == 3 and info.lease is None and info.first_cycle == 1
    history = await manager.cycles("lr")
    assert [c.cycle for c in history] == [1, 2, 3]
    assert [c.status for c in history] == ["keep", "keep", "keep"]
    records = ledger(repo)
    assert [r["commit"] for r in records] == [c.commit_hash for c in history]
    assert [r["hint"] for r in records] == ["a", "b", "a"]  # hints rotate
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "autoresearch/t1"
    assert git(repo, "status", "--porcelain") == ""
    assert recorder.types().count("autoresearch:cycle:end") == 3
    (stopped,) = recorder.of("stopped")
    assert stopped.reason == "max-runs" and stopped.cycles == 3
    assert stopped.message == "task lr: ran 3 cycles (max_runs 3)"
    assert seen == ["lr", "lr", "lr"]


async def test_snake_case_and_camel_case_are_the_same_task(repo: Path) -> None:
    camel = load_task(task_dict(repo, maxRuns=2, maxConsecutiveFailures=5, hint="h"))
    config = {
        "repo_path": str(repo),
        "mutable_paths": ["train.py"],
        "immutable_paths": ["program.md"],
        "run_command": f"{PY} train.py",
        "metric": {"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)", "direction": "lower"},
        "timeout_ms": 20_000,
        "tag": "t1",
    }
    snake = load_task(
        {"id": "lr", "autoresearch": config, "max_runs": 2, "max_consecutive_failures": 5,
         "hints": ["h"]}
    )  # fmt: skip
    assert camel == snake
    assert camel.to_json_dict()["maxRuns"] == 2
    top = load_task(task_dict(repo, provider="anthropic", model="claude-sonnet-4"))
    assert (top.autoresearch.provider, top.autoresearch.model) == ("anthropic", "claude-sonnet-4")
    clash = task_dict(repo, provider="openai")
    clash["autoresearch"]["provider"] = "anthropic"
    with pytest.raises(ConfigError, match="provider: the task names 'openai'"):
        load_task(clash)


async def test_failures_in_a_row_end_the_task_failed(repo: Path, recorder: Recorder) -> None:
    manager = manager_for(recorder)
    bad = task_dict(repo, maxConsecutiveFailures=2)
    bad["autoresearch"]["runCommand"] = f"{PY} -c 'raise SystemExit(3)'"
    await manager.save(bad)
    await run_until_idle(manager)
    info = await manager.get("lr")
    assert info.status == "failed" and info.cycles == 2 and info.failures == 2
    assert info.reason is not None and info.reason.startswith("2 failed cycles in a row")
    assert "exit code 3" in info.reason
    assert recorder.of("stopped")[-1].reason == "failed"
    # resume starts the streak over (and the repo is still failing: two more, then failed)
    resumed = await manager.resume("lr")
    assert resumed.status == "active" and resumed.failures == 0
    await run_until_idle(manager)
    assert (await manager.get("lr")).cycles == 4


async def test_a_baseline_that_keeps_failing_ends_the_task_by_the_tasks_own_rule(
    repo: Path, recorder: Recorder
) -> None:
    # The worker's loop also gives up after three failed baselines; the task's rule (three
    # failed cycles in a row, the default) says it first, with the task's message.
    manager = manager_for(recorder)
    bad = task_dict(repo)
    bad["autoresearch"]["runCommand"] = f"{PY} -c 'raise SystemExit(3)'"
    await manager.save(bad)
    await run_until_idle(manager)
    info = await manager.get("lr")
    assert info.status == "failed" and info.cycles == 3 and info.failures == 3
    assert info.reason is not None
    assert info.reason.startswith("3 failed cycles in a row (last: cycle 3 crash: baseline")
    (stopped,) = recorder.of("stopped")
    assert stopped.reason == "failed" and stopped.cycles == 3


async def test_the_loops_own_stop_rule_ends_a_task_that_tolerates_more_failures(
    repo: Path, recorder: Recorder
) -> None:
    manager = manager_for(recorder)
    bad = task_dict(repo, maxConsecutiveFailures=5)
    bad["autoresearch"]["runCommand"] = f"{PY} -c 'raise SystemExit(3)'"
    await manager.save(bad)
    await run_until_idle(manager)
    info = await manager.get("lr")
    assert info.status == "failed" and info.cycles == 3  # not 5: the baseline cannot pass
    assert info.reason == (
        "the research loop stopped: more cycles cannot help (last: cycle 3 crash: baseline "
        "(exit code 3))"
    )
    (stopped,) = recorder.of("stopped")
    assert stopped.reason == "error" and stopped.message == f"task lr: {info.reason}"
    assert [r["cycle"] for r in ledger(repo)] == [1, 2, 3]
    assert git(repo, "status", "--porcelain") == ""


class FlakyProvider(ScriptedProposer):
    """A scripted proposer whose model call fails in the cycles named in ``failures``."""

    def __init__(self, failures: dict[int, Exception]) -> None:
        super().__init__(step)
        self.failures = failures

    async def plan(self, context: Any, analysis: Any, hint: str | None) -> Any:
        if analysis.cycle in self.failures:
            raise self.failures[analysis.cycle]
        return await super().plan(context, analysis, hint)


async def test_a_provider_outage_is_a_failed_cycle_and_the_task_goes_on(
    repo: Path, recorder: Recorder
) -> None:
    manager = manager_for(recorder)
    manager.proposer_factory = lambda task: FlakyProvider({2: ServerError("503 after retries")})
    await manager.save(task_dict(repo, maxRuns=3))
    await run_until_idle(manager)
    info = await manager.get("lr")
    assert info.status == "completed" and info.failures == 0
    assert [c.status for c in await manager.cycles("lr")] == ["keep", "invalid", "keep"]
    assert "503 after retries" in (await manager.cycles("lr"))[1].description


async def test_a_rejected_key_ends_the_task_failed(repo: Path, recorder: Recorder) -> None:
    manager = manager_for(recorder)
    error = AuthenticationError("401: invalid x-api-key", provider="anthropic", status=401)
    manager.proposer_factory = lambda task: FlakyProvider({2: error})
    await manager.save(task_dict(repo, maxRuns=3))
    await run_until_idle(manager)
    info = await manager.get("lr")
    assert info.status == "failed" and info.reason == "AuthenticationError: 401: invalid x-api-key"
    assert [c.status for c in await manager.cycles("lr")] == ["keep", "crash"]
    stopped = recorder.of("stopped")[-1]
    assert stopped.reason == "error" and "invalid x-api-key" in stopped.message
    assert git(repo, "status", "--porcelain") == ""


async def test_token_budget_stops_before_the_cycle_that_would_start_over_it(
    repo: Path, recorder: Recorder
) -> None:
    manager = manager_for(recorder, tokens=1000)
    await manager.save(task_dict(repo, budget={"maxTokens": 2500}))
    await run_until_idle(manager)
    info = await manager.get("lr")
    # baseline (no model) + 3 cycles of 1000 tokens: 2000 < 2500 lets the 4th start, not a 5th
    assert info.status == "budget-exhausted" and info.cycles == 4
    assert info.usage.input_tokens == 3000 and info.reason == "used 3000 of 2500 tokens"
    stopped = recorder.of("stopped")[-1]
    assert stopped.reason == "budget-exhausted" and "3000 of 2500" in stopped.message


async def test_dollar_budget_uses_the_price_table(repo: Path, home: Path) -> None:
    home.mkdir(parents=True)
    (home / "prices.json").write_text(json.dumps({"scripted-1": {"inputPerMtok": 500}}))
    with pytest.raises(ConfigError, match="prices.json"):  # outputPerMtok is missing
        await manager_for().prices()
    (home / "prices.json").write_text(
        json.dumps({"scripted-1": {"inputPerMtok": 500, "outputPerMtok": 0}})
    )
    manager = manager_for(tokens=1000, prices={"scripted-2": {"inputPerMtok": 1000,
                                                               "outputPerMtok": 0}})  # fmt: skip
    table = await manager.prices()
    assert table["scripted-1"].input_per_mtok == 500 and "claude-sonnet-4" in table
    task = task_dict(repo, budget={"maxUsd": 1.5})
    task["autoresearch"]["model"] = "scripted-2"
    await manager.save(task)
    await run_until_idle(manager)
    info = await manager.get("lr")
    assert info.status == "budget-exhausted" and info.cycles == 3  # $0, $1, $1: $2 >= $1.5
    assert info.cost_usd == pytest.approx(2.0)
    assert [c.cost_usd for c in await manager.cycles("lr")] == [0.0, 1.0, 1.0]


def test_price_lookup_by_longest_prefix() -> None:
    prices = {"gpt-4o": ModelPrice(input_per_mtok=2.5, output_per_mtok=10),
              "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.6)}  # fmt: skip
    mini = price_for("openai/gpt-4o-mini-2024-07-18", prices)
    assert mini is not None and mini.input_per_mtok == 0.15
    assert price_for("gpt-4o-2024-08-06", prices) == prices["gpt-4o"]
    assert price_for("llama3", prices) is None and price_for(None, prices) is None
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, cache_read_tokens=1_000_000)
    assert prices["gpt-4o"].cost(usage) == pytest.approx(2.5 + 5 + 2.5)  # cache at input price


async def test_dollar_budget_needs_a_price(repo: Path, home: Path) -> None:
    manager = manager_for()
    task = task_dict(repo, budget={"maxUsd": 5})
    task["autoresearch"].update(provider="anthropic", model="mystery-model-1")
    with pytest.raises(ConfigError, match="no price is known for model 'mystery-model-1'"):
        await manager.save(task)
    assert not manager.path.exists()
    task["budget"]["price"] = {"inputPerMtok": 1, "outputPerMtok": 2}
    assert (await manager.save(task)).status == "active"


# -- statuses --------------------------------------------------------------------------------


async def test_pause_resume_stop_delete(repo: Path) -> None:
    manager = manager_for()
    await manager.save(task_dict(repo, maxRuns=1))
    assert (await manager.pause("lr")).status == "paused"
    assert (await manager.pause("lr")).status == "paused"  # again: nothing changes
    await run_until_idle(manager)  # nothing active: returns at once, runs nothing
    assert (await manager.get("lr")).cycles == 0
    assert (await manager.resume("lr")).status == "active"
    stopped = await manager.stop("lr", now=True)
    assert stopped.status == "stopped" and stopped.stop_now  # no worker: the flag waits
    resumed = await manager.resume("lr")
    assert resumed.status == "active" and not resumed.stop_now
    await run_until_idle(manager)
    assert (await manager.get("lr")).status == "completed"
    with pytest.raises(TaskError, match="only an active task can be paused"):
        await manager.pause("lr")
    with pytest.raises(TaskError, match="larger max_runs"):
        await manager.resume("lr")
    assert (await manager.stop("lr")).status == "completed"  # finished: nothing to stop
    await manager.delete("lr")
    assert await manager.list() == []


async def test_saving_again(repo: Path) -> None:
    manager = manager_for()
    first = await manager.save(task_dict(repo, maxRuns=1))
    again = await manager.save(task_dict(repo, maxRuns=1))
    assert again == first  # the same definition: nothing written, a re-run script is harmless
    await run_until_idle(manager)
    assert (await manager.save(task_dict(repo, maxRuns=1))).status == "completed"
    more = await manager.save(task_dict(repo, maxRuns=2))  # a new definition: active again
    assert more.status == "active" and more.cycles == 1
    await run_until_idle(manager)
    assert (await manager.get("lr")).cycles == 2
    assert [r["cycle"] for r in ledger(repo)] == [1, 2]


async def test_adopts_the_repositorys_tag_when_none_is_given(repo: Path) -> None:
    worker = await NeuroLink().init_research(base_config(repo, tag="run7"))
    await worker.aclose()
    git(repo, "checkout", "-q", "main")
    definition = task_dict(repo)
    del definition["autoresearch"]["tag"]
    info = await manager_for().save(definition)
    assert info.task.autoresearch.tag == "run7"


async def test_two_workers_in_one_process_share_nothing(repo: Path, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "other", {"train.py": TRAIN})
    manager = manager_for()
    await manager.save(task_dict(repo, "a", maxRuns=2))
    await manager.save(
        {"id": "b", "autoresearch": {**base_config(other), "immutablePaths": []}, "maxRuns": 2}
    )
    await manager.start_worker(
        concurrency=1, poll_interval=0.05, lease_seconds=2.0, stop_when_idle=True
    )
    infos = await manager.list()
    assert [(i.id, i.status, i.cycles) for i in infos] == [
        ("a", "completed", 2),
        ("b", "completed", 2),
    ]


async def test_pause_during_the_interval_takes_effect_without_waiting_it_out(
    repo: Path, recorder: Recorder
) -> None:
    manager = manager_for(recorder)
    await manager.save(task_dict(repo, interval=3600))

    async def pause_after_first_cycle(event: Any) -> None:
        await manager.pause("lr")

    manager.neurolink.get_event_emitter().once("autoresearch:cycle:end", pause_after_first_cycle)
    with anyio.fail_after(30):
        await run_until_idle(manager)
    info = await manager.get("lr")
    assert info.status == "paused" and info.cycles == 1
    assert recorder.of("stopped")[-1].reason == "paused"


async def test_a_repository_busy_with_another_process_is_retried_later(
    repo: Path, recorder: Recorder
) -> None:
    manager = manager_for(recorder)
    await manager.save(task_dict(repo, maxRuns=1))
    holder = NeuroLink().create_research_worker(base_config(repo))
    await holder.prepare()  # holds the repository's writer lock, like `autoresearch run`
    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: manager.start_worker(poll_interval=0.05, lease_seconds=0.5, stop_when_idle=True)
        )
        with anyio.fail_after(30):
            while not recorder.of("error"):
                await anyio.sleep(0.05)
        (error,) = recorder.of("error")
        assert error.error_type == "LockedError" and "another autoresearch process" in error.message
        info = await manager.get("lr")
        assert info.status == "active" and info.cycles == 0  # it waits; it does not fail
        await holder.aclose()
    info = await manager.get("lr")
    assert info.status == "completed" and info.cycles == 1
    assert [e.reason for e in recorder.of("stopped")] == ["max-runs"]


async def test_store_schema_is_versioned(home: Path) -> None:
    manager = manager_for()
    assert await manager.store.schema_version() == 0 and not manager.path.exists()
    await manager.list()  # reading never creates the store
    assert not manager.path.exists()
    home.mkdir()
    with sqlite3.connect(manager.path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = manager.path.read_bytes()
    with pytest.raises(TaskError, match="newer autoresearch"):
        await manager_for().list()
    assert manager.path.read_bytes() == before


async def test_a_fresh_store_is_migrated_and_in_wal_mode(repo: Path) -> None:
    manager = manager_for()
    await manager.save(task_dict(repo))
    assert await manager.store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(manager.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"tasks", "task_cycles", "task_leases"} <= tables


# -- bad input: one clear error, nothing written --------------------------------------------


@pytest.mark.parametrize("action", ["get", "pause", "resume", "stop", "delete", "cycles"])
async def test_unknown_task_id(repo: Path, action: str) -> None:
    manager = manager_for()
    with pytest.raises(TaskError, match="no task 'nope'"):
        await getattr(manager, action)("nope")
    assert not manager.path.exists()  # asking about a task never creates the store
    await manager.save(task_dict(repo))
    before = store_rows(manager.path)
    with pytest.raises(TaskError, match="no task 'nope'"):
        await getattr(manager, action)("nope")
    assert store_rows(manager.path) == before


def _bad_pattern(t: dict[str, Any], repo: Path) -> None:
    t["autoresearch"]["metric"]["pattern"] = "no group"


def _missing_file(t: dict[str, Any], repo: Path) -> None:
    t["autoresearch"]["mutablePaths"] = ["nope.py"]


def _dirty(t: dict[str, Any], repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN + "# local edit\n")


def _not_a_repo(t: dict[str, Any], repo: Path) -> None:
    t["autoresearch"]["repoPath"] = str(repo / "missing")


def _wrong_type(t: dict[str, Any], repo: Path) -> None:
    t["type"] = "cron"


def _unknown_option(t: dict[str, Any], repo: Path) -> None:
    t["maxRun"] = 3


def _bad_id(t: dict[str, Any], repo: Path) -> None:
    t["id"] = "../x"


def _negative_interval(t: dict[str, Any], repo: Path) -> None:
    t["interval"] = -1


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (_bad_pattern, "autoresearch.metric.pattern: the regex must have exactly one capture"),
        (_missing_file, "mutable_paths: 'nope.py' does not exist"),
        (_dirty, "repo_path: tracked files have uncommitted changes (train.py)"),
        (_not_a_repo, "does not exist"),
        (_wrong_type, "type: 'cron' is not a task type this worker runs"),
        (_unknown_option, "max_run: is not a known task setting"),
        (_bad_id, "id: '../x' is not a usable task id"),
        (_negative_interval, "interval: Input should be greater than or equal to 0"),
    ],
)
async def test_bad_definitions_are_refused_at_save_time(
    repo: Path, spoil: Callable[[dict[str, Any], Path], None], message: str
) -> None:
    definition = task_dict(repo)
    spoil(definition, repo)
    before = snapshot(repo)
    manager = manager_for()
    with pytest.raises(ConfigError) as caught:
        await manager.save(definition)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not manager.path.exists() and snapshot(repo) == before


async def test_a_second_task_on_the_same_repo_is_refused(repo: Path) -> None:
    manager = manager_for()
    await manager.save(task_dict(repo, "first"))
    before = store_rows(manager.path)
    with pytest.raises(TaskError, match="already has task 'first' .active.; one repository"):
        await manager.save(task_dict(repo, "second"))
    assert store_rows(manager.path) == before


@pytest.mark.parametrize("content", [b"this is not a database, just text\n" * 100, b"\x00" * 64])
async def test_a_store_that_is_not_a_database(repo: Path, home: Path, content: bytes) -> None:
    home.mkdir()
    (home / "tasks.db").write_bytes(content)
    manager = manager_for()
    for call in (manager.list(), manager.save(task_dict(repo)), manager.pause("lr")):
        with pytest.raises(TaskError, match=r"tasks.db is not a task database"):
            await call
    assert (home / "tasks.db").read_bytes() == content
    assert sorted(p.name for p in home.iterdir()) == ["tasks.db"]


async def test_a_database_of_another_program_is_refused(repo: Path, home: Path) -> None:
    home.mkdir()
    with sqlite3.connect(home / "tasks.db") as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    before = (home / "tasks.db").read_bytes()
    with pytest.raises(TaskError, match="another program"):
        await manager_for().save(task_dict(repo))
    assert (home / "tasks.db").read_bytes() == before


# -- the CLI ---------------------------------------------------------------------------------

cli = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = cli.invoke(task_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def invoke_repo(command: str, *args: str) -> tuple[int, str, str]:
    import typer

    app = typer.Typer()
    for name, func in REPO_COMMANDS.items():
        app.command(name)(func)
    result = cli.invoke(app, [command, *args])
    return result.exit_code, result.stdout, result.stderr


def init_repo(repo: Path, tag: str) -> None:
    async def init() -> None:
        worker = await NeuroLink().init_research(base_config(repo, tag=tag))
        await worker.aclose()

    anyio.run(init)


def test_cli_start_list_show_pause_resume_stop(repo: Path, home: Path) -> None:
    init_repo(repo, "cli")
    code, out, err = invoke_repo("start", str(repo), "--max-runs", "2", "--hint", "go")
    assert code == 0, err
    assert "task 'repo' is active" in out and "autoresearch task start" in out
    code, out, _ = invoke("list", "--json")
    (row,) = json.loads(out)
    assert row["status"] == "active" and row["task"]["maxRuns"] == 2
    assert row["task"]["autoresearch"]["tag"] == "cli"
    assert "repo" in invoke("list")[1] and "active" in invoke("list")[1]

    assert invoke_repo("pause", str(repo))[0] == 0
    assert invoke_repo("pause", str(repo))[0] == 0
    assert json.loads(invoke("show", "repo", "--json")[1])["status"] == "paused"
    assert "is active" in invoke_repo("resume", str(repo))[1]
    code, out, err = invoke("start", "--until-idle", "--poll", "0.05", "--lease", "2")
    assert code == 0, err
    assert out.count("[repo] cycle") == 2 and "[repo] stopped (max-runs)" in out
    code, out, _ = invoke("show", "repo")
    assert "completed" in out and "history" in out and "baseline" in out
    data = json.loads(invoke("show", "repo", "--json")[1])
    assert [c["cycle"] for c in data["history"]] == [1, 2]
    code, out, _ = invoke_repo("stop", str(repo))
    assert code == 0 and "already completed" in out
    code, _, err = invoke_repo("start", str(repo), "--max-runs", "2", "--hint", "go")
    assert code == 1 and "already completed its 2 cycles" in err
    assert invoke_repo("start", str(repo), "--max-runs", "3")[0] == 0  # more runs: active again
    code, out, _ = invoke_repo("stop", str(repo), "--now")
    assert code == 0 and "is stopped" in out
    code, _, err = invoke("delete", "repo")
    assert code == 0
    assert invoke("list")[1].startswith("no tasks yet")


def test_cli_errors_are_one_line(repo: Path, home: Path, tmp_path: Path) -> None:
    code, _, err = invoke("show", "nope")
    assert code == 1 and err.strip() == "error: no task 'nope' (see `autoresearch task list`)"
    code, _, err = invoke_repo("pause", str(repo))
    assert code == 1 and f"no task for {repo}" in err and len(err.strip().splitlines()) == 1
    code, _, err = invoke_repo("start", str(repo))
    assert code == 2 and "not initialised" in err and len(err.strip().splitlines()) == 1
    assert not home.exists()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "tasks.db").write_text("junk\n" * 50)
    code, _, err = invoke("list", "--home", str(tmp_path / "junk"))
    assert code == 1 and "is not a task database" in err and len(err.strip().splitlines()) == 1
    code, _, err = invoke("start", "--concurrency", "0")
    assert code == 2 and "--concurrency" in err


async def test_gpu_time_counts_in_the_dollar_budget(repo: Path) -> None:
    slow = TRAIN.replace("X = 3.0", "import time\ntime.sleep(0.3)\nX = 3.0")
    (repo / "train.py").write_text(slow)
    git(repo, "commit", "-qam", "runs that take a while")
    manager = manager_for()  # the scripted proposer: no tokens, only GPU time costs
    task = task_dict(repo, budget={"maxUsd": 1.0})
    task["autoresearch"].update(gpuHourUsd=3600.0, gpus=[0, 1], gpusPerSlot=2)  # $2 a run-second
    await manager.save(task)
    await run_until_idle(manager)
    info = await manager.get("lr")
    history = await manager.cycles("lr")
    records = ledger(repo)
    # Each run takes over 0.3 s on two GPUs: more than $0.60 a cycle at $1 per GPU-second.
    assert all(r["gpuSeconds"] > 0.6 for r in records)
    assert [c.cost_usd for c in history] == pytest.approx([r["gpuSeconds"] for r in records])
    # The second cycle would take the spend over $1: the task stops before it, not after.
    assert info.status == "budget-exhausted" and info.cycles == 1
    assert "the next cycle would cost about $" in (info.reason or "")
    assert info.cost_usd < 1.0
