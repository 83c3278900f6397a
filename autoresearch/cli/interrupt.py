"""Stopping a research command on a signal: :func:`_interruptible` and its :class:`Interruption`.

The guard that handles SIGINT, SIGTERM and SIGHUP before and around the work is in
``autoresearch.cli`` (see its docstring); while research runs, :func:`_interruptible` listens
instead and cancels the work, whose cleanup still runs.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from autoresearch.cli import (
    GUARDED_SIGNALS,
    exit_code,
    release_terminal,
    restore_signal_guard,
    take_pending_signal,
)
from autoresearch.cli.errors import _say

__all__ = ["Interruption"]

T = TypeVar("T")


@dataclass(frozen=True)
class Interruption:
    """A signal stopped the command: which one, and whether the work had started."""

    signum: int
    early: bool
    """The signal came before the work started (during the setup): nothing ran."""

    @property
    def name(self) -> str:
        """``SIGINT``, ``SIGTERM`` or ``SIGHUP``."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: 130, 143 or 129."""
        return exit_code(self.signum)


async def _interruptible(
    body: Callable[[], Awaitable[T]],
) -> tuple[T | None, Interruption | None]:
    """Run ``body``; SIGINT, SIGTERM and SIGHUP cancel it (its cleanup still runs).

    A signal that arrived during the setup (see ``autoresearch.cli``) stops it before it
    starts. After SIGHUP the lost terminal is let go first, so that the cleanup and the
    messages never fail on it. Returns (value, the interruption or ``None``).
    """
    outcome: list[T] = []
    stop: Interruption | None = None
    try:
        with anyio.open_signal_receiver(*GUARDED_SIGNALS) as signals:
            early = take_pending_signal()
            if early is not None:
                if early == signal.SIGHUP:
                    release_terminal()
                stop = Interruption(early, early=True)
                return None, stop
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal stop
                    async for signum in signals:
                        if stop is not None:
                            continue  # already stopping: a second Ctrl-C is harmless
                        stop = Interruption(signum, early=False)
                        if signum == signal.SIGHUP:
                            release_terminal()
                        _say(
                            f"\n{stop.name}: stopping: killing the experiment, "
                            "restoring the best commit…"
                        )
                        group.cancel_scope.cancel()

                group.start_soon(watch)
                outcome.append(await body())
                group.cancel_scope.cancel()
    finally:
        restore_signal_guard(stopping=stop is not None)
    return (outcome[0] if outcome else None), stop
