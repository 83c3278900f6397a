"""``--param``/``--exclude-param``/``--sampler`` and the ``params`` listing.

``--param NAME`` brings back a parameter discovery left out; ``--param NAME=LOW:HIGH`` sets its
range, optionally followed by ``:log``, ``:linear``, ``:pow2``, ``:log1m`` or ``:int``
(``--param lr=1e-4:1e-2:log``); ``--param NAME=A|B|C`` lists choices (strings, booleans or
numbers). ``--exclude-param NAME`` leaves one out.
"""

from __future__ import annotations

import enum
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from autoresearch.cli.args import _split

if TYPE_CHECKING:
    from autoresearch.params import Param, SearchSpace

__all__ = ["ExcludeParamOpt", "ParamOpt", "Sampler", "SamplerOpt", "param_specs"]

_SCALES = {"log", "linear", "pow2", "log1m"}


class Sampler(enum.StrEnum):
    """Which point of the search space the offline proposer tries next."""

    LOCAL = "local"
    RANDOM = "random"
    TPE = "tpe"
    CMAES = "cmaes"


ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Edit the search space: NAME (bring it back), NAME=LOW:HIGH[:log|linear|pow2|int], "
        "NAME=A|B|C (choices). Repeatable."
    ),
]
ExcludeParamOpt = Annotated[
    list[str] | None,
    typer.Option(help="Leave a parameter out of the search (comma-separated, repeatable)."),
]
SamplerOpt = Annotated[
    Sampler | None,
    typer.Option(
        help="How the offline proposer picks the next point: local (ours), random, "
        "tpe or cmaes (Optuna's; pip install 'autoresearch[optuna]'). [default: local]"
    ),
]


def _number(text: str, item: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(
            f"{item!r}: {text!r} is not a number (NAME=LOW:HIGH[:log|linear|pow2|int])",
            param_hint="--param",
        ) from None


def _choice(text: str) -> bool | int | float | str:
    lowered = text.strip()
    if lowered in ("true", "True"):
        return True
    if lowered in ("false", "False"):
        return False
    for kind in (int, float):
        try:
            return kind(lowered)
        except ValueError:
            pass
    return lowered


def param_specs(params: list[str] | None, excludes: list[str] | None) -> list[dict[str, Any]]:
    """The ``params`` entries of the configuration that the two options describe."""
    specs: list[dict[str, Any]] = []
    for item in params or []:
        name, sep, rest = item.partition("=")
        name = name.strip()
        if not name:
            raise typer.BadParameter(f"{item!r} has no NAME", param_hint="--param")
        if not sep:
            specs.append({"name": name, "include": True})
            continue
        if "|" in rest:
            choices = [_choice(c) for c in rest.split("|") if c.strip()]
            specs.append({"name": name, "choices": choices})
            continue
        parts = rest.split(":")
        if len(parts) < 2:
            raise typer.BadParameter(
                f"{item!r}: give a range LOW:HIGH or choices A|B|C", param_hint="--param"
            )
        spec: dict[str, Any] = {
            "name": name,
            "low": _number(parts[0], item),
            "high": _number(parts[1], item),
        }
        for flag in parts[2:]:
            if flag == "int":
                spec["integer"] = True
            elif flag in _SCALES:
                spec["scale"] = flag
            else:
                raise typer.BadParameter(
                    f"{item!r}: {flag!r} is not one of log, linear, pow2, log1m, int",
                    param_hint="--param",
                )
        specs.append(spec)
    specs.extend({"name": name, "exclude": True} for name in _split(excludes))
    return specs


def _range(param: Param) -> str:
    if param.kind == "choice":
        return "|".join(str(c) for c in param.choices or [])
    if param.low is None or param.high is None:
        return ""
    suffix = "" if param.scale == "linear" else f" {param.scale}"
    return f"{param.low:g}..{param.high:g}{suffix}"


WIDE = 120
"""From this terminal width on, the listing is one table with a "why" column."""


def space_table(space: SearchSpace, width: int = WIDE) -> RenderableType:
    """The params listing: tuned parameters first, then those left out and why.

    At ``width`` of :data:`WIDE` or more, a table, one row a parameter with the reason in the
    last column; narrower, two lines a parameter (what and where, then the reason, indented),
    so no name or value is ever broken and the reason wraps between words.
    """
    ordered = sorted(space.params, key=lambda p: (not p.tuned, p.path, p.line))
    rows = [
        (
            [
                param.key,
                f"{param.path}:{param.line}",
                param.style,
                str(param.value),
                _range(param) if param.tuned else "",
            ],
            param.reason if param.tuned else f"left out: {param.excluded}",
            None if param.tuned else "dim",
        )
        for param in ordered
    ]
    if width < WIDE:
        lines: list[RenderableType] = []
        for cells, why, style in rows:
            head = "  ".join(cell for cell in cells if cell)
            lines.append(Text(head, style=style or "bold", no_wrap=True, overflow="ellipsis"))
            lines.append(Padding(Text(why, style=style or ""), (0, 0, 0, 4)))
        return Group(*lines)
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("name", "where", "style", "value", "range"):  # never broken inside a word
        limit = 14 if column == "value" else None
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=limit)
    table.add_column("why", overflow="fold")
    for cells, why, style in rows:
        table.add_row(*cells, why, style=style)
    return table


def space_json(space: SearchSpace) -> str:
    """The space as JSON (camelCase; the value's character span left out)."""
    data = space.to_json_dict()
    for param in data["params"]:
        for key in ("start", "end", "text"):
            param.pop(key, None)
    return json.dumps(data, indent=2)


def space_summary(space: SearchSpace, limit: int = 8, *, listed: bool = False) -> str:
    """One line: what will be tuned and how much was left out (``listed``: under the table)."""
    tuned = space.tuned
    names = ", ".join(p.key for p in tuned[:limit]) + (" …" if len(tuned) > limit else "")
    left = len(space.params) - len(tuned)
    shown = f" ({names})" if tuned else ""
    where = " " if listed else "; see `autoresearch params` "
    return (
        f"search space: {len(tuned)} parameter(s) to tune{shown}, {left} left out{where}"
        "(edit with --param / --exclude-param)"
    )
