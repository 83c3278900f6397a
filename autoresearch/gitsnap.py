"""Snapshots of a whole working tree as git trees, to see and undo what an outside tool did.

The agent proposer lets a coding agent edit a checkout directly. Before the agent runs,
:func:`take` records the checkout as git objects: HEAD, the index, and the working tree as a
tree (HEAD's tree with every modified, deleted and untracked, non-ignored file put in). After
it runs, a second snapshot and :func:`changes` say exactly which paths it touched; every version
involved is then a git object, so :func:`put_back` can write any path back as it was and
:func:`save` can keep what the agent wrote under a reference before it is replaced.

Ignored files are not looked at (build outputs, caches, datasets), and untracked files larger
than :data:`LARGE_FILE_BYTES` are watched by size and time only: their content is not copied
into the object database, so a change to one is seen but cannot be undone. Nothing here is
async; :class:`~autoresearch.gitrepo.GitRepo` calls it from its worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pygit2
from pygit2.enums import DeltaStatus, FileStatus, ResetMode

from autoresearch.gitfiles import Entry, WorkFiles, build_tree, create_unique_ref, mode_of

__all__ = [
    "LARGE_FILE_BYTES",
    "Snapshot",
    "TreeChange",
    "changes",
    "put_back",
    "reset_index",
    "rewind",
    "save",
    "take",
]

LARGE_FILE_BYTES = 16 * 1024 * 1024
"""Untracked files above this size are compared by size and modification time only."""

_SKIPPED = FileStatus.CURRENT | FileStatus.IGNORED


@dataclass(frozen=True)
class Snapshot:
    """A checkout at one moment: HEAD, the index and the working tree, as git object ids."""

    head: str
    branch: str | None
    """The branch HEAD is on (None when detached)."""
    index: str | None
    """The index as a tree (None when it holds conflicts and cannot be written as one)."""
    tree: str
    """The working tree as a tree: what every watched file held."""
    large: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Untracked files too large to copy: path -> (size, modification time in ns)."""


@dataclass(frozen=True)
class TreeChange:
    """One path whose content differs between two snapshots (None: no file there)."""

    path: str
    before: Entry | None
    after: Entry | None
    large: bool = False
    """An untracked file over :data:`LARGE_FILE_BYTES`: its old content cannot be restored."""


def take(repo: pygit2.Repository, root: str) -> Snapshot:
    """Record ``repo``'s checkout at ``root`` (see the module docstring)."""
    head = repo.head.peel(pygit2.Commit)
    branch = None if repo.head_is_detached else repo.head.shorthand
    index = repo.index
    index.read(False)
    index_tree = None if index.conflicts else str(index.write_tree())
    updates: dict[str, Entry | None] = {}
    large: dict[str, tuple[int, int]] = {}
    for rel, flags in repo.status(untracked_files="all", ignored=False).items():
        if flags & _SKIPPED or rel.endswith("/"):  # a nested repository shows as "dir/"
            continue
        path = os.path.join(root, rel)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            updates[rel] = None
            continue
        mode = mode_of(st)
        if mode is None:
            continue
        if mode == pygit2.enums.FileMode.LINK:
            updates[rel] = (repo.create_blob(os.readlink(os.fsencode(path))), mode)
        elif flags & FileStatus.WT_NEW and st.st_size > LARGE_FILE_BYTES:
            large[rel] = (st.st_size, st.st_mtime_ns)
        else:
            updates[rel] = (repo.create_blob_fromworkdir(rel), mode)
    tree = build_tree(repo, head.tree, updates) or repo.TreeBuilder().write()
    return Snapshot(str(head.id), branch, index_tree, str(tree), large)


def changes(repo: pygit2.Repository, before: Snapshot, after: Snapshot) -> list[TreeChange]:
    """Every path whose content or mode differs from ``before`` to ``after``, sorted."""
    found: dict[str, TreeChange] = {}
    old, new = repo[before.tree].peel(pygit2.Tree), repo[after.tree].peel(pygit2.Tree)
    for delta in old.diff_to_tree(new).deltas:
        was = None if delta.status == DeltaStatus.ADDED else _entry(delta.old_file)
        now = None if delta.status == DeltaStatus.DELETED else _entry(delta.new_file)
        for rel in {delta.old_file.path, delta.new_file.path}:
            seen = found.get(rel)
            found[rel] = TreeChange(
                rel,
                was if seen is None else seen.before or was,
                now if seen is None else seen.after or now,
            )
    for rel in before.large.keys() | after.large.keys():
        if before.large.get(rel) != after.large.get(rel):
            found[rel] = TreeChange(rel, None, None, large=True)
    return [found[rel] for rel in sorted(found)]


def _entry(file: pygit2.DiffFile) -> Entry:
    return (file.id, int(file.mode))


def rewind(repo: pygit2.Repository, before: Snapshot) -> None:
    """Move HEAD (its branch, or the detached HEAD) back to ``before.head``; the index too.

    The working tree is left as it is. The caller has checked that HEAD is on the same branch
    (or detached) as at ``before``.
    """
    repo.reset(pygit2.Oid(hex=before.head), ResetMode.MIXED)
    reset_index(repo, before)


def reset_index(repo: pygit2.Repository, before: Snapshot) -> None:
    """Make the index what it was at ``before`` (when it could be recorded then)."""
    if before.index is None:
        return
    index = repo.index
    index.read(False)
    if str(index.write_tree()) != before.index:
        index.read_tree(repo[before.index].peel(pygit2.Tree))
        index.write()


def put_back(files: WorkFiles, entries: Mapping[str, Entry | None]) -> None:
    """Write each path as its entry says, or remove it where the entry is None."""
    for rel, entry in sorted(entries.items(), reverse=True):
        if entry is None:
            files.remove_file(rel)
    made: set[str] = set()
    for rel, entry in sorted(entries.items()):
        if entry is not None:
            files.write_file(rel, entry, made, entries.keys())


def save(
    repo: pygit2.Repository,
    head: str,
    entries: Mapping[str, Entry],
    *,
    ref: str,
    message: str,
    author: Callable[[], pygit2.Signature],
) -> str:
    """Commit ``entries`` on top of ``head`` under a new reference named after ``ref``."""
    parent = repo[head].peel(pygit2.Commit)
    updates: dict[str, Entry | None] = dict(entries)
    tree = build_tree(repo, parent.tree, updates) or repo.TreeBuilder().write()
    signature = author()
    oid = repo.create_commit(None, signature, signature, message, tree, [parent.id])
    return create_unique_ref(repo, ref, oid)
