"""Ranges from names and values: what a value may become, and why.

Discovery finds a value; this module decides the domain a sampler may explore and says why in a
sentence the params listing shows. The rules keep runs meaningful: ratios, fractions,
probabilities and Adam betas stay inside [0, 1); a value never changes sign or crosses zero;
integers of 1 or more stay at 1 or more; powers of two move in powers of two. Names that set
how a run is measured (eval and log intervals, seeds, time budgets, peak-FLOPs constants) are
not hyperparameters and are left out by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autoresearch.params.model import Kind, Scale, Value

__all__ = ["Domain", "infer_domain", "measurement_reason", "words"]

_WORD = re.compile(r"[a-z]+|[0-9]+")
_ALIASES = {
    "lr": ("learning", "rate"),
    "wd": ("weight", "decay"),
    "bs": ("batch", "size"),
    "embd": ("embed",),
    "emb": ("embed",),
}
_UNIT = {"ratio", "frac", "fraction", "prob", "probability", "dropout", "drop", "momentum"}
_UNIT |= {"beta", "betas", "smoothing", "subsample", "colsample", "keep", "pdrop", "ema", "p"}
_NEAR_ONE = {"beta", "betas", "momentum", "ema"}
_LOGGING = "a logging setting: it changes what is printed, not what is learned"
_RUN = "a run setting (device, workers, ranks), not a hyperparameter"
_BUDGET = "the time or compute budget: changing it changes the measurement, not the model"
_HARDWARE = "a hardware constant used to measure (MFU), not to train"
_MEASURE = {
    "eval": "an evaluation setting: changing it changes how the run is measured",
    "log": _LOGGING,
    "logging": _LOGGING,
    "print": _LOGGING,
    "verbose": _LOGGING,
    "wandb": _LOGGING,
    "save": "a checkpoint setting, not a hyperparameter",
    "every": "how often to evaluate, log or save: it changes the reports, not the model",
    "interval": "how often to evaluate, log or save: it changes the reports, not the model",
    "checkpoint": "a checkpoint setting, not a hyperparameter",
    "ckpt": "a checkpoint setting, not a hyperparameter",
    "seed": "a random seed: changing it re-rolls the dice, it tunes nothing",
    "budget": _BUDGET,
    "timeout": _BUDGET,
    "peak": _HARDWARE,
    "flops": _HARDWARE,
    "device": _RUN,
    "workers": _RUN,
    "port": _RUN,
    "rank": _RUN,
}


_LENGTH = {"iters", "iter", "iterations", "steps", "epochs"}
_HOW_MANY = {"max", "num", "total", "n"}


def words(name: str) -> list[str]:
    """The words of a name, with the usual abbreviations spelled out.

    ``learningRate``, ``LEARNING_RATE`` and ``lr`` all give learning, rate; digits split off
    (``beta2`` gives beta, 2).
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    found = _WORD.findall(spaced)
    return [part for word in found for part in _ALIASES.get(word, (word,))]


def measurement_reason(name: str) -> str | None:
    """Why a name is a measurement or run setting rather than a hyperparameter, or None."""
    named = words(name)
    if {"random", "state"} <= set(named):  # scikit-learn's name for a seed
        return _MEASURE["seed"]
    if set(named) & _LENGTH and (set(named) & _HOW_MANY or named == ["epochs"]):
        return (
            "the training length: a longer run wins by costing more "
            "(--param NAME brings it back if that is what you study)"
        )
    for word in named:
        if word in _MEASURE:
            return _MEASURE[word]
    return None


@dataclass(frozen=True, slots=True)
class Domain:
    """What discovery settles about one value: kind, scale, range and the reason."""

    kind: Kind
    scale: Scale
    low: float | None
    high: float | None
    reason: str
    excluded: str | None = None

    def __post_init__(self) -> None:
        for name in ("low", "high"):  # 3e-5, not 2.9999999999999997e-05
            bound = getattr(self, name)
            if bound is not None:
                object.__setattr__(self, name, float(f"{bound:.6g}"))


def infer_domain(name: str, value: Value, integer_hint: bool = False) -> Domain:
    """The default domain of a value named ``name`` (``integer_hint``: argparse ``type=int``)."""
    if isinstance(value, bool | str):
        what = "a boolean" if isinstance(value, bool) else "a string"
        return Domain(
            "choice",
            "linear",
            None,
            None,
            "",
            f"{what}: tuned only when you list its choices (--param {name}=A|B)",
        )
    if isinstance(value, int) and not integer_hint and not isinstance(value, bool):
        integer_hint = True
    named = words(name)
    if integer_hint and float(value).is_integer():
        return _int_domain(int(value))
    number = float(value)
    if set(named) & _UNIT and 0 <= number <= 1:
        return _unit_domain(number, bool(set(named) & _NEAR_ONE))
    if number == 0:
        return Domain(
            "float", "linear", 0.0, 1.0, "0 gives no scale to go by: 0 to 1 is a guess, set a range"
        )
    if number < 0:
        return Domain(
            "float", "log", number * 10, number / 10, "1/10x to 10x, keeping the sign", None
        )
    return Domain("float", "log", number / 10, number * 10, "1/10x to 10x, on a log scale")


def _int_domain(value: int) -> Domain:
    if value < 0:
        return Domain(
            "int",
            "linear",
            None,
            None,
            "",
            "a negative integer, usually a sentinel like -1 (give a range to tune it)",
        )
    if value == 0:
        return Domain("int", "linear", 0, 16, "0 gives no scale to go by: 0 to 16 is a guess")
    if value >= 8 and value & (value - 1) == 0:
        k = value.bit_length() - 1
        return Domain(
            "int",
            "pow2",
            float(2 ** max(0, k - 3)),
            float(2 ** (k + 3)),
            "a power of two: moves in powers of two, 1/8x to 8x",
        )
    if value >= 4:
        return Domain(
            "int", "log", float(max(1, value // 8)), float(value * 8), "1/8x to 8x, at least 1"
        )
    high = max(8, 4 * value)
    return Domain("int", "linear", 1.0, float(high), f"a small count: 1 to {high}")


def _unit_domain(value: float, near_one: bool) -> Domain:
    if near_one and value >= 0.5 and value < 1:
        gap = 1 - value
        low = max(0.0, 1 - min(gap * 10, 0.5 if value >= 0.75 else 1.0))
        return Domain(
            "float",
            "log1m",
            round(low, 6),
            round(1 - gap / 10, 8),
            "a beta/momentum: 1 - value moves on a log scale and stays inside (0, 1)",
        )
    if value == 0:
        return Domain("float", "linear", 0.0, 0.5, "a ratio or probability at 0: 0 to 0.5")
    if value <= 0.2:
        return Domain(
            "float",
            "log",
            value / 10,
            min(value * 10, 0.95),
            "a ratio or probability: 1/10x to 10x, inside (0, 1)",
        )
    high = 1.0 if value == 1 else 0.99
    return Domain("float", "linear", 0.0, high, "a ratio or probability: stays inside [0, 1]")
