"""Reading numbers out of a run's output: the metric and, optionally, peak memory.

The pattern is applied with ``re.MULTILINE`` and the last match wins. The log is never loaded
whole: it is scanned backwards in line-aligned windows, so a metric printed at the end of a
gigabyte of output is found after reading only the last window, and memory stays bounded.

Matching uses the ``regex`` library (it accepts the ``re`` syntax) because it can stop a
match after a time limit: a pattern that backtracks catastrophically on a big log fails the
cycle with a clear reason instead of hanging the engine.

A number is read exactly or not at all. When the text next to the captured group continues the
number (``1e-05`` captured as ``1``, ``1,200,000.5`` as ``1``, ``0.12345`` as ``0.12``), the
reading raises :class:`MetricMisreadError`, whose message quotes the line and names a pattern
that reads it whole; the cycle becomes a crash instead of keeping a change for a wrong number.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
import regex

__all__ = [
    "GROUPED_NUMBER_GROUP",
    "MATCH_TIME_LIMIT_S",
    "NUMBER_GROUP",
    "WINDOW_BYTES",
    "MetricMisreadError",
    "PatternTooSlowError",
    "find_last_match",
    "find_last_number",
    "format_metric",
    "is_improvement",
    "parse_number",
    "to_gb",
]

WINDOW_BYTES = 4 * 1024 * 1024
"""How much of the log one search window holds; a single match must fit in it."""

MATCH_TIME_LIMIT_S = 10.0
"""How long matching one pattern against one log may take in all."""


NUMBER_GROUP = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
"""A capture group for a signed decimal with an optional exponent: ``-3.5e-06``, ``.5``, ``5.``."""

GROUPED_NUMBER_GROUP = r"(\d{1,3}(?:,\d{3})*(?:\.\d+)?)"
"""A capture group that reads a number with digit-group commas: ``1,200,000.5``."""

_NUMBER = re.compile(
    r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?:_\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?",
    re.ASCII,
)
_GROUPED_INTEGER = re.compile(r"[-+]?\d{1,3}(?:,\d{3})*", re.ASCII)
_EXPONENT = re.compile(r"[eE][-+]?\d", re.ASCII)
_DIGIT_GROUP = re.compile(r",\d{3}(?!\d)", re.ASCII)
_FRACTION = re.compile(r"\.?\d", re.ASCII)
_DOT_EXPONENT = re.compile(r"\.[eE][-+]?\d", re.ASCII)
_NUMBER_TEXT = re.compile(r"[\d.,_eE+-]*", re.ASCII)
_SHOWN_LINE = 120  # longer lines are quoted around the capture


class PatternTooSlowError(TimeoutError):
    """Matching the pattern took longer than :data:`MATCH_TIME_LIMIT_S`."""


class MetricMisreadError(ValueError):
    """The captured text is only part of the number on its line, so the reading would be wrong.

    Raised instead of returning, say, ``1.0`` for ``1e-05``; the message quotes the line and
    names a pattern that reads the whole number.
    """


def parse_number(text: str) -> float | None:
    """The finite float that ``text`` spells exactly, or ``None``.

    Accepted, after surrounding whitespace is stripped: an optional sign, ASCII digits with an
    optional decimal point, and an optional exponent (``-3.5e-06``, ``.5``, ``2.0E+3``). The
    integer part may use well-formed digit groups of three, all with commas (``1,200,000.5``)
    or all with underscores (``1_200_000``, as Python's ``f"{x:_}"`` writes them); the
    separators are dropped. Anything else (``1,2``, ``1_0``, ``0.5s``, ``nan``, ``inf``,
    a number too big for a float) is ``None``.
    """
    stripped = text.strip()
    if _NUMBER.fullmatch(stripped) is None:
        return None
    value = float(stripped.replace(",", "").replace("_", ""))
    return value if math.isfinite(value) else None


def format_metric(value: float) -> str:
    """A metric as people write it: 6 decimals in the usual range, else the shortest exact form.

    ``0.985000`` and ``3.520953`` for ``1e-3 <= |value| < 1e6`` (and zero), so columns line up;
    ``3.03e-06``, ``1e+30`` or ``12345678.0`` outside it, where 6 decimals would print
    ``0.000003`` or a 31-digit integer. The CLI, ``results.tsv``, the chart and the report
    all use it.
    """
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.6f}"
    return repr(float(value))


@dataclass(frozen=True, slots=True)
class _Reading:
    """The last match of a pattern: what the group captured and the rest of its line."""

    text: str
    before: str
    """The line up to the captured group."""
    after: str
    """The line after the captured group."""
    pattern_goes_on: bool
    """Whether the pattern itself matched text after the group (a separator it expects)."""

    @property
    def line(self) -> str:
        """The whole line the capture sits on."""
        return (self.before + self.text + self.after).strip()


def _reading(match: regex.Match[str]) -> _Reading | None:
    text = match.group(1)
    if text is None:
        return None
    whole: str = match.string
    start, end = match.span(1)
    line_start = whole.rfind("\n", 0, start) + 1
    line_end = whole.find("\n", end)
    return _Reading(
        text=text,
        before=whole[line_start:start],
        after=whole[end : len(whole) if line_end < 0 else line_end],
        pattern_goes_on=match.end() > end,
    )


def _problem(reading: _Reading) -> str | None:
    """How the number on the line goes beyond the capture, or ``None`` when it is read whole."""
    text = reading.text
    if parse_number(text) is None:
        return None  # not a number at all: the caller reports that
    before, after = reading.before, reading.after
    if not text[-1].isspace():
        if (_EXPONENT.match(after) or _DOT_EXPONENT.match(after)) and "e" not in text.lower():
            return f"the number goes on with an exponent ({_continuation(after)!r})"
        grouped = _GROUPED_INTEGER.fullmatch(text.strip()) is not None
        if grouped and _DIGIT_GROUP.match(after) and not reading.pattern_goes_on:
            return f"the number has digit-group commas ({_continuation(after)!r})"
        if _FRACTION.match(after):
            return f"the number goes on ({_continuation(after)!r})"
    if before and not text[0].isspace():
        if before[-1].isascii() and (before[-1].isdigit() or before[-1] == "."):
            return f"the number starts before the capture ({before[-12:].split()[-1]!r})"
        unsigned = text[0] not in "+-"
        sign = before[-1] in "+-" and (len(before) == 1 or before[-2] in " \t:=([{,;|")
        if unsigned and sign:
            return f"the sign ({before[-1]!r}) is left out of the capture"
    return None


def _continuation(after: str) -> str:
    shown = _NUMBER_TEXT.match(after)  # always matches, perhaps nothing
    return "" if shown is None else shown[0][:24].rstrip(".,_+-")


def _group_span(pattern: str) -> tuple[int, int] | None:
    """Where the capture group is in the pattern's source: from its ``(`` to past its ``)``."""
    start, depth, i, in_class = -1, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1
            i += pattern.startswith("^", i)
            i += pattern.startswith("]", i)  # a ] first in a class is a literal
            continue
        elif ch == "(" and start >= 0:
            depth += 1
        elif ch == "(" and _opens_capture(pattern, i):
            start = i
        elif ch == ")" and start >= 0:
            if depth == 0:
                return start, i + 1
            depth -= 1
        i += 1
    return None


def _opens_capture(pattern: str, i: int) -> bool:
    if not pattern.startswith("(?", i):
        return True
    if pattern.startswith(("(?<=", "(?<!"), i):
        return False
    return pattern.startswith(("(?P<", "(?<"), i)


def _reads_whole(pattern: str, line: str) -> bool:
    """Whether ``pattern`` reads the number on ``line`` exactly (to check a suggestion)."""
    try:
        compiled = regex.compile(pattern, regex.MULTILINE)
        last = None
        for match in compiled.finditer(line, timeout=1.0):
            last = match
    except (regex.error, TimeoutError, IndexError):
        return False
    reading = None if last is None else _reading(last)
    if reading is None or parse_number(reading.text) is None:
        return False
    return _problem(reading) is None


def _misread(reading: _Reading, pattern: str) -> str | None:
    """The reason a reading would be wrong, with a pattern that reads it, or ``None``."""
    problem = _problem(reading)
    if problem is None:
        return None
    commas = "commas" in problem
    group = GROUPED_NUMBER_GROUP if commas else NUMBER_GROUP
    span = _group_span(pattern)
    fixed = None if span is None else pattern[: span[0]] + group + pattern[span[1] :]
    if fixed is not None and _reads_whole(fixed, reading.line):
        advice = f"e.g. '{fixed}'"
    else:
        advice = f"e.g. with the group '{group}'"
    if commas:
        advice += " (the commas are dropped when it is read)"
    return (
        f"the pattern '{pattern}' reads {reading.text.strip()!r} from the line "
        f"{_shorten(reading)!r}, but {problem}; capture the whole number, {advice}"
    )


def _shorten(reading: _Reading) -> str:
    line = reading.line
    if len(line) <= _SHOWN_LINE:
        return line
    half = max((_SHOWN_LINE - len(reading.text)) // 2, 10)
    head, tail = reading.before.lstrip(), reading.after.rstrip()
    head = head if len(head) <= half else "…" + head[-half:]
    tail = tail if len(tail) <= half else tail[:half] + "…"
    text = reading.text if len(reading.text) <= _SHOWN_LINE else reading.text[:_SHOWN_LINE] + "…"
    return head + text + tail


def _last_match(compiled: regex.Pattern[str], text: str, deadline: float) -> _Reading | None:
    last: regex.Match[str] | None = None
    remaining = deadline - time.monotonic()
    try:
        for match in compiled.finditer(text, timeout=max(remaining, 0.001)):
            last = match
    except TimeoutError:
        raise PatternTooSlowError(
            f"matching the pattern took over {MATCH_TIME_LIMIT_S:g} s (it backtracks "
            "catastrophically on this output); make it more specific"
        ) from None
    return None if last is None else _reading(last)


def _read(pattern: str, path: Path, window: int, time_limit: float) -> str | None:
    reading = _scan(pattern, path, window, time_limit)
    if reading is None:
        return None
    reason = _misread(reading, pattern)
    if reason is not None:
        raise MetricMisreadError(reason)
    return reading.text


def _scan(pattern: str, path: Path, window: int, time_limit: float) -> _Reading | None:
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

    Raises :class:`PatternTooSlowError` when matching takes longer than ``time_limit``, and
    :class:`MetricMisreadError` when the capture is a number but only part of the one written
    on its line (the text right after it goes on with an exponent, more digits, a ``.`` and
    digits, or a ``,ddd`` digit group; or a digit or sign right before it belongs to it).
    """
    return await anyio.to_thread.run_sync(_read, pattern, path, window, time_limit)


async def find_last_number(pattern: str, path: Path, *, window: int = WINDOW_BYTES) -> float | None:
    """The number captured by the last match, or ``None`` (no match, or not a finite number).

    Raises :class:`MetricMisreadError` as :func:`find_last_match` does.
    """
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
