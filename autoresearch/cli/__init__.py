"""The command line: ``autoresearch <command>`` and ``neurolink autoresearch <command>``.

The commands are thin: they build the SDK objects, call them and render. See ``app.py``.

Signals. The research commands stop cleanly on SIGINT, SIGTERM and SIGHUP whenever the signal
comes; the exit code is 128 + the signal's number (130, 143, 129). Until a command starts to
write, a signal ends the process at once with one line (nothing was changed). While it sets up
(takes the lock, checks out the branch, recovers an interrupted cycle) a signal is only noted,
and acted on as soon as the setup is done. While research runs, ``interrupt._interruptible``
listens and cancels the cycle, whose cleanup kills the experiment, restores the tree and
records it. The guard is installed first thing when this package is imported by the
``autoresearch`` or ``neurolink`` program (before typer and the SDK load), and by :func:`main`;
importing the package from other programs changes no signal handler.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

GUARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that stop a research command cleanly."""


class _Guard:
    """The early signal handler's state: installed, and what a signal does now."""

    installed = False
    mode = "exit"  # "exit": nothing written yet; "defer": note it; "ignore": already stopping
    pending: int | None = None
    research = False  # a research command (run, run-once, quickstart, task start) is running
    terminals: dict[int, bool] = {}  # noqa: RUF012 (one shared record per process)


def exit_code(signum: int) -> int:
    """The exit status after stopping for ``signum``: 128 + its number, as shells report it."""
    return 128 + signum


def release_terminal() -> None:
    """After SIGHUP: point stdout and stderr away from a terminal that is gone.

    A stream that went to the terminal, or that can no longer be written, is replaced by
    /dev/null, so the cleanup and the final messages never fail with EIO or EPIPE. Streams
    that go to files or live pipes keep working.
    """
    for fd in (1, 2):
        if _Guard.terminals.get(fd) or not _writable(fd):
            silence(fd)


def silence(fd: int) -> None:
    """Make writes to ``fd`` succeed and go nowhere (after the terminal or the pipe is lost)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(null, fd)
    except OSError:
        pass  # nothing better to do: the stream stays as it is
    finally:
        os.close(null)


def _writable(fd: int) -> bool:
    try:
        os.write(fd, b"")
    except OSError:
        return False
    return True


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _Guard.mode == "ignore":
        return
    if _Guard.mode == "defer":
        if _Guard.pending is None:
            _Guard.pending = signum
        return
    if signum == signal.SIGHUP:
        release_terminal()
    when = " before research started" if _Guard.research else ""
    line = f"interrupted ({signal.Signals(signum).name}){when}; nothing was changed\n"
    with contextlib.suppress(OSError):
        os.write(2, line.encode())
    os._exit(exit_code(signum))  # nothing to clean up: nothing was written


_RESEARCH_COMMANDS = (["run"], ["run-once"], ["quickstart"], ["task", "start"])


def install_signal_guard() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP from now on (see the module docstring)."""
    if _Guard.installed:
        return
    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    if words[:1] == ["autoresearch"]:  # `neurolink autoresearch run ...`
        words = words[1:]
    _Guard.research = any(words[: len(c)] == c for c in _RESEARCH_COMMANDS)
    _Guard.terminals = {fd: _isatty(fd) for fd in (1, 2)}
    for signum in GUARDED_SIGNALS:
        signal.signal(signum, _on_signal)
    _Guard.installed = True


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def defer_signals() -> None:
    """The command starts to write: from now on a signal is noted, and acted on later."""
    if _Guard.installed and _Guard.mode == "exit":
        _Guard.mode = "defer"


def take_pending_signal() -> int | None:
    """The signal noted since :func:`defer_signals`, if any (and forget it)."""
    signum, _Guard.pending = _Guard.pending, None
    return signum


def restore_signal_guard(*, stopping: bool) -> None:
    """Take the signals back after ``_interruptible``'s own handlers are gone.

    ``stopping``: the command is already stopping for a signal, so further ones are ignored
    (a second Ctrl-C during the cleanup is harmless); otherwise they are noted as before.
    Without the guard (the commands called in-process), a stopping command ignores them.
    """
    if stopping:
        # SIG_IGN rather than a Python handler: Python puts its own handlers back to the
        # default while it shuts down, and a late Ctrl-C would then kill the exiting process.
        for signum in GUARDED_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        if _Guard.installed:
            _Guard.mode = "ignore"
        return
    if not _Guard.installed:
        return
    _Guard.mode = "defer"
    for signum in GUARDED_SIGNALS:
        signal.signal(signum, _on_signal)


def _started_as_cli() -> bool:
    """Whether the running program is this CLI (the console scripts or ``python -m``)."""
    program = sys.modules.get("__main__")
    spec = getattr(program, "__spec__", None)
    if spec is not None and spec.name == "autoresearch.__main__":
        return True
    script = os.path.basename(getattr(program, "__file__", None) or "")
    return script in ("autoresearch", "neurolink")


if _started_as_cli():  # before typer, rich and the app load: a signal during them is handled
    install_signal_guard()

import typer  # noqa: E402

from autoresearch.cli.app import app  # noqa: E402
from autoresearch.cli.errors import install_log_lines  # noqa: E402
from autoresearch.cli.tasks import REPO_COMMANDS, task_app  # noqa: E402

__all__ = ["app", "main", "neurolink_app", "neurolink_main"]

neurolink_app = typer.Typer(
    name="neurolink",
    help="NeuroLink-compatible entry point: `neurolink autoresearch <command>`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
neurolink_app.add_typer(app, name="autoresearch")
neurolink_app.add_typer(task_app, name="task")
app.add_typer(task_app, name="task")
for _name, _command in REPO_COMMANDS.items():
    app.command(_name)(_command)


def _take_debug(argv: list[str]) -> list[str]:
    """Accept ``--debug`` anywhere on the line (it is a global option)."""
    if "--debug" in argv:
        os.environ["AUTORESEARCH_DEBUG"] = "1"
        argv = [a for a in argv if a != "--debug"]
    return argv


def _launch(application: typer.Typer, argv: list[str], prog_name: str) -> None:
    """Run ``application`` under the signal guard, then act on a signal noted at the end."""
    install_signal_guard()
    install_log_lines()  # also for `neurolink task ...`, which bypasses the app's callback
    code: int | str | None
    try:
        application(args=_take_debug(argv), prog_name=prog_name)
        code = 0
    except SystemExit as exc:
        code = exc.code
    signum = take_pending_signal()
    if signum is not None and code in (0, None):
        name = signal.Signals(signum).name
        _say_quietly(f"interrupted ({name}): stopped once the command's changes were complete")
        code = exit_code(signum)
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        try:
            stream.flush()
        except (OSError, ValueError):
            silence(fd)  # a lost terminal or pipe: the exit status still tells the outcome
    sys.exit(code)


def _say_quietly(message: str) -> None:
    try:
        print(message, file=sys.stderr, flush=True)
    except OSError:
        silence(2)


def main() -> None:
    """The ``autoresearch`` console script."""
    _launch(app, sys.argv[1:], "autoresearch")


def neurolink_main() -> None:
    """The ``neurolink`` console script."""
    _launch(neurolink_app, sys.argv[1:], "neurolink")
