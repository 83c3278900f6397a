"""Where experiments run: the :class:`Executor` protocol and the local implementation.

The worker decides what to run and reads the outcome; an executor starts the run, sends its
output to the cycle's log file, enforces the time limit, kills the whole process tree when the
run ends or is cancelled, and reports what happened. :class:`LocalExecutor` runs on this
machine (see :mod:`autoresearch.runner`); another backend (a cluster) only has to implement
:meth:`Executor.run` with the same guarantees.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio

from autoresearch.runner import RunOutcome, run_experiment

if TYPE_CHECKING:
    from autoresearch.config import ResearchConfig

__all__ = ["Executor", "LocalExecutor", "Preparing", "RunRequest", "executor_for"]


@dataclass(frozen=True)
class RunRequest:
    """One run to make: the command, where, with what, for how long, and who to tell."""

    command: str
    """A shell command line (run with ``/bin/sh -c``)."""
    cwd: Path
    log_path: Path
    """Where stdout and stderr go (truncated first); the metric is read from it."""
    timeout_s: float
    kill_grace_s: float = 5.0
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to the engine's environment."""
    on_start: Callable[[int], Awaitable[None]] | None = None
    """Awaited with the run's process (group) id once it started (on this machine: an executor
    that runs elsewhere, like the Ray one, has no local process to report and never calls it)."""
    on_timeout: Callable[[int], Awaitable[None]] | None = None
    """Awaited with the elapsed milliseconds when the time limit passes, before the kill."""
    abort: anyio.Event | None = None
    """Set by the caller to stop the run early, killed as on a timeout (early abort)."""


@runtime_checkable
class Executor(Protocol):
    """Runs experiments. A failed run is an outcome, never an exception.

    ``run`` returns when the run and every process it started are gone, whichever way it ended
    (its own exit, the time limit, or cancellation of the caller, which then propagates).
    """

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run ``request`` to the end and report what happened."""
        ...


@runtime_checkable
class Preparing(Protocol):
    """An executor with something to do before the first run (connect to a cluster).

    The worker awaits :meth:`prepare` while it prepares, so that a backend that cannot work
    stops the research before any cycle, with a :class:`~autoresearch.errors.ConfigError`.
    """

    async def prepare(self) -> None:
        """Get ready to run; raise ``ConfigError`` saying what is missing if that fails."""
        ...


def executor_for(config: ResearchConfig, state_dir: Path) -> Executor:
    """The executor ``config.backend`` names; ``state_dir`` is the repository's .autoresearch/.

    Ray is imported only when the ``ray`` backend runs its first experiment.
    """
    if config.backend == "ray":
        from autoresearch.ray_executor import RayExecutor

        return RayExecutor(
            config.ray_spec, repo_path=config.repo_path, record_path=state_dir / "ray-runs.json"
        )
    return LocalExecutor()


class LocalExecutor:
    """Runs experiments as subprocesses of this process (see :func:`run_experiment`)."""

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run ``request`` on this machine."""
        return await run_experiment(
            request.command,
            cwd=request.cwd,
            log_path=request.log_path,
            timeout_s=request.timeout_s,
            kill_grace_s=request.kill_grace_s,
            env=request.env,
            on_timeout=request.on_timeout,
            on_start=request.on_start,
            abort=request.abort,
        )
