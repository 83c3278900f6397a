"""The research report: one self-contained HTML file to share what a run found.

:func:`render_report` writes what ``autoresearch report`` produces: a summary (branch, baseline
→ best, counts), the progress chart inlined as SVG, the full results table, and for every kept
change its description, metric delta and diff. The file needs no network: the styles are
inline, the chart is part of the page, and there is no script. Everything that comes from the
repository (descriptions, hints, diffs, paths) is HTML-escaped.

Without matplotlib the report is still written, with a note in place of the chart.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio

from autoresearch.errors import GitError
from autoresearch.gitrepo import GitRepo
from autoresearch.ledger import format_measured, measured_facts
from autoresearch.metrics import format_metric
from autoresearch.plot import (
    INSTALL_HINT,
    MissingMatplotlibError,
    PlotError,
    Progress,
    Summary,
    load_progress,
    plot_svg,
    summarize,
)
from autoresearch.results import RunRecord

__all__ = [
    "MAX_DIFF_LINES",
    "KeptChange",
    "Report",
    "load_report",
    "render_report",
    "write_report",
]

MAX_DIFF_LINES = 400
"""Longer diffs are cut in the report (``autoresearch show`` prints them whole)."""


@dataclass(frozen=True)
class KeptChange:
    """A kept change: its record, the best metric before it, and its diff."""

    record: RunRecord
    previous_best: float | None
    diff: str
    """The patch against the commit it was made on ('' when git no longer has the commit)."""

    @property
    def delta(self) -> float | None:
        """The metric minus the best before this change (negative when lower is better)."""
        if self.record.metric is None or self.previous_best is None:
            return None
        return self.record.metric - self.previous_best


@dataclass(frozen=True)
class Report:
    """Everything the report shows."""

    progress: Progress
    changes: tuple[KeptChange, ...]
    generated_at: str


async def _diff(git: GitRepo, record: RunRecord) -> str:
    try:
        return await git.diff(record.commit, record.parent_commit)
    except GitError:
        return ""


async def load_report(repo_path: str | Path) -> Report:
    """Read a repository's research and the diff of every kept change (nothing is written)."""
    progress = await load_progress(repo_path)
    git = await GitRepo.open(progress.repo_path)
    changes: list[KeptChange] = []
    best: float | None = None
    for record in progress.records:
        if record.status != "keep":
            continue
        if not record.baseline and record.commit != record.parent_commit:
            changes.append(KeptChange(record, best, await _diff(git, record)))
        best = record.metric if record.metric is not None else best
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Report(progress=progress, changes=tuple(changes), generated_at=now)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _metric(value: float | None) -> str:
    return "-" if value is None else format_metric(value)


def _signed(value: float | None) -> str:
    if value is None:
        return ""
    text = format_metric(value)
    return text if text.startswith("-") else f"+{text}"


def _percent(value: float | None, base: float | None) -> str:
    """``value`` as a signed percentage of ``base`` (``+1.25%``), or '' when undefined."""
    ratio = value / abs(base) if value is not None and base else None
    return "" if ratio is None else f"{ratio:+.2%}"


def _duration(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _better(direction: str) -> str:
    return "lower is better" if direction == "lower" else "higher is better"


STYLE = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa;
  --keep: #1a7f37; --keep-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9;
  --warn: #9a6700; --warn-bg: #fff8c5; --odd: #8250df; --odd-bg: #fbefff; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 12px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0; font-weight: 600; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 13px; }
.sub { color: var(--muted); margin: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px;
  margin-top: 20px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
  background: var(--soft); }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 600; }
.card .hint { font-size: 12.5px; color: var(--muted); min-height: 1.2em; }
.chart { border: 1px solid var(--line); border-radius: 8px; padding: 8px; overflow-x: auto; }
.chart svg { width: 100%; height: auto; display: block; }
.note { color: var(--muted); font-style: italic; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--soft); position: sticky; top: 0; }
th.n { text-align: right; }
a { color: #0969da; text-decoration: none; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.keep td { background: #f3fcf5; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; }
.pill.keep { color: var(--keep); background: var(--keep-bg); }
.pill.discard { color: var(--muted); background: var(--soft); border: 1px solid var(--line); }
.pill.crash { color: var(--bad); background: var(--bad-bg); }
.pill.timeout { color: var(--warn); background: var(--warn-bg); }
.pill.invalid { color: var(--odd); background: var(--odd-bg); }
.change { border: 1px solid var(--line); border-radius: 8px; margin: 14px 0; overflow: hidden; }
.change header { padding: 10px 14px; background: var(--soft);
  border-bottom: 1px solid var(--line); }
.change .meta { color: var(--muted); font-size: 13px; margin-top: 2px; }
.good { color: var(--keep); font-weight: 600; }
details summary { cursor: pointer; padding: 6px 14px; color: var(--muted); font-size: 13px; }
pre.diff { margin: 0; padding: 8px 0; overflow-x: auto; background: #fff; line-height: 1.45; }
pre.diff span { display: block; padding: 0 14px; white-space: pre; }
pre.diff .add { background: #e6ffec; }
pre.diff .del { background: #ffebe9; }
pre.diff .hunk { color: #0550ae; background: #ddf4ff; }
pre.diff .file { color: var(--muted); font-weight: 600; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
"""


def _failure_note(summary: Summary) -> str:
    counts = (
        (summary.crashed, "crashed"),
        (summary.timed_out, "timed out"),
        (summary.invalid, "invalid"),
    )
    return ", ".join(f"{n} {word}" for n, word in counts if n)


def _summary_cards(progress: Progress, summary: Summary) -> str:
    change = "" if summary.change_pct is None else f"{summary.change_pct / 100:+.2%}"
    total_ms = sum(r.duration_ms for r in progress.records)
    cards = [
        ("baseline", _metric(summary.baseline), ""),
        (
            "best",
            _metric(summary.best),
            f"cycle {summary.best_cycle}" if summary.best_cycle else "",
        ),
        ("change", change or "-", _better(progress.direction)),
        ("cycles", str(summary.cycles), f"in {_duration(total_ms)}"),
        ("kept", str(summary.improvements), "improvements"),
        ("discarded", str(summary.discarded), ""),
        ("failed", str(summary.failures), _failure_note(summary)),
    ]
    cards += [(label, text, "") for label, text in measured_facts(progress.records, None)]
    items = "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div>'
        f'<div class="hint">{_e(note)}</div></div>'
        for k, v, note in cards
    )
    return f'<div class="cards">{items}</div>'


def _chart(progress: Progress) -> str:
    try:
        svg = plot_svg(
            progress.records, progress.metric, progress.direction, branch=progress.branch
        )
    except MissingMatplotlibError:
        return (
            '<p class="note">The chart needs matplotlib, which is not installed: '
            f"<code>{_e(INSTALL_HINT)}</code>, then make the report again.</p>"
        )
    return f'<div class="chart" role="img" aria-label="metric per cycle">{svg}</div>'


def _results_table(progress: Progress, changes: Sequence[KeptChange]) -> str:
    linked = {change.record.cycle for change in changes}
    rows: list[str] = []
    best: float | None = None
    for r in progress.records:
        delta = ""
        if r.metric is not None and best is not None and r.status in ("keep", "discard"):
            delta = _signed(r.metric - best)
        if r.status == "keep" and r.metric is not None:
            best = r.metric
        memory = "-" if r.memory_gb is None else f"{r.memory_gb:.2f}"
        cycle = str(r.cycle)
        if r.cycle in linked:
            cycle = f'<a href="#cycle-{r.cycle}">{r.cycle}</a>'
        rows.append(
            f'<tr class="{_e(r.status)}"><td class="n">{cycle}</td>'
            f'<td class="mono">{_e(r.commit[:7])}</td>'
            f'<td class="n">{_e(format_measured(r))}</td><td class="n">{_e(delta)}</td>'
            f'<td class="n">{_e(memory)}</td>'
            f'<td><span class="pill {_e(r.status)}">{_e(r.status)}</span></td>'
            f'<td class="n">{_e(_duration(r.duration_ms))}</td><td>{_e(r.description)}</td></tr>'
        )
    columns = [
        ("cycle", True),
        ("commit", False),
        (progress.metric, True),
        ("Δ vs best", True),
        ("memory GB", True),
        ("status", False),
        ("time", True),
        ("description", False),
    ]
    head = "".join(
        f'<th class="n">{_e(h)}</th>' if number else f"<th>{_e(h)}</th>" for h, number in columns
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _diff_html(diff: str) -> str:
    lines = diff.splitlines()
    cut = len(lines) - MAX_DIFF_LINES
    spans = []
    for line in lines[:MAX_DIFF_LINES]:
        if line.startswith(("+++", "---", "diff --git", "index ", "new file", "deleted file")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = ""
        cls = f' class="{kind}"' if kind else ""
        spans.append(f"<span{cls}>{_e(line) or ' '}</span>")
    if cut > 0:
        spans.append(f'<span class="hunk">… {cut} more lines (autoresearch show prints all)</span>')
    return f'<pre class="diff">{"".join(spans)}</pre>'


def _changes(changes: Sequence[KeptChange]) -> str:
    if not changes:
        return '<p class="note">No change has been kept yet.</p>'
    parts = []
    for change in changes:
        r = change.record
        delta = change.delta
        effect = ""
        if delta is not None:
            effect = (
                f'<span class="good">{_e(_signed(delta))}</span> '
                f"({_e(_percent(delta, change.previous_best))}): "
                f"{_e(_metric(change.previous_best))} → {_e(_metric(r.metric))}"
            )
        body = (
            _diff_html(change.diff)
            if change.diff
            else '<p class="note" style="padding:0 14px">The commit is no longer in the '
            "repository, so its diff cannot be shown.</p>"
        )
        parts.append(
            f'<section class="change" id="cycle-{r.cycle}"><header>'
            f"<h3>#{r.cycle} {_e(r.description)}</h3>"
            f'<div class="meta">{effect} · commit <span class="mono">{_e(r.commit[:12])}</span>'
            f" · {_e(_duration(r.duration_ms))}</div></header>"
            f"<details open><summary>diff</summary>{body}</details></section>"
        )
    return "".join(parts)


def render_report(report: Report, path: str | Path | None = None) -> str:
    """The report as one HTML document; also written to ``path`` when one is given."""
    progress = report.progress
    summary = summarize(progress.records)
    title = f"autoresearch report: {progress.branch}"
    document = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>{_e(progress.branch)}</h1>
<p class="sub">{_e(progress.metric)} ({_e(_better(progress.direction))}) ·
<span class="mono">{_e(progress.repo_path)}</span></p>
{_summary_cards(progress, summary)}
<h2>Progress</h2>
{_chart(progress)}
<h2>All cycles</h2>
{_results_table(progress, report.changes)}
<h2>Kept changes</h2>
{_changes(report.changes)}
<footer>Made by autoresearch on {_e(report.generated_at)}. Every candidate commit stays
reachable as <span class="mono">refs/autoresearch/&lt;tag&gt;/&lt;cycle&gt;</span>.</footer>
</main>
</body>
</html>
"""
    if path is not None:
        target = Path(path).expanduser()
        try:
            target.write_text(document, encoding="utf-8")
        except OSError as exc:
            raise PlotError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return document


async def write_report(repo_path: str | Path, path: str | Path) -> Report:
    """Load a repository's research and write its report to ``path``."""
    report = await load_report(repo_path)
    await anyio.to_thread.run_sync(render_report, report, path)
    return report
