"""Edits to mutable files: the data, the path policy, applying them and checking syntax.

Everything a proposer writes is untrusted. :class:`PathPolicy` decides which paths may be
written (only mutable ones, never ``.git/``, ``.autoresearch/``, immutable files or anything a
symlink leads out of the repository), :func:`apply_changes` computes every new file in memory
first and writes only when all edits apply, and :func:`check_syntax` catches broken Python, JSON,
TOML and YAML before anything is committed or run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import anyio
from pydantic import model_validator

from autoresearch._model import CamelModel
from autoresearch.config import RESERVED_DIRS, ResearchConfig
from autoresearch.errors import ConfigError, EditError
from autoresearch.results import Usage

__all__ = [
    "MAX_FILE_BYTES",
    "AppliedChanges",
    "ChangeSet",
    "Edit",
    "PathPolicy",
    "apply_changes",
    "blob_id",
    "check_config_paths",
    "check_syntax",
]

MAX_FILE_BYTES = 1024 * 1024
"""The largest file an edit may produce."""


class Edit(CamelModel):
    """One change to one file.

    Either ``search``/``replace`` (``search`` must match the file exactly once) or ``content``
    (the whole new file). Paths are relative to the repository root.
    """

    path: str
    search: str | None = None
    replace: str | None = None
    content: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Edit:
        if self.content is None and (self.search is None or self.replace is None):
            raise ValueError("an edit needs either 'content' or both 'search' and 'replace'")
        if self.content is not None and self.search is not None:
            raise ValueError("an edit has either 'content' or 'search'/'replace', not both")
        return self


class ChangeSet(CamelModel):
    """The edits a proposer wants applied for one plan, with the usage it cost."""

    edits: list[Edit]
    usage: Usage | None = None


def _under(path: PurePosixPath, prefixes: Sequence[str]) -> bool:
    return any(path == PurePosixPath(p) or PurePosixPath(p) in path.parents for p in prefixes)


@dataclass(frozen=True)
class PathPolicy:
    """Which files an edit may touch: mutable ones inside the repository, nothing else."""

    root: Path
    mutable: tuple[str, ...]
    immutable: tuple[str, ...] = ()
    tracked: frozenset[str] | None = None
    """The files git tracks under the mutable paths; when given, an existing file outside it
    (a user's untracked scratch file) is never edited, since git could not give it back."""

    @classmethod
    def from_config(
        cls,
        config: ResearchConfig,
        tracked: frozenset[str] | None = None,
        *,
        root: Path | None = None,
    ) -> PathPolicy:
        """The policy a configuration implies (in ``root``: a slot's checkout, say)."""
        return cls(
            root or config.repo_path,
            tuple(config.mutable_paths),
            tuple(config.immutable_paths),
            tracked,
        )

    def protects(self, rel: str) -> bool:
        """Whether the repo-relative path ``rel`` lies under an immutable path."""
        return _under(PurePosixPath(rel), self.immutable)

    def allows(self, raw: str) -> bool:
        """Whether an edit may write ``raw`` (:meth:`check` without the reason)."""
        try:
            self.check(raw)
        except EditError:
            return False
        return True

    def check(self, raw: str) -> str:
        """The normalised repo-relative path for ``raw``, or :class:`EditError` saying why not."""
        text = raw.strip().replace("\\", "/")
        if not text:
            raise EditError("an edit has an empty path")
        if "\x00" in text:
            raise EditError(f"{raw!r}: paths cannot contain NUL bytes")
        posix = PurePosixPath(text)
        if posix.is_absolute():
            raise EditError(f"{raw!r}: absolute paths are refused; use a repo-relative path")
        if ".." in posix.parts:
            raise EditError(f"{raw!r}: paths with '..' are refused")
        parts = tuple(p for p in posix.parts if p != ".")
        if not parts:
            raise EditError(f"{raw!r} is not a file path")
        if parts[0] in RESERVED_DIRS:
            raise EditError(f"{raw!r}: files under {parts[0]}/ are never edited")
        rel = PurePosixPath(*parts)
        # Follow symlinks (in the file and every parent) and require the target to stay inside.
        target = (self.root / rel).resolve()
        try:
            resolved = PurePosixPath(target.relative_to(self.root.resolve()).as_posix())
        except ValueError:
            raise EditError(f"{raw!r} leads outside the repository (through a symlink)") from None
        for candidate in {rel, resolved}:
            if candidate.parts and candidate.parts[0] in RESERVED_DIRS:
                raise EditError(f"{raw!r}: files under {candidate.parts[0]}/ are never edited")
            if _under(candidate, self.immutable):
                raise EditError(f"{raw!r} is immutable (read-only for the agent)")
            if not _under(candidate, self.mutable):
                allowed = ", ".join(self.mutable)
                raise EditError(f"{raw!r} is not a mutable path (allowed: {allowed})")
        return rel.as_posix()


@dataclass
class AppliedChanges:
    """What :func:`apply_changes` wrote: the files, which of them are new, and the originals."""

    files: list[str]
    created: list[str] = field(default_factory=list)
    originals: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)
    """The git blob id of each file's new content, to recognise it later as the engine's."""


def blob_id(data: bytes) -> str:
    """The id git gives a blob with content ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def _new_text(edit: Edit, current: str | None) -> str:
    if edit.content is not None:
        return edit.content
    assert edit.search is not None and edit.replace is not None
    if current is None:
        raise EditError(f"{edit.path}: the file does not exist, so 'search' cannot match")
    if not edit.search:
        raise EditError(f"{edit.path}: 'search' is empty; give text that occurs once in the file")
    count = current.count(edit.search)
    if count == 0:
        raise EditError(f"{edit.path}: the search text was not found (it must match exactly)")
    if count > 1:
        raise EditError(
            f"{edit.path}: the search text occurs {count} times; add context to make it unique"
        )
    return current.replace(edit.search, edit.replace, 1)


def _plan_writes(policy: PathPolicy, changes: ChangeSet) -> tuple[dict[str, str], dict[str, bytes]]:
    pending: dict[str, str] = {}
    originals: dict[str, bytes] = {}
    if not changes.edits:
        raise EditError("the change set has no edits")
    for edit in changes.edits:
        rel = policy.check(edit.path)
        path = policy.root / rel
        if rel not in pending:
            if path.is_dir():
                raise EditError(f"{edit.path} is a directory, not a file")
            if path.exists():
                if policy.tracked is not None and rel not in policy.tracked:
                    raise EditError(
                        f"{edit.path} exists but git does not track it, so it is never edited "
                        "(edit a tracked file or create a new one)"
                    )
                data = path.read_bytes()
                originals[rel] = data
                if b"\x00" in data:
                    raise EditError(f"{edit.path} is a binary file; only text files are edited")
                try:
                    pending[rel] = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise EditError(f"{edit.path} is not UTF-8 text") from None
        text = _new_text(edit, pending.get(rel))
        if "\x00" in text:
            raise EditError(f"{edit.path}: the new content is binary (contains NUL bytes)")
        if len(text.encode("utf-8")) > MAX_FILE_BYTES:
            raise EditError(f"{edit.path}: the new content is over {MAX_FILE_BYTES} bytes")
        pending[rel] = text
    return pending, originals


def _apply(policy: PathPolicy, changes: ChangeSet) -> AppliedChanges:
    pending, originals = _plan_writes(policy, changes)
    applied = AppliedChanges(files=sorted(pending), originals=originals)
    for rel, text in pending.items():
        path = policy.root / rel
        if rel not in originals:
            applied.created.append(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode if path.exists() else None
        tmp = path.with_name(f".{path.name}.autoresearch-tmp")
        data = text.encode("utf-8")
        applied.blobs[rel] = blob_id(data)
        tmp.write_bytes(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    return applied


async def apply_changes(policy: PathPolicy, changes: ChangeSet) -> AppliedChanges:
    """Apply every edit or none: all new contents are computed and checked before any write.

    Raises :class:`EditError` with the reason when an edit is refused or does not apply; the
    disk is then untouched.
    """
    return await anyio.to_thread.run_sync(_apply, policy, changes)


def _syntax_problem(path: Path, rel: str) -> str | None:
    suffix = path.suffix.lower()
    if not path.exists():
        return None
    text = path.read_bytes()
    try:
        if suffix == ".py":
            compile(text, rel, "exec", dont_inherit=True)
        elif suffix == ".json":
            json.loads(text)
        elif suffix == ".toml":
            tomllib.loads(text.decode("utf-8"))
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                return None
            yaml.safe_load(text)
    except SyntaxError as exc:
        return f"{rel}:{exc.lineno}: syntax error: {exc.msg}"
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        return f"{rel}: invalid {suffix[1:].upper()}: {exc}"
    except Exception as exc:  # yaml's own error classes
        return f"{rel}: invalid {suffix[1:].upper()}: {exc}"
    return None


def _check_all(root: Path, files: Sequence[str]) -> str | None:
    problems = [p for rel in files if (p := _syntax_problem(root / rel, rel))]
    return "; ".join(problems) or None


async def check_syntax(root: Path, files: Sequence[str]) -> str | None:
    """A description of every syntax error in ``files`` (Python, JSON, TOML, YAML), or ``None``."""
    return await anyio.to_thread.run_sync(_check_all, root, files)


def _check_paths(config: ResearchConfig, missing_ok: Sequence[str]) -> None:
    root = config.repo_path
    for field_name, paths in (
        ("mutable_paths", config.mutable_paths),
        ("immutable_paths", config.immutable_paths),
    ):
        for rel in paths:
            path = root / rel
            if not path.exists() and not path.is_symlink() and rel in missing_ok:
                continue
            if not path.exists():
                raise ConfigError(
                    f"{field_name}: {rel!r} does not exist in {root}; create it or fix the path",
                    field=field_name,
                )
            try:
                path.resolve().relative_to(root.resolve())
            except ValueError:
                raise ConfigError(
                    f"{field_name}: {rel!r} is a symlink that leads outside the repository",
                    field=field_name,
                ) from None
    if config.program_path is not None and not (root / config.program_path).is_file():
        raise ConfigError(
            f"program_path: {config.program_path!r} is not a file in {root}", field="program_path"
        )


async def check_config_paths(config: ResearchConfig, missing_ok: Sequence[str] = ()) -> None:
    """Check the configured paths against the disk; :class:`ConfigError` names the field.

    Paths in ``missing_ok`` may be missing (recovery is about to bring them back).
    """
    await anyio.to_thread.run_sync(_check_paths, config, missing_ok)
