"""The checks before anything is written: can research start on this repository.

Both a worker (before its first cycle) and the task manager (when a task is saved) run them,
so a task that saves is a task that starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoresearch.config import ResearchConfig
from autoresearch.edits import PathPolicy, check_config_paths
from autoresearch.errors import AutoResearchError, ConfigError, EditError
from autoresearch.gitrepo import GitRepo
from autoresearch.sandbox import check_sandbox
from autoresearch.workspace import ResearchState, Workspace

__all__ = ["Preflight", "check_repository"]


@dataclass(frozen=True)
class Preflight:
    """What the checks found: the opened repo, the config to use and the saved state."""

    git: GitRepo
    config: ResearchConfig
    """The configuration, with the repository's tag adopted when none was given."""
    state: ResearchState | None

    @property
    def interrupted(self) -> bool:
        """An earlier process left a cycle undecided (the worker recovers it)."""
        return self.state is not None and self.state.current_cycle is not None


async def _configured_tag(workspace: Workspace) -> str | None:
    try:
        return (await workspace.read_config()).tag
    except AutoResearchError:
        return None


def _is_mutable(policy: PathPolicy, path: str) -> bool:
    try:
        policy.check(path)
    except EditError:
        return False
    return True


async def check_repository(config: ResearchConfig) -> Preflight:
    """Everything a first cycle would refuse, checked without writing anything.

    The repository must open, the configured paths must exist, the tag must match the
    repository's research (adopted when left to its default) and tracked files must be clean,
    except the mutable files of a cycle an earlier process left undecided. Raises
    :class:`ConfigError` naming the field.
    """
    git = await GitRepo.open(config.repo_path)
    await check_config_paths(config)
    check_sandbox(config)
    workspace = Workspace(config.repo_path)
    state = await workspace.read_state()
    if "tag" not in config.model_fields_set:
        tag = state.tag if state is not None else await _configured_tag(workspace)
        if tag is not None and tag != config.tag:
            config = config.model_copy(update={"tag": tag})
    elif state is not None and state.tag != config.tag:
        raise ConfigError(
            f"tag: this repository's research runs on tag {state.tag!r}, not {config.tag!r}; "
            f"use tag {state.tag!r} or reset .autoresearch/ to start over",
            field="tag",
        )
    found = Preflight(git, config, state)
    dirty = await git.dirty_tracked_files()
    if found.interrupted:
        policy = PathPolicy.from_config(config)
        dirty = [path for path in dirty if not _is_mutable(policy, path)]
    if dirty:
        shown = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
        raise ConfigError(
            f"repo_path: tracked files have uncommitted changes ({shown}); commit or stash them "
            "first (autoresearch never discards your changes)",
            field="repo_path",
        )
    return found
