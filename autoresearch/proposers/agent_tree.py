"""Guarding a checkout while a coding agent edits it, then putting it back as it was.

:class:`TreeGuard` snapshots the checkout before the agent runs (:mod:`autoresearch.gitsnap`)
and, when it has finished, sorts every path it touched:

- a file under the mutable paths that the engine may write (the :class:`PathPolicy` the engine
  applies to every edit) and that the agent modified or created as text becomes an
  :class:`Edit` with its whole new content: the change, which the engine applies as usual;
- a path under an immutable path is a violation: the caller ends the cycle as ``invalid``;
- anything else (other files, new files elsewhere, a deleted or binary mutable file, a commit,
  a change to the index) is undone and reported.

Then it puts the checkout back exactly as it was: HEAD and the index are rewound if the agent
moved them, and every touched path gets its old content back, so the engine finds the tree at
the cycle's parent and applies the edits itself (keeping its own rules about what it wrote).
What the agent wrote that is not taken as the change is committed first under
``refs/autoresearch/<tag>/saved/<time>``: nothing the agent wrote is lost, and nothing it
wrote outside the mutable paths is left in place. Ignored files are not watched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pygit2.enums import FileMode

from autoresearch.config import ResearchConfig
from autoresearch.edits import Edit, PathPolicy
from autoresearch.errors import ProposerError
from autoresearch.gitfiles import Entry
from autoresearch.gitrepo import GitRepo, Snapshot
from autoresearch.gitsnap import TreeChange

__all__ = ["TreeGuard", "Undone"]

_TEXT_MODES = (FileMode.BLOB, FileMode.BLOB_EXECUTABLE)


@dataclass
class Undone:
    """What the agent changed, sorted, once the checkout is back as it was."""

    edits: list[Edit] = field(default_factory=list)
    """The change: whole new contents of the mutable files it modified or created."""
    immutable: list[str] = field(default_factory=list)
    """Read-only paths it changed (restored)."""
    restored: list[str] = field(default_factory=list)
    """Other paths it changed, restored: outside the mutable paths, or not expressible."""
    kept: list[str] = field(default_factory=list)
    """Untracked files too large to have kept a copy of: left as the agent left them."""
    saved: str | None = None
    """The reference holding what the agent wrote that was restored."""
    rewound: bool = False
    """It moved HEAD (a commit) or changed the index; both are back."""

    def notes(self) -> list[str]:
        """One line per kind of thing that was undone or could not be, for the user."""
        notes = []
        if self.restored:
            where = f" (saved as {self.saved})" if self.saved else ""
            notes.append(
                f"the agent also changed {_names(self.restored)}: restored{where}; only edits "
                "to the mutable paths are taken"
            )
        if self.rewound:
            notes.append("the agent committed or staged; HEAD and the index were put back")
        if self.kept:
            notes.append(
                f"the agent changed {_names(self.kept)}, untracked and too large to have kept "
                "a copy of; left as it is"
            )
        return notes


def _names(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


class TreeGuard:
    """Watches one checkout while an agent runs in it (see the module docstring)."""

    def __init__(self, git: GitRepo, config: ResearchConfig, cycle: int) -> None:
        self.git = git
        self.config = config
        self.cycle = cycle
        self._before: Snapshot | None = None
        self._policy: PathPolicy | None = None

    @classmethod
    async def open(cls, root: Path, config: ResearchConfig, cycle: int) -> TreeGuard:
        """A guard for the checkout at ``root``."""
        return cls(await GitRepo.open(root), config, cycle)

    async def start(self) -> None:
        """Record the checkout as it is now: what :meth:`finish` puts back."""
        tracked = frozenset(await self.git.tracked_under(self.config.mutable_paths))
        self._policy = PathPolicy.from_config(self.config, tracked, root=self.git.root)
        self._before = await self.git.snapshot()

    @property
    def policy(self) -> PathPolicy:
        """What the engine lets an edit write in this checkout (known after :meth:`start`)."""
        assert self._policy is not None, "start() first"
        return self._policy

    async def finish(self, *, take: bool) -> Undone:
        """Sort what changed, save what is not taken, and put the checkout back.

        With ``take`` false (the agent failed, timed out or was cancelled), or when the agent
        changed an immutable path, nothing becomes an edit: everything is restored and saved.
        Raises :class:`ProposerError`, touching nothing, when HEAD is no longer on the branch
        it was on (or no longer detached).
        """
        before, policy = self._before, self._policy
        assert before is not None and policy is not None, "start() first"
        after = await self.git.snapshot()
        if after.branch != before.branch:
            now = f"on {after.branch}" if after.branch else "on a detached HEAD"
            was = before.branch or "its detached HEAD"
            raise ProposerError(
                f"the agent left the checkout {now}; nothing was restored (check out {was} again)"
            )
        undone = Undone(rewound=(after.head, after.index) != (before.head, before.index))
        changes = await self.git.tree_changes(before, after)
        if any(policy.protects(change.path) for change in changes):
            take = False  # the cycle is void: everything the agent wrote is saved, none taken
        keep: dict[str, Entry] = {}
        for change in changes:
            await self._sort(change, policy, undone, keep, take)
        if keep:
            undone.saved = await self.git.save_entries(
                before.head,
                keep,
                f"refs/autoresearch/{self.config.chosen_tag}/saved/"
                + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
                f"autoresearch: what the agent of cycle {self.cycle} wrote that was not taken "
                "as its change\n\n" + "".join(f"  {rel}\n" for rel in sorted(keep)),
            )
        if undone.rewound:
            await self.git.rewind(before)
        await self.git.put_back({c.path: c.before for c in changes if not c.large})
        return undone

    async def _sort(
        self,
        change: TreeChange,
        policy: PathPolicy,
        undone: Undone,
        keep: dict[str, Entry],
        take: bool,
    ) -> None:
        rel, after = change.path, change.after
        if change.large:
            undone.kept.append(rel)
            return
        if policy.protects(rel):
            undone.immutable.append(rel)
        elif take and after is not None and after[1] in _TEXT_MODES and policy.allows(rel):
            text = _text(await self.git.read_blob(after[0]))
            if text is not None:
                undone.edits.append(Edit(path=rel, content=text))
                return
            undone.restored.append(rel)
        else:
            undone.restored.append(rel)
        if after is not None:
            keep[rel] = after


def _text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
