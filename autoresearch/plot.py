"""The progress chart: the metric per cycle, with the kept changes labelled.

:func:`render_plot` draws what ``autoresearch plot`` writes (PNG, SVG or PDF, chosen by the
file's extension): every cycle's metric, discarded runs in grey, runs without a metric (crash,
timeout, invalid) as grey crosses on a rail along the worse edge, kept runs in green and labelled
with their descriptions, the running best as a step line, and the baseline and the best marked.
The title carries the counts and the improvement.

matplotlib is an optional dependency (``pip install 'autoresearch[plot]'``). It is imported
only when a chart is drawn, through its object-oriented API on the Agg canvas, so this module
never touches pyplot's global state or the process's backend. Without matplotlib,
:class:`MissingMatplotlibError` says how to install it.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from autoresearch.config import Direction
from autoresearch.errors import AutoResearchError, ConfigError
from autoresearch.ledger import Summary, summarize
from autoresearch.metrics import format_metric
from autoresearch.results import RunRecord
from autoresearch.workspace import Workspace

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "MissingMatplotlibError",
    "NothingToPlotError",
    "PlotError",
    "Progress",
    "Summary",
    "load_progress",
    "matplotlib_available",
    "plot_svg",
    "render_plot",
    "summarize",
]

INSTALL_HINT = "pip install 'autoresearch[plot]'"
"""How to get the optional plotting dependency."""

FORMATS = (".png", ".svg", ".pdf")
"""The file extensions :func:`render_plot` writes."""

KEPT = "#1a7f37"
KEPT_DARK = "#0f5323"
GREY = "#8c959f"
LIGHT_GREY = "#afb8c1"
BASELINE = "#57606a"
BEST = "#bf8700"
MAX_LABEL_CHARS = 52
NO_METRIC = "no metric (crash, timeout, invalid)"
RAIL_BAND = 0.065  # the strip along the worse edge where runs without a metric are drawn


class PlotError(AutoResearchError):
    """A chart or report cannot be made; the message says why and what to do."""


class MissingMatplotlibError(PlotError, ImportError):
    """matplotlib, needed to draw the chart, is not installed."""


class NothingToPlotError(PlotError):
    """The repository has no finished cycle yet."""


@dataclass(frozen=True)
class Progress:
    """One repository's research, as the chart and the report need it."""

    repo_path: Path
    branch: str
    metric: str
    direction: Direction
    records: tuple[RunRecord, ...]


async def load_progress(repo_path: str | Path) -> Progress:
    """Read a repository's configuration and ledger (read-only: nothing is repaired or locked).

    Raises :class:`NotInitializedError` for a repository that was never set up and
    :class:`NothingToPlotError` when no cycle has finished yet.
    """
    root = await anyio.to_thread.run_sync(lambda: Path(repo_path).expanduser().resolve())
    workspace = Workspace(root)
    config = await workspace.read_config()
    records = await workspace.load_runs(config.metric.name, repair=False)
    if not records:
        raise NothingToPlotError(
            f"nothing to draw: {root} has no finished cycle yet; run "
            f"`autoresearch run-once {repo_path}` first"
        )
    return Progress(
        repo_path=root,
        branch=config.branch,
        metric=config.metric.name,
        direction=config.metric.direction,
        records=tuple(records),
    )


def _fmt(value: float) -> str:
    """A metric for people: :func:`format_metric` less trailing zeros (``1.01``, ``3.03e-06``)."""
    text = format_metric(value)
    return text if "e" in text else text.rstrip("0").rstrip(".")


def _title(records: Sequence[RunRecord], metric: str, branch: str | None) -> tuple[str, str]:
    summary = summarize(records)
    head = f"{branch}: {metric}" if branch else metric
    if summary.baseline is not None and summary.best is not None:
        head += f" {_fmt(summary.baseline)} → {_fmt(summary.best)}"
        change = summary.change_pct
        if change is not None:
            head += f" ({change:+.1f}%)"
    plural = "s" if summary.cycles != 1 else ""
    counts = [
        f"{summary.cycles} cycle{plural}",
        f"{summary.improvements} improvement{'s' if summary.improvements != 1 else ''} kept",
        f"{summary.discarded} discarded",
        f"{summary.crashed} crashed",
    ]
    if summary.timed_out:
        counts.append(f"{summary.timed_out} timed out")
    if summary.invalid:
        counts.append(f"{summary.invalid} invalid")
    return head, " · ".join(counts)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_LABEL_CHARS else flat[: MAX_LABEL_CHARS - 1] + "…"


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported, so that charts can be drawn."""
    try:
        _import_matplotlib()
    except MissingMatplotlibError:
        return False
    return True


def _import_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingMatplotlibError(
            f"drawing the chart needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from exc


@dataclass(frozen=True)
class _Layout:
    """The y-range of the chart and where runs without a metric are drawn."""

    low: float
    high: float
    rail: float
    """Axes fraction (0 = bottom, 1 = top) of the rail for runs without a metric."""
    clip: float
    """Discarded values beyond this (in the worse direction) are drawn at the edge."""


def _layout(records: Sequence[RunRecord], direction: Direction) -> _Layout:
    sign = 1.0 if direction == "lower" else -1.0  # +1: worse values are higher on the chart
    kept = [r.metric for r in records if r.status == "keep" and r.metric is not None]
    other = [r.metric for r in records if r.status != "keep" and r.metric is not None]
    anchor = kept or other
    if not anchor:
        return _Layout(low=0.0, high=1.0, rail=0.96 if sign > 0 else 0.04, clip=math.inf)
    best, worst = min(anchor, key=lambda v: sign * v), max(anchor, key=lambda v: sign * v)
    span = abs(worst - best) or (abs(best) * 0.1 or 1.0)
    clip = worst + sign * span * 0.75
    shown = [v for v in other if sign * v <= sign * clip] + anchor
    far = max(shown, key=lambda v: sign * v)
    if any(sign * v > sign * clip for v in other):
        far = clip
    better_edge = best - sign * span * 0.38  # room for the labels on the better side
    worse_edge = far + sign * span * 0.2  # room for the rail on the worse side
    low, high = sorted((better_edge, worse_edge))
    return _Layout(low=low, high=high, rail=0.965 if sign > 0 else 0.035, clip=clip)


def _running_best(records: Sequence[RunRecord]) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    best: float | None = None
    for record in records:
        if record.status == "keep" and record.metric is not None:
            best = record.metric
        if best is not None:
            xs.append(float(record.cycle))
            ys.append(best)
    return xs, ys


def _label_order(kept: Sequence[RunRecord]) -> list[tuple[RunRecord, float]]:
    """Kept changes with their gains, the biggest gain first (it gets the best spot)."""
    gains: list[tuple[RunRecord, float]] = []
    previous: float | None = None
    for record in kept:
        assert record.metric is not None
        if previous is not None:
            gains.append((record, abs(record.metric - previous)))
        previous = record.metric
    return sorted(gains, key=lambda pair: -pair[1])


def _overlaps(box: Bbox, others: Sequence[Bbox]) -> bool:
    return any(box.overlaps(other) for other in others)


def _candidates(direction: Direction) -> list[tuple[float, float, str]]:
    """Label offsets (points) to try, nearest first: the better side, then the worse side."""
    down = -1.0 if direction == "lower" else 1.0  # towards the better side
    near = [
        (dx, dy * down, align)
        for dy in (7.0, 21.0, 35.0, 50.0, 65.0, 80.0)
        for dx, align in ((-7.0, "right"), (7.0, "left"))
    ]
    return near + [  # towards the worse side, where only discarded runs are
        (dx, -dy * down, align)
        for dy in (7.0, 21.0, 35.0, 50.0)
        for dx, align in ((7.0, "left"), (-7.0, "right"))
    ]


Segment = tuple[tuple[float, float], tuple[float, float]]


def _leader(start: tuple[float, float], box: Bbox) -> Segment:
    """The leader line matplotlib draws: from the point towards the centre of the text."""
    return start, ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)


def _crosses(segment: Segment, boxes: Sequence[Bbox]) -> bool:
    """Whether ``segment`` passes through any of ``boxes`` (sampled; labels are small)."""
    (x0, y0), (x1, y1) = segment
    for step in range(1, 24):
        t = step / 24
        if any(box.contains(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for box in boxes):
            return True
    return False


def _place_labels(
    ax: Axes,
    renderer: RendererBase,
    kept: Sequence[RunRecord],
    *,
    obstacles: list[Bbox],
    markers: Sequence[Bbox],
    direction: Direction,
) -> int:
    """Label kept changes where the text overlaps nothing; returns how many got no label.

    ``obstacles`` must stay clear of the text; a leader line must also miss ``markers`` (the
    plotted points) and the labels placed before it.
    """
    from matplotlib.text import Text

    frame = ax.get_window_extent(renderer)
    texts: list[Bbox] = []
    leaders: list[Segment] = []
    skipped = 0
    for record, _gain in _label_order(kept):
        assert record.metric is not None
        anchor = (float(record.cycle), record.metric)
        start = tuple(ax.transData.transform(anchor))
        others = [box for box in markers if not box.contains(start[0], start[1])]
        for dx, dy, align in _candidates(direction):
            leader = abs(dy) > 10
            label = ax.annotate(
                f"#{record.cycle} {_short(record.description)}",
                anchor,
                xytext=(dx, dy),
                textcoords="offset points",
                ha=align,
                va="center",
                fontsize=7.5,
                color=KEPT_DARK,
                arrowprops=(
                    {"arrowstyle": "-", "color": KEPT, "lw": 0.6, "shrinkA": 0, "shrinkB": 3}
                    if leader
                    else None
                ),
                zorder=6,
            )
            label.update_positions(renderer)
            box = Text.get_window_extent(label, renderer).expanded(1.0, 1.15)  # the text only
            line = _leader((start[0], start[1]), box) if leader else None
            if (
                frame.contains(box.x0, box.y0)
                and frame.contains(box.x1, box.y1)
                and not _overlaps(box, obstacles)
                and not (line and _crosses(line, [*texts, *others]))
                and not any(_crosses(other, [box]) for other in leaders)
            ):
                obstacles.append(box)
                texts.append(box)
                if line:
                    leaders.append(line)
                break
            label.remove()
        else:
            skipped += 1
    return skipped


def _marker_boxes(ax: Axes, points: Sequence[tuple[int, float]]) -> list[Bbox]:
    """Boxes around the plotted points, so that no label covers one."""
    from matplotlib.transforms import Bbox

    size = 4.0 * ax.figure.dpi / 72.0  # half a marker, in pixels
    boxes = []
    for x, y in points:
        px, py = ax.transData.transform((x, y))
        boxes.append(Bbox.from_extents(px - size, py - size, px + size, py + size))
    return boxes


def _line_boxes(ax: Axes, xs: Sequence[float], ys: Sequence[float]) -> list[Bbox]:
    """Thin boxes around the segments of a post-step line (and of a horizontal line)."""
    from matplotlib.transforms import Bbox

    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys, strict=True)]
    boxes = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        boxes.append(Bbox.from_extents(x0, y0 - 1.5, x1, y0 + 1.5))
        boxes.append(Bbox.from_extents(x1 - 1.5, min(y0, y1), x1 + 1.5, max(y0, y1)))
    return boxes


@dataclass(frozen=True)
class _Groups:
    """The records sorted by how they are drawn, as (cycle, metric) points."""

    kept: list[tuple[int, float]]
    shown: list[tuple[int, float]]
    """Runs with a metric that were not kept, inside the y-range."""
    clipped: list[int]
    """Cycles of runs with a metric beyond the y-range (drawn at its edge)."""
    missing: list[int]
    """Cycles of runs without a metric (drawn on the rail)."""


def _groups(records: Sequence[RunRecord], layout: _Layout, sign: float) -> _Groups:
    kept: list[tuple[int, float]] = []
    shown: list[tuple[int, float]] = []
    clipped: list[int] = []
    missing: list[int] = []
    for r in records:
        if r.metric is None:
            missing.append(r.cycle)
        elif r.status == "keep":
            kept.append((r.cycle, r.metric))
        elif sign * r.metric <= sign * layout.clip:
            shown.append((r.cycle, r.metric))
        else:
            clipped.append(r.cycle)
    return _Groups(kept=kept, shown=shown, clipped=clipped, missing=missing)


def _draw_runs(ax: Axes, groups: _Groups, layout: _Layout, sign: float) -> None:
    grey: dict[str, Any] = {"color": LIGHT_GREY, "edgecolors": GREY, "linewidths": 0.5}
    if groups.shown:
        xs, ys = _columns(groups.shown)
        ax.scatter(xs, ys, s=22, zorder=3, **grey)
    if groups.clipped:
        marker = "^" if sign > 0 else "v"
        edge = [layout.clip] * len(groups.clipped)
        ax.scatter(groups.clipped, edge, marker=marker, s=26, zorder=3, **grey)
    if groups.missing:
        from matplotlib.patches import Rectangle

        band = (0.0, 1.0 - RAIL_BAND) if sign > 0 else (0.0, 0.0)
        ax.add_patch(
            Rectangle(band, 1.0, RAIL_BAND, transform=ax.transAxes, color="#f6f8fa", zorder=0)
        )
        ax.scatter(
            groups.missing,
            [layout.rail] * len(groups.missing),
            marker="x",
            s=26,
            color=GREY,
            linewidths=1.2,
            transform=ax.get_xaxis_transform(),  # x in data, y as a fraction of the axes
            clip_on=False,
            zorder=3,
        )


def _draw_spread(ax: Axes, records: Sequence[RunRecord]) -> None:
    """Error bars (± one standard deviation) for cycles measured more than once."""
    spread = [
        (r.cycle, r.metric, r.std) for r in records if r.metric is not None and r.std is not None
    ]
    if spread:
        ax.errorbar(
            [cycle for cycle, _, _ in spread],
            [metric for _, metric, _ in spread],
            yerr=[std for _, _, std in spread],
            fmt="none",
            ecolor=GREY,
            elinewidth=0.8,
            capsize=2,
            zorder=2,
        )


def _columns(points: Sequence[tuple[int, float]]) -> tuple[list[int], list[float]]:
    return [x for x, _ in points], [y for _, y in points]


def _draw_best(ax: Axes, records: Sequence[RunRecord], groups: _Groups, summary: Summary) -> None:
    steps_x, steps_y = _running_best(records)
    if steps_x:
        ax.step(steps_x, steps_y, where="post", color=KEPT, linewidth=1.8, alpha=0.85, zorder=4)
    if summary.baseline is not None:
        ax.axhline(summary.baseline, color=BASELINE, linewidth=0.9, linestyle=(0, (4, 3)))
    if groups.kept:
        xs, ys = _columns(groups.kept)
        ax.scatter(
            xs,
            ys,
            s=46,
            color=KEPT,
            edgecolors="white",
            linewidths=0.8,
            zorder=5,
        )
    if summary.best is not None and summary.best_cycle is not None:
        ax.scatter(
            [summary.best_cycle],
            [summary.best],
            marker="*",
            s=260,
            color=BEST,
            edgecolors="white",
            linewidths=0.8,
            zorder=7,
        )


def _decorate(
    fig: Figure,
    ax: Axes,
    summary: Summary,
    *,
    titles: tuple[str, str],
    axis: str,
    clipped: bool,
    direction: Direction,
) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("cycle")
    ax.set_ylabel(axis)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, color="#eaeef2", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    head, counts = titles
    fig.suptitle(head, x=0.01, ha="left", fontsize=13, fontweight="bold")
    ax.set_title(counts, loc="left", fontsize=10, color=BASELINE)
    dashed = (0, (4, 3))
    legend = [
        Line2D([], [], marker="o", ls="", color=KEPT, mec="white", ms=7, label="kept"),
        Line2D([], [], marker="o", ls="", color=LIGHT_GREY, mec=GREY, ms=6, label="discarded"),
        Line2D([], [], marker="x", ls="", color=GREY, mew=1.2, ms=6, label=NO_METRIC),
        Line2D([], [], color=KEPT, lw=1.8, label="running best"),
    ]
    if clipped:
        marker = "^" if direction == "lower" else "v"
        legend.insert(
            2,
            Line2D(
                [],
                [],
                marker=marker,
                ls="",
                color=LIGHT_GREY,
                mec=GREY,
                ms=6,
                label="discarded, off the scale",
            ),
        )
    if summary.baseline is not None:
        label = f"baseline {_fmt(summary.baseline)}"
        legend.append(Line2D([], [], color=BASELINE, lw=0.9, ls=dashed, label=label))
    if summary.best is not None:
        label = f"best {_fmt(summary.best)} (cycle {summary.best_cycle})"
        legend.append(
            Line2D([], [], marker="*", ls="", color=BEST, mec="white", ms=13, label=label)
        )
    fig.legend(
        handles=legend, loc="outside lower center", ncols=len(legend), frameon=False, fontsize=8.5
    )


def _label_rail(ax: Axes, layout: _Layout, sign: float) -> None:
    """Say "no metric" on the y-axis at the rail, and show no numbers inside its strip."""
    low, high = ax.get_ylim()
    edge = high - RAIL_BAND * (high - low) if sign > 0 else low + RAIL_BAND * (high - low)
    rail = low + layout.rail * (high - low)
    ticks, labels = [], []
    for tick, label in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True):
        if low <= tick <= high and (tick < edge if sign > 0 else tick > edge):
            ticks.append(tick)
            labels.append(label.get_text())
    ax.set_yticks([*ticks, rail], [*labels, "no metric"])
    ax.get_yticklabels()[-1].set_color(GREY)
    ax.set_ylim(low, high)


def _figure(
    records: Sequence[RunRecord], metric: str, direction: Direction, branch: str | None
) -> Figure:
    """Draw the chart on a new Agg-backed figure."""
    _import_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not records:
        raise NothingToPlotError("nothing to draw: there are no finished cycles")
    fig = Figure(figsize=(12, 6.75), dpi=150, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    layout = _layout(records, direction)
    sign = 1.0 if direction == "lower" else -1.0
    first, last = records[0].cycle, records[-1].cycle
    pad = max(0.6, (last - first) * 0.02)
    ax.set_xlim(first - pad, last + pad)
    ax.set_ylim(layout.low, layout.high)
    summary = summarize(records)
    groups = _groups(records, layout, sign)
    _draw_runs(ax, groups, layout, sign)
    _draw_spread(ax, records)
    _draw_best(ax, records, groups, summary)
    words = "lower is better" if direction == "lower" else "higher is better"
    titles = _title(records, metric, branch)
    _decorate(
        fig,
        ax,
        summary,
        titles=titles,
        axis=f"{metric} ({words})",
        clipped=bool(groups.clipped),
        direction=direction,
    )

    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    fig.draw_without_rendering()  # settle the layout so the label positions are final
    if groups.missing:
        _label_rail(ax, layout, sign)
    markers = _marker_boxes(ax, groups.kept + groups.shown)
    obstacles = [*markers, *_line_boxes(ax, *_running_best(records))]
    if summary.baseline is not None:
        obstacles += _line_boxes(ax, [first - pad, last + pad], [summary.baseline] * 2)
    kept = [r for r in records if r.status == "keep" and r.metric is not None]
    skipped = _place_labels(
        ax, renderer, kept, obstacles=obstacles, markers=markers, direction=direction
    )
    if skipped:
        ax.text(
            0.995,
            0.005 if sign > 0 else 0.995,
            f"{skipped} kept change{'s' if skipped != 1 else ''} not labelled (no room)",
            transform=ax.transAxes,
            ha="right",
            va="bottom" if sign > 0 else "top",
            fontsize=7,
            color=GREY,
        )
    return fig


def render_plot(
    records: Sequence[RunRecord],
    metric: str,
    direction: Direction,
    path: str | Path,
    *,
    branch: str | None = None,
) -> Path:
    """Draw the progress chart of ``records`` into ``path``; the extension picks the format.

    ``.png`` (150 dpi), ``.svg`` and ``.pdf`` are written; any other extension is a
    :class:`ConfigError`. ``branch`` goes into the title. Returns the path written.
    Raises :class:`MissingMatplotlibError` when matplotlib is not installed.
    """
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"output: cannot write {suffix or 'a file without an extension'}; name a "
            f"{', '.join(FORMATS)} file",
            field="output",
        )
    fig = _figure(records, metric, direction, branch)
    try:
        fig.savefig(target, format=suffix[1:], metadata=_metadata(suffix))
    except OSError as exc:
        raise PlotError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def plot_svg(
    records: Sequence[RunRecord],
    metric: str,
    direction: Direction,
    *,
    branch: str | None = None,
) -> str:
    """The chart as an ``<svg>`` element, ready to inline in HTML (no XML prolog, no links)."""
    _import_matplotlib()
    from matplotlib import rc_context

    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "autoresearch"}):
        fig = _figure(records, metric, direction, branch)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata=_metadata(".svg"))
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)


def _metadata(suffix: str) -> dict[str, Any]:
    if suffix == ".png":
        return {"Software": "autoresearch"}
    if suffix == ".svg":
        return {"Creator": "autoresearch", "Date": None, "Format": None, "Type": None}
    return {"Creator": "autoresearch"}
