"""Only our refs move and nothing the user wrote is destroyed, whatever git state the engine meets.

Each test is a situation a user runs into (a branch switched in another terminal, a hand edit
or a hand commit while research runs, an untracked target) reproduced on a real repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from autoresearch import (
    ConfigError,
    Edit,
    HeadMovedError,
    NeuroLink,
    ScriptedProposer,
    ScriptedStep,
)
from tests.conftest import (
    PY,
    ROOT,
    TRAIN,
    Recorder,
    base_config,
    git,
    make_repo,
    run_script,
    snapshot,
)
from tests.test_reliability import assert_invariants, ledger
from tests.test_worker import runs, set_x, worker_for

pytestmark = pytest.mark.anyio


def saved_refs(repo: Path, tag: str = "t1") -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname)", f"refs/autoresearch/{tag}/saved/")
    return out.splitlines()


def on_phase(recorder_neurolink: NeuroLink, when: str, phase: str, action: object) -> None:
    """Call ``action()`` once, when cycle 2 enters (or leaves) ``phase``."""
    done: list[bool] = []

    def hook(event: object) -> None:
        at = getattr(event, "cycle", None) == 2 and getattr(event, "phase", None) == phase
        if at and not done:
            done.append(True)
            action()  # type: ignore[operator]

    recorder_neurolink.get_event_emitter().on(f"autoresearch:phase:{when}", hook)


# -- 1. the branch switched under a live worker ------------------------------------------------


async def test_a_checkout_between_cycles_stops_the_run_and_moves_nothing(repo: Path) -> None:
    worker = worker_for(repo, [set_x(2.0), set_x(2.5)])
    await worker.run_experiment_cycle()  # the baseline, on autoresearch/t1
    git(repo, "checkout", "-q", "main")
    (repo / "notes.md").write_text("mine\n")
    git(repo, "add", "notes.md")
    git(repo, "commit", "-q", "-m", "my work on main")
    main_tip = git(repo, "rev-parse", "main")
    research_tip = git(repo, "rev-parse", "autoresearch/t1")

    with pytest.raises(HeadMovedError, match=r"left autoresearch/t1 \(it is now on main\)"):
        await worker.run(max_cycles=2)
    await worker.aclose()
    assert git(repo, "rev-parse", "main") == main_tip  # nothing committed onto main
    assert git(repo, "rev-parse", "HEAD") == main_tip
    assert git(repo, "rev-parse", "autoresearch/t1") == research_tip
    assert "X = 3.0" in (repo / "train.py").read_text()
    assert git(repo, "status", "--porcelain") == ""
    assert len(runs(repo)) == 1  # no cycle was started


async def test_a_checkout_during_the_experiment_never_resets_the_users_branch(
    repo: Path,
) -> None:
    neurolink = NeuroLink()
    worker = neurolink.create_research_worker(
        base_config(repo), proposer=ScriptedProposer([set_x(5.0)])
    )
    await worker.run_experiment_cycle()
    best = git(repo, "rev-parse", "HEAD")
    main_tip = git(repo, "rev-parse", "main")
    on_phase(neurolink, "enter", "evaluate", lambda: git(repo, "checkout", "-q", "main"))

    with pytest.raises(HeadMovedError, match="left autoresearch/t1"):
        await worker.run_experiment_cycle()  # a discard: it would have reset main to best
    await worker.aclose()
    assert git(repo, "rev-parse", "main") == main_tip
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "status", "--porcelain") == ""
    # The research branch goes back to its best commit; the candidate keeps its ref.
    assert git(repo, "rev-parse", "autoresearch/t1") == best
    candidate = git(repo, "rev-parse", "refs/autoresearch/t1/2")
    assert git(repo, "show", f"{candidate}:train.py").startswith("import os")
    record = runs(repo)[-1]
    assert record["status"] == "crash" and "left autoresearch/t1" in record["description"]
    _, _, state = ledger(repo)
    assert state["phase"] == "idle" and state["currentCycle"] is None


# -- 2. targets git does not track -----------------------------------------------------------


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        ("untracked", r"'hp.py' is not tracked by git.*`git add hp.py` and commit it first"),
        ("ignored", r"'hp.py' is ignored by git.*take it out of .gitignore"),
        ("submodule", r"'lib/hp.py' is inside 'lib', which is a git submodule"),
    ],
)
async def test_targets_git_cannot_restore_are_refused_before_anything_is_written(
    tmp_path: Path, prepare: str, message: str
) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": TRAIN, ".gitignore": "hp.py\n"})
    target = "hp.py"
    if prepare == "untracked":
        (repo / ".gitignore").unlink()
        git(repo, "rm", "-q", "--cached", ".gitignore")
        git(repo, "commit", "-q", "-m", "no ignore")
        (repo / "hp.py").write_text("LR = 0.1\n")
    elif prepare == "ignored":
        (repo / "hp.py").write_text("LR = 0.1\n")
    else:
        lib = make_repo(tmp_path / "lib", {"hp.py": "LR = 0.1\n"})
        git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
        git(repo, "commit", "-q", "-m", "submodule")
        target = "lib/hp.py"
    before = snapshot(repo)
    with pytest.raises(ConfigError, match=message):
        await NeuroLink().init_research(base_config(repo, mutablePaths=[target], immutablePaths=[]))
    assert snapshot(repo) == before


async def test_untracked_files_under_a_target_directory_are_never_committed_or_removed(
    tmp_path: Path,
) -> None:
    train = TRAIN.replace("X = 3.0", "from pkg.hp import X")
    repo = make_repo(tmp_path / "repo", {"train.py": train, "pkg/hp.py": "X = 3.0\n"})
    (repo / "pkg" / "__init__.py").write_text("")  # untracked, the run needs it
    (repo / "pkg" / "scratch.py").write_text("my notes\n")
    (repo / "pkg" / "__pycache__").mkdir()
    (repo / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\x00compiled")

    def hp(x: float) -> ScriptedStep:
        return ScriptedStep(f"X -> {x}", [Edit(path="pkg/hp.py", content=f"X = {x}\n")])

    steps = [
        hp(2.0),  # kept
        hp(2.5),  # discarded
        ScriptedStep("new helper", [Edit(path="pkg/extra.py", content="Y = 1\n")]),
        ScriptedStep("scratch", [Edit(path="pkg/scratch.py", content="overwritten\n")]),
    ]
    worker = worker_for(repo, steps, mutablePaths=["pkg"], immutablePaths=[])
    results = [await worker.run_experiment_cycle() for _ in range(5)]
    await worker.aclose()
    assert [r.status for r in results] == ["keep", "keep", "discard", "discard", "invalid"]
    for result in results[1:4]:
        files = git(repo, "show", "--name-only", "--format=", result.commit_hash).split()
        assert set(files) <= {"pkg/hp.py", "pkg/extra.py"}
    assert "git does not track it" in results[4].description
    assert (repo / "pkg" / "scratch.py").read_text() == "my notes\n"
    assert (repo / "pkg" / "__pycache__" / "x.pyc").read_bytes() == b"\x00compiled"
    assert (repo / "pkg" / "__init__.py").exists()
    assert not (repo / "pkg" / "extra.py").exists()  # the proposer's file went with its discard


# -- 3. hand edits after a crash ---------------------------------------------------------------

KILLER = textwrap.dedent(
    """\
    import os, signal, sys, anyio
    from pathlib import Path
    from autoresearch import NeuroLink, ScriptedProposer
    from tests.test_worker import set_x
    from tests.conftest import base_config

    repo, phase = Path(sys.argv[1]), sys.argv[2]

    async def main():
        neurolink = NeuroLink()
        def die(event):
            if event.cycle == 2 and event.phase == phase:
                os.kill(os.getpid(), signal.SIGKILL)
        neurolink.get_event_emitter().on("autoresearch:phase:enter", die)
        worker = neurolink.create_research_worker(
            base_config(repo), proposer=ScriptedProposer([set_x(2.0)])
        )
        await worker.run(max_cycles=2)

    anyio.run(main)
    """
)


def kill_in(repo: Path, phase: str) -> None:
    proc = run_script(KILLER, repo.parent / "killer.py", str(repo), phase)
    assert proc.returncode == -9, proc.stderr


async def test_a_hand_edit_after_a_crash_is_saved_before_recovery_restores(
    repo: Path, recorder: Recorder
) -> None:
    kill_in(repo, "execute")
    (repo / "train.py").write_text(TRAIN.replace("X = 3.0", "X = 1.0  # my idea"))
    worker = worker_for(repo, [set_x(1.5)], recorder)
    await worker.prepare()
    await worker.aclose()
    assert "X = 3.0" in (repo / "train.py").read_text()  # back at the best commit
    [ref] = saved_refs(repo)
    assert "X = 1.0  # my idea" in git(repo, "show", f"{ref}:train.py")
    [notice] = recorder.of("notice")
    assert notice.kind == "saved" and notice.ref == ref and "train.py" in notice.message
    assert runs(repo)[-1]["description"] == "interrupted in execute"
    assert_invariants(repo)


async def test_a_hand_commit_after_a_crash_is_kept_and_measured(repo: Path) -> None:
    kill_in(repo, "execute")
    (repo / "train.py").write_text(TRAIN.replace("X = 3.0", "X = 1.0"))
    git(repo, "commit", "-q", "-am", "my better setting")
    mine = git(repo, "rev-parse", "HEAD")
    worker = worker_for(repo, [set_x(1.5)])
    first = await worker.run_experiment_cycle()
    second = await worker.run_experiment_cycle()
    await worker.aclose()
    assert "a commit autoresearch did not make" in runs(repo)[1]["description"]
    assert (first.status, first.metric_value, first.commit_hash) == ("keep", 1.0, mine)
    assert first.baseline and second.status == "discard"  # 1.25 does not beat my 1.0
    assert git(repo, "rev-parse", "HEAD") == mine  # never reset past my commit
    assert_invariants(repo)


# -- 4. hand commits on the research branch are measured ---------------------------------------


async def test_a_hand_commit_on_the_branch_becomes_the_new_baseline(
    repo: Path, recorder: Recorder
) -> None:
    worker = worker_for(repo, [set_x(2.0)], recorder)
    await worker.run_experiment_cycle()  # baseline 5.0
    (repo / "train.py").write_text(TRAIN.replace("X = 3.0", "X = 1.0"))
    git(repo, "commit", "-q", "-am", "my better setting")
    mine = git(repo, "rev-parse", "HEAD")
    rebase = await worker.run_experiment_cycle()
    candidate = await worker.run_experiment_cycle()
    await worker.aclose()
    assert (rebase.status, rebase.metric_value, rebase.commit_hash) == ("keep", 1.0, mine)
    assert rebase.baseline and "a commit autoresearch did not make" in rebase.description
    # 2.0 beat the stale best (5.0) but not my commit (1.0): it must not be kept.
    assert (candidate.status, candidate.metric_value) == ("discard", 2.0)
    assert git(repo, "rev-parse", "HEAD") == mine
    [notice] = recorder.of("notice")
    assert notice.kind == "rebaseline" and mine[:7] in notice.message
    assert_invariants(repo)


async def test_a_commit_made_during_a_cycle_is_never_reset_away(repo: Path) -> None:
    neurolink = NeuroLink()
    worker = neurolink.create_research_worker(
        base_config(repo), proposer=ScriptedProposer([set_x(5.0), set_x(2.0)])
    )
    await worker.run_experiment_cycle()

    def commit_by_hand() -> None:
        with (repo / "program.md").open("a") as handle:
            handle.write("a note\n")
        git(repo, "commit", "-q", "-am", "a note, committed while the run goes on")

    on_phase(neurolink, "enter", "evaluate", commit_by_hand)
    result = await worker.run_experiment_cycle()  # a discard would have reset the branch
    mine = git(repo, "rev-parse", "HEAD")
    assert git(repo, "log", "-1", "--format=%s") == "a note, committed while the run goes on"
    assert result.status == "crash" and "a commit autoresearch did not make" in result.description
    after = await worker.run_experiment_cycle()  # measures my commit as the new baseline
    await worker.aclose()
    assert after.baseline and after.commit_hash == mine and after.status == "keep"
    assert_invariants(repo)


# -- 5. tag reuse never erases history ---------------------------------------------------------


async def test_a_lost_runs_jsonl_never_costs_a_row_a_log_or_a_ref(repo: Path) -> None:
    worker = worker_for(repo, [set_x(2.0), set_x(2.5)])
    await worker.run(max_cycles=3)
    await worker.aclose()
    ar = repo / ".autoresearch"
    refs_before = git(repo, "for-each-ref", "refs/autoresearch/")
    log_one = (ar / "logs" / "1.log").read_bytes()
    tsv = (ar / "results.tsv").read_bytes()
    (ar / "runs.jsonl").unlink()
    before = snapshot(repo)

    again = worker_for(repo, [set_x(1.5)])
    with pytest.raises(Exception, match=r"runs.jsonl has 0 records but .*results.tsv has 3 rows"):
        await again.prepare()
    assert snapshot(repo) == before  # refused: nothing changed

    (ar / "results.tsv").rename(tmp := repo.parent / "results.tsv.old")
    result = await again.run_experiment_cycle()
    await again.aclose()
    assert result.cycle == 4  # numbered after the highest cycle found (logs, refs)
    assert (ar / "logs" / "1.log").read_bytes() == log_one
    assert tmp.read_bytes() == tsv
    for line in refs_before.splitlines():
        sha, _, name = line.split()
        assert git(repo, "rev-parse", name) == sha  # no ref moved


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autoresearch", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def init_args(repo: Path) -> list[str]:
    return [
        "init",
        str(repo),
        "--tag",
        "t1",
        "--target",
        "train.py",
        "--run-command",
        f"{PY} train.py",
        "--metric-name",
        "val_bpb",
        "--metric-pattern",
        r"^val_bpb:\s+([\d.]+)",
    ]


async def test_reset_archives_the_session_and_a_new_one_reuses_no_name(repo: Path) -> None:
    worker = worker_for(repo, [set_x(2.0), set_x(2.5)])
    await worker.run(max_cycles=3)
    await worker.aclose()
    old = {
        name: sha
        for sha, _, name in (
            line.split() for line in git(repo, "for-each-ref", "refs/autoresearch/").splitlines()
        )
    }
    old_log = (repo / ".autoresearch" / "logs" / "3.log").read_bytes()

    reset = cli("reset", str(repo), "--yes")
    assert reset.returncode == 0, reset.stderr
    assert "archived" in reset.stdout
    [archive] = list((repo / ".autoresearch" / "archive").iterdir())
    assert (archive / "logs" / "3.log").read_bytes() == old_log
    assert len((archive / "runs.jsonl").read_text().splitlines()) == 3

    assert cli(*init_args(repo)).returncode == 0
    run = cli("run", str(repo), "--max-runs", "2", "-q")
    assert run.returncode == 0, run.stderr
    # Every old candidate is still reachable, under the archive, at the same commit.
    for name, sha in old.items():
        number = name.rsplit("/", 1)[1]
        assert (
            git(repo, "rev-parse", f"refs/autoresearch/t1/archive/{archive.name}/{number}") == sha
        )
    assert (archive / "logs" / "3.log").read_bytes() == old_log
    assert [r["cycle"] for r in runs(repo)] == [1, 2]


# -- crash windows -----------------------------------------------------------------------------

SIZE_KILLER = textwrap.dedent(
    """\
    import resource, signal, sys, anyio
    from pathlib import Path
    from autoresearch import NeuroLink, ScriptedProposer
    from tests.test_worker import set_x
    from tests.conftest import base_config

    repo = Path(sys.argv[1])

    async def main():
        neurolink = NeuroLink()
        def limit(event):
            if event.cycle == 2 and event.phase == "decide":
                # Writing the big file now gets SIGXFSZ: the process dies mid-restore.
                signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
                resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        neurolink.get_event_emitter().on("autoresearch:phase:enter", limit)
        worker = neurolink.create_research_worker(
            base_config(repo), proposer=ScriptedProposer([set_x(5.0)])
        )
        await worker.run(max_cycles=2)

    anyio.run(main)
    """
)


async def test_a_kill_in_the_middle_of_a_restore_never_loses_the_file(tmp_path: Path) -> None:
    padded = TRAIN + "PAD = 0\n" + "# padding\n" * 2000  # about 20 KB: bigger than the limit
    repo = make_repo(tmp_path / "repo", {"train.py": padded, "program.md": "# p\n"})
    proc = run_script(SIZE_KILLER, tmp_path / "size_killer.py", str(repo))
    assert proc.returncode == -25, proc.stderr  # SIGXFSZ, while writing train.py back
    # The candidate's file stays whole until the restored one is complete.
    assert "X = 5.0" in (repo / "train.py").read_text()
    worker = worker_for(repo, [set_x(2.0)])
    result = await worker.run_experiment_cycle()  # the start recovers, then runs
    await worker.aclose()
    assert result.cycle == 3
    assert (repo / "train.py").read_text().startswith("import os")
    assert_invariants(repo)
    assert not list(repo.glob(".*autoresearch-tmp"))


async def test_a_lock_file_left_by_the_interrupted_cycle_is_removed(
    repo: Path, recorder: Recorder
) -> None:
    kill_in(repo, "commit")
    lock = repo / ".git" / "index.lock"
    lock.write_text("")  # what a kill while libgit2 wrote the index leaves
    worker = worker_for(repo, [set_x(2.0)], recorder)
    result = await worker.run_experiment_cycle()
    await worker.aclose()
    assert result.status == "keep" and not lock.exists()
    [notice] = recorder.of("notice")
    assert notice.kind == "stale-lock" and "index.lock" in notice.message
    assert_invariants(repo)


async def test_other_git_lock_files_get_one_line_and_stay(repo: Path) -> None:
    worker = worker_for(repo, [set_x(2.0)])
    await worker.run_experiment_cycle()
    await worker.aclose()
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    os.utime(lock, (1, 1))  # old: not ours
    with pytest.raises(ConfigError, match=r"lock file .*index.lock was left behind.*rm "):
        await worker_for(repo, [set_x(2.0)]).prepare()
    holder = subprocess.Popen(["sh", "-c", f"exec 3<'{lock}'; sleep 30"], stdout=subprocess.DEVNULL)
    try:
        await anyio.sleep(0.3)
        with pytest.raises(ConfigError, match="a git command is working on this repository"):
            await worker_for(repo, [set_x(2.0)]).prepare()
    finally:
        holder.kill()
        holder.wait()
    assert lock.exists()


async def test_a_cancel_while_the_decision_is_recorded_keeps_the_keep(repo: Path) -> None:
    neurolink = NeuroLink()
    worker = neurolink.create_research_worker(
        base_config(repo), proposer=ScriptedProposer([set_x(2.0)])
    )
    await worker.run_experiment_cycle()
    with anyio.CancelScope() as scope:
        on_phase(neurolink, "enter", "decide", scope.cancel)
        await worker.run_experiment_cycle()
    await worker.aclose()
    record = runs(repo)[-1]
    assert (record["cycle"], record["status"], record["metric"]) == (2, "keep", 2.0)
    assert "X = 2.0" in (repo / "train.py").read_text()
    assert_invariants(repo)


async def test_a_failed_restore_is_finished_by_the_next_start(repo: Path) -> None:
    # The run turns its own target into a directory: the restore cannot write the file back.
    breaker = (
        "import os, shutil; os.remove('train.py'); os.mkdir('train.py'); "
        "open('train.py/inside', 'w').write('x'); print('val_bpb: 9.0')"
    )
    worker = worker_for(repo, [set_x(2.5)])
    await worker.run_experiment_cycle()
    worker.config = worker.config.model_copy(update={"run_command": f'{PY} -c "{breaker}"'})
    with pytest.raises(Exception, match="train.py is a directory"):
        await worker.run_experiment_cycle()
    await worker.aclose()
    records = runs(repo)
    assert records[-1]["status"] == "discard" and records[-1]["metric"] == 9.0
    _, _, state = ledger(repo)
    assert state["currentCycle"] == 2  # still open: the next start finishes the restore
    (repo / "train.py" / "inside").unlink()
    (repo / "train.py").rmdir()
    again = worker_for(repo, [set_x(2.0)])
    result = await again.run_experiment_cycle()
    await again.aclose()
    assert result.cycle == 3 and len(runs(repo)) == 3  # recorded once
    assert_invariants(repo)


# -- 9. smaller holes ---------------------------------------------------------------------------


async def test_a_tracked_workspace_folder_is_refused(repo: Path) -> None:
    (repo / ".autoresearch").mkdir()
    (repo / ".autoresearch" / "config.json").write_text("{}\n")
    git(repo, "add", "-f", ".autoresearch/config.json")
    git(repo, "commit", "-q", "-m", "oops")
    before = snapshot(repo)
    with pytest.raises(ConfigError, match=r"\.autoresearch/ is tracked by git.*git rm -r --cached"):
        await NeuroLink().init_research(base_config(repo), force=True)
    assert snapshot(repo) == before


async def test_a_linked_worktree_keeps_the_workspace_out_of_git_status(repo: Path) -> None:
    worktree = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wt", str(worktree))
    worker = worker_for(worktree, [set_x(2.0)])
    await worker.run_experiment_cycle()
    await worker.aclose()
    assert git(worktree, "status", "--porcelain") == ""


async def test_a_run_that_rewrites_tracked_files_is_undone_and_reported(
    repo: Path, recorder: Recorder
) -> None:
    (repo / "metrics.csv").write_text("step,loss\n")
    git(repo, "add", "metrics.csv")
    git(repo, "commit", "-q", "-m", "metrics file")
    rewrite = TRAIN.replace(
        'print("training...")',
        'print("training...")\n'
        'open("metrics.csv", "a").write("1,0.5\\n")\n'
        'open("train.py", "a").write("# touched by the run\\n")',
    )
    steps = [
        ScriptedStep("rewrites", [Edit(path="train.py", content=rewrite.replace("3.0", "2.0"))])
    ]
    worker = worker_for(repo, [*steps, set_x(2.5)], recorder)
    await worker.run_experiment_cycle()
    kept = await worker.run_experiment_cycle()
    after = await worker.run_experiment_cycle()
    await worker.aclose()
    assert kept.status == "keep"
    assert "changed tracked files outside the mutable paths" in kept.description
    assert "metrics.csv" in kept.description
    assert not (repo / "train.py").read_text().endswith("run\n")  # back at the commit
    assert after.status != "invalid"  # the tree was clean for the next cycle
    saved = [e for e in recorder.of("notice") if e.kind == "saved"]
    assert saved and git(repo, "show", f"{saved[0].ref}:train.py").endswith("# touched by the run")
    assert json.loads((repo / ".autoresearch" / "state.json").read_text())["phase"] == "idle"
