"""What the proposer is shown: the code and program (bootstrap) and the results so far (analyze).

The bootstrap context is cached and rebuilt only when the best commit or a watched file changes,
and the analysis looks only at the tail of the in-memory history, so neither grows with the
length of the research.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import anyio

from autoresearch.config import ResearchConfig
from autoresearch.gitfiles import under
from autoresearch.proposers.base import Analysis, ResearchContext
from autoresearch.results import RunRecord

__all__ = [
    "DEFAULT_PROGRAM",
    "MAX_IMMUTABLE_BYTES",
    "MAX_MUTABLE_FILES",
    "ContextCache",
    "build_analysis",
    "build_context",
]

DEFAULT_PROGRAM = "program.md"
"""The research program read when ``program_path`` is not set and this file exists."""

MAX_IMMUTABLE_BYTES = 20_000
"""Each read-only file is cut to this many characters in the context."""

MAX_MUTABLE_FILES = 200
"""At most this many files are read from mutable directories."""

_SKIP_DIRS = {"__pycache__", ".git", ".autoresearch", "node_modules", ".venv", "venv"}


def _files_under(root: Path, rel: str, limit: int) -> list[str]:
    path = root / rel
    if path.is_file():
        return [rel]
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            found.append((Path(dirpath) / name).relative_to(root).as_posix())
            if len(found) >= limit:
                return found
    return found


def _read_text(path: Path, cap: int | None) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    text = data.decode("utf-8", errors="replace")
    if cap is not None and len(text) > cap:
        text = text[:cap] + f"\n… [cut: {len(text) - cap} more characters]\n"
    return text


def _program_path(config: ResearchConfig) -> str | None:
    if config.program_path is not None:
        return config.program_path
    if (config.repo_path / DEFAULT_PROGRAM).is_file():
        return DEFAULT_PROGRAM
    return None


def _watched(config: ResearchConfig) -> list[str]:
    root = config.repo_path
    files: list[str] = []
    for rel in (*config.mutable_paths, *config.immutable_paths):
        files.extend(_files_under(root, rel, MAX_MUTABLE_FILES))
    program = _program_path(config)
    if program:
        files.append(program)
    return files


def _fingerprint(config: ResearchConfig) -> tuple[tuple[str, int, int], ...]:
    out: list[tuple[str, int, int]] = []
    for rel in _watched(config):
        try:
            st = (config.repo_path / rel).stat()
        except OSError:
            continue
        out.append((rel, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _read_all(root: Path, paths: list[str], cap: int | None) -> dict[str, str]:
    """Every text file under ``paths`` (files or folders), each cut to ``cap`` characters."""
    found: dict[str, str] = {}
    for rel in paths:
        for file in _files_under(root, rel, MAX_MUTABLE_FILES):
            text = _read_text(root / file, cap)
            if text is not None:
                found[file] = text
    return found


def _command_files(config: ResearchConfig) -> list[str]:
    """Repository files the run command names (a config file passed to the script)."""
    import shlex

    try:
        tokens = shlex.split(config.run_command)
    except ValueError:
        tokens = config.run_command.split()
    root = config.repo_path
    names = []
    for token in tokens:
        if token.startswith("-") or "/.." in f"/{token}" or token.startswith("/"):
            continue
        if token.endswith((".py", ".yaml", ".yml", ".json", ".toml")) and (root / token).is_file():
            names.append(token.removeprefix("./"))
    return names


def build_context(config: ResearchConfig, layout: Sequence[str] = ()) -> ResearchContext:
    """Read the files the proposer is shown (blocking: call it in a worker thread).

    Files the run command names (a config file the script loads) are read too, as read-only
    files, so the offline proposer can tell which defaults they override.
    """
    root = config.repo_path
    immutable = _read_all(root, config.immutable_paths, MAX_IMMUTABLE_BYTES)
    mutable = {  # a read-only file inside an editable folder is shown as read-only only
        path: text
        for path, text in _read_all(root, config.mutable_paths, None).items()
        if not under(path, config.immutable_paths)
    }
    extra = [f for f in _command_files(config) if f not in mutable and f not in immutable]
    immutable.update(_read_all(root, extra, MAX_IMMUTABLE_BYTES))
    program_rel = _program_path(config)
    program = _read_text(root / program_rel, None) if program_rel else None
    return ResearchContext(
        config=config,
        program=program,
        mutable_files=mutable,
        immutable_files=immutable,
        layout=list(layout),
    )


class ContextCache:
    """Builds the bootstrap context; reuses it while the best commit and files are unchanged."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._context: ResearchContext | None = None

    async def get(
        self, config: ResearchConfig, best_commit: str | None, layout: Sequence[str]
    ) -> ResearchContext:
        """The context for ``config`` at ``best_commit``."""
        fingerprint = await anyio.to_thread.run_sync(_fingerprint, config)
        key = (best_commit, fingerprint)
        if self._context is None or key != self._key or self._context.config != config:
            self._context = await anyio.to_thread.run_sync(build_context, config, list(layout))
            self._key = key
        return self._context


def build_analysis(
    cycle: int,
    history: Sequence[RunRecord],
    *,
    best_metric: float | None,
    baseline_metric: float | None,
    best_commit: str | None,
    last_failure_log_tail: str | None,
    window: int = 20,
) -> Analysis:
    """Summarise the last ``window`` records (never the whole history)."""
    recent = list(history[-window:])
    failures = [r for r in recent if r.status in ("crash", "timeout", "invalid")]
    near: list[RunRecord] = []
    if best_metric is not None:
        scale = abs(best_metric) or 1.0
        near = [
            r
            for r in recent
            if r.status == "discard"
            and r.metric is not None
            and abs(r.metric - best_metric) <= 0.02 * scale
        ]
    return Analysis(
        cycle=cycle,
        best_metric=best_metric,
        baseline_metric=baseline_metric,
        best_commit=best_commit,
        recent=recent,
        recent_failures=failures,
        last_failure_log_tail=last_failure_log_tail,
        near_misses=near,
        total_cycles=len(history),
    )
