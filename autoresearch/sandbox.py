"""The optional sandbox for experiments: no network, a read-only filesystem but the repo.

With ``sandbox="bwrap"`` every run (and the validate command) is started through bubblewrap:
the whole filesystem is visible read-only (so interpreters, virtual environments and datasets
work wherever they live, /tmp included), the repository and any ``sandbox_paths`` are
writable, ``TMPDIR`` points at ``.autoresearch/tmp`` inside the repository, and the network
namespace is empty, so the experiment cannot reach any host, the machine's own services
included.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from autoresearch.config import ResearchConfig
from autoresearch.errors import ConfigError
from autoresearch.workspace import WORKSPACE_DIR

__all__ = ["BWRAP", "check_sandbox", "sandbox_tmp", "sandboxed_command", "writable_paths"]

BWRAP = "bwrap"
"""The bubblewrap executable looked up on PATH."""


def writable_paths(config: ResearchConfig) -> list[Path]:
    """The repository and the extra writable paths (relative ones are inside the repo)."""
    extra = [
        config.repo_path / p if not Path(p).is_absolute() else Path(p) for p in config.sandbox_paths
    ]
    return [config.repo_path, *extra]


def sandbox_tmp(config: ResearchConfig) -> Path:
    """The writable temporary folder a sandboxed run gets as ``TMPDIR`` (inside the repo)."""
    return config.repo_path / WORKSPACE_DIR / "tmp"


def check_sandbox(config: ResearchConfig) -> None:
    """Raise :class:`ConfigError` if the configured sandbox cannot be used here."""
    if config.sandbox == "none":
        return
    if shutil.which(BWRAP) is None:
        raise ConfigError(
            "sandbox: bwrap (bubblewrap) is not installed; install it (Debian/Ubuntu: "
            "apt-get install bubblewrap, Fedora: dnf install bubblewrap) or set sandbox to none",
            field="sandbox",
        )
    for path in writable_paths(config)[1:]:
        if not path.exists():
            raise ConfigError(
                f"sandbox_paths: {path} does not exist; create it or remove it from the list",
                field="sandbox_paths",
            )


def sandboxed_command(command: str, config: ResearchConfig, cwd: Path | None = None) -> str:
    """``command`` as the shell should run it under the configured sandbox, in ``cwd``.

    ``cwd`` is the checkout the run works in: the repository, or with parallel slots the
    slot's worktree (inside the repository, so writable too). ``None``: the repository.
    """
    if config.sandbox == "none":
        return command
    args = [BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in writable_paths(config):
        resolved = str(path.resolve())
        args += ["--bind", resolved, resolved]
    args += ["--setenv", "TMPDIR", str(sandbox_tmp(config))]
    where = cwd if cwd is not None else config.repo_path
    args += ["--unshare-net", "--die-with-parent", "--chdir", str(where)]
    args += ["--", "/bin/sh", "-c", command]
    return shlex.join(args)
