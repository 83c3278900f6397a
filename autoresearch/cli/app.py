"""The ``autoresearch`` commands: each builds SDK objects, calls them and renders the result."""

from __future__ import annotations

import enum
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
import typer
from rich.console import Console
from typer.core import TyperGroup

from autoresearch.errors import AutoResearchError, ConfigError

if TYPE_CHECKING:  # the SDK loads when a command runs, so `autoresearch --help` stays quick
    from autoresearch.cli.live import PlainView
    from autoresearch.config import ResearchConfig
    from autoresearch.worker import ResearchWorker
    from autoresearch.workspace import Workspace

__all__ = ["app"]

T = TypeVar("T")
EXIT_INTERRUPTED = 130


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
    """One line on stderr, never wrapped or styled."""
    typer.echo(message, err=True)


@app.callback()
def _main(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show tracebacks for errors.", envvar="AUTORESEARCH_DEBUG"),
    ] = False,
) -> None:
    _options["debug"] = debug


@contextmanager
def _errors() -> Iterator[None]:
    """One line on stderr per failure: 2 for configuration mistakes, 1 for the rest."""
    try:
        yield
    except (typer.Exit, typer.TyperException, typer.Abort):
        raise
    except ConfigError as exc:
        if _debug():
            raise
        _say(f"error: {exc}")
        raise typer.Exit(2) from None
    except AutoResearchError as exc:
        if _debug():
            raise
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:
        if _debug():
            raise
        _say(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        raise typer.Exit(1) from None


def _run(func: Callable[[], Awaitable[T]]) -> T:
    with _errors():
        return anyio.run(func)


async def _interruptible(body: Callable[[], Awaitable[T]]) -> tuple[T | None, bool]:
    """Run ``body``; SIGINT/SIGTERM cancel it (its cleanup still runs). Returns (value, stopped)."""
    outcome: list[T] = []
    interrupted = False
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal interrupted
                async for signum in signals:
                    interrupted = True
                    name = signal.Signals(signum).name
                    _say(f"\n{name}: stopping: killing the experiment, restoring the best commit…")
                    group.cancel_scope.cancel()

            group.start_soon(watch)
            outcome.append(await body())
            group.cancel_scope.cancel()
    if interrupted:  # the cleanup is done; further Ctrl-C while exiting must not kill us
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    return (outcome[0] if outcome else None), interrupted


RepoArg = Annotated[
    Path, typer.Argument(help="The git repository to research.", show_default=False)
]


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
    repo: RepoArg,
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
        str, typer.Option(help="Regex with one capture group around the number; last match wins.")
    ],
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
) -> None:
    """Set up a repository: write .autoresearch/config.json and check out autoresearch/<tag>."""
    from autoresearch.facade import NeuroLink

    options: dict[str, Any] = {
        "repo_path": repo,
        "mutable_paths": _split(target),
        "immutable_paths": _split(immutable),
        "run_command": run_command,
        "metric": {
            "name": metric_name,
            "pattern": metric_pattern,
            "direction": metric_direction.value,
        },
        "timeout_ms": round(timeout * 1000),
        "kill_grace_ms": round(kill_grace * 1000),
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

    async def main() -> ResearchWorker:
        worker = await NeuroLink().init_research(force=force, **options)
        await worker.aclose()
        return worker

    worker = _run(main)
    config = worker.config
    _out().print(
        f"Initialised {config.repo_path} on branch {config.branch}: {config.metric.name} "
        f"({config.metric.direction} is better), timeout {config.timeout_ms / 1000:g} s, "
        f"proposer {config.provider or 'local'}.\n"
        f"Next: autoresearch run-once {repo}   (or: autoresearch run {repo})",
        markup=False,
    )


def _view(worker: ResearchWorker, quiet: bool) -> PlainView:
    from autoresearch.cli.live import LiveView, PlainView

    console = _out()
    if quiet or not console.is_terminal:
        return PlainView(console, worker.config)
    return LiveView(console, worker.config)


def _research(repo: Path, quiet: bool, body: Callable[[ResearchWorker], Awaitable[T]]) -> T | None:
    """Load the worker, attach the view, run ``body`` interruptibly; exit 130 when interrupted."""
    from autoresearch.events import StoppedEvent
    from autoresearch.facade import NeuroLink

    neurolink = NeuroLink()
    stopped: list[StoppedEvent] = []

    async def main() -> tuple[T | None, bool]:
        worker = await neurolink.load_research_worker(repo)
        await worker.prepare()
        emitter = neurolink.get_event_emitter()
        view = _view(worker, quiet)
        view.attach(emitter)
        emitter.on(StoppedEvent, stopped.append)
        try:
            with view:
                return await _interruptible(lambda: body(worker))
        finally:
            view.detach(emitter)
            with anyio.CancelScope(shield=True):
                await worker.aclose()

    value, interrupted = _run(main)
    if interrupted:
        _say("stopped: the interrupted cycle is recorded as crash")
        raise typer.Exit(EXIT_INTERRUPTED)
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
def run_once(repo: RepoArg, hint: HintOpt = None, quiet: QuietOpt = False) -> None:
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
    repo: RepoArg,
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


def _load(repo: Path) -> tuple[Workspace, ResearchConfig]:
    from autoresearch.workspace import Workspace

    workspace = Workspace(repo.expanduser().resolve())
    return workspace, _run(workspace.read_config)


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


@app.command()
def status(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """Where the research stands: phase, cycles, baseline → best."""
    from autoresearch.cli.render import status_table

    workspace, config = _load(repo)
    state = _run(workspace.read_state)
    if as_json:
        typer.echo(json.dumps(state.to_json_dict() if state else {}, indent=2))
        return
    if state is None:
        _out().print(
            f"{workspace.repo_path}: initialised, no cycle run yet (branch {config.branch})"
        )
        return
    _out().print(status_table(state, config.metric.name, config.metric.direction))


@app.command()
def results(
    repo: RepoArg,
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


@app.command()
def show(
    repo: RepoArg,
    cycle: Annotated[int, typer.Argument(help="The cycle number (see `results`).")],
) -> None:
    """One cycle in full: description, status, metric, the change's diff and the log's tail."""
    from autoresearch.cli.render import fmt_metric

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
    repo: RepoArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete .autoresearch/ (config, state, results, logs); the branch and commits stay."""
    from autoresearch.workspace import Workspace

    workspace = Workspace(repo.expanduser().resolve())
    if not workspace.dir.exists():
        _out().print(f"nothing to reset: {workspace.dir} does not exist", markup=False)
        return
    _run(workspace.check_unlocked)  # never delete what a running worker is writing
    if not yes:
        if not sys.stdin.isatty() and not os.environ.get("AUTORESEARCH_ASSUME_TTY"):
            _say("error: refusing to delete results without --yes (stdin is not a terminal)")
            raise typer.Exit(2)
        typer.confirm(
            f"Delete {workspace.dir} (config, state, results and logs)? "
            "The git branch and its commits are kept",
            abort=True,
        )
    _run(workspace.remove)
    _out().print(
        f"deleted {workspace.dir}; the autoresearch/* branches and refs/autoresearch/ "
        "commits are kept (delete them with git if you want)"
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

    repo = _run(lambda: create_quickstart(directory))
    _out().print(f"created the example repository at {repo}", markup=False)
    init(
        repo,
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
def plot(repo: RepoArg, output: OutputOpt = Path("progress.png")) -> None:
    """Draw the metric per cycle (.png, .svg or .pdf): kept changes labelled, best marked."""
    from autoresearch.plot import load_progress, render_plot, summarize

    progress = _run(lambda: load_progress(repo))
    with _errors():
        written = render_plot(
            progress.records, progress.metric, progress.direction, output, branch=progress.branch
        )
    summary = summarize(progress.records)
    _out().print(f"wrote {written} ({summary.cycles} cycles, {summary.kept} kept)", markup=False)


@app.command()
def report(repo: RepoArg, output: OutputOpt = Path("report.html")) -> None:
    """Write one self-contained HTML report: summary, chart, results, each kept change's diff."""
    from autoresearch.plot import INSTALL_HINT, matplotlib_available, summarize
    from autoresearch.report import write_report

    written = _run(lambda: write_report(repo, output))
    summary = summarize(written.progress.records)
    _out().print(f"wrote {output} ({summary.cycles} cycles, {summary.kept} kept)", markup=False)
    if not matplotlib_available():
        _say(f"note: the report has no chart because matplotlib is not installed: {INSTALL_HINT}")
