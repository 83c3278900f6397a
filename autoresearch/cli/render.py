"""How the CLI shows research: the status block, the results table, one-line cycle summaries."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

from rich import box
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from autoresearch.ledger import format_measured
from autoresearch.metrics import format_metric
from autoresearch.results import CycleResult, RunRecord
from autoresearch.workspace import ResearchState

__all__ = [
    "STATUS_STYLES",
    "cycle_line",
    "fmt_metric",
    "listing",
    "percent_change",
    "results_table",
    "status_table",
]

STATUS_STYLES = {
    "keep": "bold green",
    "discard": "dim",
    "crash": "red",
    "timeout": "yellow",
    "invalid": "magenta",
}


def fmt_metric(value: float | None) -> str:
    """A metric as the ledger writes it (:func:`~autoresearch.metrics.format_metric`), or ``-``.

    ``0.985000`` in the usual range, ``3.03e-06`` and ``1e+30`` outside it.
    """
    return "-" if value is None else format_metric(value)


def percent_change(baseline: float | None, best: float | None) -> str:
    """``-12.3%``: how far ``best`` moved from ``baseline``."""
    if baseline is None or best is None or baseline == 0:
        return ""
    return f"{(best - baseline) / abs(baseline) * 100:+.1f}%"


def status_table(
    state: ResearchState,
    metric: str,
    direction: Literal["lower", "higher"],
    *,
    running: bool | None = None,
    pid: int | None = None,
) -> Table:
    """The ``status`` command's key/value block.

    ``running`` (whether a process holds the repository's lock, ``pid`` being that process)
    adds a ``process`` row: ``running (pid N)``, ``not running``, or, when state.json shows a
    cycle in progress that no process is running, ``interrupted in <phase>; the next run
    recovers it``.
    """
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("branch", state.branch)
    table.add_row("phase", state.phase)
    if running:
        table.add_row("process", Text(f"running (pid {pid})" if pid else "running", "green"))
    elif running is not None and (state.current_cycle is not None or state.phase != "idle"):
        interrupted = f"interrupted in {state.phase}; the next run recovers it"
        table.add_row("process", Text(interrupted, style="yellow"))
    elif running is not None:
        table.add_row("process", "not running")
    table.add_row("cycles", f"{state.cycle_count} ({state.keep_count} kept)")
    table.add_row("metric", f"{metric} ({direction} is better)")
    change = percent_change(state.baseline_metric, state.best_metric)
    table.add_row(
        "baseline → best",
        f"{fmt_metric(state.baseline_metric)} → {fmt_metric(state.best_metric)}"
        + (f" ({change})" if change else ""),
    )
    table.add_row("best commit", (state.best_commit or "-")[:7])
    last = state.last_status or "-"
    table.add_row("last status", Text(last, style=STATUS_STYLES.get(last, "")))
    for entry in sorted(state.in_flight, key=lambda r: r.slot):
        table.add_row(f"slot {entry.slot}", f"cycle {entry.cycle}, {entry.phase}")
    return table


def listing(
    columns: Sequence[tuple[str, JustifyMethod]], *, flexible: Collection[str], fit: bool
) -> Table:
    """A borderless table of (header, justify) columns, as wide as its terminal allows.

    Columns not in ``flexible`` keep each value whole on one line; the flexible ones share
    the rest of the width. With ``fit`` (a terminal) their values are cut with ``…`` so that
    no row wraps; otherwise (a file, a pipe) they wrap, so that nothing is lost.
    """
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
        expand=fit,
    )
    for name, justify in columns:
        if name not in flexible:
            table.add_column(name, justify=justify, no_wrap=True)
        elif fit:
            table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis", ratio=1)
        else:
            table.add_column(name, justify=justify)  # wraps between words
    return table


def results_table(
    records: Sequence[RunRecord],
    metric: str,
    direction: Literal["lower", "higher"],
    limit: int | None = None,
    *,
    fit: bool = False,
) -> Table:
    """The ``results`` command's table; ``delta`` is against the best before each row.

    The description takes the rest of the width (see :func:`listing`); in a terminal it is
    cut with ``…``, and ``show`` prints it in full.
    """
    columns: list[tuple[str, JustifyMethod]] = [
        ("cycle", "right"),
        ("commit", "left"),
        (metric, "right"),
        ("Δ vs best", "right"),
        ("mem GB", "right"),
        ("status", "left"),
        ("description", "left"),
    ]
    table = listing(columns, flexible={"description"}, fit=fit)
    table.title, table.title_justify = f"{metric} ({direction} is better)", "left"
    best: float | None = None
    rows: list[tuple[RunRecord, str]] = []
    for record in records:
        delta = ""
        if record.metric is not None and best is not None and record.status in ("keep", "discard"):
            delta = f"{record.metric - best:+.6f}"
        rows.append((record, delta))
        if record.status == "keep" and record.metric is not None:
            best = record.metric
    shown = rows[-limit:] if limit else rows
    for record, delta in shown:
        style = "bold green" if record.status == "keep" else None
        table.add_row(
            str(record.cycle),
            record.commit[:7],
            format_measured(record),
            delta,
            "-" if record.memory_gb is None else f"{record.memory_gb:.1f}",
            Text(record.status, style=STATUS_STYLES.get(record.status, "")),
            record.description,
            style=style,
        )
    return table


def cycle_line(result: CycleResult, metric: str) -> str:
    """One plain line per cycle, for logs and pipes."""
    value = fmt_metric(result.metric_value)
    best = fmt_metric(result.best_metric)
    commit = (result.commit_hash or "")[:7]
    return (
        f"cycle {result.cycle:>3}  {result.status:<8} {metric}={value}  best={best}  "
        f"{commit}  {result.duration_ms / 1000:.1f}s  {result.description}"
    )
