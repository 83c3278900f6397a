"""The checks before anything is written: can research start on this repository.

Both a worker (before its first cycle) and the task manager (when a task is saved) run them,
so a task that saves is a task that starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio
import anyio.to_thread
import psutil

from autoresearch.config import ResearchConfig
from autoresearch.edits import PathPolicy, check_config_paths
from autoresearch.errors import AutoResearchError, ConfigError
from autoresearch.gitrepo import GitRepo
from autoresearch.sandbox import check_sandbox
from autoresearch.workspace import WORKSPACE_DIR, ResearchState, Workspace

__all__ = ["Preflight", "check_repository"]


@dataclass(frozen=True)
class Preflight:
    """What the checks found: the opened repo, the config to use and the saved state."""

    git: GitRepo
    config: ResearchConfig
    """The configuration, its tag chosen (the repository's adopted when none was given)."""
    state: ResearchState | None
    stale_locks: tuple[Path, ...] = ()
    """Git lock files the interrupted cycle left; the worker removes them before recovering."""

    @property
    def interrupted(self) -> bool:
        """An earlier process left a cycle undecided (the worker recovers it)."""
        return self.state is not None and (
            self.state.current_cycle is not None or bool(self.state.in_flight)
        )


async def _configured_tag(workspace: Workspace) -> str | None:
    try:
        return (await workspace.read_config()).tag
    except AutoResearchError:
        return None


async def check_repository(config: ResearchConfig) -> Preflight:
    """Everything a first cycle would refuse, checked without writing anything.

    The repository must open, the configured paths must exist (an interrupted cycle's missing
    mutable files excepted: recovery brings them back), every mutable path must be tracked by
    git outside any submodule, ``.autoresearch/`` must not be tracked, the tag must match the
    repository's research (adopted when not given: :meth:`ResearchConfig.with_tag`), no git
    lock file may be in the way and tracked files must be clean, except the mutable files of a
    cycle an earlier process left undecided. Raises :class:`ConfigError` naming the field.
    """
    git = await GitRepo.open(config.repo_path)
    workspace = Workspace(config.repo_path)
    state = await workspace.read_state()
    await workspace.check_ledgers()
    interrupted = state is not None and (state.current_cycle is not None or bool(state.in_flight))
    await check_config_paths(config, missing_ok=config.mutable_paths if interrupted else ())
    check_sandbox(config)
    problems = await git.target_problems(config.mutable_paths)
    if problems:
        raise ConfigError(f"mutable_paths: {problems[0]}", field="mutable_paths")
    if await git.tracked_under([WORKSPACE_DIR]):
        raise ConfigError(
            f"repo_path: {WORKSPACE_DIR}/ is tracked by git, and autoresearch writes its state "
            f"there; run `git rm -r --cached {WORKSPACE_DIR}` and commit, then try again",
            field="repo_path",
        )
    configured = None if state is not None else await _configured_tag(workspace)
    config = config.with_tag(state.tag if state is not None else None, configured)
    stale = await _stale_locks(git, config, state if interrupted else None)
    found = Preflight(git, config, state, stale)
    dirty = await git.dirty_tracked_files()
    if found.interrupted:
        policy = PathPolicy.from_config(config)
        dirty = [path for path in dirty if not policy.allows(path)]
    if dirty:
        shown = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
        raise ConfigError(
            f"repo_path: tracked files have uncommitted changes ({shown}); commit or stash them "
            "first (autoresearch never discards your changes)",
            field="repo_path",
        )
    return found


def _held_open(path: Path) -> bool:
    """Whether any process has ``path`` open (a git command still writing it)."""
    target = str(path)
    for proc in psutil.process_iter():
        try:
            if any(f.path == target for f in proc.open_files()):
                return True
        except psutil.Error:
            continue
    return False


def _ours(path: Path, config: ResearchConfig, interrupted: ResearchState | None) -> bool:
    """Whether the interrupted cycle could have left the lock file ``path``."""
    if interrupted is None:
        return False
    parts = path.parts
    ours_by_name = path.name in ("index.lock", "HEAD.lock") or (
        "refs" in parts
        and (
            "/".join(parts[parts.index("refs") :]).startswith(
                (f"refs/heads/{config.branch}.lock", f"refs/autoresearch/{config.chosen_tag}/")
            )
        )
    )
    if not ours_by_name:
        return False
    try:
        since = datetime.fromisoformat(interrupted.updated_at.replace("Z", "+00:00")).timestamp()
        return path.stat().st_mtime >= since - 2.0
    except (ValueError, OSError):
        return False


async def _stale_locks(
    git: GitRepo, config: ResearchConfig, interrupted: ResearchState | None
) -> tuple[Path, ...]:
    """Git lock files in the way: the interrupted cycle's (returned) or anyone else's (refused)."""
    locks = await git.lock_files()
    if not locks:
        return ()

    def classify() -> tuple[Path, ...]:
        ours: list[Path] = []
        for path in locks:
            if _held_open(path):
                raise ConfigError(
                    f"repo_path: a git command is working on this repository ({path} exists); "
                    "wait for it to finish, then try again",
                    field="repo_path",
                )
            if not _ours(path, config, interrupted):
                raise ConfigError(
                    f"repo_path: git's lock file {path} was left behind (a git command was "
                    f"killed?); if no git process is running, delete it: rm '{path}'",
                    field="repo_path",
                )
            ours.append(path)
        return tuple(ours)

    return await anyio.to_thread.run_sync(classify)
