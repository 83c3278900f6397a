"""The offline proposer: a seeded local search over the numeric constants of the mutable code.

:class:`LocalProposer` needs no network and no key. It reads module-level assignments such as
``LEARNING_RATE = 0.01`` from the mutable ``.py`` files, moves one or two of them per cycle and
rewrites only those literals. Each parameter keeps a step size and a preferred direction: a kept
change grows the step and repeats the direction, a discarded one shrinks it and turns around, a
crash shrinks it further and fences off the value that crashed. Every configuration it proposes is
stored in the plan's metadata (``proposal`` in runs.jsonl), so a restarted proposer replays the
ledger, never repeats a configuration and continues where it stopped. Randomness comes from
``random.Random`` seeded with the seed and the number of records seen, so the same ledger and seed
always give the same next proposal.
"""

from __future__ import annotations

import ast
import itertools
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from autoresearch.edits import ChangeSet, Edit
from autoresearch.errors import ProposerError
from autoresearch.proposers.base import Analysis, Plan, ResearchContext
from autoresearch.results import RunRecord, Usage

__all__ = ["LocalProposer"]

Number = int | float

_STEP_INIT = 1.0  # in log2 units for multiplicative moves: the first move doubles or halves
_STEP_MIN = 0.1
_STEP_MAX = 2.0
_GROW, _SHRINK, _SHRINK_SHARED, _SHRINK_CRASH = 1.5, 0.7, 0.85, 0.5
_MAGNITUDE_CAP = 8.0
_ATTEMPTS = 48
_SWEEP_LEVELS = 32  # the sweep's largest move is _STEP_MIN * 1.15**31, about 2**7
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WORD = re.compile(r"[a-z0-9]+")
_ALIASES = {"lr": ("learning", "rate"), "wd": ("weight", "decay"), "bs": ("batch", "size")}


@dataclass(frozen=True, slots=True)
class _Param:
    """One tunable literal: its display key, where its value sits in which file, its value."""

    key: str
    name: str
    path: str
    value: Number
    start: int
    end: int


@dataclass(slots=True)
class _State:
    """What the search has learned about one parameter."""

    step: float = _STEP_INIT
    direction: int = 0
    last_kept: bool = False
    fails: int = 0
    low: float = -math.inf
    high: float = math.inf


class LocalProposer:
    """Offline default proposer: an adaptive, seeded, non-repeating hyperparameter search.

    It only changes module-level ``NAME = <number>`` assignments in mutable ``.py`` files, which
    makes it useful for tuning and for trying the engine without a model provider; for any other
    kind of change configure an LLM provider.
    """

    name = "local"

    def __init__(self, seed: int = 0, max_params_per_step: int = 2) -> None:
        if max_params_per_step < 1:
            raise ValueError(f"max_params_per_step must be at least 1, got {max_params_per_step}")
        self.seed = seed
        self.max_params_per_step = max_params_per_step
        self._observed = 0
        self._states: dict[str, _State] = {}
        self._tried: set[tuple[tuple[str, Number], ...]] = set()
        self._scan_cache: dict[tuple[str, str], list[tuple[str, Number, int, int]]] = {}

    @property
    def observed(self) -> int:
        """How many ledger records this proposer has learned from."""
        return self._observed

    def step_size(self, key: str) -> float:
        """Return the current step of a parameter in log2 units (1.0 means "double or halve")."""
        state = self._states.get(key)
        return state.step if state else _STEP_INIT

    async def prime(self, history: Sequence[RunRecord]) -> None:
        """Forget everything, then learn from the whole ledger, oldest record first."""
        self._observed = 0
        self._states.clear()
        self._tried.clear()
        for record in history:
            self._learn(record)

    async def observe(self, record: RunRecord) -> None:
        """Learn from one finished cycle."""
        self._learn(record)

    async def plan(self, context: ResearchContext, analysis: Analysis, hint: str | None) -> Plan:
        """Pick one or two parameters and move them to a configuration not tried before."""
        params = self._params(context)
        if not params:
            names = sorted(context.mutable_files)
            files = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise ProposerError(
                "the local proposer needs module-level `NAME = <number>` assignments in a "
                f"mutable .py file and found none (mutable files: {files or 'none'}); "
                "configure an LLM provider to make other kinds of changes"
            )
        current: dict[str, Number] = {p.key: p.value for p in params}
        rng = random.Random(f"local:{self.seed}:{self._observed}")
        scores = _hint_scores(hint, list(current))
        weights = [self._weight(p.key, scores.get(p.key, 0.0)) for p in params]
        keys = [p.key for p in params]
        running = {  # configurations other slots are measuring right now
            _config_key({str(k): v for k, v in plan.metadata["params"].items()})
            for plan in analysis.in_flight
            if isinstance(plan.metadata.get("params"), Mapping)
            and all(_is_number(v) for v in plan.metadata["params"].values())
        }
        seen = self._seen_near(current, running)
        changed: dict[str, Number] | None = None
        for attempt in range(_ATTEMPTS):
            changed = self._draw(rng, keys, weights, current, 1.3**attempt)
            if changed is not None and not seen(changed):
                break
            changed = None
        if changed is None:
            changed = self._sweep(rng, keys, current, seen)
        if changed is None:
            raise ProposerError(
                "the local proposer found no untried configuration near the current best; "
                "every nearby setting has been run (an LLM provider can try other changes)"
            )
        return self._make_plan(context, analysis, current, changed)

    async def implement(self, context: ResearchContext, plan: Plan) -> ChangeSet:
        """Rewrite only the changed literals; every other byte of the files stays as it was."""
        changed = plan.metadata.get("changed")
        if not isinstance(changed, Mapping) or not changed:
            raise ProposerError("the plan was not made by the local proposer (no 'changed' map)")
        params = {p.key: p for p in self._params(context)}
        by_path: dict[str, list[tuple[_Param, Number]]] = {}
        for key, pair in changed.items():
            param = params.get(key)
            if param is None:
                raise ProposerError(f"{key} is no longer a numeric assignment in the mutable files")
            new = pair[1] if isinstance(pair, Sequence) and len(pair) == 2 else None
            if not isinstance(new, int | float) or isinstance(new, bool) or not math.isfinite(new):
                raise ProposerError(f"the plan's new value for {key} is not a finite number")
            if isinstance(param.value, int) and isinstance(new, float) and new.is_integer():
                new = int(new)
            by_path.setdefault(param.path, []).append((param, new))
        edits = []
        for path, items in sorted(by_path.items()):
            text = context.mutable_files[path]
            for param, new in sorted(items, key=lambda item: item[0].start, reverse=True):
                text = text[: param.start] + _format(new) + text[param.end :]
            edits.append(Edit(path=path, content=text))
        return ChangeSet(edits=edits)

    async def repair(
        self, context: ResearchContext, plan: Plan, changes: ChangeSet, problem: str
    ) -> ChangeSet | None:
        """Give up: replacing a number with a number leaves nothing to repair."""
        return None

    def _learn(self, record: RunRecord) -> None:
        self._observed += 1
        proposal = record.proposal or {}
        params, changed = proposal.get("params"), proposal.get("changed")
        if not isinstance(params, Mapping) or not isinstance(changed, Mapping):
            return
        moves: dict[str, tuple[float, float]] = {}
        for key, pair in changed.items():
            valid = isinstance(pair, Sequence) and len(pair) == 2 and all(map(_is_number, pair))
            if valid and pair[0] != pair[1]:
                moves[str(key)] = (pair[0], pair[1])
        if all(_is_number(v) for v in params.values()):
            tried = {str(k): v for k, v in params.items()}
            self._tried.add(_config_key(tried))
            self._tried.add(_config_key({**tried, **{k: old for k, (old, _) in moves.items()}}))
        shared, status = len(moves) > 1, record.status
        for key, (old, new) in moves.items():
            state = self._states.setdefault(key, _State())
            sign = 1 if new > old else -1
            if status == "keep":
                state.step = min(state.step * _GROW, _STEP_MAX)
                state.direction, state.last_kept, state.fails = sign, True, 0
                continue
            state.last_kept = False
            state.fails += 1
            if status == "discard":
                state.step = max(state.step * (_SHRINK_SHARED if shared else _SHRINK), _STEP_MIN)
                state.direction = state.direction if shared else -sign
                continue
            state.step = max(state.step * _SHRINK_CRASH, _STEP_MIN)
            state.direction = -sign
            if not shared and sign > 0:
                state.high = min(state.high, new)
            elif not shared:
                state.low = max(state.low, new)
        if status == "keep":
            for key, state in self._states.items():
                if key not in moves:
                    state.last_kept = False
                    state.fails //= 2

    def _params(self, context: ResearchContext) -> list[_Param]:
        found: list[_Param] = []
        for path in sorted(context.mutable_files):
            if not path.endswith(".py"):
                continue
            text = context.mutable_files[path]
            cache_key = (path, text)
            if cache_key not in self._scan_cache:
                if len(self._scan_cache) >= 64:
                    self._scan_cache.clear()
                self._scan_cache[cache_key] = _scan(text)
            for name, value, start, end in self._scan_cache[cache_key]:
                found.append(_Param(name, name, path, value, start, end))
        counts: dict[str, int] = {}
        for param in found:
            counts[param.name] = counts.get(param.name, 0) + 1
        return [
            _Param(f"{p.path}:{p.name}", p.name, p.path, p.value, p.start, p.end)
            if counts[p.name] > 1
            else p
            for p in found
        ]

    def _weight(self, key: str, hint_score: float) -> float:
        state = self._states.get(key) or _State()
        weight = 1.0 / (1.0 + 0.5 * state.fails)
        if state.last_kept:
            weight *= 3.0
        return weight * (1.0 + 12.0 * hint_score**2)

    def _draw(
        self,
        rng: random.Random,
        keys: list[str],
        weights: list[float],
        current: dict[str, Number],
        boost: float,
    ) -> dict[str, Number] | None:
        count = 1
        most = min(self.max_params_per_step, len(keys))
        if most >= 2 and rng.random() < 0.25:
            count = rng.randint(2, most)
        pool, pool_weights = list(keys), list(weights)
        changed: dict[str, Number] = {}
        for _ in range(count):
            index = rng.choices(range(len(pool)), weights=pool_weights)[0]
            key = pool.pop(index)
            pool_weights.pop(index)
            state = self._states.get(key) or _State()
            sign = (
                state.direction if state.direction and rng.random() < 0.8 else rng.choice((-1, 1))
            )
            magnitude = min(state.step * boost, _MAGNITUDE_CAP) * rng.uniform(0.75, 1.25)
            new = _move(current[key], sign, magnitude, state)
            if new is None:
                new = _move(current[key], -sign, magnitude, state)
            if new is not None:
                changed[key] = new
        return changed or None

    def _sweep(
        self,
        rng: random.Random,
        keys: list[str],
        current: dict[str, Number],
        seen: Callable[[dict[str, Number]], bool],
    ) -> dict[str, Number] | None:
        """Last resort: walk outwards from the best, one parameter at a time, then in pairs."""
        order = list(keys)
        rng.shuffle(order)
        cache: dict[tuple[str, int], list[Number]] = {}

        def near(key: str, level: int) -> list[Number]:
            if (key, level) in cache:
                return cache[key, level]
            value, state = current[key], self._states.get(key) or _State()
            found: list[Number] = []
            for sign in (1, -1):
                new: Number | None = value + sign * (level + 1) if isinstance(value, int) else None
                if new is None or not state.low < new < state.high:
                    new = _move(value, sign, _STEP_MIN * 1.15**level, state)
                if new is not None:
                    found.append(new)
            cache[key, level] = found
            return found

        for level in range(_SWEEP_LEVELS):
            for key in order:
                for new in near(key, level):
                    if not seen({key: new}):
                        return {key: new}
        if self.max_params_per_step < 2:
            return None
        for total in range(15):
            for level_a in range(max(0, total - 7), min(total, 7) + 1):
                for a, b in itertools.combinations(order, 2):
                    for new_a in near(a, level_a):
                        for new_b in near(b, total - level_a):
                            if not seen({a: new_a, b: new_b}):
                                return {a: new_a, b: new_b}
        return None

    def _seen_near(
        self, current: dict[str, Number], running: set[tuple[tuple[str, Number], ...]]
    ) -> Callable[[dict[str, Number]], bool]:
        """A fast membership test for "current with these changes" in the tried set.

        ``running`` holds configurations being measured now, which count as tried.
        """
        base = list(_config_key(current))
        index = {key: i for i, (key, _) in enumerate(base)}
        tried = self._tried

        def seen(changed: dict[str, Number]) -> bool:
            items = base.copy()
            for key, value in changed.items():
                items[index[key]] = (key, value)
            config = tuple(items)
            return config in tried or config in running

        return seen

    def _make_plan(
        self,
        context: ResearchContext,
        analysis: Analysis,
        current: dict[str, Number],
        changed: dict[str, Number],
    ) -> Plan:
        description = ", ".join(
            f"{key} {_format(current[key])} -> {_format(new)}" for key, new in changed.items()
        )
        reasons = []
        for key, new in changed.items():
            state = self._states.get(key) or _State()
            if state.last_kept and (new > current[key]) == (state.direction > 0):
                reasons.append(f"{key} improved last time in this direction")
            elif state.fails:
                reasons.append(f"{key} did not help in {state.fails} recent tries, smaller steps")
            else:
                reasons.append(f"{key} is being explored")
        metric = context.config.metric
        if analysis.best_metric is not None:
            reasons.append(
                f"best {metric.name} so far {analysis.best_metric:g} ({metric.direction})"
            )
        return Plan(
            description=description,
            rationale="Local search: " + "; ".join(reasons) + ".",
            metadata={
                "params": {**current, **changed},
                "changed": {key: [current[key], new] for key, new in changed.items()},
                "steps": {key: round(self.step_size(key), 4) for key in changed},
            },
            usage=Usage(),
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _config_key(config: Mapping[str, Number]) -> tuple[tuple[str, Number], ...]:
    return tuple(sorted(config.items()))


def _format(value: Number) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _literal(node: ast.expr) -> Number | None:
    """Return the number a literal (optionally negated) denotes; None for anything else."""
    negate = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    if isinstance(node, ast.UnaryOp) and negate:
        node = node.operand
    if not isinstance(node, ast.Constant):
        return None
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return -value if negate else value


def _scan(text: str) -> list[tuple[str, Number, int, int]]:
    """Module-level ``NAME = <number>`` assignments: name, value and the value's char span."""
    bom = 1 if text.startswith("\ufeff") else 0
    source = text[bom:]
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    starts = [0, *(m.end() for m in _LINE_BREAK.finditer(source))]

    def offset(line: int, col: int) -> int:
        begin = starts[line - 1]
        end = starts[line] if line < len(starts) else len(source)
        return bom + begin + len(source[begin:end].encode()[:col].decode(errors="ignore"))

    last: dict[str, tuple[str, Number, int, int] | None] = {}
    for node in tree.body:
        targets: list[ast.expr]
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        number = _literal(value)
        target = targets[0]
        if (
            number is not None
            and len(targets) == 1
            and isinstance(target, ast.Name)
            and value.end_lineno is not None
            and value.end_col_offset is not None
        ):
            span = (
                offset(value.lineno, value.col_offset),
                offset(value.end_lineno, value.end_col_offset),
            )
            last[target.id] = (target.id, number, *span)
            continue
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    last[sub.id] = None
    return [entry for name, entry in last.items() if entry is not None and not _skipped(name)]


def _skipped(name: str) -> bool:
    """Dunders and random seeds: changing them tunes nothing, it only re-rolls the dice."""
    return (name.startswith("__") and name.endswith("__")) or "seed" in _words(name)


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    words = _WORD.findall(spaced)
    return [part for word in words for part in _ALIASES.get(word, (word,))]


def _hint_scores(hint: str | None, keys: list[str]) -> dict[str, float]:
    """Score each parameter by the fraction of its name words that the hint mentions."""
    if not hint:
        return {}
    mentioned = set(_WORD.findall(hint.lower()))
    scores = {}
    for key in keys:
        words = _words(key.rsplit(":", 1)[-1])
        if words:
            scores[key] = sum(word in mentioned for word in words) / len(words)
    return scores


def _round(value: float, old: float) -> float | None:
    """``value`` with as few significant digits (4 or more) as keep it different from ``old``."""
    for digits in range(4, 18):
        rounded = float(f"{value:.{digits}g}")
        if rounded != old:
            return rounded + 0.0  # turns -0.0 into 0.0
    return None


def _move(value: Number, sign: int, magnitude: float, state: _State) -> Number | None:
    """Move ``value`` up (sign 1) or down (-1); None when that way is fenced off by a crash."""
    new: Number | None
    if isinstance(value, int):
        if value >= 4:
            new = max(1, round(value * 2.0 ** (sign * magnitude)))
        else:
            new = value + sign * max(1, round(magnitude * max(1.0, abs(value) / 2)))
        if new == value:
            new = value + sign
        if new * value < 0:  # stop at zero rather than flip the sign
            new = 0
    elif value > 0:
        new = _round(value * 2.0 ** (sign * magnitude), value)
    else:
        new = _round(value + sign * magnitude * (abs(value) / 2 or 0.1), value)
        if new is not None and new * value < 0:
            new = 0.0
    if new is None or state.low < new < state.high:
        return new
    bound = state.high if sign > 0 else state.low
    if not (state.low < value < state.high):
        return None
    if isinstance(value, int):
        middle = (value + bound) / 2
        new = math.floor(middle) if sign > 0 else math.ceil(middle)
    else:
        middle = math.sqrt(value * bound) if value > 0 and bound > 0 else (value + bound) / 2
        new = _round(middle, value)
    if new is None or new == value or not state.low < new < state.high:
        return None
    return new
