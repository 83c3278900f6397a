"""Reading numbers out of a run's output: the metric and, optionally, peak memory.

The pattern is applied with ``re.MULTILINE`` and the last match wins. The log is never loaded
whole: it is scanned backwards in line-aligned windows, so a metric printed at the end of a
gigabyte of output is found after reading only the last window, and memory stays bounded.

Matching uses the ``regex`` library (it accepts the ``re`` syntax) because it can stop a
match after a time limit: a pattern that backtracks catastrophically on a big log fails the
cycle with a clear reason instead of hanging the engine.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Literal

import anyio
import regex

__all__ = [
    "MATCH_TIME_LIMIT_S",
    "WINDOW_BYTES",
    "PatternTooSlowError",
    "find_last_match",
    "find_last_number",
    "is_improvement",
    "parse_number",
    "to_gb",
]

WINDOW_BYTES = 4 * 1024 * 1024
"""How much of the log one search window holds; a single match must fit in it."""

MATCH_TIME_LIMIT_S = 10.0
"""How long matching one pattern against one log may take in all."""


class PatternTooSlowError(TimeoutError):
    """Matching the pattern took longer than :data:`MATCH_TIME_LIMIT_S`."""


def parse_number(text: str) -> float | None:
    """The finite float in ``text``, or ``None`` (unparseable, NaN and infinities all count)."""
    try:
        value = float(text.strip().replace("_", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _last_match(compiled: regex.Pattern[str], text: str, deadline: float) -> str | None:
    last: str | None = None
    remaining = deadline - time.monotonic()
    try:
        for match in compiled.finditer(text, timeout=max(remaining, 0.001)):
            last = match.group(1)
    except TimeoutError:
        raise PatternTooSlowError(
            f"matching the pattern took over {MATCH_TIME_LIMIT_S:g} s (it backtracks "
            "catastrophically on this output); make it more specific"
        ) from None
    return last


def _scan(pattern: str, path: Path, window: int, time_limit: float) -> str | None:
    compiled = regex.compile(pattern, regex.MULTILINE)
    deadline = time.monotonic() + time_limit
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - window)
            handle.seek(start)
            chunk = handle.read(end - start)
            cut = chunk.find(b"\n") if start > 0 else -1
            if 0 <= cut < len(chunk) - 1:  # begin the window at a line start, so ^ means it
                chunk = chunk[cut + 1 :]
                start += cut + 1
            found = _last_match(compiled, chunk.decode("utf-8", errors="replace"), deadline)
            if found is not None:
                return found
            end = start
    return None


async def find_last_match(
    pattern: str,
    path: Path,
    *,
    window: int = WINDOW_BYTES,
    time_limit: float = MATCH_TIME_LIMIT_S,
) -> str | None:
    """The text captured by the last match of ``pattern`` in the file at ``path`` (a thread).

    Raises :class:`PatternTooSlowError` when matching takes longer than ``time_limit``.
    """
    return await anyio.to_thread.run_sync(_scan, pattern, path, window, time_limit)


async def find_last_number(pattern: str, path: Path, *, window: int = WINDOW_BYTES) -> float | None:
    """The number captured by the last match, or ``None`` (no match, or not a finite number)."""
    raw = await find_last_match(pattern, path, window=window)
    return None if raw is None else parse_number(raw)


def to_gb(value: float, unit: Literal["mb", "gb"]) -> float:
    """Convert a memory reading to GB (1 GB = 1024 MB, as ``peak_vram_mb / 1024`` does)."""
    return value / 1024.0 if unit == "mb" else value


def is_improvement(
    value: float, best: float | None, direction: Literal["lower", "higher"], min_improvement: float
) -> bool:
    """Whether ``value`` beats ``best`` by strictly more than ``min_improvement``; ties lose."""
    if best is None:
        return True
    gain = best - value if direction == "lower" else value - best
    return gain > min_improvement
