"""How much a metric moves by chance: the noise floor under keep/discard decisions.

Training runs are noisy: the same code, run again with another seed, gives another number.
When a research measures commits more than once (``repeats``, ``baseline_repeats``), the spread
of repeated measurements of one commit estimates that noise. :class:`NoiseFloor` pools it over
every commit measured more than once (the pooled standard deviation, with its degrees of
freedom), and :func:`one_sided_t` says whether a candidate's mean beats the incumbent's mean by
more than chance would, at a given confidence.

The test is Welch's idea with a pooled variance: a one-sided two-sample t-test. One-sided,
because a change is only ever kept for being better, never for being different; pooled,
because all commits of a research run the same experiment, so one estimate of its noise (from
many commits) is much better than two estimates from a handful of runs each. The Student t
quantile is computed here (regularized incomplete beta by continued fraction, then bisection),
so no statistics package is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["NoiseFloor", "Significance", "one_sided_t", "student_t_cdf", "student_t_ppf"]


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t distribution with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def student_t_ppf(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0 < p < 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a probability must be between 0 and 1, got {p}")
    if p < 0.5:
        return -student_t_ppf(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


@dataclass(frozen=True)
class NoiseFloor:
    """The pooled spread of repeated measurements of the same commits."""

    sigma: float | None
    """The pooled standard deviation, or None before any commit was measured twice."""
    df: int
    """Its degrees of freedom: the measurements, less one per commit measured."""

    @classmethod
    def pool(cls, groups: Iterable[Sequence[float]]) -> NoiseFloor:
        """Pool the variance of every group of repeated measurements (groups of one add none)."""
        squares, df = 0.0, 0
        for values in groups:
            if len(values) < 2:
                continue
            mean = sum(values) / len(values)
            squares += sum((v - mean) ** 2 for v in values)
            df += len(values) - 1
        if df == 0:
            return cls(None, 0)
        return cls(math.sqrt(squares / df), df)


@dataclass(frozen=True)
class Significance:
    """The outcome of comparing a candidate's measurements with the incumbent's."""

    better: bool
    """The candidate's mean beats the incumbent's by more than the threshold."""
    gain: float
    """How much better the candidate's mean is (in the metric's direction; negative: worse)."""
    threshold: float
    """The gain needed: the t quantile times the standard error, plus ``min_improvement``."""
    sigma: float | None
    n: int
    reason: str


def one_sided_t(
    candidate: Sequence[float],
    incumbent: Sequence[float],
    noise: NoiseFloor,
    *,
    lower_is_better: bool,
    confidence: float,
    min_improvement: float = 0.0,
    name: str = "metric",
) -> Significance:
    """Whether ``candidate``'s mean beats ``incumbent``'s by more than chance would.

    The gain must exceed ``t(confidence, df) * sigma * sqrt(1/n_c + 1/n_i)`` plus
    ``min_improvement``, with ``sigma`` and ``df`` from ``noise``. Without a noise estimate
    (nothing measured twice yet) only ``min_improvement`` applies, as with single runs.
    """
    mean_c = sum(candidate) / len(candidate)
    mean_i = sum(incumbent) / len(incumbent)
    gain = (mean_i - mean_c) if lower_is_better else (mean_c - mean_i)
    n = len(candidate)
    if noise.sigma is None:
        threshold = min_improvement
        better = gain > threshold
        reason = "improved" if better else "no improvement"
        return Significance(better, gain, threshold, None, n, reason)
    error = noise.sigma * math.sqrt(1.0 / len(candidate) + 1.0 / len(incumbent))
    threshold = student_t_ppf(confidence, noise.df) * error + min_improvement
    better = gain > threshold
    sign = "+" if gain >= 0 else "-"
    shown = f"{sign}{abs(gain):.4g}"
    spread = f"σ={noise.sigma:.2g}, n={n}"  # noqa: RUF001
    if better:
        reason = f"improved by {shown} {name}, beyond the noise ({spread}, needed {threshold:.2g})"
    elif gain > 0:
        reason = f"{shown} is within the noise ({spread}, needed {threshold:.2g})"
    else:
        reason = f"no improvement ({shown}, {spread})"
    return Significance(better, gain, threshold, noise.sigma, n, reason)
