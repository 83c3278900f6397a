"""The ``autoresearch`` commands: each builds SDK objects, calls them and renders the result."""

from __future__ import annotations

import enum
import json
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
import typer
from rich.console import Console
from typer.core import TyperCommand

from autoresearch.cli import defer_signals
from autoresearch.cli.args import (
    BackendOpt,
    FormatOpt,
    GpusOpt,
    GpusPerSlotOpt,
    JsonOpt,
    RayAddressOpt,
    RepoArg,
    SlotsOpt,
    _backend_options,
    _find_repo,
    _key_values,
    _kill_grace_ms,
    _slot_options,
    _split,
    _timeout_ms,
    _wants_json,
)
from autoresearch.cli.errors import (
    _errors,
    _OneLineErrors,
    _options,
    _run,
    _say,
    _usage_error,
    install_log_lines,
)
from autoresearch.cli.params import (
    ExcludeParamOpt,
    ParamOpt,
    SamplerOpt,
    param_specs,
    space_json,
    space_summary,
    space_table,
)

if TYPE_CHECKING:  # the SDK loads when a command runs, so `autoresearch --help` stays quick
    from autoresearch.cli.interrupt import Interruption
    from autoresearch.cli.live import PlainView
    from autoresearch.config import ResearchConfig
    from autoresearch.params import SearchSpace
    from autoresearch.worker import ResearchWorker
    from autoresearch.workspace import ResearchState, Workspace

__all__ = ["app"]

T = TypeVar("T")

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


class ProposerChoice(enum.StrEnum):
    """Who invents the changes."""

    LOCAL = "local"
    LLM = "llm"
    AGENT = "agent"
    HYBRID = "hybrid"


class MemoryUnit(enum.StrEnum):
    """The unit of the number the memory pattern captures."""

    MB = "mb"
    GB = "gb"


def _out() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 140  # pipes and files: room for the description column
    return console


@app.callback()
def _main(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show tracebacks for errors.", envvar="AUTORESEARCH_DEBUG"),
    ] = False,
) -> None:
    _options["debug"] = debug
    install_log_lines()


@app.command()
def init(
    target: Annotated[
        list[str],
        typer.Option(
            "--target",
            "-t",
            help="Files the agent may edit (comma-separated, repeatable).",
            show_default=False,
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
    proposer: Annotated[
        ProposerChoice | None,
        typer.Option(
            help="local (offline tuner), llm (a model provider), agent (a coding-agent CLI) or "
            "hybrid (the tuner for numbers, a model for code). "
            "[default: agent with --agent-command, llm with --provider, else local]"
        ),
    ] = None,
    agent_command: Annotated[
        str | None,
        typer.Option(
            help="Shell command that runs your coding agent in the checkout; the prompt is in "
            "the file $AUTORESEARCH_PROMPT_FILE."
        ),
    ] = None,
    agent_timeout: Annotated[
        float, typer.Option(help="Time limit per agent run, in seconds.")
    ] = 1800.0,
    provider: Annotated[
        str | None, typer.Option(help="The model provider of the llm proposer.")
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
    sampler: SamplerOpt = None,
    param: ParamOpt = None,
    exclude_param: ExcludeParamOpt = None,
    slots: SlotsOpt = None,
    gpus: GpusOpt = None,
    gpus_per_slot: GpusPerSlotOpt = None,
    backend: BackendOpt = None,
    ray_address: RayAddressOpt = None,
    repeats: Annotated[
        int, typer.Option(min=1, max=100, help="Runs per candidate; decisions use the mean.")
    ] = 1,
    baseline_repeats: Annotated[
        int, typer.Option(min=1, max=100, help="Runs of the baseline (estimates the noise).")
    ] = 1,
    confirm: Annotated[
        int, typer.Option(min=0, max=100, help="Extra runs an apparent winner needs to be kept.")
    ] = 0,
    confidence: Annotated[
        float, typer.Option(help="How sure a keep must be (one-sided t-test), e.g. 0.95.")
    ] = 0.95,
    progress_pattern: Annotated[
        str | None,
        typer.Option(help="Regex reading (step, value) from the output: early abort of bad runs."),
    ] = None,
    progress_min_fraction: Annotated[
        float, typer.Option(help="Early abort only after this fraction of the incumbent's steps.")
    ] = 0.3,
    progress_margin: Annotated[
        float, typer.Option(help="Early abort when worse than the incumbent by this fraction.")
    ] = 0.05,
    gpu_hour_usd: Annotated[
        float | None, typer.Option(help="Price of a GPU-hour: run time counts in task budgets.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing configuration (results are kept).")
    ] = False,
    repo: RepoArg = None,  # last, so that the required options before it need no default
) -> None:
    """Set up a repository: write .autoresearch/config.json and check out autoresearch/<tag>."""
    from autoresearch.facade import NeuroLink

    timeout_ms = _timeout_ms(timeout)
    agent_timeout_ms = _timeout_ms(agent_timeout, "--agent-timeout")
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
        "agent_timeout_ms": agent_timeout_ms,
        "kill_grace_ms": kill_grace_ms,
        "min_improvement": min_improvement,
        "seed": seed,
        "max_repairs": max_repairs,
        "context_budget": context_budget,
        "sandbox": sandbox.value,
        "sandbox_paths": _split(sandbox_path),
        **_slot_options(slots, gpus, gpus_per_slot),
        **_backend_options(backend, ray_address),
        "repeats": repeats,
        "baseline_repeats": baseline_repeats,
        "confirm": confirm,
        "confidence": confidence,
    }
    if progress_pattern is not None:
        options["progress"] = {
            "pattern": progress_pattern,
            "min_fraction": progress_min_fraction,
            "margin": progress_margin,
        }
    if gpu_hour_usd is not None:
        options["gpu_hour_usd"] = gpu_hour_usd
    optional = {
        "tag": tag,
        "program_path": program,
        "proposer": proposer.value if proposer is not None else None,
        "agent_command": agent_command,
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
    if sampler is not None:
        options["sampler"] = sampler.value
    specs = param_specs(param, exclude_param)
    if specs:
        options["params"] = specs

    notes: list[str] = []
    spaces: list[SearchSpace] = []

    async def main() -> ResearchWorker:
        neurolink = NeuroLink()
        neurolink.get_event_emitter().on("autoresearch:notice", lambda e: notes.append(e.message))
        worker = await neurolink.init_research(force=force, **options)
        await worker.aclose()
        if worker.config.tunes_params:
            spaces.append(await neurolink.search_space(worker.config))
        return worker

    defer_signals()  # from here on init writes: a signal waits until it is done
    worker = _run(main)
    config = worker.config
    where = "" if repo is None else f" {shlex.quote(str(repo))}"
    _out().print(
        f"Initialised {config.repo_path} on branch {config.branch}: {config.metric.name} "
        f"({config.metric.direction} is better), timeout {config.timeout_ms / 1000:g} s, "
        f"proposer {_proposer_name(config)}.\n"
        f"Next: autoresearch run-once{where}   (or: autoresearch run{where})",
        markup=False,
        soft_wrap=False,
    )
    for note in notes:
        _out().print(f"note: {note}", markup=False, soft_wrap=False)
    for space in spaces:
        _out().print(space_summary(space), markup=False, soft_wrap=False)
        for note in space.notes:
            _out().print(f"note: {note}", markup=False, soft_wrap=False)


@app.command()
def params(
    repo: RepoArg = None,
    as_json: JsonOpt = False,
    target: Annotated[
        list[str] | None,
        typer.Option(help="Mutable files, for a repository not initialised yet (repeatable)."),
    ] = None,
    run_command: Annotated[
        str | None, typer.Option(help="The run command, for a repository not initialised yet.")
    ] = None,
    param: ParamOpt = None,
    exclude_param: ExcludeParamOpt = None,
) -> None:
    """The offline proposer's search space: each parameter, where it lives, its range and why.

    Before init, give --target and --run-command; after init the saved settings are used
    (--param and --exclude-param preview edits without saving them).
    """
    from autoresearch.facade import NeuroLink

    root = _find_repo(repo)
    specs = param_specs(param, exclude_param)
    initialised = (root / ".autoresearch" / "config.json").exists()
    if not initialised and (not target or run_command is None):
        _usage_error(
            f"{root} is not initialised: pass --target FILE and --run-command CMD to preview "
            "its search space"
        )

    async def main() -> SearchSpace:
        neurolink = NeuroLink()
        if initialised:
            config = await neurolink.load_research_worker(root)
            base = config.config
            overrides: dict[str, Any] = {}
            if target:
                overrides["mutable_paths"] = _split(target)
            if run_command is not None:
                overrides["run_command"] = run_command
            if specs:
                overrides["params"] = [*base.params, *specs]
            await config.aclose()
            return await neurolink.search_space(base, **overrides)
        return await neurolink.search_space(
            repo_path=root,
            mutable_paths=_split(target),
            run_command=run_command,
            metric={"name": "metric"},
            params=specs,
        )

    space = _run(main)
    if as_json:
        typer.echo(space_json(space))
        return
    console = _out()
    console.print(space_table(space, console.width), soft_wrap=False)
    console.print(space_summary(space, listed=True), markup=False, soft_wrap=False)
    for note in space.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=False)


def _proposer_name(config: ResearchConfig) -> str:
    kind = config.proposer_kind
    if kind == "llm":
        return str(config.provider)
    if kind == "hybrid":
        return f"hybrid ({config.sampler} sampler, {config.provider})"
    return kind


def _view(worker: ResearchWorker, quiet: bool) -> PlainView:
    from autoresearch.cli.live import LiveView, PlainView

    console = _out()
    if quiet or not console.is_terminal:
        return PlainView(console, worker.config)
    return LiveView(console, worker.config)


def _research(
    repo: Path | None,
    quiet: bool,
    body: Callable[[ResearchWorker], Awaitable[T]],
    overrides: dict[str, Any] | None = None,
) -> T | None:
    """Load the worker, attach the view, run ``body`` interruptibly.

    A signal exits with 128 + its number (130 for Ctrl-C) once the cleanup is done.
    """
    from autoresearch.cli.interrupt import _interruptible
    from autoresearch.events import CycleEndEvent, StoppedEvent
    from autoresearch.facade import NeuroLink

    root = _find_repo(repo)
    neurolink = NeuroLink()
    stopped: list[StoppedEvent] = []
    ended: list[CycleEndEvent] = []

    async def main() -> tuple[T | None, Interruption | None]:
        worker = await neurolink.load_research_worker(root, **(overrides or {}))
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
        view.resume(worker.history, worker.state.best_metric if worker.state else None)
        try:
            with view:
                return await _interruptible(lambda: body(worker), on_signal=view.close)
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
    str | None,
    typer.Option(
        "--hint",
        "--description",
        help="A hint for the proposer, e.g. 'try a larger batch' (--description: NeuroLink's "
        "name for it).",
    ),
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
    slots: SlotsOpt = None,
    gpus: GpusOpt = None,
    gpus_per_slot: GpusPerSlotOpt = None,
    sampler: SamplerOpt = None,
    backend: BackendOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Run cycles until --max-runs, Ctrl-C or a stop; Ctrl-C restores the best commit.

    --slots, --gpus, --gpus-per-slot, --sampler, --backend and --ray-address replace the saved
    settings (and are saved).
    """
    overrides = _slot_options(slots, gpus, gpus_per_slot)
    saved_ray = None
    if ray_address is not None:
        _, saved = _load(repo)
        saved_ray = saved.ray.model_dump() if saved.ray is not None else None
    overrides.update(_backend_options(backend, ray_address, saved_ray))
    if sampler is not None:
        overrides["sampler"] = sampler.value
    results = _research(
        repo,
        quiet,
        lambda worker: worker.run(max_cycles=max_runs, hint=hint),
        overrides,
    )
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


@app.command()
def status(repo: RepoArg = None, as_json: JsonOpt = False, output_format: FormatOpt = None) -> None:
    """Where the research stands: phase, running or interrupted, cycles, baseline → best."""
    from autoresearch.cli.render import status_table
    from autoresearch.ledger import measured_facts

    as_json = _wants_json(as_json, output_format)
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
    records = _run(lambda: workspace.load_runs(config.metric.name, repair=False))
    for label, text in measured_facts(records, config.gpu_hour_usd):
        _out().print(f"{label:<16} {text}", markup=False)


@app.command()
def results(
    repo: RepoArg = None,
    as_json: JsonOpt = False,
    output_format: FormatOpt = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "--last", min=1, help="Show only the last N cycles."),
    ] = None,
) -> None:
    """The results table: every cycle's commit, metric, delta, memory, status and description."""
    from autoresearch.cli.render import fmt_metric, percent_change, results_table
    from autoresearch.ledger import summarize

    as_json = _wants_json(as_json, output_format)

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
    console = _out()
    table = results_table(
        records, config.metric.name, config.metric.direction, limit, fit=console.is_terminal
    )
    console.print(table)
    summary = summarize(records)
    change = percent_change(summary.baseline, summary.best)
    _out().print(
        f"{summary.cycles} cycle{'s' if summary.cycles != 1 else ''}, {summary.kept} kept; "
        f"baseline {fmt_metric(summary.baseline)} → best "
        f"{fmt_metric(summary.best)} {change}",
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
    from autoresearch.history import cycle_detail

    root, number = _find_repo(repo), cycle
    detail = _run(lambda: cycle_detail(root, number))
    record, diff, tail = detail.record, detail.diff, detail.log_tail
    console = _out()
    console.print(f"cycle {record.cycle}: {record.status}", style="bold", markup=False)
    console.print(f"description: {record.description}", markup=False)
    console.print(f"{detail.metric_name}: {fmt_metric(record.metric)}", markup=False)
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
