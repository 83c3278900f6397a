"""Stopping a research command on a signal: :func:`_interruptible` and its :class:`Interruption`.

The guard that handles SIGINT, SIGTERM and SIGHUP before and around the work is in
``autoresearch.cli`` (see its docstring); while research runs, :func:`_interruptible` listens
instead and cancels the work, whose cleanup still runs.

While it listens, a terminal in the foreground does not echo control characters: Ctrl-C
prints no ``^C`` into the live panel, whose erasing would otherwise go wrong by a line and
leave part of it on screen. The terminal's settings are put back afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
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


def _foreground_terminal() -> int | None:
    """A descriptor of the terminal this process is in the foreground of, if any."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return fd
        except OSError:
            continue
    return None


@contextlib.contextmanager
def _unechoed_control_chars() -> Iterator[bool]:
    """The terminal does not echo ``^C`` meanwhile; yields whether that could be arranged.

    Only in the foreground: a background process that changed the terminal would be stopped.
    """
    try:
        import termios
    except ImportError:  # not a POSIX system
        yield False
        return
    fd = _foreground_terminal()
    try:
        if fd is None:
            raise OSError("no terminal in the foreground")
        before = termios.tcgetattr(fd)
        after = list(before)
        after[3] &= ~termios.ECHOCTL
        termios.tcsetattr(fd, termios.TCSANOW, after)
    except (termios.error, OSError):
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(termios.error, OSError):  # the terminal may be gone (SIGHUP)
            termios.tcsetattr(fd, termios.TCSANOW, before)


async def _interruptible(
    body: Callable[[], Awaitable[T]], on_signal: Callable[[], None] | None = None
) -> tuple[T | None, Interruption | None]:
    """Run ``body``; SIGINT, SIGTERM and SIGHUP cancel it (its cleanup still runs).

    A signal that arrived during the setup (see ``autoresearch.cli``) stops it before it
    starts. After SIGHUP the lost terminal is let go first, so that the cleanup and the
    messages never fail on it. ``on_signal`` runs before the "stopping" line is printed (the
    live view takes its panel off the screen, so that the line stays visible). Returns
    (value, the interruption or ``None``).
    """
    outcome: list[T] = []
    stop: Interruption | None = None
    try:
        with (
            anyio.open_signal_receiver(*GUARDED_SIGNALS) as signals,
            _unechoed_control_chars() as unechoed,
        ):
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
                        if on_signal is not None:
                            on_signal()
                        past_echo = "" if unechoed else "\n"  # past a `^C` on the line
                        _say(
                            f"{past_echo}{stop.name}: stopping: killing the experiment, "
                            "restoring the best commit…"
                        )
                        group.cancel_scope.cancel()

                group.start_soon(watch)
                outcome.append(await body())
                group.cancel_scope.cancel()
    finally:
        restore_signal_guard(stopping=stop is not None)
    return (outcome[0] if outcome else None), stop
