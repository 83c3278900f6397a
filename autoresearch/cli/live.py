"""What a person watches while research runs, driven only by the worker's events.

:class:`LiveView` (a terminal) redraws a small panel: cycle, phase, elapsed time against the
timeout, the best metric and the last few results; each finished cycle is also printed above
it so the scrollback keeps the history. :class:`PlainView` (pipes, ``--quiet``) prints one line
per cycle.
"""

from __future__ import annotations

import time
from collections import deque
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
from autoresearch.results import CycleResult

__all__ = ["LiveView", "PlainView"]


class PlainView:
    """One line per finished cycle on the given console."""

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

    def _on_end(self, event: CycleEndEvent) -> None:
        self.console.print(
            cycle_line(event.to_result(), self.config.metric.name), highlight=False, markup=False
        )

    def _on_notice(self, event: NoticeEvent) -> None:
        self.console.print(f"note: {event.message}", highlight=False, markup=False)

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
        self.recent: deque[CycleResult] = deque(maxlen=5)
        self.slots: dict[int, _SlotLine] = {}
        """With parallel slots: what each busy slot is doing."""
        self._live = Live(self, console=console, refresh_per_second=4, transient=True)

    def attach(self, emitter: EventEmitter) -> None:
        """Subscribe to every event."""
        emitter.on(ALL_EVENTS, self._on_event)

    def detach(self, emitter: EventEmitter) -> None:
        """Unsubscribe."""
        emitter.off(ALL_EVENTS, self._on_event)

    def _on_notice(self, event: NoticeEvent) -> None:
        self._live.console.print(f"note: {event.message}", highlight=False, markup=False)

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
            self.recent.append(result)
            self.phase = "between cycles"
            self._live.console.print(
                cycle_line(result, self.config.metric.name), highlight=False, markup=False
            )

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
            line.phase = "timed out, stopping"
        elif isinstance(event, CycleEndEvent):
            del self.slots[slot]

    def _slot_table(self, now: float, timeout_s: float) -> Table:
        """One line per slot: slot, cycle, phase, elapsed/timeout, what it tries."""
        table = Table(box=None, show_header=False, padding=(0, 1))
        for slot in range(1, self.config.slots + 1):
            line = self.slots.get(slot)
            if line is None:
                table.add_row(f"slot {slot}", "", Text("idle", style="dim"), "", "")
                continue
            clock = ""
            if line.phase == "execute":
                clock = f"{now - line.phase_started:.0f}s / {timeout_s:g}s"
            table.add_row(
                f"slot {slot}",
                f"#{line.cycle}",
                Text(line.phase, style="cyan"),
                clock,
                line.description[:32],
            )
        return table

    def __rich__(self) -> RenderableType:
        now = time.monotonic()
        timeout_s = self.config.timeout_ms / 1000
        if self.config.slots > 1:
            return self._slots_panel(now, timeout_s)
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold")
        head.add_column()
        head.add_row("cycle", "-" if self.cycle is None else str(self.cycle))
        phase = Text(self.phase, style="yellow" if self.timed_out else "cyan")
        head.add_row("phase", phase)
        if self.phase == "execute":
            elapsed = now - self.phase_started
            head.add_row("experiment", f"{elapsed:.0f}s / {timeout_s:g}s")
        head.add_row("cycle time", f"{now - self.cycle_started:.0f}s")
        head.add_row(f"best {self.config.metric.name}", fmt_metric(self.best))
        recent = Table(box=None, show_header=False, padding=(0, 1))
        for result in self.recent:
            recent.add_row(
                str(result.cycle),
                Text(result.status, style=STATUS_STYLES.get(result.status, "")),
                fmt_metric(result.metric_value),
                result.description[:60],
            )
        title = f"autoresearch · {self.config.branch}"
        return Panel(Group(head, recent), title=title, title_align="left", expand=False)

    def _slots_panel(self, now: float, timeout_s: float) -> RenderableType:
        best = Text(f"best {self.config.metric.name} {fmt_metric(self.best)}", style="bold")
        title = f"autoresearch · {self.config.branch} · {self.config.slots} slots"
        return Panel(
            Group(best, self._slot_table(now, timeout_s)),
            title=title,
            title_align="left",
            expand=False,
        )

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()
