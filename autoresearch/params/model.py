"""The search space as a value: each parameter, where it lives, its domain and why.

A :class:`Param` is what discovery found (file, line, style, current value) plus the range the
samplers may use and the reason for it. A :class:`ParamSpec` is a user's edit of one parameter
(range, scale, integer, choices, include or exclude), stored in ``config.json`` under ``params``.
:class:`SearchSpace` is the list the proposer and ``autoresearch params`` show. Samplers work
in a per-parameter coordinate ``t`` (``to_t``/``from_t``) where the scale is linear, so one
unit of ``t`` is "double or halve" for log scales and powers of two.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from autoresearch._model import CamelModel

__all__ = ["Kind", "Param", "ParamSpec", "Scale", "SearchSpace", "Style", "Value"]

Value = bool | int | float | str
"""A parameter's value: numbers, or a boolean or string when its choices are listed."""

Kind = Literal["float", "int", "choice"]
"""How a value is drawn: a real number, an integer, or one of listed choices."""

Scale = Literal["linear", "log", "log1m", "pow2"]
"""``log``: multiply/divide; ``log1m``: log of ``1 - value`` (Adam betas, momentum);
``pow2``: powers of two only; ``linear``: add/subtract."""

Style = Literal[
    "constant", "expression", "tuple", "argparse", "click", "class", "dict", "yaml", "json", "toml"
]
"""Where a value is written: a module constant, a constant expression (``2**19``), an element
of a constant tuple, an argparse or click ``default=``, a class attribute (dataclass config), a
dict literal entry, or a YAML, JSON or TOML config file."""


class Param(CamelModel):
    """One discovered parameter: where it lives, its current value, its range and why."""

    key: str
    """The name samplers and the ledger use (``LR``, ``args.lr``, ``hyp.lr``, ``optim.lr``)."""
    path: str
    line: int
    style: Style
    kind: Kind
    value: Value
    low: float | None = None
    high: float | None = None
    scale: Scale = "linear"
    choices: list[Value] | None = None
    reason: str = ""
    """Why this range (or why these choices)."""
    excluded: str | None = None
    """Why the parameter is left out of the search; ``None`` when it is tuned."""
    start: int = 0
    end: int = 0
    """The value's characters in the file (``text[start:end]`` is the value as written)."""
    text: str = ""
    """The value as written in the file, kept to write new values in the same style."""

    @property
    def tuned(self) -> bool:
        """Whether samplers may move this parameter."""
        return self.excluded is None

    def t_bounds(self) -> tuple[float, float]:
        """The range in sampler coordinates (for choices: the indices)."""
        if self.kind == "choice":
            return 0.0, float(len(self.choices or [self.value]) - 1)
        assert self.low is not None and self.high is not None
        a, b = self.to_t(self.low), self.to_t(self.high)
        return (a, b) if a <= b else (b, a)

    def to_t(self, value: Value) -> float:
        """``value`` in sampler coordinates."""
        if self.kind == "choice":
            options = self.choices or [self.value]
            return float(options.index(value)) if value in options else 0.0
        number = float(value)
        if self.scale in ("log", "pow2"):
            return math.log2(abs(number)) if number else -60.0
        if self.scale == "log1m":
            return -math.log2(max(1.0 - number, 1e-18))
        return number

    def from_t(self, t: float) -> Value:
        """The value at sampler coordinate ``t``: clipped to the range, rounded for its kind."""
        if self.kind == "choice":
            options = self.choices or [self.value]
            return options[min(max(round(t), 0), len(options) - 1)]
        lo, hi = self.t_bounds()
        t = min(max(t, lo), hi)
        sign = -1.0 if isinstance(self.value, int | float) and float(self.value) < 0 else 1.0
        if self.scale == "pow2":
            return int(2 ** round(t))
        if self.scale == "log":
            number = sign * 2.0**t
        elif self.scale == "log1m":
            number = 1.0 - 2.0**-t
        else:
            number = t
        if self.kind == "int":
            return round(float(number))
        return _round_float(number)

    def unit(self) -> float:
        """One natural step in sampler coordinates: a doubling, or 1/8 of a linear range."""
        if self.kind == "choice" or self.scale != "linear":
            return 1.0
        lo, hi = self.t_bounds()
        return max((hi - lo) / 8, 1.0 if self.kind == "int" else 0.0) or 1.0

    def contains(self, value: Value) -> bool:
        """Whether ``value`` lies in this parameter's range (or is one of its choices)."""
        if self.kind == "choice":
            return value in (self.choices or [self.value])
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        assert self.low is not None and self.high is not None
        lo, hi = min(self.low, self.high), max(self.low, self.high)
        return lo - 1e-12 * abs(lo) <= value <= hi + 1e-12 * abs(hi)


def _round_float(value: float) -> float:
    """Four significant digits: readable values that still move."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return float(f"{value:.4g}") + 0.0


class ParamSpec(CamelModel):
    """One parameter's entry in config.json (``params``): as ``init`` found it, or your edit.

    ``exclude`` leaves it out; ``include`` brings back one that discovery excluded; ``low`` and
    ``high`` set the range, ``scale`` the way values move, ``integer`` forces whole numbers and
    ``choices`` lists the values to try (strings and booleans are tuned only this way).
    """

    name: str = Field(min_length=1)
    exclude: bool = False
    include: bool = False
    low: float | None = None
    high: float | None = None
    scale: Scale | None = None
    integer: bool | None = None
    choices: list[Value] | None = None
    reason: str | None = None
    """Why this range; ``init`` writes the discovered reason, your edits need none."""
    discovered: bool = False
    """Written by ``init`` from discovery (the space as it was found), not an edit of yours:
    it pins the range, and the search may still learn that the parameter has no effect."""

    @field_validator("choices")
    @classmethod
    def _two_choices(cls, value: list[Value] | None) -> list[Value] | None:
        if value is not None and len(set(map(repr, value))) < 2:
            raise ValueError("choices needs at least two different values")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        name = self.name
        if self.exclude and (self.include or self.low is not None or self.choices):
            raise ValueError(f"params: {name} cannot be excluded and given a range or choices")
        if (self.low is None) != (self.high is None):
            raise ValueError(f"params: {name} needs both low and high (LOW:HIGH)")
        if self.low is not None and self.high is not None:
            if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
                raise ValueError(
                    f"params: {name} range {self.low:g}:{self.high:g} must have LOW < HIGH"
                )
            if self.scale in ("log", "pow2") and self.low * self.high <= 0:
                raise ValueError(
                    f"params: {name} has a {self.scale} scale, so LOW and HIGH must have the "
                    "same sign and not be 0"
                )
            if self.scale == "log1m" and not 0 <= self.low < self.high < 1:
                raise ValueError(f"params: {name} has scale log1m, so 0 <= LOW < HIGH < 1")
        if self.choices is not None and self.low is not None:
            raise ValueError(f"params: {name} takes a range or choices, not both")
        return self


class SearchSpace(CamelModel):
    """Every parameter discovery found, tuned or not, and the notes to show at ``init``."""

    params: list[Param] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    """Warnings for the user: overridden defaults, specs that matched nothing."""

    @property
    def tuned(self) -> list[Param]:
        """The parameters samplers may move."""
        return [p for p in self.params if p.tuned]

    def get(self, key: str) -> Param | None:
        """The parameter named ``key``, if any."""
        return next((p for p in self.params if p.key == key), None)
