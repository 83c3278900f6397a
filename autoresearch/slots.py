"""The parallel slots' checkouts: one git worktree per slot, owned by the engine.

With ``slots > 1`` every candidate runs in ``.autoresearch/worktrees/<slot>``, a linked git
worktree whose HEAD is detached at the candidate, so the user's checkout stays on
``autoresearch/<tag>`` at the best commit and is never written by a slot. The worktrees are the
engine's: tracked files there are overwritten freely when a slot takes its next candidate.

A run in a slot still finds what the main checkout has besides tracked files (datasets,
checkpoints, virtual environments): every untracked or ignored entry at the root of the main
checkout is linked (a symlink) into each worktree. Those entries are shared by all slots;
tracked files are each slot's own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio
import anyio.to_thread

from autoresearch.config import ResearchConfig
from autoresearch.errors import ConfigError, GitError
from autoresearch.gitrepo import GitRepo
from autoresearch.workspace import Workspace

__all__ = ["SlotCheckouts"]


class SlotCheckouts:
    """The worktrees of one repository's slots (see the module docstring)."""

    def __init__(self, git: GitRepo, config: ResearchConfig, workspace: Workspace) -> None:
        self._git = git
        self._config = config
        self.dir = workspace.dir / "worktrees"
        self._open: dict[int, GitRepo] = {}

    def path(self, slot: int) -> Path:
        """Where slot ``slot`` (1-based) checks its candidates out."""
        return self.dir / str(slot)

    def _name(self, slot: int) -> str:
        return f"autoresearch-{self._config.chosen_tag}-{slot}"

    async def checkout(self, slot: int, commit: str) -> GitRepo:
        """Slot ``slot``'s checkout with HEAD detached at ``commit`` (made if missing)."""
        place = self._open.get(slot)
        if place is None:
            place = await self._attach(slot, commit)
            self._open[slot] = place
        else:
            await place.checkout_detached(commit)
        await self._link(slot)
        return place

    async def _attach(self, slot: int, commit: str) -> GitRepo:
        """Reuse the worktree an earlier session left, or make it afresh."""
        path = self.path(slot)
        try:
            place = await GitRepo.open(path)
            await place.checkout_detached(commit)
            return place
        except (ConfigError, GitError):
            pass  # missing or broken: make it again
        await anyio.to_thread.run_sync(_clear, path)
        await self._git.add_worktree(
            self._name(slot), path, commit, branch=f"{self._config.branch}.slot-{slot}"
        )
        return await GitRepo.open(path)

    async def _link(self, slot: int) -> None:
        """Link the main checkout's untracked and ignored top-level entries into the slot."""
        names = await self._git.untracked_top_level()
        root, path = self._git.root, self.path(slot)

        def link() -> None:
            for name in names:
                where = path / name
                if not where.exists() and not where.is_symlink():
                    os.symlink(root / name, where)

        await anyio.to_thread.run_sync(link)

    async def prune(self, *, keep: int) -> None:
        """Remove the checkouts of slots above ``keep`` (left by a run with more slots)."""
        if not await anyio.to_thread.run_sync(self.dir.is_dir):
            return
        names = await anyio.to_thread.run_sync(lambda: sorted(os.listdir(self.dir)))
        for name in names:
            if name.isdigit() and int(name) > keep:
                await anyio.to_thread.run_sync(_clear, self.dir / name)
                await self._git.remove_worktree(self._name(int(name)))

    async def forget(self, slot: int, created: list[str]) -> None:
        """Remove files a proposer created in the slot that no commit took in."""
        path = self.path(slot)

        def remove() -> None:
            for rel in created:
                (path / rel).unlink(missing_ok=True)

        await anyio.to_thread.run_sync(remove)


def _clear(path: Path) -> None:
    """Remove what is left at a slot's path (never outside .autoresearch/worktrees)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
