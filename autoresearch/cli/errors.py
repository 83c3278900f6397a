"""How a failure becomes one line on stderr and an exit code.

Usage errors and bad values: ``error: …`` and exit 2 (:class:`_OneLineErrors`,
:func:`_usage_error`). Failures while a command runs (:func:`_errors`, :func:`_run`): exit 2
for a ``ConfigError``, 1 for the rest, with one line each; ``--debug`` shows the traceback
instead. The engine's log records become one line each too (:func:`install_log_lines`).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import anyio
import typer
from typer.core import TyperGroup

from autoresearch.cli import silence
from autoresearch.errors import AutoResearchError, ConfigError

__all__ = ["EXIT_INTERRUPTED", "install_log_lines"]

T = TypeVar("T")
EXIT_INTERRUPTED = 130
"""The exit status after Ctrl-C (SIGINT); SIGTERM gives 143 and SIGHUP 129 (128 + signal)."""


class _OneLineErrors(TyperGroup):
    """Usage errors as one line on stderr (exit 2), without a usage dump or a box."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        except typer.TyperException as exc:  # typer's own click: usage errors and bad values
            if not standalone_mode:
                raise
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            _say(f"error: {message}{hint}")
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            if not standalone_mode:
                raise
            _say("aborted")
            sys.exit(EXIT_INTERRUPTED)
        if standalone_mode:
            sys.exit(result if isinstance(result, int) else 0)
        return result


_options = {"debug": False}


def _debug() -> bool:
    return _options["debug"]


def _say(message: str) -> None:
    """One line on stderr, never wrapped or styled; a lost terminal or pipe is not an error."""
    try:
        typer.echo(message, err=True)
    except OSError:
        silence(2)


def _usage_error(message: str) -> NoReturn:
    """A bad value the command itself checks: one line, exit 2, before anything is written."""
    _say(f"error: {message}")
    raise typer.Exit(2)


def install_log_lines() -> None:
    """Show the engine's log records as one line each on stderr (once per process)."""
    engine = logging.getLogger("autoresearch")
    if not any(isinstance(h, _LogLines) for h in engine.handlers):
        engine.addHandler(_LogLines(logging.WARNING))


class _LogLines(logging.Handler):
    """The engine's warnings and errors on stderr, one line each (tracebacks with --debug).

    Without it, Python prints them with their tracebacks: dozens of lines for an error the
    cycle's line or the command's ``error:`` line already reports.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info and _debug():
                text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            _say(text)
        except Exception:
            self.handleError(record)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, in order; ``[exc]`` for a plain one."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


_WRITE_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _os_error_line(exc: OSError) -> str:
    """``cannot write /repo/.autoresearch/state.json: Read-only file system``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None or isinstance(exc.filename, int):
        return reason
    path = Path(os.fsdecode(exc.filename))
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        path = path.with_name(path.name[1:-4])  # the temp file of an atomic replace of `path`
    verb = "write" if exc.errno in _WRITE_ERRNOS else "access"
    return f"cannot {verb} {path}: {reason}"


def _describe(exc: Exception) -> tuple[int, str]:
    """The exit status and the one line for a failure."""
    if isinstance(exc, ConfigError):
        return 2, str(exc)
    if isinstance(exc, AutoResearchError):
        return 1, str(exc)
    if isinstance(exc, OSError):
        return 1, _os_error_line(exc)
    return 1, f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"


@contextmanager
def _errors() -> Iterator[None]:
    """One line on stderr per failure: 2 for configuration mistakes, 1 for the rest.

    Errors raised inside task groups arrive wrapped in (nested) exception groups; the group is
    unwrapped, so the error inside gets its usual line and code (with a count of any others).
    """
    try:
        yield
    except BaseException as exc:
        leaves = _leaves(exc)
        first = leaves[0]
        if not isinstance(first, Exception) or isinstance(
            first, typer.Exit | typer.TyperException | typer.Abort
        ):
            if first is exc:
                raise
            raise first from None
        if _debug():
            raise
        code, line = _describe(first)
        others = len(leaves) - 1
        if others:
            line += f" (and {others} more error{'s' if others > 1 else ''})"
        _say(f"error: {line}")
        raise typer.Exit(code) from None


def _run(func: Callable[[], Awaitable[T]]) -> T:
    with _errors():
        return anyio.run(func)
