"""The task commands: ``task start|list|show|delete`` and ``start|pause|resume|stop REPO``.

``task_app`` is the ``task`` group (``autoresearch task start``, ``neurolink task start``);
:data:`REPO_COMMANDS` are the top-level commands that act on the task of one repository. All of
them only read or change the task store, except ``task start``, which runs the worker in the
foreground until Ctrl-C (or, with ``--until-idle``, until no task is active).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from autoresearch.cli import defer_signals
from autoresearch.cli.app import _out
from autoresearch.cli.args import FormatOpt, JsonOpt, RepoArg, _find_repo, _wants_json
from autoresearch.cli.errors import _run, _say
from autoresearch.errors import TaskError

if TYPE_CHECKING:  # the SDK loads when a command runs, so `--help` stays quick
    from autoresearch.cli.interrupt import Interruption
    from autoresearch.tasks import TaskInfo, TaskManager

__all__ = [
    "REPO_COMMANDS",
    "pause_repo",
    "resume_repo",
    "start_repo",
    "stop_repo",
    "task_app",
]

task_app = typer.Typer(
    name="task",
    help="Run saved research tasks (`task start`) and look at them (`task list`, `task show`).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="AUTORESEARCH_HOME",
        help="Folder of the task store (tasks.db). [default: ~/.autoresearch]",
        show_default=False,
    ),
]
TaskIdArg = Annotated[str, typer.Argument(help="The task id (see `task list`).")]


def _manager(home: Path | None) -> TaskManager:
    from autoresearch.facade import NeuroLink
    from autoresearch.tasks import STORE_FILE, TaskManager, default_home

    folder = home.expanduser() if home is not None else default_home()
    return TaskManager(folder / STORE_FILE, neurolink=NeuroLink())


def _call(home: Path | None, action: Callable[[TaskManager], Awaitable[Any]]) -> Any:
    manager = _manager(home)
    defer_signals()  # the store is written: a signal waits until the command is done

    async def main() -> Any:
        try:
            return await action(manager)
        finally:
            await manager.neurolink.aclose()

    return _run(main)


# -- task start / list / show / delete ----------------------------------------------------


def _print_events(manager: TaskManager) -> None:
    """One line per finished cycle, task end and error, prefixed with the task id."""
    from autoresearch.cli.render import fmt_metric
    from autoresearch.events import CycleEndEvent, ErrorEvent, StoppedEvent
    from autoresearch.tasks import current_task_id

    emitter = manager.neurolink.get_event_emitter()

    def line(text: str) -> None:
        typer.echo(f"[{current_task_id() or '-'}] {text}")

    emitter.on(
        CycleEndEvent,
        lambda e: line(
            f"cycle {e.cycle}: {e.status}  {fmt_metric(e.metric_value)}  {e.description}"
        ),
    )
    emitter.on(StoppedEvent, lambda e: line(f"stopped ({e.reason}): {e.message}"))
    emitter.on(ErrorEvent, lambda e: line(f"error: {e.message}"))


@task_app.command("start")
def task_start(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Run at most N tasks at once. [default: every active task]"),
    ] = None,
    poll: Annotated[
        float, typer.Option(min=0.01, help="Seconds between looks at the store.")
    ] = 1.0,
    lease: Annotated[
        float, typer.Option(min=0.1, help="Seconds a task's lease lasts unless renewed.")
    ] = 30.0,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit when no task is active.")
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Run the active tasks in the foreground until Ctrl-C (pause/stop them from elsewhere)."""
    from autoresearch.cli.interrupt import _interruptible

    manager = _manager(home)
    _print_events(manager)
    defer_signals()  # opening the store writes: `_interruptible` acts on a signal meanwhile

    async def main() -> tuple[None, Interruption | None]:
        try:
            return await _interruptible(
                lambda: manager.start_worker(
                    concurrency=concurrency,
                    poll_interval=poll,
                    stop_when_idle=until_idle,
                    lease_seconds=lease,
                )
            )
        finally:
            await manager.neurolink.aclose()

    _, interruption = _run(main)
    if interruption is not None and interruption.early:
        _say(f"interrupted ({interruption.name}) before the worker started; nothing was run")
        raise typer.Exit(interruption.exit_code)
    if interruption is not None:
        _say("stopped: interrupted cycles are recorded as crash; the tasks stay active")
        raise typer.Exit(interruption.exit_code)


def _usage_text(info: TaskInfo) -> str:
    tokens = info.usage.total_tokens
    return f"{tokens} tok, ${info.cost_usd:.2f}" if tokens or info.cost_usd else "-"


@task_app.command("list")
def task_list(
    as_json: JsonOpt = False, output_format: FormatOpt = None, home: HomeOpt = None
) -> None:
    """Every saved task: status, repository, cycles run, spend and why it stopped."""
    as_json = _wants_json(as_json, output_format)
    infos: list[TaskInfo] = _call(home, lambda m: m.list())
    if as_json:
        typer.echo(json.dumps([info.to_json_dict() for info in infos], indent=2))
        return
    if not infos:
        _out().print("no tasks yet: save one with `autoresearch start REPO`", markup=False)
        return
    from autoresearch.cli.render import listing

    console = _out()
    names = ("id", "status", "repository", "cycles", "spent", "reason")
    table = listing(
        [(name, "left") for name in names],
        flexible={"repository", "reason"},
        fit=console.is_terminal,
    )
    for info in infos:
        runs = f"{info.cycles}/{info.task.max_runs}" if info.task.max_runs else str(info.cycles)
        table.add_row(
            info.id, info.status, info.repo_path, runs, _usage_text(info), info.reason or ""
        )
    console.print(table)


@task_app.command("show")
def task_show(
    task_id: TaskIdArg,
    as_json: JsonOpt = False,
    output_format: FormatOpt = None,
    home: HomeOpt = None,
) -> None:
    """One task in full: its definition, status, lease, spend and cycle history."""
    from autoresearch.cli.render import fmt_metric

    as_json = _wants_json(as_json, output_format)

    async def load(manager: TaskManager) -> tuple[TaskInfo, list[Any]]:
        return await manager.get(task_id), await manager.cycles(task_id)

    info, cycles = _call(home, load)
    if as_json:
        data = {**info.to_json_dict(), "history": [c.to_json_dict() for c in cycles]}
        typer.echo(json.dumps(data, indent=2))
        return
    task, console = info.task, _out()
    rows = [
        ("task", task.id),
        ("status", info.status + (f"; {info.reason}" if info.reason else "")),
        ("repository", info.repo_path),
        ("cycles", f"{info.cycles}" + (f" of {task.max_runs}" if task.max_runs else "")),
        ("interval", f"{task.interval:g} s"),
        ("failures in a row", f"{info.failures} (ends at {task.max_consecutive_failures})"),
        ("spent", _usage_text(info)),
        ("worker", info.lease.owner if info.lease else "-"),
    ]
    if task.budget is not None:
        limits = [f"{task.budget.max_tokens} tokens" if task.budget.max_tokens else "", ""]
        if task.budget.max_usd:
            limits[1] = f"${task.budget.max_usd:g}"
        rows.append(("budget", ", ".join(x for x in limits if x) or "-"))
    for name, value in rows:
        console.print(f"{name + ':':<19}{value}", markup=False)
    if cycles:
        from autoresearch.cli.render import listing

        table = listing(
            [("cycle", "right"), ("status", "left"), ("metric", "right"), ("tokens", "right"),
             ("description", "left")],
            flexible={"description"},
            fit=console.is_terminal,
        )  # fmt: skip
        table.title, table.title_justify = "history", "left"
        for c in cycles:
            table.add_row(
                str(c.cycle), c.status, fmt_metric(c.metric), str(c.usage.total_tokens),
                c.description,
            )  # fmt: skip
        console.print(table)


@task_app.command("delete")
def task_delete(task_id: TaskIdArg, home: HomeOpt = None) -> None:
    """Delete a task and its history from the store (the repository is not touched)."""
    _call(home, lambda m: m.delete(task_id))
    _out().print(f"deleted task {task_id!r}", markup=False)


# -- start / pause / resume / stop REPO ---------------------------------------------------


def _task_id_for(repo: Path, taken: dict[str, str]) -> str:
    """A task id from the repository's folder name, made unique with a hash if needed."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", repo.name).strip("-._") or "repo"
    if taken.get(name, str(repo)) == str(repo):
        return name[:120]
    return f"{name[:120]}-{hashlib.sha256(str(repo).encode()).hexdigest()[:6]}"


def start_repo(  # noqa: PLR0917 (typer options)
    repo: RepoArg = None,
    interval: Annotated[
        float, typer.Option(min=0, help="Seconds between the end of a cycle and the next.")
    ] = 0.0,
    max_runs: Annotated[
        int | None, typer.Option(min=1, help="End the task after N cycles. [default: no limit]")
    ] = None,
    hint: Annotated[
        list[str] | None, typer.Option(help="A hint for the proposer (repeat to rotate hints).")
    ] = None,
    max_failures: Annotated[
        int, typer.Option(min=1, help="End the task after N failed cycles in a row.")
    ] = 3,
    budget_tokens: Annotated[
        int | None, typer.Option(min=1, help="End the task once it used N tokens.")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(min=0.0, help="End the task once it spent this many USD.")
    ] = None,
    task_id: Annotated[
        str | None, typer.Option("--id", help="The task id. [default: the folder name]")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Save a task for REPO from its .autoresearch/config.json; `task start` runs it."""
    root = _find_repo(repo)

    from autoresearch.workspace import Workspace

    async def save(manager: TaskManager) -> TaskInfo:
        config = await Workspace(root).read_config()
        existing = await manager.find(root)
        tasks = {info.id: info.repo_path for info in await manager.list()}
        definition: dict[str, Any] = {
            "id": task_id or (existing.id if existing else _task_id_for(root, tasks)),
            "type": "autoresearch",
            "autoresearch": config,
            "interval": interval,
            "max_runs": max_runs,
            "hints": hint or [],
            "max_consecutive_failures": max_failures,
        }
        if budget_tokens is not None or budget_usd is not None:
            definition["budget"] = {"max_tokens": budget_tokens, "max_usd": budget_usd}
        info = await manager.save(definition)
        if info.status in ("paused", "stopped", "failed", "budget-exhausted"):
            info = await manager.resume(info.id)
        return info

    info: TaskInfo = _call(home, save)
    if info.status == "completed":
        _say(
            f"error: task {info.id!r} already completed its {info.task.max_runs} cycles; "
            "pass a larger --max-runs to run more"
        )
        raise typer.Exit(1)
    _out().print(
        f"task {info.id!r} is {info.status} for {info.repo_path}; run `autoresearch task start` "
        "to execute it (pause, resume and stop it with `autoresearch pause|resume|stop REPO`)",
        markup=False,
    )


def _repo_action(
    repo: Path | None,
    home: Path | None,
    action: Callable[[TaskManager, str], Awaitable[TaskInfo]],
) -> TaskInfo:
    root = _find_repo(repo)

    async def act(manager: TaskManager) -> TaskInfo:
        info = await manager.find(root)
        if info is None:
            raise TaskError(f"no task for {root} (save one with `autoresearch start {root}`)")
        return await action(manager, info.id)

    result: TaskInfo = _call(home, act)
    return result


def pause_repo(repo: RepoArg = None, home: HomeOpt = None) -> None:
    """Pause REPO's task: the worker finishes the cycle in progress and runs no more."""
    info = _repo_action(repo, home, lambda m, i: m.pause(i))
    where = "" if repo is None else f" {repo}"
    _out().print(
        f"task {info.id!r} is paused; `autoresearch resume{where}` continues it", markup=False
    )


def resume_repo(repo: RepoArg = None, home: HomeOpt = None) -> None:
    """Resume REPO's paused (or stopped, failed, budget-exhausted) task."""
    info = _repo_action(repo, home, lambda m, i: m.resume(i))
    _out().print(
        f"task {info.id!r} is active; a running `task start` worker picks it up", markup=False
    )


def stop_repo(
    repo: RepoArg = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now", help="Also cancel the running cycle (killed, tree restored, recorded)."
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Stop REPO's task after its cycle in progress (with --now, cancel that cycle)."""
    info = _repo_action(repo, home, lambda m, i: m.stop(i, now=now))
    if info.status != "stopped":
        _out().print(f"task {info.id!r} is already {info.status}; nothing to stop", markup=False)
        return
    when = "its running cycle is cancelled" if now else "the running cycle finishes first"
    _out().print(f"task {info.id!r} is stopped ({when}, if one runs)", markup=False)


REPO_COMMANDS: dict[str, Callable[..., None]] = {
    "start": start_repo,
    "pause": pause_repo,
    "resume": resume_repo,
    "stop": stop_repo,
}
"""The top-level commands, by name, for ``app.command(name)(function)``."""
