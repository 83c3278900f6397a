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
from typing import Protocol, runtime_checkable

import anyio

from autoresearch.runner import RunOutcome, run_experiment

__all__ = ["Executor", "LocalExecutor", "RunRequest"]


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
    """Awaited with the run's process (group) id once it started."""
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
