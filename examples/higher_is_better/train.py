"""A small classifier in pure Python (stdlib only) whose score is an accuracy: higher is better.

The data are points in the plane: class 1 inside a wobbly ring, class 0 around it, with some
label noise, generated from a fixed seed so every run is deterministic. The model is logistic
regression on polynomial features of the coordinates up to DEGREE, trained with mini-batch SGD
for a fixed compute budget (bigger batches mean fewer steps). The last line printed is the
accuracy on held-out points, ``accuracy: <fraction>``.
"""

import math
import random
import sys

# Hyperparameters: the research agent may change these.
LEARNING_RATE = 0.02
WEIGHT_DECAY = 0.05
BATCH_SIZE = 64
DEGREE = 1

# Fixed for every run, so results are comparable: do not tune it.
COMPUTE_BUDGET = 6 * 10**4  # sample-gradients; a budget, so the proposer leaves it out
SEED = 7


def make_points(rng: random.Random, n: int) -> list[tuple[float, float, int]]:
    """``n`` labelled points: inside the ring is class 1, outside is class 0; 4% label noise."""
    points = []
    for _ in range(n):
        x, y = rng.uniform(-2.0, 2.0), rng.uniform(-2.0, 2.0)
        angle = math.atan2(y, x)
        radius = 1.2 + 0.25 * math.sin(3 * angle)
        label = 1 if math.hypot(x, y) < radius else 0
        if rng.random() < 0.04:
            label = 1 - label
        points.append((x, y, label))
    return points


def features(x: float, y: float) -> list[float]:
    """1 and every monomial x^i * y^j with 1 <= i + j <= DEGREE."""
    out = [1.0]
    for total in range(1, DEGREE + 1):
        for i in range(total + 1):
            out.append(x**i * y ** (total - i))
    return out


def dot(weights: list[float], xs: list[float]) -> float:
    """The model's logit for one point."""
    return sum(w * v for w, v in zip(weights, xs, strict=True))


def main() -> int:
    rng = random.Random(SEED)
    train = [(features(x, y), label) for x, y, label in make_points(rng, 800)]
    val = [(features(x, y), label) for x, y, label in make_points(rng, 400)]
    weights = [0.0] * len(train[0][0])
    steps = COMPUTE_BUDGET // max(1, BATCH_SIZE)
    print(f"degree: {DEGREE}  features: {len(weights)}  steps: {steps}  batch: {BATCH_SIZE}")
    for step in range(steps):
        batch = rng.sample(train, min(BATCH_SIZE, len(train)))
        grad = [0.0] * len(weights)
        for xs, label in batch:
            z = dot(weights, xs)
            p = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
            for k, v in enumerate(xs):
                grad[k] += (p - label) * v
        for k in range(len(weights)):
            weights[k] -= LEARNING_RATE * (grad[k] / len(batch) + WEIGHT_DECAY * weights[k])
        if not all(math.isfinite(w) and abs(w) < 1e6 for w in weights):
            print(f"error: training diverged at step {step}")
            return 1
    correct = sum((dot(weights, xs) > 0) == (label == 1) for xs, label in val)
    print(f"accuracy: {correct / len(val):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
