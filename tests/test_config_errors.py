"""Bad input: one clear ConfigError naming the field, and nothing written or changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from autoresearch import ConfigError, NeuroLink, ScriptedProposer
from tests.conftest import base_config, git, make_repo, snapshot

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"mutablePaths": ["/etc/passwd"]}, "mutable_paths", "absolute"),
        ({"mutablePaths": ["../x.py"]}, "mutable_paths", "'..'"),
        ({"mutablePaths": []}, "mutable_paths", "at least 1"),
        ({"mutablePaths": [".git/config"]}, "mutable_paths", ".git/"),
        ({"immutablePaths": ["train.py"]}, "mutable_paths", "overlaps"),
        (
            {"metric": {"name": "m", "pattern": "(unclosed", "direction": "lower"}},
            "metric.pattern",
            "does not compile",
        ),
        (
            {"metric": {"name": "m", "pattern": r"^m: [\d.]+", "direction": "lower"}},
            "metric.pattern",
            "exactly one capture group",
        ),
        (
            {"metric": {"name": "m", "pattern": r"(a)(b)", "direction": "lower"}},
            "metric.pattern",
            "exactly one capture group",
        ),
        (
            {"metric": {"name": "m", "pattern": r"^m: (\S+)", "direction": "down"}},
            "metric.direction",
            "'lower' or 'higher'",
        ),
        ({"timeoutMs": 0}, "timeout_ms", "positive"),
        ({"timeoutMs": -5}, "timeout_ms", "positive"),
        ({"runCommand": "  "}, "run_command", "empty"),
        ({"tag": "bad tag"}, "tag", "branch"),
        ({"minImprovement": -1}, "min_improvement", ">= 0"),
        ({"repoPath": None, "mutablePaths": ["train.py"]}, "repo_path", ""),
        ({"unknownOption": 1}, "unknownOption", "not a known setting"),
    ],
)
def test_rejected_at_creation(
    repo: Path, overrides: dict[str, Any], field: str, words: str
) -> None:
    before = snapshot(repo)
    config = base_config(repo, **overrides)
    if config.get("repoPath") is None:
        config.pop("repoPath")
    with pytest.raises(ConfigError) as info:
        NeuroLink().create_research_worker(config, proposer=ScriptedProposer([]))
    assert info.value.field == field
    assert words in str(info.value)
    assert str(info.value).startswith(f"{field}: ")
    assert "\n" not in str(info.value)
    assert snapshot(repo) == before


def _not_a_repo(tmp: Path) -> tuple[Path, dict[str, Any]]:
    path = tmp / "plain"
    path.mkdir()
    (path / "train.py").write_text("print(1)\n")
    return path, {"immutablePaths": []}


def _no_commit(tmp: Path) -> tuple[Path, dict[str, Any]]:
    path = tmp / "empty"
    path.mkdir()
    git(path, "init", "-q")
    (path / "train.py").write_text("print(1)\n")
    return path, {"immutablePaths": []}


def _dirty(tmp: Path) -> tuple[Path, dict[str, Any]]:
    path = make_repo(
        tmp / "dirty", {"train.py": "X = 1\n", "program.md": "p\n", "data.py": "D=1\n"}
    )
    (path / "data.py").write_text("D = 2  # my uncommitted work\n")
    return path, {}


def _dirty_mutable(tmp: Path) -> tuple[Path, dict[str, Any]]:
    path = make_repo(tmp / "dirtym", {"train.py": "X = 1\n", "program.md": "p\n"})
    (path / "train.py").write_text("X = 2  # my uncommitted work\n")
    return path, {}


def _missing(tmp: Path) -> tuple[Path, dict[str, Any]]:
    path = make_repo(tmp / "missing", {"train.py": "X = 1\n", "program.md": "p\n"})
    return path, {"mutablePaths": ["model.py"]}


def _symlink_out(tmp: Path) -> tuple[Path, dict[str, Any]]:
    outside = tmp / "outside.py"
    outside.write_text("X = 1\n")
    path = make_repo(tmp / "link", {"train.py": "X = 1\n", "program.md": "p\n"})
    os.symlink(outside, path / "evil.py")
    git(path, "add", "evil.py")
    git(path, "commit", "-qm", "link")
    return path, {"mutablePaths": ["evil.py"]}


def _missing_dir(tmp: Path) -> tuple[Path, dict[str, Any]]:
    return tmp / "nowhere", {"immutablePaths": []}


@pytest.mark.parametrize(
    ("make", "field", "words"),
    [
        (_not_a_repo, "repo_path", "not a git repository"),
        (_no_commit, "repo_path", "no commits"),
        (_dirty, "repo_path", "uncommitted changes (data.py)"),
        (_dirty_mutable, "repo_path", "uncommitted changes (train.py)"),
        (_missing, "mutable_paths", "'model.py' does not exist"),
        (_symlink_out, "mutable_paths", "outside the repository"),
        (_missing_dir, "repo_path", "does not exist"),
    ],
)
async def test_rejected_before_first_cycle(
    tmp_path: Path, make: Any, field: str, words: str
) -> None:
    path, overrides = make(tmp_path)
    before = snapshot(path) if path.exists() else None
    worker = NeuroLink().create_research_worker(
        base_config(path, **overrides), proposer=ScriptedProposer([])
    )
    with pytest.raises(ConfigError) as info:
        await worker.run_experiment_cycle()
    assert info.value.field == field
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    if before is not None:
        assert snapshot(path) == before
        assert not (path / ".autoresearch").exists()


def test_both_spellings_are_accepted(repo: Path) -> None:
    neurolink = NeuroLink()
    camel = neurolink.createResearchWorker(**base_config(repo))
    snake = neurolink.create_research_worker(
        repo_path=repo,
        mutable_paths=["train.py"],
        immutable_paths=["program.md"],
        run_command=camel.config.run_command,
        metric=camel.config.metric,
        timeout_ms=20_000,
        tag="t1",
    )
    assert camel.config == snake.config
    assert camel.config.timeoutMs == 20_000


def test_overrides_in_either_spelling_onto_an_existing_config(repo: Path) -> None:
    from autoresearch import load_config

    config = load_config(base_config(repo))
    assert load_config(config, timeout_ms=5_000).timeout_ms == 5_000
    assert load_config(config, timeoutMs=6_000).timeout_ms == 6_000
    mixed = load_config({**base_config(repo), "kill_grace_ms": 10})
    assert mixed.kill_grace_ms == 10


def test_a_misspelled_key_is_named_as_written(repo: Path) -> None:
    with pytest.raises(ConfigError) as info:
        NeuroLink().create_research_worker(base_config(repo, timeoutMS=5))
    assert str(info.value).startswith("timeoutMS: is not a known setting")
