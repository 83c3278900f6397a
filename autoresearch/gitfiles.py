"""The working-tree side of the git layer: files under the research paths against git trees.

:class:`WorkFiles` scans, compares, saves and writes the files under the paths
:class:`~autoresearch.gitrepo.GitRepo` is given; the module-level helpers read and build pygit2
trees. Nothing here is async: GitRepo calls it from its worker thread.

Scans and restores only look at the files under the paths they are given: they compare the
working tree with HEAD's tree entries for those paths and rebuild only the affected subtrees, so
their cost follows the size of the mutable paths, not the size of the repository.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import FileMode

from autoresearch.errors import GitError

__all__ = [
    "TEMP_SUFFIX",
    "Entry",
    "SavedWork",
    "WorkFiles",
    "build_tree",
    "create_unique_ref",
    "mode_of",
    "tree_entries",
    "walk_tree",
]

Entry = tuple[pygit2.Oid, int]
"""(blob id, file mode) of one tree entry."""

_BLOB_MODES = (FileMode.BLOB, FileMode.BLOB_EXECUTABLE, FileMode.LINK)

TEMP_SUFFIX = ".autoresearch-tmp"
"""Files are written as ``.<name>.autoresearch-tmp`` and renamed into place, never in place."""


@dataclass(frozen=True)
class SavedWork:
    """Content a restore saved before replacing it: the new reference and the files in it."""

    ref: str
    paths: tuple[str, ...]


def tree_entries(tree: pygit2.Tree, prefix: str) -> dict[str, Entry]:
    """Blobs and symlinks of ``tree`` at or below ``prefix`` ("" is the whole tree)."""
    try:
        top: pygit2.Object = tree[prefix] if prefix else tree
    except KeyError:
        return {}
    if not isinstance(top, pygit2.Tree):
        return {prefix: (top.id, top.filemode)} if top.filemode in _BLOB_MODES else {}
    found: dict[str, Entry] = {}
    stack: list[tuple[str, pygit2.Tree]] = [(prefix, top)]
    while stack:
        base, node = stack.pop()
        for obj in node:
            rel = f"{base}/{obj.name}" if base else str(obj.name)
            if isinstance(obj, pygit2.Tree):
                stack.append((rel, obj))
            elif obj.filemode in _BLOB_MODES:  # gitlinks (submodules) are left out
                found[rel] = (obj.id, obj.filemode)
    return found


def walk_tree(tree: pygit2.Tree, base: str = "") -> Iterator[str]:
    """Paths of the blobs in ``tree`` depth first, which is sorted path order."""
    for obj in tree:
        rel = f"{base}/{obj.name}" if base else str(obj.name)
        if isinstance(obj, pygit2.Tree):
            yield from walk_tree(obj, rel)
        elif obj.filemode in _BLOB_MODES:
            yield rel


def under(rel: str, specs: Sequence[str]) -> bool:
    """Whether the repo-relative file ``rel`` is one of ``specs`` or inside one of them."""
    return any(rel == spec or rel.startswith(f"{spec}/") for spec in specs)


def mode_of(st: os.stat_result) -> int | None:
    """Return the git file mode of a working-tree file; None for things git cannot track."""
    if stat.S_ISLNK(st.st_mode):
        return FileMode.LINK
    if stat.S_ISREG(st.st_mode):
        return FileMode.BLOB_EXECUTABLE if st.st_mode & stat.S_IXUSR else FileMode.BLOB
    return None


def build_tree(
    repo: pygit2.Repository, base: pygit2.Tree | None, updates: dict[str, Entry | None]
) -> pygit2.Oid | None:
    """Write ``base`` with ``updates`` applied (None deletes); None when the result is empty.

    Only the subtrees on the way to an updated path are rewritten.
    """
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    nested: dict[str, dict[str, Entry | None]] = {}
    direct: dict[str, Entry] = {}
    for path, entry in updates.items():
        head, sep, rest = path.partition("/")
        if sep:
            nested.setdefault(head, {})[rest] = entry
        elif entry is not None:
            direct[head] = entry
        elif builder.get(head) is not None:
            builder.remove(head)
    for name, sub_updates in nested.items():
        existing = builder.get(name)
        sub_base = None
        if existing is not None and existing.filemode == FileMode.TREE:
            sub_base = repo[existing.id].peel(pygit2.Tree)
        sub_id = build_tree(repo, sub_base, sub_updates)
        if sub_id is not None:
            builder.insert(name, sub_id, FileMode.TREE)
        elif existing is not None and existing.filemode == FileMode.TREE:
            builder.remove(name)
    for name, (oid, mode) in direct.items():
        builder.insert(name, oid, mode)
    return builder.write() if len(builder) else None


def create_unique_ref(repo: pygit2.Repository, name: str, oid: pygit2.Oid) -> str:
    """Create a reference at ``oid`` named ``name``, or ``name-2``, ``name-3``… if taken."""
    unique, number = name, 1
    while repo.references.get(unique) is not None:
        number += 1
        unique = f"{name}-{number}"
    repo.references.create(unique, oid)
    return unique


class WorkFiles:
    """The files of one working tree, compared with and written from git trees.

    Synchronous, and used only from :class:`~autoresearch.gitrepo.GitRepo`'s worker thread,
    which runs one call at a time: like the ``pygit2.Repository`` it shares, a WorkFiles must
    not be used from two threads at once. It raises :class:`GitError` when a restore could
    not go on without losing content, and lets pygit2, ``KeyError`` and ``OSError`` failures
    through for GitRepo to translate.
    """

    def __init__(self, repo: pygit2.Repository, root: Path) -> None:
        self._repo = repo
        self._prefix = f"{root}{os.sep}"  # string joins: pathlib is slow in the per-file loops

    def _workdir_files(self, spec: str, tracked_dirs: set[str]) -> dict[str, os.stat_result]:
        """Files under ``spec`` in the working tree, without ignored untracked directories."""
        try:
            st = os.lstat(self._prefix + spec)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        if not stat.S_ISDIR(st.st_mode):
            return {spec: st}
        found: dict[str, os.stat_result] = {}
        stack = [spec]
        while stack:
            current = stack.pop()
            with os.scandir(self._prefix + current) as entries:
                for entry in entries:
                    if entry.name == ".git":
                        continue
                    rel = f"{current}/{entry.name}" if current else entry.name
                    if not entry.is_dir(follow_symlinks=False):
                        found[rel] = entry.stat(follow_symlinks=False)
                    elif rel in tracked_dirs or not (
                        os.path.lexists(os.path.join(entry.path, ".git"))  # a nested repo
                        or self._repo.path_is_ignored(rel)
                    ):
                        stack.append(rel)
        return found

    def _differs(self, rel: str, st: os.stat_result, entry: Entry) -> bool:
        """Whether the working-tree file ``rel`` differs from the tree entry ``entry``."""
        mode = mode_of(st)
        if mode != entry[1]:
            return True
        path = self._prefix + rel
        if mode == FileMode.LINK:
            return pygit2.hash(os.readlink(os.fsencode(path))) != entry[0]
        if pygit2.hashfile(path) == entry[0]:
            return False  # the raw bytes match; far cheaper than the filtered hash below
        # Filters (core.autocrlf, .gitattributes) can make different bytes the same blob.
        return self._repo.hashfile(rel) != entry[0]

    def scan(
        self,
        head_tree: pygit2.Tree,
        specs: list[str],
        untracked: Collection[str] | None = None,
        exclude: Sequence[str] = (),
    ) -> tuple[set[str], set[str]]:
        """Compare the files under ``specs`` with HEAD's tree: (added or modified, deleted).

        Files HEAD does not track count as added when they are not ignored, or, when
        ``untracked`` is given, only when they are listed in it. Files under ``exclude`` are
        left out.
        """
        index = self._repo.index
        index.read(False)
        changed: set[str] = set()
        deleted: set[str] = set()
        for spec in specs:
            tracked = tree_entries(head_tree, spec)
            tracked_dirs: set[str] = set()
            for rel in tracked:
                cut = rel.rfind("/")
                while cut > 0 and rel[:cut] not in tracked_dirs:
                    tracked_dirs.add(rel[:cut])
                    cut = rel.rfind("/", 0, cut)
            present = self._workdir_files(spec, tracked_dirs)
            for rel, entry in tracked.items():
                st = present.pop(rel, None)
                if st is None or mode_of(st) is None:
                    deleted.add(rel)
                elif self._differs(rel, st, entry):
                    changed.add(rel)
            for rel, st in present.items():
                if mode_of(st) is None:
                    continue
                if untracked is not None:
                    if rel in untracked:
                        changed.add(rel)
                elif rel in index or not self._repo.path_is_ignored(rel):
                    changed.add(rel)
        if exclude:
            changed = {rel for rel in changed if not under(rel, exclude)}
            deleted = {rel for rel in deleted if not under(rel, exclude)}
        return changed, deleted

    def restore(
        self,
        head: pygit2.Commit,
        target: pygit2.Tree,
        ours: Sequence[pygit2.Tree],
        specs: Sequence[str],
        written: Mapping[str, pygit2.Oid],
        *,
        save_as: str | None,
        restoring: str,
        author: Callable[[], pygit2.Signature],
        exclude: Sequence[str] = (),
    ) -> SavedWork | None:
        """Write the files under ``specs`` exactly as in ``target``; the index is not touched.

        Files under ``exclude`` are neither written nor deleted.

        Files under ``specs`` that ``head``, an ``ours`` tree or ``written`` (path to blob id)
        hold but ``target`` lacks are deleted. Content in none of those nor in ``target`` is
        first committed on top of ``head`` as ``save_as`` (by ``author``) and returned as
        :class:`SavedWork`; without ``save_as`` it stops the restore of ``restoring`` (the
        revision as the caller named it) with GitError. :meth:`GitRepo.restore
        <autoresearch.gitrepo.GitRepo.restore>` says the rest.
        """
        new: dict[str, Entry] = {}
        known: dict[str, set[pygit2.Oid]] = {rel: {oid} for rel, oid in written.items()}
        for tree in (head.tree, target, *ours):
            for spec in specs:
                for rel, (oid, _mode) in tree_entries(tree, spec).items():
                    known.setdefault(rel, set()).add(oid)
        for spec in specs:
            new.update(tree_entries(target, spec))
        if exclude:
            known = {rel: oids for rel, oids in known.items() if not under(rel, exclude)}
            new = {rel: entry for rel, entry in new.items() if not under(rel, exclude)}
        foreign = self._foreign(known)
        saved = None
        if foreign:
            if save_as is None:
                shown = ", ".join(sorted(foreign)[:5])
                raise GitError(f"restoring {restoring[:7]} would overwrite changes ({shown})")
            saved = SavedWork(
                self._save(head, foreign, save_as, restoring, author), tuple(sorted(foreign))
            )
        for rel in sorted(known.keys() - new.keys(), reverse=True):
            self.remove_file(rel)
        made: set[str] = set()
        removable = known.keys() | foreign.keys()
        for rel, entry in sorted(new.items()):
            self.write_file(rel, entry, made, removable)
        return saved

    def _foreign(self, known: Mapping[str, set[pygit2.Oid]]) -> dict[str, int]:
        """What stands at the paths of ``known`` that git cannot give back: path -> git mode.

        A file counts when its content is none of the ids ``known`` lists for it. A symlink
        standing where a directory of ``known`` files belongs counts too, unless it is one of
        ``known`` itself (files are never read through it).
        """
        foreign: dict[str, int] = {}
        for rel, oids in known.items():
            link = self._linked_parent(rel)
            if link is not None:
                if link not in known and link not in foreign:
                    foreign[link] = FileMode.LINK
                continue
            path = self._prefix + rel
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            mode = mode_of(st)
            if mode is None:
                raise GitError(
                    f"{rel} is a directory (or not a file) where autoresearch must restore a "
                    "file; move it out of the way"
                )
            if mode == FileMode.LINK:
                if pygit2.hash(os.readlink(os.fsencode(path))) not in oids:
                    foreign[rel] = mode
            elif pygit2.hashfile(path) not in oids and self._repo.hashfile(rel) not in oids:
                foreign[rel] = mode
        return foreign

    def _linked_parent(self, rel: str) -> str | None:
        """The first directory on the way to ``rel`` that is a symlink, if any."""
        parent = os.path.dirname(rel)
        if not parent or os.path.realpath(self._prefix + parent) == self._prefix + parent:
            return None
        parts = parent.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if os.path.islink(self._prefix + prefix):
                return prefix
        return None

    def _save(
        self,
        head: pygit2.Commit,
        foreign: Mapping[str, int],
        save_as: str,
        restoring: str,
        author: Callable[[], pygit2.Signature],
    ) -> str:
        """Commit the working-tree content of ``foreign`` on top of ``head`` as ``save_as``."""
        repo = self._repo
        updates: dict[str, Entry | None] = {}
        for rel, mode in foreign.items():
            if mode == FileMode.LINK:
                blob = repo.create_blob(os.readlink(os.fsencode(self._prefix + rel)))
            else:
                blob = repo.create_blob_fromworkdir(rel)
            updates[rel] = (blob, mode)
        tree = build_tree(repo, head.tree, updates) or repo.TreeBuilder().write()
        listing = "\n".join(f"  {rel}" for rel in sorted(foreign))
        message = (
            "autoresearch: saved changes it did not make before restoring "
            f"{restoring[:7]}\n\n{listing}\n"
        )
        signature = author()
        oid = repo.create_commit(None, signature, signature, message, tree, [head.id])
        return create_unique_ref(repo, save_as, oid)

    def remove_file(self, rel: str) -> None:
        """Delete the working-tree file ``rel`` and the directories it leaves empty."""
        parent = os.path.dirname(rel)
        if parent and os.path.realpath(self._prefix + parent) != self._prefix + parent:
            return  # a symlinked directory is in the way; never delete through it
        try:
            if not stat.S_ISDIR(os.lstat(self._prefix + rel).st_mode):
                os.unlink(self._prefix + rel)
        except (FileNotFoundError, NotADirectoryError):
            pass
        while parent:
            try:
                os.rmdir(self._prefix + parent)
            except OSError:
                break
            parent = os.path.dirname(parent)

    def write_file(self, rel: str, entry: Entry, made: set[str], known: Collection[str]) -> None:
        """Write blob ``entry`` to ``rel`` unless the file already has that content and mode.

        The content goes to a temporary file beside it that is renamed over ``rel``: whenever
        the process dies, ``rel`` holds the old content or the new, never nothing.
        """
        oid, mode = entry
        self._make_parents(os.path.dirname(rel), made, known)
        path = self._prefix + rel
        try:
            st: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise GitError(f"{rel} is a directory where a file belongs; move it out of the way")
            if mode_of(st) == mode:
                if mode == FileMode.LINK:
                    current = pygit2.hash(os.readlink(os.fsencode(path)))
                else:
                    current = pygit2.hashfile(path)
                if current == oid:
                    return
        head, name = os.path.split(path)
        tmp = os.path.join(head, f".{name}{TEMP_SUFFIX}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # left by a process killed mid-write
        data = self._repo[oid].peel(pygit2.Blob).data
        if mode == FileMode.LINK:
            os.symlink(os.fsdecode(data), tmp)
        else:
            perm = 0o777 if mode == FileMode.BLOB_EXECUTABLE else 0o666  # the umask applies
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        os.replace(tmp, path)

    def _make_parents(self, parent: str, made: set[str], known: Collection[str]) -> None:
        """Make ``parent`` a real directory chain, replacing what git can give back.

        A file or symlink in the way is removed only when it is one of ``known`` (whose content
        was checked or saved); anything else stops the restore with the path named.
        """
        if not parent or parent in made:
            return
        self._make_parents(os.path.dirname(parent), made, known)
        path = self._prefix + parent
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):  # lstat: a symlink is not a directory
                if parent not in known:
                    raise GitError(
                        f"{parent} is a file where a directory belongs; move it out of the way"
                    )
                os.unlink(path)
                os.mkdir(path)
        except FileNotFoundError:
            os.mkdir(path)
        made.add(parent)
