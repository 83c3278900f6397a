"""The ``quickstart`` command's setup: a fresh git repository holding the bundled example."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio

from autoresearch.errors import ConfigError
from autoresearch.gitrepo import GitRepo

__all__ = ["DEFAULT_NAME", "create_quickstart", "example_dir"]

_FILES = ("train.py", "program.md", "README.md")


def example_dir() -> Path:
    """Where the quickstart example lives: in the package, or in a source checkout."""
    bundled = Path(__file__).resolve().parent.parent / "_examples" / "quickstart"
    if bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def _copy(target: Path) -> None:
    source = example_dir()
    if not (source / "train.py").is_file():
        raise ConfigError(
            f"the quickstart example is missing from {source}; reinstall autoresearch"
        )
    if target.exists() and any(target.iterdir()):
        raise ConfigError(
            f"directory: {target} already exists and is not empty; choose a new directory",
            field="directory",
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    (target / ".gitignore").write_text("__pycache__/\n")


DEFAULT_NAME = "autoresearch-quickstart"
"""The folder created in the current directory when none is named."""


def _free_default() -> Path:
    base = Path.cwd() / DEFAULT_NAME
    candidate, number = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        number += 1
        candidate = base.with_name(f"{DEFAULT_NAME}-{number}")
    return candidate


async def create_quickstart(directory: Path | None) -> Path:
    """Copy the example into ``directory`` (new or empty) and commit it in a new git repo.

    With no directory, ``./autoresearch-quickstart`` is used, or ``-2``, ``-3``… when taken.
    """
    if directory is None:
        target = await anyio.to_thread.run_sync(_free_default)
    else:
        target = await anyio.to_thread.run_sync(lambda: directory.expanduser().resolve())
    await anyio.to_thread.run_sync(_copy, target)
    await GitRepo.init(target, "quickstart example")
    return target
