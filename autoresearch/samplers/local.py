"""Our sampler: an adaptive local search around the best configuration.

It moves one parameter (sometimes two) per trial, in the parameter's own coordinate (one unit is
"double or halve" on log scales and powers of two, an eighth of the range on linear ones). In a
space of more than six parameters, half the trials move several at once, up to a third of them:
one or two at a time is too slow to cross a large space in a few dozen runs. Each
parameter keeps a step and a preferred direction: a kept change grows the step and repeats the
direction, a discarded one shrinks it and turns around. A crash shrinks the step, turns around
and remembers the value; only when two different values crash beyond the best, with no value
that ran fine between, does the lower of them become a fence. So a divisibility ``assert`` at
123 does not fence off 128.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from autoresearch.params.model import Param, Value
from autoresearch.samplers.base import AskRequest, Config, Trial

__all__ = ["LocalSampler"]

_STEP_INIT = 1.0
_STEP_MIN = 0.1
_STEP_MAX = 2.0
_GROW, _SHRINK, _SHRINK_SHARED, _SHRINK_CRASH = 1.5, 0.7, 0.85, 0.5
_MAGNITUDE_CAP = 8.0
_ATTEMPTS = 48
_SWEEP_LEVELS = 32
_PAIR_LEVELS = 16
_PATTERN = 0.6  # how often a kept move is repeated as it was
_WIDE = 6  # more parameters than this: move more of them at once
_FAILED = ("crash", "timeout")


@dataclass(slots=True)
class _State:
    """What the search has learned about one parameter (values in sampler coordinates)."""

    step: float = _STEP_INIT
    direction: int = 0
    """In value order: 1 means larger values."""
    last_kept: bool = False
    fails: int = 0
    crashed: list[float] = field(default_factory=list)
    ran: list[float] = field(default_factory=list)

    def fences(self, param: Param, t: float) -> tuple[float, float]:
        """Exclusive bounds around ``t`` (sampler coordinates).

        A bound sits at a crashed value only when another crashed beyond it and nothing
        between ran fine.
        """
        crashed = [(param.to_t(c), _round_number(param, c)) for c in self.crashed]
        ran = [param.to_t(r) for r in self.ran]
        return _fence(crashed, ran, t, -1), _fence(crashed, ran, t, 1)


def _fence(crashed: list[tuple[float, bool]], ran: list[float], t: float, side: int) -> float:
    """The nearest crash beyond ``t`` that fences off the rest of that side, or infinity.

    It needs another crash further on, no good run beyond it, and a round value among the
    crashes from it on: odd widths crashing on a divisibility check fence nothing; a learning
    rate that diverges everywhere past a point does.
    """
    beyond = sorted((c for c in crashed if (c[0] - t) * side > 0), key=lambda c: c[0] * side)
    for index, (crash, _) in enumerate(beyond):
        if len(beyond) - index < 2:
            break
        round_beyond = any(is_round for _, is_round in beyond[index:])
        if round_beyond and not any((ok - crash) * side > 0 for ok in ran):
            return crash
    return math.inf * side


def _round_number(param: Param, value: float) -> bool:
    """Floats always; integers when a multiple of 8 or a power of two (sizes that divide)."""
    if param.kind != "int":
        return True
    number = abs(int(value))
    return number % 8 == 0 or (number > 0 and number & (number - 1) == 0)


def _t_sign(param: Param, value: Value) -> int:
    """1 when larger values have larger sampler coordinates (not so for negative log values)."""
    negative = isinstance(value, int | float) and float(value) < 0
    return -1 if param.scale in ("log", "pow2") and negative else 1


class LocalSampler:
    """Adaptive, seeded, non-repeating local search (the default sampler)."""

    name = "local"

    def __init__(self, max_params_per_step: int | None = None) -> None:
        if max_params_per_step is not None and max_params_per_step < 1:
            raise ValueError(f"max_params_per_step must be at least 1, got {max_params_per_step}")
        self.max_params_per_step = max_params_per_step
        """At most this many parameters move in one trial; ``None``: 2, or a third of the
        parameters in a space of more than six."""
        self._states: dict[str, _State] = {}
        self._pattern: list[str] = []
        self._coords: dict[str, Callable[[Value], float]] = {}

    def reset(self) -> None:
        """Forget everything learned."""
        self._states.clear()
        self._pattern = []

    def step_size(self, key: str) -> float:
        """The current step of ``key`` in natural units (1.0: double or halve)."""
        state = self._states.get(key)
        return state.step if state else _STEP_INIT

    def direction(self, key: str) -> int:
        """The preferred direction of ``key``: 1 up, -1 down, 0 none yet."""
        state = self._states.get(key)
        return state.direction if state else 0

    def fails(self, key: str) -> int:
        """How many recent tries of ``key`` did not help."""
        state = self._states.get(key)
        return state.fails if state else 0

    def tell(self, trial: Trial) -> None:
        """Grow, shrink or turn the step of each moved parameter by the trial's outcome."""
        moves = {
            key: (old, trial.params[key])
            for key, old in trial.changed.items()
            if key in trial.params and old != trial.params[key]
        }
        shared, status = len(moves) > 1, trial.status
        for key, (old, new) in moves.items():
            state = self._states.setdefault(key, _State())
            sign = 1 if _order(new) > _order(old) else -1
            coordinate = _order(new)  # a value; ask() maps it to sampler coordinates
            if status == "keep":
                state.step = min(state.step * _GROW, _STEP_MAX)
                state.direction, state.last_kept, state.fails = sign, True, 0
                state.ran.append(coordinate)
                continue
            state.last_kept = False
            state.fails += 1
            if status == "discard":
                state.step = max(state.step * (_SHRINK_SHARED if shared else _SHRINK), _STEP_MIN)
                state.direction = state.direction if shared else -sign
                state.ran.append(coordinate)
                continue
            state.step = max(state.step * _SHRINK_CRASH, _STEP_MIN)
            state.direction = -sign
            if status in _FAILED and not shared:
                state.crashed.append(coordinate)
        if status == "keep":
            for key, state in self._states.items():
                if key not in moves:
                    state.last_kept = False
                    state.fails //= 2
        if moves:  # a kept move is repeated next (a pattern move) until one is not kept
            self._pattern = sorted(moves) if status == "keep" else []

    def ask(self, request: AskRequest) -> Config | None:
        """Move one or two parameters from the incumbent to an untried configuration."""
        params = {p.key: p for p in request.params}
        keys = list(params)
        if not keys:
            return None
        weights = [self._weight(k, request.hint_weights.get(k, 1.0)) for k in keys]
        current = dict(request.incumbent)
        pattern = [k for k in self._pattern if k in params]
        if pattern and request.rng.random() < _PATTERN:
            changed = self._repeat(params, pattern, current)
            if changed and not request.seen({**current, **changed}):
                return {**current, **changed}
        for attempt in range(_ATTEMPTS):
            changed = self._draw(
                request.rng, params, keys, weights, current=current, boost=1.3**attempt
            )
            if changed and not request.seen({**current, **changed}):
                return {**current, **changed}
        swept = self._sweep(request.rng, params, keys, current, request.seen)
        return None if swept is None else {**current, **swept}

    def _repeat(self, params: Mapping[str, Param], keys: list[str], current: Config) -> Config:
        """The last kept move again, each parameter the way it went, with its grown step."""
        changed: Config = {}
        for key in keys:
            param, state = params[key], self._states.get(key) or _State()
            if param.kind == "choice" or not state.direction:
                continue
            sign = state.direction * _t_sign(param, current[key])
            new = _move(param, current[key], sign, state.step, state)
            if new is not None:
                changed[key] = new
        return changed

    def _weight(self, key: str, hint: float) -> float:
        state = self._states.get(key) or _State()
        weight = 1.0 / (1.0 + 0.5 * state.fails)
        if state.last_kept:
            weight *= 3.0
        return weight * hint

    def _draw(
        self,
        rng: random.Random,
        params: Mapping[str, Param],
        keys: list[str],
        weights: list[float],
        *,
        current: Config,
        boost: float,
    ) -> Config:
        count, chance = 1, 0.25
        most = self.max_params_per_step
        if most is None:
            most = 2
            if len(keys) > _WIDE:
                most, chance = len(keys) // 3, 0.5
        most = min(most, len(keys))
        if most >= 2 and rng.random() < chance:
            count = rng.randint(2, most)
        pool, pool_weights = list(keys), list(weights)
        changed: Config = {}
        for _ in range(count):
            index = rng.choices(range(len(pool)), weights=pool_weights)[0]
            key = pool.pop(index)
            pool_weights.pop(index)
            param, state = params[key], self._states.get(key) or _State()
            if param.kind == "choice":
                others = [c for c in param.choices or [] if c != current[key]]
                if others:
                    changed[key] = rng.choice(others)
                continue
            direction = state.direction * _t_sign(param, current[key])
            sign = direction if direction and rng.random() < 0.8 else rng.choice((-1, 1))
            magnitude = min(state.step * boost, _MAGNITUDE_CAP) * rng.uniform(0.75, 1.25)
            new = _move(param, current[key], sign, magnitude, state)
            if new is None:
                new = _move(param, current[key], -sign, magnitude, state)
            if new is not None:
                changed[key] = new
        return changed

    def _sweep(
        self,
        rng: random.Random,
        params: Mapping[str, Param],
        keys: list[str],
        current: Config,
        seen: Callable[[Mapping[str, Value]], bool],
    ) -> Config | None:
        """Last resort: walk outwards from the best, one parameter at a time, then in pairs."""
        order = list(keys)
        rng.shuffle(order)
        cache: dict[tuple[str, int], list[Value]] = {}

        def near(key: str, level: int) -> list[Value]:
            if (key, level) not in cache:
                param, state = params[key], self._states.get(key) or _State()
                found: list[Value] = []
                if param.kind == "choice":
                    options = [c for c in param.choices or [] if c != current[key]]
                    found = options[level : level + 1]
                else:
                    for sign in (1, -1):
                        new = _nudge(param, current[key], sign, level + 1, state)
                        if new is None:
                            new = _move(param, current[key], sign, _STEP_MIN * 1.15**level, state)
                        if new is not None:
                            found.append(new)
                cache[key, level] = found
            return cache[key, level]

        for level in range(_SWEEP_LEVELS):
            for key in order:
                for new in near(key, level):
                    if not seen({**current, key: new}):
                        return {key: new}
        if self.max_params_per_step == 1:
            return None
        for total in range(2 * _PAIR_LEVELS - 1):
            for level_a in range(
                max(0, total - _PAIR_LEVELS + 1), min(total, _PAIR_LEVELS - 1) + 1
            ):
                for a, b in itertools.combinations(order, 2):
                    for new_a in near(a, level_a):
                        for new_b in near(b, total - level_a):
                            if not seen({**current, a: new_a, b: new_b}):
                                return {a: new_a, b: new_b}
        return None


def _order(value: Value) -> float:
    """A number to compare values by (booleans and strings have no order)."""
    return float(value) if isinstance(value, int | float) else 0.0


def _move(param: Param, value: Value, sign: int, magnitude: float, state: _State) -> Value | None:
    """``value`` moved ``magnitude`` natural units up (1) or down (-1); None if it cannot."""
    t = param.to_t(value)
    lo, hi = param.t_bounds()
    fence_lo, fence_hi = state.fences(param, t)
    target = t + sign * magnitude * param.unit()
    limit = min(hi, fence_hi) if sign > 0 else max(lo, fence_lo)
    if (target - limit) * sign >= 0:
        fenced = (fence_hi if sign > 0 else fence_lo) == limit
        target = (t + limit) / 2 if fenced else limit
    new = param.from_t(target)
    if param.kind == "int" and state.crashed and isinstance(new, int) and abs(new) >= 16:
        snapped = 8 * round(new / 8)  # after a crash, try sizes that divide evenly
        if snapped != value and param.contains(snapped):
            new = snapped
    if new == value and param.kind == "int":
        return _nudge(param, value, sign, 1, state)
    if new == value or not param.contains(new):
        return None
    new_t = param.to_t(new)
    if not fence_lo < new_t < fence_hi:
        return None
    return new


def _nudge(param: Param, value: Value, sign: int, count: int, state: _State) -> Value | None:
    """An integer ``count`` places away (a power of two for pow2); None for floats or if out."""
    if param.kind != "int" or not isinstance(value, int | float):
        return None
    if param.scale == "pow2":
        new: Value = int(2 ** (round(param.to_t(value)) + sign * count))
    else:
        new = int(value) + sign * count
    fence_lo, fence_hi = state.fences(param, param.to_t(value))
    if not param.contains(new) or not fence_lo < param.to_t(new) < fence_hi:
        return None
    return new
