"""Early abort: follow a run's learning curve in its log and stop it once it is clearly behind.

With ``progress`` configured, every run's output is read while it runs (the log is tailed a
few times a second, the engine never holds more than the unread part of it): each line the
pattern matches gives a point (step, value) of the run's curve. Once the run has reached
``min_fraction`` of the incumbent's last recorded step, a point that is worse than the
incumbent's curve at the same step (linearly interpolated) by more than ``margin`` times the
incumbent's value stops the run: it is killed the way a timeout kills it, and the cycle is a
``discard`` saying where and by how much ("stopped at step 300: 1.42 vs incumbent 1.21").

The curve of every run is kept (thinned to at most :data:`CURVE_POINTS` points) in the
cycle's record, so the incumbent's curve survives restarts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.to_thread
import regex

from autoresearch.config import ProgressSpec
from autoresearch.metrics import format_metric, parse_number

__all__ = ["CURVE_POINTS", "CurveWatch", "curve_of", "thin"]

CURVE_POINTS = 200
"""The most points of a curve a record keeps."""

_POLL_S = 0.25
_MAX_LINE = 1 << 20  # a longer line is skipped: no curve point hides in a megabyte


def thin(
    points: Sequence[tuple[float, float]], limit: int = CURVE_POINTS
) -> list[tuple[float, float]]:
    """At most ``limit`` points of ``points``, evenly spread, the last one always kept."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _at(curve: Sequence[tuple[float, float]], step: float) -> float:
    """The value of ``curve`` (sorted by step) at ``step``, linearly interpolated."""
    steps = [point[0] for point in curve]
    index = bisect_left(steps, step)
    if index == 0:
        return curve[0][1]
    if index == len(curve):
        return curve[-1][1]
    (x0, y0), (x1, y1) = curve[index - 1], curve[index]
    if x1 == x0:
        return y1
    return y0 + (y1 - y0) * (step - x0) / (x1 - x0)


class CurveWatch:
    """Reads one run's curve from its log and decides whether to stop the run early."""

    def __init__(
        self,
        spec: ProgressSpec,
        log: Path,
        incumbent: Sequence[tuple[float, float]] | None,
        *,
        lower_is_better: bool,
    ) -> None:
        self.spec = spec
        self.log = log
        self.incumbent = sorted(incumbent) if incumbent else None
        self.lower_is_better = lower_is_better
        self.points: list[tuple[float, float]] = []
        self.reason: str | None = None
        """Why the run was stopped, once it was."""
        self._pattern = regex.compile(spec.pattern)
        self._offset = 0
        self._partial = b""

    async def follow(self, abort: anyio.Event) -> None:
        """Read the log until cancelled; set ``abort`` when the run falls behind."""
        while self.reason is None:
            await anyio.to_thread.run_sync(self._read_new)
            if self.reason is not None:
                abort.set()
                return
            await anyio.sleep(_POLL_S)

    def finish(self) -> None:
        """Read what the run wrote since the last look (once it has ended)."""
        self._read_new(judge=False)

    def _read_new(self, judge: bool = True) -> None:
        try:
            with self.log.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > _MAX_LINE:
            self._partial = b""
        for raw in lines:
            if len(raw) > _MAX_LINE:
                continue
            point = self._point(raw.decode("utf-8", errors="replace"))
            if point is None:
                continue
            self.points.append(point)
            if judge and self.reason is None:
                self.reason = self._behind(*point)

    def _point(self, line: str) -> tuple[float, float] | None:
        try:
            match = self._pattern.search(line, timeout=0.1)
        except TimeoutError:
            return None
        if match is None:
            return None
        step, value = parse_number(match.group(1)), parse_number(match.group(2))
        if step is None or value is None:
            return None
        return step, value

    def _behind(self, step: float, value: float) -> str | None:
        """The reason to stop at this point, if the run is clearly behind the incumbent."""
        if not self.incumbent:
            return None
        if step < self.spec.min_fraction * self.incumbent[-1][0]:
            return None
        theirs = _at(self.incumbent, step)
        worse = value - theirs if self.lower_is_better else theirs - value
        if worse <= self.spec.margin * abs(theirs):
            return None
        return (
            f"stopped at step {format_metric(step).rstrip('0').rstrip('.')}: "
            f"{format_metric(value)} vs incumbent {format_metric(theirs)}"
        )


def curve_of(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]] | None:
    """What a record keeps of a run's curve (None when the run printed no point)."""
    return thin(points) if points else None
