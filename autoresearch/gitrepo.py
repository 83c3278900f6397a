"""pygit2 behind an async face: the only module in autoresearch that touches git.

Every libgit2 call runs in a worker thread (``anyio.to_thread.run_sync``) and the calls of one
:class:`GitRepo` are serialized by a one-slot capacity limiter, because a pygit2
``Repository`` must not be used from two threads at once. pygit2, ``KeyError`` and ``OSError``
failures are translated here into :class:`~autoresearch.errors.GitError`.

Here live opening, queries, commits, references, branches, hooks and lock files. The file-level
work behind the operations that run every cycle (:meth:`GitRepo.changed_paths`,
:meth:`GitRepo.commit_paths`, :meth:`GitRepo.restore`), whose cost follows the size of the
mutable paths rather than the repository, is :class:`~autoresearch.gitfiles.WorkFiles`'s, run in
the same worker thread. Snapshots of the whole checkout (what an outside tool, a coding agent,
changed, and undoing it) are :mod:`autoresearch.gitsnap`'s, run there too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

import anyio
import anyio.to_thread
import pygit2
from pygit2.enums import CheckoutStrategy, FileMode, FileStatus, ResetMode

from autoresearch import gitsnap
from autoresearch.errors import ConfigError, GitError, HeadMovedError
from autoresearch.gitfiles import (
    TEMP_SUFFIX,
    Entry,
    SavedWork,
    WorkFiles,
    build_tree,
    tree_entries,
    walk_tree,
)

__all__ = ["DEFAULT_AUTHOR", "TEMP_SUFFIX", "Expect", "GitRepo", "SavedWork", "Snapshot"]

Snapshot = gitsnap.Snapshot

DEFAULT_AUTHOR: tuple[str, str] = ("autoresearch", "autoresearch@localhost")
"""Author and committer used when the repository's config has no ``user.name``/``user.email``."""

_T = TypeVar("_T")
_TRANSLATED = (pygit2.GitError, KeyError, OSError, ValueError)


@dataclass(frozen=True)
class Expect:
    """Where HEAD must be before the engine writes: on ``branch`` and, if given, at ``commit``.

    Every commit and restore the worker makes carries one, so a ``git checkout main`` or a
    commit made by hand in another terminal stops the engine instead of being overwritten.
    """

    branch: str | None
    """None: HEAD must be detached (an engine-owned slot checkout)."""
    commit: str | None = None


class GitRepo:
    """An opened, non-bare git repository with at least one commit, used from async code.

    Create it with :meth:`open`. All methods are coroutines; they run libgit2 in a worker
    thread one at a time and raise :class:`GitError` when git fails.
    """

    root: Path
    """The working directory, resolved."""

    def __init__(self, repo: pygit2.Repository, root: Path) -> None:
        self._repo = repo
        self.root = root
        self._limiter = anyio.CapacityLimiter(1)
        self._files = WorkFiles(repo, root)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path) -> GitRepo:
        """Open the repository whose working-tree root is ``path``.

        Raises :class:`ConfigError` (``field="repo_path"``) when ``path`` is missing, is not a
        git repository, is a bare repository, is a subdirectory of one, or has no commit yet.
        Nothing is written.
        """
        repo, root = await anyio.to_thread.run_sync(cls._open_sync, Path(path))
        return cls(repo, root)  # built here: the limiter belongs to the running event loop

    @classmethod
    async def init(cls, path: Path, message: str) -> GitRepo:
        """Create a repository at ``path`` on branch ``main`` committing every file there.

        Used by the quickstart to turn a copied example into a repository to research.
        """

        def create() -> None:
            repo = pygit2.init_repository(str(path), initial_head="main")
            repo.index.add_all()
            repo.index.write()
            tree = repo.index.write_tree()
            try:
                author = repo.default_signature
            except (KeyError, pygit2.GitError):
                author = pygit2.Signature(*DEFAULT_AUTHOR)
            repo.create_commit("HEAD", author, author, message, tree, [])

        try:
            await anyio.to_thread.run_sync(create)
        except _TRANSLATED as exc:
            raise GitError(f"creating a repository at {path}: {exc}") from exc
        return await cls.open(path)

    @staticmethod
    def _open_sync(path: Path) -> tuple[pygit2.Repository, Path]:
        def refuse(reason: str) -> ConfigError:
            return ConfigError(f"repo_path: {path} {reason}", field="repo_path")

        if not path.exists():
            raise refuse("does not exist")
        if not path.is_dir():
            raise refuse("is not a directory")
        root = path.resolve()
        not_a_repo = "is not a git repository (run `git init` and commit your code first)"
        try:
            gitdir = pygit2.discover_repository(str(root))
            if gitdir is None:
                raise refuse(not_a_repo)
            repo = pygit2.Repository(gitdir)
        except pygit2.GitError as exc:
            raise refuse(f"cannot be opened as a git repository ({exc})") from exc
        if repo.is_bare or repo.workdir is None:
            raise refuse("is a bare git repository (use a clone that has a working tree)")
        workdir = Path(repo.workdir).resolve()
        if workdir != root:
            raise refuse(
                f"is inside the git repository at {workdir}; set repo_path to that root instead"
            )
        if repo.head_is_unborn:
            raise refuse("has no commits yet (commit your code first)")
        return repo, root

    # -- plumbing ----------------------------------------------------------------------------

    async def _run(self, what: str, func: Callable[[], _T]) -> _T:
        """Run ``func`` in the worker thread, translating git failures into GitError."""
        try:
            return await anyio.to_thread.run_sync(func, limiter=self._limiter)
        except _TRANSLATED as exc:
            reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise GitError(f"{what}: {reason}") from exc

    def _commit(self, rev: str) -> pygit2.Commit:
        return self._repo.revparse_single(rev).peel(pygit2.Commit)

    def _head(self) -> pygit2.Commit:
        return self._repo.head.peel(pygit2.Commit)

    def _specs(self, paths: Sequence[str]) -> list[str]:
        """Repo-relative posix forms of ``paths``; "" stands for the whole tree."""
        specs: set[str] = set()
        for raw in paths:
            pure = PurePosixPath(str(raw).replace(os.sep, "/"))
            if pure.is_absolute():
                try:
                    pure = PurePosixPath(Path(raw).resolve().relative_to(self.root).as_posix())
                except ValueError:
                    raise GitError(f"path {raw!r} is outside the repository") from None
            parts = [part for part in pure.parts if part not in ("", ".")]
            if ".." in parts or (parts and parts[0] == ".git"):
                raise GitError(f"path {raw!r} is outside the working tree")
            specs.add("/".join(parts))
        if "" in specs:
            return [""]
        # Drop paths already covered by a parent in the list.
        return sorted(s for s in specs if not any(s.startswith(o + "/") for o in specs))

    def _check_head(self, expect: Expect | None) -> None:
        """Raise :class:`HeadMovedError` unless HEAD is where ``expect`` says."""
        if expect is None:
            return
        repo = self._repo
        head = str(self._head().id)
        branch = None if repo.head_is_detached else repo.head.shorthand
        if branch != expect.branch and expect.branch is None:
            raise HeadMovedError(
                f"{self.root} is on {branch}; autoresearch keeps its slots' HEAD detached",
                kind="branch",
                head=head,
                branch=branch,
            )
        if branch != expect.branch:
            where = f"on {branch}" if branch else f"a detached HEAD at {head[:7]}"
            raise HeadMovedError(
                f"the checkout left {expect.branch} (it is now {where}); autoresearch stopped "
                f"without touching it (check out {expect.branch} to go on)",
                kind="branch",
                head=head,
                branch=branch,
            )
        if expect.commit is not None and head != expect.commit:
            raise HeadMovedError(
                f"{expect.branch} is at {head[:7]}, a commit autoresearch did not make "
                f"(it left it at {expect.commit[:7]})",
                kind="commit",
                head=head,
                branch=branch,
            )

    def _common_dir(self) -> Path:
        """The directory shared by every worktree (``.git`` of the main checkout)."""
        gitdir = Path(self._repo.path)
        pointer = gitdir / "commondir"
        if pointer.is_file():
            return (gitdir / pointer.read_text(encoding="utf-8").strip()).resolve()
        return gitdir

    def _signature(self) -> pygit2.Signature:
        try:
            return self._repo.default_signature
        except (KeyError, pygit2.GitError):
            return pygit2.Signature(*DEFAULT_AUTHOR)

    # -- queries -----------------------------------------------------------------------------

    async def head_commit(self) -> str:
        """Return the full hex sha of HEAD."""
        return await self._run("reading HEAD", lambda: str(self._head().id))

    async def current_branch(self) -> str | None:
        """Return the short name of the checked-out branch, or None when HEAD is detached."""

        def branch() -> str | None:
            if self._repo.head_is_detached:
                return None
            return self._repo.head.shorthand

        return await self._run("reading the current branch", branch)

    async def check_head(self, expect: Expect) -> None:
        """Raise :class:`HeadMovedError` unless HEAD is on ``expect.branch`` (at its commit)."""
        await self._run("reading HEAD", lambda: self._check_head(expect))

    async def branch_exists(self, name: str) -> bool:
        """Whether the local branch ``name`` exists."""
        return await self._run(
            f"looking up branch {name!r}", lambda: self._repo.branches.local.get(name) is not None
        )

    async def dirty_tracked_files(self) -> list[str]:
        """Tracked files whose index or working-tree state differs from HEAD, sorted.

        Staged new files count; untracked and ignored files do not.
        """

        def dirty() -> list[str]:
            status = self._repo.status(untracked_files="no", ignored=False)
            ignore = FileStatus.WT_NEW | FileStatus.IGNORED
            return sorted(path for path, flags in status.items() if flags & ~ignore)

        return await self._run("reading the status", dirty)

    async def changed_paths(self, paths: Sequence[str]) -> list[str]:
        """Files under ``paths`` that differ from HEAD in the working tree, sorted.

        Each path is a file or a directory. Modified, deleted and new untracked files count;
        ignored files do not.
        """
        specs = self._specs(paths)

        def changed() -> list[str]:
            modified, deleted = self._files.scan(self._head().tree, specs)
            return sorted(modified | deleted)

        return await self._run("comparing the working tree with HEAD", changed)

    async def target_problems(self, paths: Sequence[str]) -> list[str]:
        """Why each of ``paths`` cannot be a research target, one sentence per bad path.

        A target must be tracked by git in HEAD (a file, or a directory holding tracked
        files), so that every version of it lives in a git object and a restore can always
        give it back. Untracked and ignored paths, and paths in or under a submodule, are
        refused with what to do instead.
        """
        specs = self._specs(paths)

        def check() -> list[str]:
            tree = self._head().tree
            return [p for spec in specs if (p := self._target_problem(tree, spec))]

        return await self._run("checking the research targets", check)

    def _target_problem(self, tree: pygit2.Tree, spec: str) -> str | None:
        if not spec:
            return None  # the whole working tree
        parts = spec.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            try:
                entry = tree[prefix]
            except KeyError:
                return self._untracked_reason(spec)
            if entry.filemode == FileMode.COMMIT:
                where = "is" if prefix == spec else f"is inside {prefix!r}, which is"
                return (
                    f"{spec!r} {where} a git submodule; autoresearch cannot commit into a "
                    "submodule (research the submodule's own repository instead)"
                )
        if not tree_entries(tree, spec):
            return self._untracked_reason(spec)  # a directory of nothing but submodules
        return None

    def _untracked_reason(self, spec: str) -> str:
        if self._repo.path_is_ignored(spec):
            return (
                f"{spec!r} is ignored by git, so autoresearch could not restore it; take it out "
                f"of .gitignore, then `git add {spec}` and commit it"
            )
        return (
            f"{spec!r} is not tracked by git, so a discarded change could not be undone; "
            f"`git add {spec}` and commit it first"
        )

    async def tracked_under(self, paths: Sequence[str]) -> set[str]:
        """The files HEAD tracks under ``paths``."""
        specs = self._specs(paths)

        def tracked() -> set[str]:
            tree = self._head().tree
            return {rel for spec in specs for rel in tree_entries(tree, spec)}

        return await self._run("listing tracked files", tracked)

    async def hooks(self) -> list[str]:
        """Names of the commit hooks git would run here (``pre-commit``, ``commit-msg``…)."""

        def find() -> list[str]:
            try:
                configured = self._repo.config["core.hooksPath"]
            except KeyError:
                configured = None
            folder = (
                Path(self.root, os.path.expanduser(configured))
                if configured
                else self._common_dir() / "hooks"
            )
            names = ("pre-commit", "prepare-commit-msg", "commit-msg", "post-commit")
            return [name for name in names if os.access(folder / name, os.X_OK)]

        return await self._run("looking for git hooks", find)

    async def lock_files(self) -> list[Path]:
        """Lock files git (or libgit2) leaves while it writes: index, HEAD, config, refs."""

        def find() -> list[Path]:
            gitdir, common = Path(self._repo.path), self._common_dir()
            found = [gitdir / "index.lock", gitdir / "HEAD.lock"]
            found += [common / "packed-refs.lock", common / "config.lock"]
            found = [path for path in found if path.exists()]
            refs = common / "refs"
            if refs.is_dir():
                found += sorted(refs.rglob("*.lock"))
            return found

        return await self._run("looking for git lock files", find)

    async def resolve(self, rev: str) -> str:
        """Return the full sha of the commit named by ``rev`` (ref name, short or full sha)."""
        return await self._run(f"resolving {rev!r}", lambda: str(self._commit(rev).id))

    async def diff(self, commit: str, against: str | None = None) -> str:
        """Unified patch text of ``commit`` compared with ``against``.

        ``against`` defaults to the commit's first parent, or the empty tree for a root commit.
        """

        def patch() -> str:
            new = self._commit(commit)
            if against is not None:
                base: pygit2.Tree | None = self._commit(against).tree
            else:
                base = new.parents[0].tree if new.parents else None
            if base is None:
                result = new.tree.diff_to_tree(swap=True)
            else:
                result = base.diff_to_tree(new.tree)
            return result.patch or ""

        return await self._run(f"diffing {commit!r}", patch)

    async def tracked_files(self, limit: int = 2000) -> list[str]:
        """Paths of the files in HEAD's tree, sorted, at most ``limit`` of them."""

        def files() -> list[str]:
            found: list[str] = []
            for rel in walk_tree(self._head().tree):
                if len(found) >= limit:
                    break
                found.append(rel)
            return sorted(found)

        return await self._run("listing tracked files", files)

    async def read_file_at(self, commit: str, path: str) -> bytes | None:
        """Return the content of ``path`` in ``commit``, or None when it has no such file."""

        def read() -> bytes | None:
            tree = self._commit(commit).tree
            try:
                obj = tree[path.strip("/")]
            except KeyError:
                return None
            return obj.data if isinstance(obj, pygit2.Blob) else None

        return await self._run(f"reading {path!r} at {commit!r}", read)

    async def parents(self, commit: str) -> list[str]:
        """Return the full shas of the parents of ``commit``."""
        return await self._run(
            f"reading the parents of {commit!r}",
            lambda: [str(p) for p in self._commit(commit).parent_ids],
        )

    async def commit_message(self, commit: str) -> str:
        """Return the message of ``commit``."""
        return await self._run(
            f"reading the message of {commit!r}", lambda: self._commit(commit).message
        )

    # -- changes -----------------------------------------------------------------------------

    async def ensure_branch(self, name: str) -> bool:
        """Create branch ``name`` at HEAD unless it exists, then check it out safely.

        Returns True when the branch was created. The checkout never overwrites or discards
        uncommitted changes (libgit2's SAFE strategy refuses instead); when HEAD is already on
        the branch nothing happens.
        """

        def ensure() -> bool:
            repo = self._repo
            head = self._head()
            branch = repo.branches.local.get(name)
            created = branch is None
            if branch is None:
                branch = repo.branches.local.create(name, head)
            if not repo.head_is_detached and repo.head.name == branch.name:
                return created
            tip = branch.peel(pygit2.Commit)
            if tip.tree.id != head.tree.id:
                repo.checkout_tree(tip, strategy=CheckoutStrategy.SAFE)  # type: ignore[no-untyped-call]
            repo.set_head(branch.name)
            return created

        return await self._run(f"switching to branch {name!r}", ensure)

    async def exclude(self, pattern: str) -> None:
        """Add ``pattern`` as a line of ``.git/info/exclude`` unless it is already there.

        ``.gitignore`` is never touched, so the user's tracked files stay clean. In a linked
        worktree the file of the main repository is used, since that is the one git reads.
        """
        if not pattern.strip() or "\n" in pattern:
            raise GitError(f"cannot add {pattern!r} to .git/info/exclude: not a single pattern")

        def add() -> None:
            path = self._common_dir() / "info" / "exclude"  # where every worktree reads it
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            if pattern in (line.strip() for line in text.splitlines()):
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            separator = "" if not text or text.endswith("\n") else "\n"
            with path.open("a", encoding="utf-8") as handle:
                handle.write(f"{separator}{pattern}\n")

        await self._run(f"adding {pattern!r} to .git/info/exclude", add)

    async def commit_paths(
        self,
        paths: Sequence[str],
        message: str,
        *,
        expect: Expect | None = None,
        untracked: Collection[str] | None = None,
        exclude: Sequence[str] = (),
    ) -> str | None:
        """Commit exactly the changes under ``paths`` (but not under ``exclude``) on the branch.

        Modifications and deletions of tracked files under ``paths`` are staged, and new files:
        every one that is not ignored, or only those listed in ``untracked`` when it is given
        (the worker lists the files its proposer created, so a user's scratch file or a
        ``__pycache__`` is never committed). Everything else keeps its index and working-tree
        state and stays out of the commit. With ``expect``, HEAD must be there first
        (:class:`HeadMovedError` otherwise). The author and committer come from
        ``user.name``/``user.email`` in the repo's config, else :data:`DEFAULT_AUTHOR`.
        Returns the new full sha, or None when nothing under ``paths`` changed.
        """
        specs, skip = self._specs(paths), self._specs(exclude) if exclude else []
        allowed = None if untracked is None else {s for s in self._specs(list(untracked)) if s}

        def commit() -> str | None:
            repo = self._repo
            self._check_head(expect)
            modified, deleted = self._files.scan(self._head().tree, specs, allowed, skip)
            if not modified and not deleted:
                return None
            head = self._head()
            index = repo.index
            updates: dict[str, Entry | None] = {}
            for rel in deleted:
                if rel in index:
                    index.remove(rel)
                updates[rel] = None
            for rel in sorted(modified):
                index.add(rel)  # hashes and stores the blob, applying the repo's filters
                staged = index[rel]
                updates[rel] = (staged.id, staged.mode)
            tree_id = build_tree(repo, head.tree, updates) or repo.TreeBuilder().write()
            if tree_id == head.tree.id:  # the files went back to HEAD's content meanwhile
                index.write()
                return None
            signature = self._signature()
            oid = repo.create_commit("HEAD", signature, signature, message, tree_id, [head.id])
            index.write()
            return str(oid)

        return await self._run("committing", commit)

    async def restore(
        self,
        commit: str,
        paths: Sequence[str],
        *,
        expect: Expect | None = None,
        ours: Sequence[str] = (),
        written: Mapping[str, str] | None = None,
        save_as: str | None = None,
        exclude: Sequence[str] = (),
    ) -> SavedWork | None:
        """Make the branch, the index and the files under ``paths`` exactly as in ``commit``.

        Files under ``exclude`` (read-only files inside ``paths``) are left as they are.

        The current branch (or the detached HEAD) moves to ``commit`` and the index is reset to
        its tree (when ``commit`` is HEAD already, the index is left as it is). Files under
        ``paths`` are written byte for byte with their mode (to a temporary file renamed into
        place, so a kill never leaves a file missing or half written), and files under
        ``paths`` that HEAD, an ``ours`` commit or ``written`` hold but ``commit`` lacks are
        deleted (with directories left empty). Untracked and ignored
        files, and everything outside ``paths``, stay.

        Content is only ever replaced when git can give it back: a file under ``paths`` whose
        content is in none of ``commit``, HEAD, the ``ours`` commits or ``written`` (path to
        blob id: what the engine wrote without committing) was written by someone else, and is
        first committed on top of HEAD under the new reference ``save_as`` (a numeric suffix
        is added if the name is taken). Returns what was saved, or None when nothing needed
        saving; without ``save_as`` such content makes the restore fail instead. With
        ``expect``, HEAD must be there first (:class:`HeadMovedError` otherwise).
        """
        specs, skip = self._specs(paths), self._specs(exclude) if exclude else []
        extra = {rel: pygit2.Oid(hex=blob) for rel, blob in (written or {}).items() if rel}

        def restore() -> SavedWork | None:
            self._check_head(expect)
            target = self._commit(commit)
            head = self._head()
            saved = self._files.restore(
                head,
                target.tree,
                [self._commit(c).tree for c in ours],
                specs,
                extra,
                save_as=save_as,
                restoring=commit,
                author=self._signature,
                exclude=skip,
            )
            self._check_head(expect)  # nobody moved it while the files were written
            if target.id != head.id:  # else the index already holds HEAD's (and our) entries
                self._repo.reset(target.id, ResetMode.MIXED)
            return saved

        return await self._run(f"restoring {commit!r}", restore)

    async def set_ref(self, name: str, commit: str) -> None:
        """Create the reference ``name`` (e.g. ``refs/autoresearch/run1/3``) at ``commit``.

        An existing reference is never moved: if it already points elsewhere, GitError.
        """

        def create() -> None:
            oid = self._commit(commit).id
            existing = self._repo.references.get(name)
            if existing is None:
                self._repo.references.create(name, oid)
            elif existing.target != oid:
                raise GitError(
                    f"refusing to move {name}: it already points to {str(existing.target)[:7]}"
                )

        await self._run(f"setting {name!r}", create)

    # -- slot checkouts (linked worktrees) ------------------------------------------------

    async def add_worktree(self, name: str, path: Path, commit: str, *, branch: str) -> None:
        """Create the linked worktree ``name`` at ``path``, HEAD detached at ``commit``.

        A worktree of the same name (left by a crash) is pruned first and ``path`` must not
        hold anything but that. libgit2 checks a new worktree out on a branch, so the branch
        ``branch`` (one of the engine's) exists only while the worktree is made.
        """

        def add() -> None:
            repo = self._repo
            if name in repo.list_worktrees():
                repo.lookup_worktree(name).prune(True)
            target = self._commit(commit)
            ref = repo.branches.local.create(branch, target, force=True)
            try:
                repo.add_worktree(name, str(path), ref)
                pygit2.Repository(str(path)).set_head(target.id)
            finally:
                ref.delete()

        await self._run(f"creating the worktree {path}", add)

    async def remove_worktree(self, name: str) -> None:
        """Forget the linked worktree ``name`` (its files must be gone already)."""

        def prune() -> None:
            if name in self._repo.list_worktrees():
                self._repo.lookup_worktree(name).prune(True)

        await self._run(f"pruning the worktree {name}", prune)

    async def checkout_detached(self, commit: str) -> None:
        """Check ``commit`` out with HEAD detached, overwriting changes to tracked files.

        For the engine's own slot checkouts only: untracked files stay, tracked ones become
        exactly ``commit``'s.
        """

        def checkout() -> None:
            target = self._commit(commit)
            self._repo.checkout_tree(target, strategy=CheckoutStrategy.FORCE)  # type: ignore[no-untyped-call]
            self._repo.set_head(target.id)

        await self._run(f"checking out {commit[:7]}", checkout)

    async def untracked_top_level(self) -> list[str]:
        """The names at the root of the working tree that HEAD does not track.

        ``.git`` and ``.autoresearch`` are left out. A slot's checkout links to these, so a
        run there finds the datasets, checkpoints and environments the main checkout has.
        """

        def names() -> list[str]:
            tracked = {str(obj.name) for obj in self._head().tree}
            return sorted(
                name
                for name in os.listdir(self.root)
                if name not in tracked and name not in (".git", ".autoresearch")
            )

        return await self._run("listing untracked entries", names)

    async def replay(
        self, commit: str, *, base: str, onto: str, message: str | None
    ) -> str | list[str]:
        """Apply the change ``base`` -> ``commit`` on top of ``onto`` (a three-way merge).

        Returns the new commit (not on any branch), or the paths that conflict. With no
        ``message`` nothing is written: "" says the change applies cleanly.
        """

        def merge() -> str | list[str]:
            repo = self._repo
            merged = repo.merge_trees(
                self._commit(base).tree, self._commit(onto).tree, self._commit(commit).tree
            )
            if merged.conflicts is not None:
                paths = {
                    entry.path
                    for entries in merged.conflicts
                    for entry in entries
                    if entry is not None
                }
                return sorted(paths)
            if message is None:
                return ""
            tree = merged.write_tree(repo)
            signature = self._signature()
            onto_id = self._commit(onto).id
            return str(repo.create_commit(None, signature, signature, message, tree, [onto_id]))

        return await self._run(f"replaying {commit[:7]} onto {onto[:7]}", merge)

    async def move_branch(self, name: str, to: str, *, expected: str) -> bool:
        """Point the local branch ``name`` at ``to`` if it is at ``expected`` and not checked out.

        Used to take back a candidate from the research branch after the user checked out
        another branch: only the branch moves, no file is touched. Returns whether it moved.
        """

        def move() -> bool:
            repo = self._repo
            branch = repo.branches.local.get(name)
            if branch is None or str(branch.target) != expected:
                return False
            if not repo.head_is_detached and repo.head.name == branch.name:
                return False
            branch.set_target(self._commit(to).id, f"autoresearch: back to {to[:7]}")
            return True

        return await self._run(f"moving branch {name!r}", move)

    async def refs_under(self, prefix: str) -> dict[str, str]:
        """Every reference whose name starts with ``prefix``: name -> commit sha."""

        def listing() -> dict[str, str]:
            found: dict[str, str] = {}
            for name in self._repo.references:
                if name.startswith(prefix):
                    ref = self._repo.references[name].resolve()
                    found[name] = str(ref.target)
            return found

        return await self._run(f"listing {prefix}", listing)

    async def rename_refs(self, renames: Mapping[str, str]) -> None:
        """Give references new names (old -> new); a new name that exists is never replaced."""

        def rename() -> None:
            refs = self._repo.references
            for old, new in renames.items():
                if refs.get(new) is not None:
                    raise GitError(f"cannot archive {old}: {new} already exists")
            for old, new in renames.items():
                refs.create(new, refs[old].resolve().target)
                refs.delete(old)

        await self._run("archiving references", rename)

    # -- snapshots of the whole checkout (see autoresearch.gitsnap) ---------------------------

    async def snapshot(self) -> gitsnap.Snapshot:
        """HEAD, the index and the working tree as git objects (ignored files left out)."""
        return await self._run(
            "recording the working tree", lambda: gitsnap.take(self._repo, str(self.root))
        )

    async def tree_changes(
        self, before: gitsnap.Snapshot, after: gitsnap.Snapshot
    ) -> list[gitsnap.TreeChange]:
        """The paths whose content differs between two snapshots, sorted."""
        return await self._run(
            "comparing snapshots", lambda: gitsnap.changes(self._repo, before, after)
        )

    async def rewind(self, before: gitsnap.Snapshot) -> None:
        """HEAD (its branch or the detached HEAD) and the index back as at ``before``.

        The working tree is not touched. :class:`HeadMovedError` when HEAD is no longer on
        the branch it was on (or no longer detached): then nothing is changed.
        """

        def rewind() -> None:
            self._check_head(Expect(before.branch))
            if str(self._head().id) != before.head:
                gitsnap.rewind(self._repo, before)
            else:
                gitsnap.reset_index(self._repo, before)

        await self._run("moving HEAD back", rewind)

    async def put_back(self, entries: Mapping[str, Entry | None]) -> None:
        """Write each path's blob (None: remove the file); nothing else is touched."""
        await self._run("restoring files", lambda: gitsnap.put_back(self._files, entries))

    async def save_entries(
        self, head: str, entries: Mapping[str, Entry], ref: str, message: str
    ) -> str:
        """Commit ``entries`` on top of ``head`` under a new reference named after ``ref``."""
        return await self._run(
            f"saving under {ref}",
            lambda: gitsnap.save(
                self._repo, head, entries, ref=ref, message=message, author=self._signature
            ),
        )

    async def read_blob(self, oid: pygit2.Oid) -> bytes:
        """The content of the blob ``oid``."""
        return await self._run("reading a blob", lambda: self._repo[oid].peel(pygit2.Blob).data)
