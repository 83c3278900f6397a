"""Crash safety and one writer per repo: kill -9 in every phase, torn ledgers, the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autoresearch import (
    PHASES,
    ConfigError,
    LockedError,
    NeuroLink,
    ScriptedProposer,
    WorkspaceError,
)
from tests.conftest import base_config, git, run_script
from tests.test_worker import set_x, worker_for

pytestmark = pytest.mark.anyio

KILLER = textwrap.dedent(
    """\
    import os, signal, sys, anyio
    from autoresearch import NeuroLink, ScriptedProposer
    from tests.test_worker import set_x
    from tests.conftest import base_config

    repo, when, phase = sys.argv[1], sys.argv[2], sys.argv[3]

    async def main():
        neurolink = NeuroLink()
        def die(event):
            if event.cycle == 2 and event.phase == phase:
                os.kill(os.getpid(), signal.SIGKILL)
        neurolink.get_event_emitter().on(f"autoresearch:phase:{when}", die)
        worker = neurolink.create_research_worker(
            base_config(__import__("pathlib").Path(repo)), proposer=ScriptedProposer([set_x(2.0)])
        )
        await worker.run(max_cycles=2)

    anyio.run(main)
    """
)


def ledger(repo: Path) -> tuple[list[dict[str, object]], list[str], dict[str, object]]:
    ar = repo / ".autoresearch"
    runs = [json.loads(line) for line in (ar / "runs.jsonl").read_text().splitlines()]
    tsv = (ar / "results.tsv").read_text().splitlines()[1:]
    state = json.loads((ar / "state.json").read_text())
    return runs, tsv, state


def assert_invariants(repo: Path) -> None:
    runs, tsv, state = ledger(repo)
    assert sorted(r["cycle"] for r in runs) == list(range(1, len(runs) + 1))  # none lost/doubled
    assert len(tsv) == len(runs) == state["cycleCount"]
    assert state["phase"] == "idle" and state["currentCycle"] is None
    assert git(repo, "rev-parse", "HEAD") == state["bestCommit"]
    assert git(repo, "status", "--porcelain") == ""
    assert state["keepCount"] == sum(r["status"] == "keep" for r in runs)


@pytest.mark.parametrize(
    ("when", "phase"),
    [("enter", p) for p in PHASES] + [("exit", "commit"), ("exit", "execute"), ("exit", "decide")],
)
async def test_kill_9_in_every_phase_then_recover(repo: Path, when: str, phase: str) -> None:
    proc = run_script(KILLER, repo.parent / "killer.py", str(repo), when, phase)
    assert proc.returncode == -9, proc.stderr
    worker = worker_for(repo, [set_x(1.5)])
    result = await worker.run_experiment_cycle()
    await worker.aclose()
    runs, _, state = ledger(repo)
    if phase == "decide":  # measured before the kill: finished as decided, never reverted
        assert runs[1]["status"] == "keep"
        assert runs[1]["metric"] == 2.0
        assert runs[1]["description"] == "improved (finished after an interruption)"
    else:
        assert runs[1]["status"] == "crash"
        assert runs[1]["description"] == f"interrupted in {phase}"
    assert (result.cycle, result.status) == (3, "keep")
    assert_invariants(repo)
    assert "X = 1.5" in (repo / "train.py").read_text()


async def test_torn_lines_are_repaired_and_ledgers_agree(repo: Path) -> None:
    worker = worker_for(repo, [set_x(2.0), set_x(2.5)])
    await worker.run(max_cycles=2)
    await worker.aclose()
    ar = repo / ".autoresearch"
    with (ar / "runs.jsonl").open("a") as f:
        f.write('{"cycle": 3, "commit": "abc", "sta')  # a crash mid-write
    with (ar / "results.tsv").open("a") as f:
        f.write("abc1234\t1.0")
    again = worker_for(repo, [set_x(2.5)])
    result = await again.run_experiment_cycle()
    await again.aclose()
    assert result.cycle == 3
    assert_invariants(repo)


async def test_results_tsv_is_rebuilt_when_it_lost_a_row(repo: Path) -> None:
    worker = worker_for(repo, [set_x(2.0)])
    await worker.run(max_cycles=2)
    await worker.aclose()
    tsv = repo / ".autoresearch" / "results.tsv"
    tsv.write_text("".join(tsv.read_text().splitlines(keepends=True)[:-1]))
    again = worker_for(repo, [set_x(1.5)])
    await again.run_experiment_cycle()
    await again.aclose()
    assert_invariants(repo)


async def test_one_writer_per_repo(repo: Path) -> None:
    first = worker_for(repo, [set_x(2.0)])
    await first.run_experiment_cycle()
    second = worker_for(repo, [set_x(2.5)])
    with pytest.raises(
        LockedError,
        match=rf"another autoresearch process \(pid {os.getpid()}\) is running on this repo",
    ):
        await second.run_experiment_cycle()
    await first.aclose()
    result = await second.run_experiment_cycle()
    assert result.cycle == 2
    await second.aclose()


async def test_a_dead_process_lock_is_taken_over(repo: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    code = textwrap.dedent(
        f"""\
        import os, signal, anyio
        from pathlib import Path
        from autoresearch import NeuroLink, ScriptedProposer
        from tests.conftest import base_config
        async def main():
            config = base_config(Path({str(repo)!r}))
            worker = NeuroLink().create_research_worker(config, proposer=ScriptedProposer([]))
            await worker.prepare()
            os.kill(os.getpid(), signal.SIGKILL)
        anyio.run(main)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    assert (repo / ".autoresearch" / "lock").read_text().strip() != str(os.getpid())
    worker = worker_for(repo, [])
    result = await worker.run_experiment_cycle()
    assert result.cycle == 1
    await worker.aclose()


@pytest.mark.parametrize(
    ("name", "content", "error", "words"),
    [
        (
            "state.json",
            '{"branch": "autoresearch/t1", "ta',
            WorkspaceError,
            "state.json is not valid JSON",
        ),
        ("state.json", '{"cycleCount": "many"}', WorkspaceError, "state.json is malformed"),
        ("config.json", "{not json", WorkspaceError, "config.json is not valid JSON"),
        ("config.json", '{"mutablePaths": ["train.py"]}', ConfigError, "config.json: run_command"),
    ],
)
async def test_malformed_files_give_one_clear_line(
    repo: Path, name: str, content: str, error: type[Exception], words: str
) -> None:
    worker = worker_for(repo, [])
    await worker.run_experiment_cycle()
    await worker.aclose()
    target = repo / ".autoresearch" / name
    target.write_text(content)
    before = {p.name: p.read_bytes() for p in (repo / ".autoresearch").iterdir() if p.is_file()}
    with pytest.raises(error) as info:
        if name == "config.json":
            await NeuroLink().load_research_worker(repo)
        else:
            await worker_for(repo, []).run_experiment_cycle()
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    assert {
        p.name: p.read_bytes() for p in (repo / ".autoresearch").iterdir() if p.is_file()
    } == before


async def test_sdk_worker_as_context_manager_releases_the_lock(repo: Path) -> None:
    neurolink = NeuroLink()
    async with neurolink.create_research_worker(
        base_config(repo), proposer=ScriptedProposer([])
    ) as w:
        await w.run_experiment_cycle()
    async with neurolink.create_research_worker(
        base_config(repo), proposer=ScriptedProposer([])
    ) as w:
        assert (await w.run_experiment_cycle()).cycle == 2


async def test_orphans_are_found_by_group_or_by_their_cycle_marker(tmp_path: Path) -> None:
    import psutil

    from autoresearch.runner import kill_orphaned_run

    inside, outside = tmp_path / "repo", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    marker = {"AUTORESEARCH_CYCLE": "7", "AUTORESEARCH_TAG": "t1"}
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    marked = subprocess.Popen(sleep, cwd=inside, env={**os.environ, **marker})
    grouped = subprocess.Popen(sleep, cwd=inside, start_new_session=True)
    unmarked = subprocess.Popen(sleep, cwd=inside)
    foreign = subprocess.Popen(sleep, cwd=outside, env={**os.environ, **marker})
    try:
        killed = await kill_orphaned_run(inside, pgid=grouped.pid, marker=marker)
        assert killed == 2
        assert marked.wait(timeout=10) == -9 and grouped.wait(timeout=10) == -9
        assert unmarked.poll() is None and foreign.poll() is None  # not ours: left alone
        assert psutil.pid_exists(foreign.pid)
    finally:
        for proc in (marked, grouped, unmarked, foreign):
            proc.kill()
            proc.wait()
