"""What a scanner reports for one value, before the domain rules run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autoresearch.params.model import Style, Value

__all__ = ["Found", "Offsets"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(slots=True)
class Found:
    """One value a scanner found: its key, the name its domain is read from, where it is."""

    key: str
    name: str
    line: int
    style: Style
    value: Value
    start: int
    end: int
    text: str
    integer: bool = False
    excluded: str | None = None
    choices: list[Value] | None = None
    notes: list[str] = field(default_factory=list)


class Offsets:
    """Character offsets from (line, column) pairs, as ``ast`` (UTF-8 columns) or others give."""

    def __init__(self, text: str) -> None:
        self.bom = 1 if text.startswith("\ufeff") else 0
        self.source = text[self.bom :]
        self.starts = [0, *(m.end() for m in _LINE_BREAK.finditer(self.source))]

    def char(self, line: int, col: int, utf8: bool = True) -> int:
        """The offset in the original text of 1-based ``line``, 0-based ``col``."""
        begin = self.starts[line - 1]
        if not utf8:
            return self.bom + begin + col
        end = self.starts[line] if line < len(self.starts) else len(self.source)
        prefix = self.source[begin:end].encode()[:col].decode(errors="ignore")
        return self.bom + begin + len(prefix)

    def line_of(self, offset: int) -> int:
        """The 1-based line of a character offset in the original text."""
        position = offset - self.bom
        low, high = 0, len(self.starts) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self.starts[middle] <= position:
                low = middle
            else:
                high = middle - 1
        return low + 1
