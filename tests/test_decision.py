"""The keep/discard rule on its own: no git, no processes."""

from __future__ import annotations

import pytest

from autoresearch.decision import Policy, Verdict, judge

LOWER = Policy("lower")
HIGHER = Policy("higher")


@pytest.mark.parametrize(
    ("metric", "incumbent", "policy", "status"),
    [
        (0.9, 1.0, LOWER, "keep"),
        (1.0, 1.0, LOWER, "discard"),  # a tie is not an improvement
        (1.1, 1.0, LOWER, "discard"),
        (1.1, 1.0, HIGHER, "keep"),
        (0.9, 1.0, HIGHER, "discard"),
        (5.0, None, LOWER, "keep"),  # nothing to beat yet: the first reading is kept
        (0.75, 1.0, Policy("lower", 0.25), "discard"),  # must beat by strictly more
        (0.74, 1.0, Policy("lower", 0.25), "keep"),
    ],
)
def test_judge(metric: float, incumbent: float | None, policy: Policy, status: str) -> None:
    verdict = judge(metric, incumbent, policy)
    assert verdict.status == status
    assert verdict.reason == ("improved" if status == "keep" else "no improvement")


def test_verdicts_are_values() -> None:
    assert judge(0.5, 1.0, LOWER) == Verdict("keep", "improved")
