"""Where NeuroLink's way is simply more convenient, it works here too.

``-t`` for ``--target``; ``--format json`` next to ``--json``; ``results --last N`` next to
``--limit``; ``run-once --description TEXT`` as the hint; and a read-only file inside an
editable folder (``--target src --immutable src/data.py``), which the engine never edits,
commits or restores. The differences kept on purpose are in docs/migration.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoresearch import (
    ConfigError,
    Edit,
    NeuroLink,
    ResearchContext,
    ScriptedProposer,
    ScriptedStep as Step,
)
from autoresearch.cli import app, neurolink_app
from tests.conftest import PY, git, make_repo, snapshot

runner = CliRunner()

TRAIN = "X = 3.0\nprint(f'val_bpb: {(X - 1) ** 2 + 1:.6f}')\n"
MODEL = "from src.data import ROWS\nX = 3.0\nprint(f'val_bpb: {(X - 1) ** 2 + ROWS:.6f}')\n"
DATA = "ROWS = 1\n"


def init(repo: Path, *flags: str) -> None:
    result = runner.invoke(
        neurolink_app,
        ["autoresearch", "init", str(repo), "--tag", "nl", "--run-command", f"{PY} train.py",
         "--metric-name", "val_bpb", *flags],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_short_target_description_format_json_and_last(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": TRAIN})
    init(repo, "-t", "train.py")
    config = json.loads((repo / ".autoresearch" / "config.json").read_text())
    assert config["mutablePaths"] == ["train.py"]
    for _ in range(2):
        done = runner.invoke(app, ["run-once", str(repo), "--quiet", "--description", "try X"])
        assert done.exit_code == 0, done.output
    runs = [json.loads(line) for line in (repo / ".autoresearch" / "runs.jsonl").open()]
    assert [run["hint"] for run in runs] == ["try X", "try X"]

    as_json = runner.invoke(app, ["status", str(repo), "--json"])
    as_format = runner.invoke(app, ["status", str(repo), "--format", "json"])
    assert as_format.exit_code == 0 and json.loads(as_format.stdout)["cycleCount"] == 2
    assert json.loads(as_format.stdout) == json.loads(as_json.stdout)
    last = runner.invoke(app, ["results", str(repo), "--format", "json", "--last", "1"])
    assert [r["cycle"] for r in json.loads(last.stdout)] == [2]
    limit = runner.invoke(app, ["results", str(repo), "--json", "--limit", "1"])
    assert limit.stdout == last.stdout
    text = runner.invoke(app, ["results", str(repo), "--format", "text", "--last", "1"])
    assert text.exit_code == 0 and text.stdout.startswith("val_bpb (lower is better)")
    both = runner.invoke(app, ["status", str(repo), "--json", "--format", "text"])
    assert both.exit_code == 2
    assert "--json and --format text disagree; give one of them" in both.stderr


def test_task_list_takes_format_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTORESEARCH_HOME", str(tmp_path / "home"))
    listed = runner.invoke(app, ["task", "list", "--format", "json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


@pytest.fixture
def src_repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"train.py": "import runpy\nrunpy.run_module('src.model')\n", "src/__init__.py": "",
         "src/model.py": MODEL, "src/data.py": DATA},
    )  # fmt: skip


def test_a_read_only_file_inside_an_editable_folder_is_accepted(src_repo: Path) -> None:
    init(src_repo, "-t", "src", "--immutable", "src/data.py")
    config = json.loads((src_repo / ".autoresearch" / "config.json").read_text())
    assert (config["mutablePaths"], config["immutablePaths"]) == (["src"], ["src/data.py"])
    done = runner.invoke(app, ["run-once", str(src_repo), "--quiet"])
    assert done.exit_code == 0, done.output


@pytest.mark.anyio
async def test_the_read_only_file_is_never_edited_committed_or_restored(src_repo: Path) -> None:
    seen: list[ResearchContext] = []

    def rewrite_data(context: ResearchContext) -> list[Edit]:
        seen.append(context)
        return [Edit(path="src/data.py", content="ROWS = 0\n")]

    def better_model_and_data_by_the_run(context: ResearchContext) -> list[Edit]:
        # The experiment itself rewrites src/data.py while it runs; that is not the change.
        run = "open('src/data.py', 'w').write('ROWS = 5\\n')\n" + MODEL.replace("3.0", "2.0")
        return [Edit(path="src/model.py", content=run)]

    worker = NeuroLink().create_research_worker(
        repo_path=src_repo,
        mutable_paths=["src"],
        immutable_paths=["src/data.py"],
        run_command=f"{PY} train.py",
        metric={"name": "val_bpb"},
        tag="ro",
        max_repairs=0,
        proposer=ScriptedProposer(
            [Step("rewrite the data", rewrite_data), Step("X 2", better_model_and_data_by_the_run)]
        ),
    )
    baseline = await worker.run_experiment_cycle()
    refused = await worker.run_experiment_cycle()
    assert refused.status == "invalid"
    assert "'src/data.py' is immutable" in refused.description
    assert (src_repo / "src" / "data.py").read_text() == DATA
    [context] = seen
    assert set(context.mutable_files) == {"src/__init__.py", "src/model.py"}
    # train.py is shown read-only too: the run command names it (the script that is run).
    assert set(context.immutable_files) == {"src/data.py", "train.py"}

    changed = await worker.run_experiment_cycle()
    await worker.aclose()
    assert baseline.status == "keep" and changed.status == "discard"  # 1 + 5 rows: worse
    assert changed.commit_hash is not None
    files = git(src_repo, "show", "--name-only", "--format=", changed.commit_hash)
    assert files.splitlines() == ["src/model.py"]
    # discarded: the model is back at the best commit; the run's data.py is left as it was
    assert (src_repo / "src" / "model.py").read_text() == MODEL
    assert (src_repo / "src" / "data.py").read_text() == "ROWS = 5\n"
    assert git(src_repo, "for-each-ref", "refs/autoresearch/ro/saved") == ""


def test_an_editable_path_inside_a_read_only_one_is_still_refused(src_repo: Path) -> None:
    before = snapshot(src_repo)
    with pytest.raises(ConfigError, match=r"^mutable_paths: 'src/model.py' overlaps immutable"):
        NeuroLink().create_research_worker(
            repo_path=src_repo,
            mutable_paths=["src/model.py"],
            immutable_paths=["src"],
            run_command="true",
            metric={"name": "val_bpb"},
        )
    assert snapshot(src_repo) == before
