"""What a person watches while research runs, driven only by the worker's events.

:class:`LiveView` (a terminal) redraws a small panel: cycle, phase, elapsed time against the
timeout, the best metric and the last few results; each finished cycle is also printed above
it so the scrollback keeps the history. :class:`PlainView` (pipes, ``--quiet``) prints one line
per cycle.

In a terminal everything fits its width: a line never wraps (a long description ends in
``…``; ``show`` has it in full), and the panel spans the whole width, so it keeps its size
from one redraw to the next. A resumed run starts from the ledger: :meth:`PlainView.resume`
gives the panel the best metric and the last results before the first new cycle ends.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from autoresearch.cli.render import STATUS_STYLES, cycle_line, fmt_metric
from autoresearch.config import ResearchConfig
from autoresearch.emitter import ALL_EVENTS, EventEmitter
from autoresearch.events import (
    CommitCreatedEvent,
    CycleEndEvent,
    CycleStartEvent,
    NoticeEvent,
    PhaseEnterEvent,
    TimeoutEvent,
)
from autoresearch.results import CycleResult, RunRecord

__all__ = ["LiveView", "PlainView"]

RECENT = 5
"""How many finished cycles the panel lists."""

TIMED_OUT = "timed out, stopping"
"""What the panel says between the time limit and the experiment's end (the kill grace)."""


class PlainView:
    """One line per finished cycle on the given console (cut to its width in a terminal)."""

    def __init__(self, console: Console, config: ResearchConfig) -> None:
        self.console = console
        self.config = config

    def attach(self, emitter: EventEmitter) -> None:
        """Subscribe to the events it prints."""
        emitter.on("autoresearch:cycle:end", self._on_end)
        emitter.on("autoresearch:notice", self._on_notice)

    def detach(self, emitter: EventEmitter) -> None:
        """Unsubscribe."""
        emitter.off("autoresearch:cycle:end", self._on_end)
        emitter.off("autoresearch:notice", self._on_notice)

    def resume(self, history: Sequence[RunRecord], best: float | None) -> None:
        """What the ledger holds from earlier runs (the plain view shows nothing of it)."""

    def close(self) -> None:
        """Take the display off the screen before a message (on a signal); plain: nothing."""

    def _line(self, text: str) -> None:
        """Print one line; in a terminal cut to its width with ``…`` rather than wrapped."""
        if self.console.is_terminal:
            self.console.print(
                text,
                soft_wrap=False,
                no_wrap=True,
                overflow="ellipsis",
                crop=True,
                highlight=False,
                markup=False,
            )
        else:
            self.console.print(text, highlight=False, markup=False)

    def _on_end(self, event: CycleEndEvent) -> None:
        self._line(cycle_line(event.to_result(), self.config.metric.name))

    def _on_notice(self, event: NoticeEvent) -> None:
        self._line(f"note: {event.message}")

    def __enter__(self) -> PlainView:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


@dataclass
class _SlotLine:
    """What one slot is doing, as the live view shows it."""

    cycle: int
    phase: str
    phase_started: float
    description: str
    timed_out: bool = False


@dataclass(frozen=True)
class _Row:
    """A finished cycle as the panel lists it."""

    cycle: int
    status: str
    metric: float | None
    description: str

    @classmethod
    def of(cls, result: CycleResult | RunRecord) -> _Row:
        metric = result.metric_value if isinstance(result, CycleResult) else result.metric
        return cls(result.cycle, result.status, metric, result.description)


def _fitting(*columns: tuple[str, str]) -> Table:
    """A borderless table that fills the width; the last column is cut with ``…``.

    Each column is (justify, style); every column but the last keeps its content whole.
    """
    table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False, expand=True)
    for justify, style in columns[:-1]:
        table.add_column(justify=justify, style=style, no_wrap=True)  # type: ignore[arg-type]
    justify, style = columns[-1]
    table.add_column(
        justify=justify,  # type: ignore[arg-type]
        style=style,
        no_wrap=True,
        overflow="ellipsis",
        ratio=1,
    )
    return table


class LiveView(PlainView):
    """A live panel redrawn from events, with finished cycles printed above it."""

    def __init__(self, console: Console, config: ResearchConfig) -> None:
        super().__init__(console, config)
        self.cycle: int | None = None
        self.phase = "starting"
        self.cycle_started = time.monotonic()
        self.phase_started = time.monotonic()
        self.best: float | None = None
        self.timed_out = False
        self.recent: deque[_Row] = deque(maxlen=RECENT)
        self.slots: dict[int, _SlotLine] = {}
        """With parallel slots: what each busy slot is doing."""
        self._live = Live(self, console=console, refresh_per_second=4, transient=True)

    def attach(self, emitter: EventEmitter) -> None:
        """Subscribe to every event."""
        emitter.on(ALL_EVENTS, self._on_event)

    def detach(self, emitter: EventEmitter) -> None:
        """Unsubscribe."""
        emitter.off(ALL_EVENTS, self._on_event)

    def resume(self, history: Sequence[RunRecord], best: float | None) -> None:
        """Start from the ledger: its best metric and its last results."""
        self.best = best
        self.recent.extend(_Row.of(record) for record in history[-RECENT:])

    def close(self) -> None:
        """Erase the panel now (a signal came: its message must stay visible below the lines)."""
        self._live.stop()

    def _on_event(self, event: Any) -> None:
        slot = event.source.slot if getattr(event, "source", None) is not None else None
        if slot is not None and self.config.slots > 1:
            self._on_slot_event(slot, event)
        now = time.monotonic()
        if isinstance(event, CycleStartEvent):
            self.cycle, self.cycle_started, self.timed_out = event.cycle, now, False
        elif isinstance(event, PhaseEnterEvent):
            self.phase, self.phase_started = event.phase, now
        elif isinstance(event, TimeoutEvent):
            self.timed_out = True
        elif isinstance(event, NoticeEvent):
            self._on_notice(event)
        elif isinstance(event, CycleEndEvent):
            result = event.to_result()
            self.best = event.best_metric
            self.recent.append(_Row.of(result))
            self.phase, self.timed_out = "between cycles", False
            self._line(cycle_line(result, self.config.metric.name))

    def _on_slot_event(self, slot: int, event: Any) -> None:
        now = time.monotonic()
        if isinstance(event, CycleStartEvent):
            self.slots[slot] = _SlotLine(event.cycle, "bootstrap", now, "")
        line = self.slots.get(slot)
        if line is None:
            return
        if isinstance(event, PhaseEnterEvent):
            line.phase, line.phase_started = event.phase, now
        elif isinstance(event, CommitCreatedEvent):
            line.description = event.description
        elif isinstance(event, TimeoutEvent):
            line.timed_out = True
        elif isinstance(event, CycleEndEvent):
            del self.slots[slot]

    def _clock(self, now: float, started: float, timed_out: bool) -> Text:
        """``12s / 120s`` while the experiment runs; after the time limit, that it stops."""
        if timed_out:
            return Text(f"{TIMED_OUT} (limit {self.config.timeout_ms / 1000:g}s)", "yellow")
        return Text(f"{now - started:.0f}s / {self.config.timeout_ms / 1000:g}s")

    def _slot_table(self, now: float) -> Table:
        """One line per slot: slot, cycle, phase, elapsed/timeout, what it tries."""
        table = _fitting(("left", ""), ("right", ""), ("left", "cyan"), ("left", ""), ("left", ""))
        for slot in range(1, self.config.slots + 1):
            line = self.slots.get(slot)
            if line is None:
                table.add_row(f"slot {slot}", "", Text("idle", style="dim"), "", "")
                continue
            running = line.phase == "execute"
            clock = self._clock(now, line.phase_started, line.timed_out) if running else ""
            table.add_row(f"slot {slot}", f"#{line.cycle}", line.phase, clock, line.description)
        return table

    def _recent_table(self) -> Table:
        table = _fitting(("right", ""), ("left", ""), ("right", ""), ("left", ""))
        for row in self.recent:
            status = Text(row.status, style=STATUS_STYLES.get(row.status, ""))
            table.add_row(str(row.cycle), status, fmt_metric(row.metric), row.description)
        return table

    def __rich__(self) -> RenderableType:
        now = time.monotonic()
        if self.config.slots > 1:
            return self._slots_panel(now)
        head = _fitting(("left", "bold"), ("left", ""))
        head.add_row("cycle", "-" if self.cycle is None else str(self.cycle))
        head.add_row("phase", Text(self.phase, style="yellow" if self.timed_out else "cyan"))
        running = self.phase == "execute"
        clock = self._clock(now, self.phase_started, self.timed_out) if running else "-"
        head.add_row("experiment", clock)
        head.add_row(
            "cycle time", "-" if self.cycle is None else f"{now - self.cycle_started:.0f}s"
        )
        head.add_row(f"best {self.config.metric.name}", fmt_metric(self.best))
        title = f"autoresearch · {self.config.branch}"
        return Panel(Group(head, self._recent_table()), title=title, title_align="left")

    def _slots_panel(self, now: float) -> RenderableType:
        best = Text(f"best {self.config.metric.name} {fmt_metric(self.best)}", style="bold")
        title = f"autoresearch · {self.config.branch} · {self.config.slots} slots"
        return Panel(Group(best, self._slot_table(now)), title=title, title_align="left")

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()
