"""GitRepo against real repositories built in tmp_path."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pygit2
import pytest
from pygit2.enums import ConfigLevel

from autoresearch.edits import blob_id
from autoresearch.errors import ConfigError, GitError
from autoresearch.gitrepo import DEFAULT_AUTHOR, GitRepo

pytestmark = pytest.mark.anyio


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout


def write(path: Path, text: str | bytes, *, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    if executable:
        path.chmod(0o755)


def status(root: Path) -> list[str]:
    return git(root, "status", "--porcelain", "--untracked-files=all").splitlines()


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root with its mtime and bytes, to prove nothing was written."""
    found: dict[str, tuple[int, bytes]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(root))] = (path.stat().st_mtime_ns, path.read_bytes())
    return found


def init_repo(root: Path, *, user: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    if user:
        git(root, "config", "user.name", "Test User")
        git(root, "config", "user.email", "test@example.com")
    return root


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "project")
    write(root / "train.py", "lr = 0.1\n")
    write(root / "prepare.py", "DATA = 'x'\n")
    write(root / "src" / "model.py", "layers = 2\n")
    write(root / "src" / "util" / "helpers.py", "def helper():\n    return 1\n")
    write(root / "src" / "run.sh", "#!/bin/sh\necho hi\n", executable=True)
    write(root / "src" / "blob.bin", bytes(range(256)))
    os.symlink("model.py", root / "src" / "alias.py")
    write(root / ".gitignore", "__pycache__/\n*.log\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
async def repo(repo_dir: Path) -> GitRepo:
    return await GitRepo.open(repo_dir)


# -- open --------------------------------------------------------------------------------------


async def test_open_resolves_root_and_reads_head(repo_dir: Path) -> None:
    repo = await GitRepo.open(repo_dir / "src" / "..")
    assert repo.root == repo_dir.resolve()
    assert await repo.head_commit() == git(repo_dir, "rev-parse", "HEAD").strip()
    assert await repo.current_branch() == "main"
    assert await repo.branch_exists("main")
    assert not await repo.branch_exists("autoresearch/x")


def _expect_config_error(target: Path, watched: Path, fragment: str) -> None:
    before = snapshot(watched)
    with pytest.raises(ConfigError) as info:
        anyio.run(GitRepo.open, target)
    assert info.value.field == "repo_path"
    assert str(info.value) == f"repo_path: {target} {fragment}"
    assert "\n" not in str(info.value)
    assert snapshot(watched) == before


def test_open_missing_path(tmp_path: Path) -> None:
    _expect_config_error(tmp_path / "nope", tmp_path, "does not exist")
    assert not (tmp_path / "nope").exists()


def test_open_plain_directory(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write(plain / "a.py", "x = 1\n")
    _expect_config_error(
        plain,
        tmp_path,
        "is not a git repository (run `git init` and commit your code first)",
    )
    assert not (plain / ".git").exists()


def test_open_file_path(tmp_path: Path) -> None:
    write(tmp_path / "file.txt", "x")
    _expect_config_error(tmp_path / "file.txt", tmp_path, "is not a directory")


def test_open_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    before = snapshot(bare)
    with pytest.raises(ConfigError, match="is a bare git repository") as info:
        anyio.run(GitRepo.open, bare)
    assert info.value.field == "repo_path"
    assert snapshot(bare) == before


def test_open_subdirectory(repo_dir: Path) -> None:
    sub = repo_dir / "src"
    before = snapshot(repo_dir)
    with pytest.raises(ConfigError) as info:
        anyio.run(GitRepo.open, sub)
    message = str(info.value)
    assert message.startswith(f"repo_path: {sub} is inside the git repository at {repo_dir}")
    assert "root" in message
    assert snapshot(repo_dir) == before


def test_open_without_commits(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "fresh")
    write(root / "a.py", "x = 1\n")
    _expect_config_error(root, root, "has no commits yet (commit your code first)")


# -- queries -----------------------------------------------------------------------------------


async def test_dirty_tracked_files(repo: GitRepo, repo_dir: Path) -> None:
    assert await repo.dirty_tracked_files() == []
    write(repo_dir / "train.py", "lr = 0.2\n")  # modified
    (repo_dir / "prepare.py").unlink()  # deleted
    write(repo_dir / "staged.py", "s = 1\n")
    git(repo_dir, "add", "staged.py")  # staged new file
    write(repo_dir / "src" / "model.py", "layers = 3\n")
    git(repo_dir, "add", "src/model.py")  # staged modification
    write(repo_dir / "untracked.py", "u = 1\n")
    write(repo_dir / "debug.log", "ignored\n")
    assert await repo.dirty_tracked_files() == [
        "prepare.py",
        "src/model.py",
        "staged.py",
        "train.py",
    ]


async def test_tracked_files_sorted_and_limited(repo: GitRepo) -> None:
    expected = [
        ".gitignore",
        "prepare.py",
        "src/alias.py",
        "src/blob.bin",
        "src/model.py",
        "src/run.sh",
        "src/util/helpers.py",
        "train.py",
    ]
    assert await repo.tracked_files() == expected
    assert await repo.tracked_files(limit=3) == expected[:3]


async def test_read_file_at_and_commit_message(repo: GitRepo, repo_dir: Path) -> None:
    head = await repo.head_commit()
    assert await repo.read_file_at(head, "src/blob.bin") == bytes(range(256))
    assert await repo.read_file_at(head, "missing.py") is None
    assert await repo.read_file_at(head, "src") is None
    assert await repo.commit_message(head) == "initial\n"


async def test_resolve(repo: GitRepo, repo_dir: Path) -> None:
    head = await repo.head_commit()
    assert await repo.resolve(head[:8]) == head
    assert await repo.resolve(head) == head
    assert await repo.resolve("main") == head
    assert await repo.resolve("refs/heads/main") == head
    with pytest.raises(GitError, match="resolving 'no-such-ref'") as info:
        await repo.resolve("no-such-ref")
    assert info.value.__cause__ is not None


async def test_calls_run_concurrently_without_clashing(repo: GitRepo) -> None:
    results: list[object] = []

    async def call() -> None:
        results.append(await repo.changed_paths(["src"]))
        results.append(await repo.head_commit())

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(call)
    assert len(results) == 20


# -- ensure_branch -----------------------------------------------------------------------------


async def test_ensure_branch_creates_and_is_idempotent(repo: GitRepo, repo_dir: Path) -> None:
    head = await repo.head_commit()
    write(repo_dir / "prepare.py", "DATA = 'user edit'\n")  # uncommitted work survives
    assert await repo.ensure_branch("autoresearch/run1") is True
    assert await repo.current_branch() == "autoresearch/run1"
    assert await repo.head_commit() == head
    assert (repo_dir / "prepare.py").read_text() == "DATA = 'user edit'\n"
    assert await repo.ensure_branch("autoresearch/run1") is False
    assert await repo.current_branch() == "autoresearch/run1"
    assert git(repo_dir, "symbolic-ref", "HEAD").strip() == "refs/heads/autoresearch/run1"


async def test_ensure_branch_checks_out_existing_branch(repo: GitRepo, repo_dir: Path) -> None:
    git(repo_dir, "checkout", "-q", "-b", "other")
    write(repo_dir / "train.py", "lr = 0.5\n")
    write(repo_dir / "src" / "extra.py", "extra = 1\n")
    git(repo_dir, "add", "-A")
    git(repo_dir, "commit", "-q", "-m", "other work")
    tip = git(repo_dir, "rev-parse", "HEAD").strip()
    git(repo_dir, "checkout", "-q", "main")
    assert not (repo_dir / "src" / "extra.py").exists()

    assert await repo.ensure_branch("other") is False
    assert await repo.current_branch() == "other"
    assert await repo.head_commit() == tip
    assert (repo_dir / "train.py").read_text() == "lr = 0.5\n"
    assert (repo_dir / "src" / "extra.py").read_text() == "extra = 1\n"
    assert status(repo_dir) == []


async def test_ensure_branch_refuses_to_overwrite_changes(repo: GitRepo, repo_dir: Path) -> None:
    git(repo_dir, "checkout", "-q", "-b", "other")
    write(repo_dir / "train.py", "lr = 0.5\n")
    git(repo_dir, "commit", "-q", "-am", "other work")
    git(repo_dir, "checkout", "-q", "main")
    write(repo_dir / "train.py", "lr = 'mine'\n")

    with pytest.raises(GitError, match="switching to branch 'other'"):
        await repo.ensure_branch("other")
    assert (repo_dir / "train.py").read_text() == "lr = 'mine'\n"
    assert await repo.current_branch() == "main"


async def test_ensure_branch_from_detached_head(repo: GitRepo, repo_dir: Path) -> None:
    head = await repo.head_commit()
    git(repo_dir, "checkout", "-q", "--detach")
    assert await repo.current_branch() is None
    assert await repo.ensure_branch("autoresearch/d") is True
    assert await repo.current_branch() == "autoresearch/d"
    assert await repo.head_commit() == head


# -- exclude -----------------------------------------------------------------------------------


async def test_exclude_is_idempotent_and_leaves_gitignore(repo: GitRepo, repo_dir: Path) -> None:
    exclude = repo_dir / ".git" / "info" / "exclude"
    gitignore = (repo_dir / ".gitignore").read_bytes()
    exclude.write_text("# mine\n*.tmp")  # no trailing newline
    write(repo_dir / ".autoresearch" / "state.json", "{}")
    assert any(".autoresearch" in line for line in status(repo_dir))

    await repo.exclude(".autoresearch/")
    await repo.exclude(".autoresearch/")
    assert exclude.read_text() == "# mine\n*.tmp\n.autoresearch/\n"
    assert (repo_dir / ".gitignore").read_bytes() == gitignore
    assert status(repo_dir) == []
    assert await repo.changed_paths(["."]) == []


async def test_exclude_rejects_multi_line_patterns(repo: GitRepo, repo_dir: Path) -> None:
    exclude = repo_dir / ".git" / "info" / "exclude"
    before = exclude.read_bytes()
    with pytest.raises(GitError, match="not a single pattern"):
        await repo.exclude("a\nb")
    assert exclude.read_bytes() == before


async def test_exclude_creates_missing_file(repo: GitRepo, repo_dir: Path) -> None:
    info = repo_dir / ".git" / "info"
    for child in info.iterdir():
        child.unlink()
    info.rmdir()
    await repo.exclude(".autoresearch/")
    assert (info / "exclude").read_text() == ".autoresearch/\n"


# -- changed_paths / commit_paths --------------------------------------------------------------


async def test_changed_paths(repo: GitRepo, repo_dir: Path) -> None:
    assert await repo.changed_paths(["train.py", "src"]) == []
    write(repo_dir / "train.py", "lr = 0.2\n")
    (repo_dir / "src" / "util" / "helpers.py").unlink()
    write(repo_dir / "src" / "new.py", "n = 1\n")
    write(repo_dir / "src" / "__pycache__" / "model.cpython-311.pyc", b"\0\1")
    write(repo_dir / "src" / "trace.log", "ignored")
    write(repo_dir / "prepare.py", "DATA = 'elsewhere'\n")
    (repo_dir / "src" / "run.sh").chmod(0o644)  # a mode change alone counts
    assert await repo.changed_paths(["train.py", "src/"]) == [
        "src/new.py",
        "src/run.sh",
        "src/util/helpers.py",
        "train.py",
    ]
    assert await repo.changed_paths(["./src/util"]) == ["src/util/helpers.py"]
    assert await repo.changed_paths(["missing"]) == []


async def test_changed_paths_rejects_paths_outside(repo: GitRepo) -> None:
    with pytest.raises(GitError, match="outside"):
        await repo.changed_paths(["../elsewhere"])


async def test_commit_paths_only_commits_mutable_paths(repo: GitRepo, repo_dir: Path) -> None:
    base = await repo.head_commit()
    write(repo_dir / "train.py", "lr = 0.2\n")
    write(repo_dir / "prepare.py", "DATA = 'dirty'\n")  # dirty, unstaged, outside
    write(repo_dir / "src" / "model.py", "layers = 9\n")
    git(repo_dir, "add", "src/model.py")  # staged, outside
    write(repo_dir / "notes.txt", "untracked\n")

    sha = await repo.commit_paths(["train.py"], "candidate 1")
    assert sha is not None and len(sha) == 40
    assert await repo.head_commit() == sha
    assert git(repo_dir, "rev-parse", "main").strip() == sha
    assert git(repo_dir, "rev-parse", f"{sha}^").strip() == base
    assert git(repo_dir, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split() == [
        "train.py"
    ]
    assert await repo.commit_message(sha) == "candidate 1"
    author = git(repo_dir, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip()
    assert author == "Test User <test@example.com>|Test User <test@example.com>"
    # Everything else keeps its state: prepare.py unstaged, src/model.py still staged.
    assert sorted(status(repo_dir)) == [" M prepare.py", "?? notes.txt", "M  src/model.py"]
    assert await repo.commit_paths(["train.py"], "nothing") is None
    assert await repo.head_commit() == sha


async def test_commit_paths_directory_add_modify_delete(repo: GitRepo, repo_dir: Path) -> None:
    write(repo_dir / "src" / "model.py", "layers = 4\n")
    (repo_dir / "src" / "util" / "helpers.py").unlink()
    write(repo_dir / "src" / "layers" / "attention.py", "heads = 8\n")
    write(repo_dir / "src" / "tool.sh", "#!/bin/sh\n", executable=True)
    write(repo_dir / "src" / "__pycache__" / "model.cpython-311.pyc", b"\0compiled")
    write(repo_dir / "src" / "run.log", "ignored\n")

    sha = await repo.commit_paths(["src"], "candidate")
    assert sha is not None
    changed = git(repo_dir, "diff-tree", "--no-commit-id", "--name-status", "-r", sha)
    assert sorted(changed.splitlines()) == [
        "A\tsrc/layers/attention.py",
        "A\tsrc/tool.sh",
        "D\tsrc/util/helpers.py",
        "M\tsrc/model.py",
    ]
    files = git(repo_dir, "ls-tree", "-r", sha).splitlines()
    assert not any("__pycache__" in line or ".log" in line for line in files)
    assert any(line.startswith("100755 blob") and "src/tool.sh" in line for line in files)
    assert any(line.startswith("120000 blob") and "src/alias.py" in line for line in files)
    assert status(repo_dir) == []
    assert (repo_dir / "src" / "__pycache__" / "model.cpython-311.pyc").exists()


async def test_commit_paths_handles_symlinks_and_type_changes(
    repo: GitRepo, repo_dir: Path
) -> None:
    (repo_dir / "src" / "alias.py").unlink()
    os.symlink("run.sh", repo_dir / "src" / "alias.py")  # retargeted link
    (repo_dir / "src" / "util" / "helpers.py").unlink()
    (repo_dir / "src" / "util").rmdir()
    write(repo_dir / "src" / "util", "now a file\n")  # directory became a file
    sha = await repo.commit_paths(["src"], "types")
    assert sha is not None
    assert await repo.read_file_at(sha, "src/alias.py") == b"run.sh"
    assert await repo.read_file_at(sha, "src/util") == b"now a file\n"
    assert await repo.read_file_at(sha, "src/util/helpers.py") is None
    assert status(repo_dir) == []


async def test_commit_and_restore_top_level_files(repo: GitRepo, repo_dir: Path) -> None:
    base = await repo.head_commit()
    (repo_dir / "train.py").unlink()
    write(repo_dir / "extra.py", "extra = 1\n")  # a mutable file that HEAD does not have yet
    assert await repo.changed_paths(["train.py", "extra.py"]) == ["extra.py", "train.py"]
    sha = await repo.commit_paths(["train.py", "extra.py"], "swap")
    assert sha is not None
    assert await repo.read_file_at(sha, "train.py") is None
    assert await repo.read_file_at(sha, "extra.py") == b"extra = 1\n"
    assert status(repo_dir) == []
    await repo.restore(base, ["train.py", "extra.py"])
    assert (repo_dir / "train.py").read_text() == "lr = 0.1\n"
    assert not (repo_dir / "extra.py").exists()
    assert status(repo_dir) == []


async def test_paths_below_a_file_are_empty(repo: GitRepo) -> None:
    assert await repo.changed_paths(["train.py/inner"]) == []


async def test_commit_paths_without_changes_returns_none(repo: GitRepo, repo_dir: Path) -> None:
    head = await repo.head_commit()
    write(repo_dir / "prepare.py", "DATA = 'outside'\n")
    write(repo_dir / "src" / "__pycache__" / "x.pyc", b"\0")
    assert await repo.commit_paths(["src", "train.py"], "empty") is None
    assert await repo.head_commit() == head


@pytest.fixture
def no_global_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Hide the machine's global and system git config from libgit2 and from git."""
    empty_dir = tmp_path / "empty-config"
    empty_dir.mkdir()
    empty = empty_dir / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("HOME", str(empty_dir))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(empty_dir))
    levels = (ConfigLevel.GLOBAL, ConfigLevel.XDG, ConfigLevel.SYSTEM)
    saved = {level: pygit2.settings.search_path[level] for level in levels}
    for level in levels:
        pygit2.settings.search_path[level] = str(empty_dir)
    try:
        yield
    finally:
        for level, value in saved.items():
            pygit2.settings.search_path[level] = value


@pytest.mark.usefixtures("no_global_identity")
async def test_commit_paths_falls_back_to_default_author(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "anon", user=False)
    write(root / "train.py", "lr = 1\n")
    git(root, "add", "-A")
    git(
        root,
        "-c",
        "user.name=Setup",
        "-c",
        "user.email=setup@example.com",
        "commit",
        "-q",
        "-m",
        "initial",
    )
    repo = await GitRepo.open(root)
    write(root / "train.py", "lr = 2\n")
    sha = await repo.commit_paths(["train.py"], "candidate")
    assert sha is not None
    name, email = DEFAULT_AUTHOR
    shown = git(root, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip()
    assert shown == f"{name} <{email}>|{name} <{email}>"


# -- restore / set_ref / diff ------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_restore_brings_back_the_best_commit(repo: GitRepo, repo_dir: Path) -> None:
    await repo.ensure_branch("autoresearch/t")
    best = await repo.head_commit()
    src = repo_dir / "src"
    original_blob = (src / "blob.bin").read_bytes()

    write(src / "model.py", "layers = 100\n")
    write(src / "blob.bin", b"\xff\x00changed")
    (src / "run.sh").chmod(0o644)
    (src / "model.py").chmod(0o755)
    write(src / "deep" / "new" / "added.py", "added = True\n")
    (src / "util" / "helpers.py").unlink()
    (src / "alias.py").unlink()
    os.symlink("run.sh", src / "alias.py")
    write(repo_dir / "train.py", "lr = 0.9\n")
    candidate = await repo.commit_paths(["src", "train.py"], "candidate")
    assert candidate is not None
    await repo.set_ref("refs/autoresearch/t/1", candidate)

    # State that restore must leave alone.
    write(src / "scratch.txt", "never committed\n")
    write(src / "__pycache__" / "model.cpython-311.pyc", b"\0cache")
    write(repo_dir / "prepare.py", "DATA = 'user'\n")

    await repo.restore(best, ["src", "train.py"])

    assert await repo.head_commit() == best
    assert git(repo_dir, "rev-parse", "autoresearch/t").strip() == best
    assert await repo.current_branch() == "autoresearch/t"
    assert (src / "model.py").read_text() == "layers = 2\n"
    assert (src / "blob.bin").read_bytes() == original_blob
    assert _mode(src / "run.sh") & 0o100
    assert not _mode(src / "model.py") & 0o100
    assert (src / "util" / "helpers.py").read_text() == "def helper():\n    return 1\n"
    assert (src / "alias.py").is_symlink() and os.readlink(src / "alias.py") == "model.py"
    assert not (src / "deep").exists()  # the added file and its empty directories are gone
    assert (repo_dir / "train.py").read_text() == "lr = 0.1\n"
    assert (src / "scratch.txt").read_text() == "never committed\n"
    assert (src / "__pycache__" / "model.cpython-311.pyc").read_bytes() == b"\0cache"
    assert (repo_dir / "prepare.py").read_text() == "DATA = 'user'\n"
    assert sorted(status(repo_dir)) == [" M prepare.py", "?? src/scratch.txt"]

    # The discarded candidate stays reachable through its ref.
    assert await repo.resolve("refs/autoresearch/t/1") == candidate
    assert await repo.read_file_at(candidate, "src/model.py") == b"layers = 100\n"
    assert "layers = 100" in await repo.diff(candidate)


async def test_restore_never_writes_through_symlinked_directories(
    repo: GitRepo, repo_dir: Path, tmp_path: Path
) -> None:
    base = await repo.head_commit()
    write(repo_dir / "src" / "deep" / "added.py", "added = 1\n")
    assert await repo.commit_paths(["src"], "candidate") is not None
    outside = tmp_path / "outside"
    write(outside / "helpers.py", "outside helpers\n")
    write(outside / "added.py", "outside added\n")
    for name in ("util", "deep"):
        target = repo_dir / "src" / name
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
        os.symlink(outside, target)

    saved = await repo.restore(base, ["src"], save_as="refs/autoresearch/t/saved/1")
    assert (outside / "helpers.py").read_text() == "outside helpers\n"
    assert (outside / "added.py").read_text() == "outside added\n"
    util = repo_dir / "src" / "util"
    assert not util.is_symlink() and (util / "helpers.py").read_text().startswith("def helper")
    # The symlinks were not git's to give back: they were committed before being replaced.
    assert saved is not None and saved.paths == ("src/deep", "src/util")
    assert git(repo_dir, "cat-file", "-p", f"{saved.ref}:src/util").strip() == str(outside)


async def test_changed_paths_respects_line_ending_filters(repo: GitRepo, repo_dir: Path) -> None:
    git(repo_dir, "config", "core.autocrlf", "true")
    (repo_dir / "train.py").write_bytes(b"lr = 0.1\r\n")
    assert await repo.changed_paths(["train.py"]) == []
    (repo_dir / "train.py").write_bytes(b"lr = 0.2\r\n")
    assert await repo.changed_paths(["train.py"]) == ["train.py"]
    sha = await repo.commit_paths(["train.py"], "crlf")
    assert sha is not None
    assert await repo.read_file_at(sha, "train.py") == b"lr = 0.2\n"


async def test_restore_discards_the_engines_edits_and_saves_anyone_elses(
    repo: GitRepo, repo_dir: Path
) -> None:
    head = await repo.head_commit()
    write(repo_dir / "train.py", "broken(\n")  # the engine's edit: it gives its blob id
    write(repo_dir / "src" / "model.py", "oops\n")  # nobody told the engine about this one
    written = {"train.py": blob_id(b"broken(\n")}
    with pytest.raises(GitError, match=r"would overwrite changes \(src/model.py\)"):
        await repo.restore(head, ["train.py", "src/model.py"], written=written)
    assert (repo_dir / "src" / "model.py").read_text() == "oops\n"  # refused: nothing touched
    assert (repo_dir / "train.py").read_text() == "broken(\n"

    saved = await repo.restore(
        head, ["train.py", "src/model.py"], written=written, save_as="refs/autoresearch/t/saved/a"
    )
    assert (repo_dir / "train.py").read_text() == "lr = 0.1\n"
    assert (repo_dir / "src" / "model.py").read_text() == "layers = 2\n"
    assert status(repo_dir) == []
    assert saved is not None and saved.paths == ("src/model.py",)
    assert git(repo_dir, "show", f"{saved.ref}:src/model.py").strip() == "oops"
    assert git(repo_dir, "rev-parse", f"{saved.ref}^").strip() == head  # on top of what HEAD was
    # A second save never replaces the first.
    write(repo_dir / "src" / "model.py", "again\n")
    again = await repo.restore(head, ["src/model.py"], save_as="refs/autoresearch/t/saved/a")
    assert again is not None and again.ref == "refs/autoresearch/t/saved/a-2"
    assert git(repo_dir, "show", f"{saved.ref}:src/model.py").strip() == "oops"


async def test_restore_moves_detached_head(repo: GitRepo, repo_dir: Path) -> None:
    base = await repo.head_commit()
    write(repo_dir / "train.py", "lr = 0.3\n")
    candidate = await repo.commit_paths(["train.py"], "c")
    git(repo_dir, "checkout", "-q", "--detach", candidate or "")
    await repo.restore(base, ["train.py"])
    assert await repo.current_branch() is None
    assert await repo.head_commit() == base
    assert git(repo_dir, "rev-parse", "main").strip() == candidate
    assert (repo_dir / "train.py").read_text() == "lr = 0.1\n"


async def test_restore_unknown_commit(repo: GitRepo) -> None:
    with pytest.raises(GitError, match="restoring"):
        await repo.restore("0" * 40, ["src"])


async def test_set_ref_never_moves_an_existing_ref(repo: GitRepo, repo_dir: Path) -> None:
    base = await repo.head_commit()
    await repo.set_ref("refs/autoresearch/run/1", base)
    await repo.set_ref("refs/autoresearch/run/1", base)  # the same commit again is fine
    write(repo_dir / "train.py", "lr = 0.4\n")
    newer = await repo.commit_paths(["train.py"], "c")
    assert newer is not None
    with pytest.raises(GitError, match="refusing to move refs/autoresearch/run/1"):
        await repo.set_ref("refs/autoresearch/run/1", newer)
    assert await repo.resolve("refs/autoresearch/run/1") == base
    with pytest.raises(GitError, match="setting"):
        await repo.set_ref("refs/bad..name", base)


async def test_diff(repo: GitRepo, repo_dir: Path) -> None:
    base = await repo.head_commit()
    write(repo_dir / "train.py", "lr = 0.2\n")
    sha = await repo.commit_paths(["train.py"], "c")
    assert sha is not None
    patch = await repo.diff(sha)
    assert "diff --git a/train.py b/train.py" in patch
    assert "-lr = 0.1" in patch and "+lr = 0.2" in patch
    assert "prepare.py" not in patch
    assert await repo.diff(sha, against=sha) == ""
    reverse = await repo.diff(base, against=sha)
    assert "-lr = 0.2" in reverse and "+lr = 0.1" in reverse
    root_patch = await repo.diff(base)
    assert "new file mode" in root_patch and "+lr = 0.1" in root_patch
