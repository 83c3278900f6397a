"""The ``autoresearch`` commands: each builds SDK objects, calls them and renders the result."""

from __future__ import annotations

import enum
import errno
import json
import logging
import math
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import anyio
import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from autoresearch.cli import (
    GUARDED_SIGNALS,
    defer_signals,
    exit_code,
    release_terminal,
    restore_signal_guard,
    silence,
    take_pending_signal,
)
from autoresearch.errors import AutoResearchError, ConfigError

if TYPE_CHECKING:  # the SDK loads when a command runs, so `autoresearch --help` stays quick
    from autoresearch.cli.live import PlainView
    from autoresearch.config import ResearchConfig
    from autoresearch.worker import ResearchWorker
    from autoresearch.workspace import ResearchState, Workspace

__all__ = ["app"]

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


app = typer.Typer(
    name="autoresearch",
    cls=_OneLineErrors,
    help=(
        "Let an AI agent do experimental research on a git repository: each cycle proposes "
        "a change, commits it on autoresearch/<tag>, runs the experiment and keeps the commit "
        "only if the metric improved."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Direction(enum.StrEnum):
    """Which way the metric improves."""

    LOWER = "lower"
    HIGHER = "higher"


class Sandbox(enum.StrEnum):
    """Where experiments run."""

    NONE = "none"
    BWRAP = "bwrap"


class MemoryUnit(enum.StrEnum):
    """The unit of the number the memory pattern captures."""

    MB = "mb"
    GB = "gb"


_options = {"debug": False}


def _debug() -> bool:
    return _options["debug"]


def _out() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 140  # pipes and files: room for the description column
    return console


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


@app.callback()
def _main(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show tracebacks for errors.", envvar="AUTORESEARCH_DEBUG"),
    ] = False,
) -> None:
    _options["debug"] = debug
    install_log_lines()


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


RepoArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="REPO",
        help="The git repository (or a folder inside it). "
        "[default: the repository of the current directory]",
        show_default=False,
    ),
]


def _find_repo(repo: Path | None) -> Path:
    """The root of the git repository that holds REPO (default: the current directory).

    As git does, a subdirectory means its repository. A REPO outside any repository is
    returned as given, so that the command says what is wrong with it; no REPO outside one
    is a usage error.
    """
    import pygit2  # here, not at the top: `autoresearch --help` stays quick

    try:
        start = Path.cwd() if repo is None else repo.expanduser()
    except FileNotFoundError:
        _usage_error("the current directory no longer exists; pass REPO")
    try:
        found = pygit2.discover_repository(
            str(start), False, os.environ.get("GIT_CEILING_DIRECTORIES", "")
        )
        workdir = pygit2.Repository(found).workdir if found is not None else None
    except (pygit2.GitError, OSError, ValueError):
        workdir = None  # unreadable: the command reports on REPO itself
    if workdir:
        return Path(workdir).resolve()
    if repo is None:
        _usage_error("not inside a git repository; pass REPO (the repository to research)")
    return start.resolve()


def _key_values(items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--provider-option")
        pairs[key.strip()] = value.strip()
    return pairs


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@app.command()
def init(
    target: Annotated[
        list[str],
        typer.Option(
            help="Files the agent may edit (comma-separated, repeatable).", show_default=False
        ),
    ],
    run_command: Annotated[
        str, typer.Option(help="Shell command that runs one experiment.", show_default=False)
    ],
    metric_name: Annotated[str, typer.Option(help="Name of the metric (a results.tsv column).")],
    metric_pattern: Annotated[
        str | None,
        typer.Option(
            help="Regex with one capture group around the number; last match wins. "
            "[default: reads NAME: value or NAME=value at a line start, exponents included]"
        ),
    ] = None,
    metric_direction: Annotated[
        Direction, typer.Option(help="Whether lower or higher is better.")
    ] = Direction.LOWER,
    tag: Annotated[
        str | None,
        typer.Option(
            help="Run tag; the branch is autoresearch/<tag>. [default: today, like nov25]"
        ),
    ] = None,
    immutable: Annotated[
        list[str] | None,
        typer.Option(help="Files the agent may read but not edit (comma-separated, repeatable)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Time limit per experiment, in seconds.")] = 600.0,
    program: Annotated[
        str | None, typer.Option(help="The research program file. [default: program.md if present]")
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Who proposes changes. [default: local, offline]")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name for the provider.")] = None,
    memory_pattern: Annotated[
        str | None,
        typer.Option(help="Regex reading peak memory from the output. [default: sampled RSS]"),
    ] = None,
    memory_unit: Annotated[
        MemoryUnit, typer.Option(help="Unit of the memory pattern.")
    ] = MemoryUnit.GB,
    validate_command: Annotated[
        str | None, typer.Option(help="Command that must pass before a change is run.")
    ] = None,
    min_improvement: Annotated[
        float, typer.Option(help="Keep only changes that beat the best by more than this.")
    ] = 0.0,
    kill_grace: Annotated[
        float, typer.Option(help="Seconds between SIGTERM and SIGKILL on timeout.")
    ] = 5.0,
    base_url: Annotated[
        str | None, typer.Option(help="The provider's API address, when not the usual one.")
    ] = None,
    provider_option: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE provider setting, e.g. api_version=2024-10-21 (repeatable)."),
    ] = None,
    max_repairs: Annotated[
        int, typer.Option(min=0, max=10, help="Repair rounds when a change does not apply.")
    ] = 1,
    context_budget: Annotated[
        int, typer.Option(min=2000, help="Characters of context shown to the agent per call.")
    ] = 60_000,
    sandbox: Annotated[
        Sandbox, typer.Option(help="bwrap: no network, read-only filesystem but the repo.")
    ] = Sandbox.NONE,
    sandbox_path: Annotated[
        list[str] | None,
        typer.Option(help="Extra path the sandboxed run may write (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the offline proposer.")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing configuration (results are kept).")
    ] = False,
    repo: RepoArg = None,  # last, so that the required options before it need no default
) -> None:
    """Set up a repository: write .autoresearch/config.json and check out autoresearch/<tag>."""
    from autoresearch.facade import NeuroLink

    timeout_ms = _timeout_ms(timeout)
    kill_grace_ms = _kill_grace_ms(kill_grace)
    root = _find_repo(repo)
    here = repo.expanduser().resolve() if repo is not None else Path.cwd().resolve()
    if root != here:
        _say(f"note: using the repository at {root}; the paths given are relative to it")
    options: dict[str, Any] = {
        "repo_path": root,
        "mutable_paths": _split(target),
        "immutable_paths": _split(immutable),
        "run_command": run_command,
        "metric": {
            "name": metric_name,
            "direction": metric_direction.value,
            **({} if metric_pattern is None else {"pattern": metric_pattern}),
        },
        "timeout_ms": timeout_ms,
        "kill_grace_ms": kill_grace_ms,
        "min_improvement": min_improvement,
        "seed": seed,
        "max_repairs": max_repairs,
        "context_budget": context_budget,
        "sandbox": sandbox.value,
        "sandbox_paths": _split(sandbox_path),
    }
    optional = {
        "tag": tag,
        "program_path": program,
        "provider": provider,
        "model": model,
        "validate_command": validate_command,
        "base_url": base_url,
    }
    options.update({k: v for k, v in optional.items() if v is not None})
    if memory_pattern is not None:
        options["memory"] = {"pattern": memory_pattern, "unit": memory_unit.value}
    if provider_option:
        options["provider_options"] = _key_values(provider_option)

    notes: list[str] = []

    async def main() -> ResearchWorker:
        neurolink = NeuroLink()
        neurolink.get_event_emitter().on("autoresearch:notice", lambda e: notes.append(e.message))
        worker = await neurolink.init_research(force=force, **options)
        await worker.aclose()
        return worker

    defer_signals()  # from here on init writes: a signal waits until it is done
    worker = _run(main)
    config = worker.config
    where = "" if repo is None else f" {repo}"
    _out().print(
        f"Initialised {config.repo_path} on branch {config.branch}: {config.metric.name} "
        f"({config.metric.direction} is better), timeout {config.timeout_ms / 1000:g} s, "
        f"proposer {config.provider or 'local'}.\n"
        f"Next: autoresearch run-once{where}   (or: autoresearch run{where})",
        markup=False,
    )
    for note in notes:
        _out().print(f"note: {note}", markup=False)


def _timeout_ms(seconds: float) -> int:
    """``--timeout`` in milliseconds; a positive value under 1 ms counts as 1 ms."""
    if not math.isfinite(seconds) or seconds <= 0:
        _usage_error(f"--timeout must be a positive number of seconds, got {seconds:g}")
    return max(1, round(seconds * 1000))


def _kill_grace_ms(seconds: float) -> int:
    """``--kill-grace`` in milliseconds (0 allowed: SIGKILL right after SIGTERM)."""
    if not math.isfinite(seconds) or seconds < 0:
        _usage_error(f"--kill-grace must be a number of seconds >= 0, got {seconds:g}")
    return round(seconds * 1000)


def _view(worker: ResearchWorker, quiet: bool) -> PlainView:
    from autoresearch.cli.live import LiveView, PlainView

    console = _out()
    if quiet or not console.is_terminal:
        return PlainView(console, worker.config)
    return LiveView(console, worker.config)


def _research(
    repo: Path | None, quiet: bool, body: Callable[[ResearchWorker], Awaitable[T]]
) -> T | None:
    """Load the worker, attach the view, run ``body`` interruptibly.

    A signal exits with 128 + its number (130 for Ctrl-C) once the cleanup is done.
    """
    from autoresearch.events import CycleEndEvent, StoppedEvent
    from autoresearch.facade import NeuroLink

    root = _find_repo(repo)
    neurolink = NeuroLink()
    stopped: list[StoppedEvent] = []
    ended: list[CycleEndEvent] = []

    async def main() -> tuple[T | None, Interruption | None]:
        worker = await neurolink.load_research_worker(root)
        emitter = neurolink.get_event_emitter()
        view = _view(worker, quiet)
        view.attach(emitter)  # before preparing: recovery's notes are shown too
        emitter.on(StoppedEvent, stopped.append)
        emitter.on(CycleEndEvent, ended.append)
        defer_signals()  # the setup writes (lock, branch, recovery): a signal waits for it
        try:
            await worker.prepare()
        except BaseException:
            view.detach(emitter)
            raise
        try:
            with view:
                return await _interruptible(lambda: body(worker))
        finally:
            view.detach(emitter)
            with anyio.CancelScope(shield=True):
                await worker.aclose()

    value, interruption = _run(main)
    if interruption is not None and interruption.early:
        _say(f"interrupted ({interruption.name}) before research started; no cycle was run")
        raise typer.Exit(interruption.exit_code)
    if interruption is not None:
        status = ended[-1].status if ended else "crash"
        _say(f"stopped: the interrupted cycle is recorded as {status}")
        raise typer.Exit(interruption.exit_code)
    if stopped and stopped[-1].reason == "error":
        _say(f"error: stopped: {stopped[-1].message}")
        raise typer.Exit(1)
    return value


QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Plain one-line-per-cycle output, no live view.")
]
HintOpt = Annotated[
    str | None, typer.Option(help="A hint for the proposer, e.g. 'try a larger batch'.")
]


@app.command("run-once")
def run_once(repo: RepoArg = None, hint: HintOpt = None, quiet: QuietOpt = False) -> None:
    """Run one full cycle: propose, commit, run, evaluate, keep or revert."""
    from autoresearch.cli.render import fmt_metric

    result = _research(repo, quiet, lambda worker: worker.run_experiment_cycle(hint))
    if result is not None and (quiet or not _out().is_terminal):
        return  # the plain view already printed the cycle's line
    if result is not None:
        _out().print(
            f"status: {result.status}  metric: {fmt_metric(result.metric_value)}", markup=False
        )


@app.command()
def run(
    repo: RepoArg = None,
    max_runs: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many cycles. [default: no limit]")
    ] = None,
    hint: HintOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run cycles until --max-runs, Ctrl-C or a stop; Ctrl-C restores the best commit."""
    results = _research(repo, quiet, lambda worker: worker.run(max_cycles=max_runs, hint=hint))
    if results:
        kept = sum(r.status == "keep" for r in results)
        _say(f"done: {len(results)} cycles, {kept} kept")


def _load(repo: Path | None) -> tuple[Workspace, ResearchConfig]:
    from autoresearch.workspace import Workspace

    workspace = Workspace(_find_repo(repo))
    return workspace, _run(workspace.read_config)


def _in_progress(state: ResearchState | None) -> bool:
    """Whether state.json says a cycle is under way (or was, when its process died)."""
    return state is not None and (state.current_cycle is not None or state.phase != "idle")


async def _status_now(workspace: Workspace) -> tuple[ResearchState | None, bool, int | None]:
    """state.json, and whether a process holds the writer lock (and its pid), in agreement."""
    state = await workspace.read_state()
    held, pid = await workspace.probe_lock()
    if not held and _in_progress(state):  # it may have finished between the two looks
        state = await workspace.read_state()
        held, pid = await workspace.probe_lock()
    return state, held, pid


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


@app.command()
def status(repo: RepoArg = None, as_json: JsonOpt = False) -> None:
    """Where the research stands: phase, running or interrupted, cycles, baseline → best."""
    from autoresearch.cli.render import status_table

    workspace, config = _load(repo)
    state, running, pid = _run(lambda: _status_now(workspace))
    if as_json:
        data = state.to_json_dict() if state else {}
        interrupted = not running and _in_progress(state)
        data.update(running=running, pid=pid, interrupted=interrupted)
        typer.echo(json.dumps(data, indent=2))
        return
    if state is None:
        holder = f"; running (pid {pid})" if running and pid else "; running" if running else ""
        _out().print(
            f"{workspace.repo_path}: initialised, no cycle run yet (branch {config.branch})"
            f"{holder}",
            markup=False,
        )
        return
    _out().print(
        status_table(state, config.metric.name, config.metric.direction, running=running, pid=pid)
    )


@app.command()
def results(
    repo: RepoArg = None,
    as_json: JsonOpt = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Show only the last N cycles.")] = None,
) -> None:
    """The results table: every cycle's commit, metric, delta, memory, status and description."""
    from autoresearch.cli.render import fmt_metric, percent_change, results_table

    workspace, config = _load(repo)

    async def main() -> Any:
        return await workspace.load_runs(config.metric.name, repair=False)

    records = _run(main)
    if as_json:
        shown = records[-limit:] if limit else records
        typer.echo(json.dumps([r.to_json_dict() for r in shown], indent=2))
        return
    if not records:
        _out().print("no results yet: run `autoresearch run-once` first", markup=False)
        return
    _out().print(results_table(records, config.metric.name, config.metric.direction, limit))
    kept = [r for r in records if r.status == "keep"]
    baseline = next((r.metric for r in records if r.baseline and r.metric is not None), None)
    best = kept[-1].metric if kept else None
    change = percent_change(baseline, best)
    _out().print(
        f"{len(records)} cycle{'s' if len(records) != 1 else ''}, {len(kept)} kept; "
        f"baseline {fmt_metric(baseline)} → best "
        f"{fmt_metric(best)} {change}",
        markup=False,
    )


class _ShowCommand(TyperCommand):
    """``show [REPO] CYCLE``: both arguments are optional to click; the usage says the truth."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # ctx: the click context
        return ["[OPTIONS]", "[REPO] CYCLE"]


@app.command(cls=_ShowCommand)
def show(
    repo: RepoArg = None,
    cycle: Annotated[
        int | None,
        typer.Argument(
            metavar="CYCLE",
            help="The cycle number (see `results`). Given alone, the one argument is CYCLE.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """One cycle in full: description, status, metric, the change's diff and the log's tail."""
    from autoresearch.cli.render import fmt_metric

    if cycle is None:  # `show 3`: the single argument is the cycle, in the current repository
        given = "" if repo is None else str(repo)
        if not given.isdigit():
            _usage_error(
                "missing CYCLE (show [REPO] CYCLE)"
                if repo is None
                else f"CYCLE must be a cycle number, got {given!r} (show [REPO] CYCLE)"
            )
        repo, cycle = None, int(given)
    workspace, config = _load(repo)
    from autoresearch.gitrepo import GitRepo

    async def main() -> tuple[Any, str, str | None]:
        records = await workspace.load_runs(config.metric.name, repair=False)
        record = next((r for r in records if r.cycle == cycle), None)
        if record is None:
            last = records[-1].cycle if records else 0
            raise ConfigError(
                f"cycle: there is no cycle {cycle} (this repository has cycles 1 to {last})"
                if last
                else f"cycle: there is no cycle {cycle} (no cycle has run yet)",
                field="cycle",
            )
        diff = ""
        if not record.baseline and record.commit != record.parent_commit:
            git = await GitRepo.open(workspace.repo_path)
            diff = await git.diff(record.commit)
        tail = await workspace.read_log_tail(cycle, 3000)
        return record, diff, tail

    record, diff, tail = _run(main)
    console = _out()
    console.print(f"cycle {record.cycle}: {record.status}", style="bold", markup=False)
    console.print(f"description: {record.description}", markup=False)
    console.print(f"{config.metric.name}: {fmt_metric(record.metric)}", markup=False)
    console.print(f"commit: {record.commit}", markup=False)
    if record.baseline:
        console.print("(the baseline: the unmodified code)", markup=False)
    if diff:
        console.rule("diff")
        console.print(diff, markup=False, highlight=False, soft_wrap=True)
    if tail:
        console.rule("log (tail)")
        console.print(tail, markup=False, highlight=False, soft_wrap=True)


@app.command()
def reset(
    repo: RepoArg = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Archive the session (config, results, logs, candidates' refs) to start afresh."""
    from autoresearch.facade import NeuroLink
    from autoresearch.workspace import Workspace

    workspace = Workspace(_find_repo(repo))
    if not workspace.config_path.exists():
        _out().print(f"nothing to reset: {workspace.repo_path} has no session", markup=False)
        return
    _run(workspace.check_unlocked)  # never move what a running worker is writing
    if not yes:
        if not sys.stdin.isatty() and not os.environ.get("AUTORESEARCH_ASSUME_TTY"):
            _say("error: refusing to reset without --yes (stdin is not a terminal)")
            raise typer.Exit(2)
        typer.confirm(
            f"Archive the session in {workspace.dir} (config, state, results and logs) and "
            "start afresh? Nothing is deleted",
            abort=True,
        )
    defer_signals()  # archiving: a signal waits until it is done
    done = _run(lambda: NeuroLink().reset_research(workspace.repo_path))
    where = workspace.relative(done.folder) if done.folder else "nothing to archive"
    refs = f"; candidates' refs under {done.refs}" if done.refs else ""
    _out().print(
        f"archived the session: files in {where}{refs}. The branch autoresearch/{done.tag} "
        "is kept; the next `init` starts a new session on it.",
        markup=False,
    )


@app.command()
def quickstart(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Where to create the example repository. [default: ./autoresearch-quickstart]",
            show_default=False,
        ),
    ] = None,
    cycles: Annotated[int, typer.Option(min=1, help="How many cycles to run.")] = 12,
    quiet: QuietOpt = False,
) -> None:
    """Copy the example into a new git repo at DIRECTORY, initialise it, run an offline session."""
    from autoresearch.cli.quickstart import create_quickstart

    defer_signals()  # it writes from the start; `run` acts on a signal that came meanwhile
    repo = _run(lambda: create_quickstart(directory))
    _out().print(f"created the example repository at {repo}", markup=False)
    init(
        repo=repo,
        target=["train.py"],
        run_command=f"{_python()} train.py",
        metric_name="val_bpb",
        metric_pattern=r"^val_bpb:\s+([\d.]+)",
        immutable=["program.md"],
        timeout=60.0,
        tag="quickstart",
        kill_grace=2.0,
    )
    run(repo, max_runs=cycles, quiet=quiet)
    results(repo)


def _python() -> str:
    import shlex

    return shlex.quote(sys.executable)


# -- the picture: plot and report ------------------------------------------------------------

OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="The file to write.")]


@app.command()
def plot(repo: RepoArg = None, output: OutputOpt = Path("progress.png")) -> None:
    """Draw the metric per cycle (.png, .svg or .pdf): kept changes labelled, best marked."""
    from autoresearch.plot import load_progress, render_plot, summarize

    root = _find_repo(repo)
    progress = _run(lambda: load_progress(root))
    defer_signals()  # writing the chart: a signal waits until it is written
    with _errors():
        written = render_plot(
            progress.records, progress.metric, progress.direction, output, branch=progress.branch
        )
    summary = summarize(progress.records)
    _out().print(f"wrote {written} ({summary.cycles} cycles, {summary.kept} kept)", markup=False)


@app.command()
def report(repo: RepoArg = None, output: OutputOpt = Path("report.html")) -> None:
    """Write one self-contained HTML report: summary, chart, results, each kept change's diff."""
    from autoresearch.plot import INSTALL_HINT, matplotlib_available, summarize
    from autoresearch.report import write_report

    root = _find_repo(repo)
    defer_signals()  # writing the report: a signal waits until it is written
    written = _run(lambda: write_report(root, output))
    summary = summarize(written.progress.records)
    _out().print(f"wrote {output} ({summary.cycles} cycles, {summary.kept} kept)", markup=False)
    if not matplotlib_available():
        _say(f"note: the report has no chart because matplotlib is not installed: {INSTALL_HINT}")
