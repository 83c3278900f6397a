"""A tiny character-level language model, trained with SGD in pure Python (stdlib only).

The model predicts the next character from the previous CONTEXT characters: for every length
k = 1..CONTEXT, the last k characters select a learned row of logits; the rows are summed with a
bias and passed through a softmax (a log-linear n-gram model). The text is synthetic but structured
(words built from syllables, with preferred word pairs), generated from a fixed seed, so every
run is deterministic. Like a real training run with a fixed time budget, the amount of compute
is fixed: bigger batches or more context mean fewer optimizer steps. The last line printed is
the validation loss in bits per character, ``val_bpb``; lower is better.
"""

import math
import random
import sys

# Hyperparameters: the research agent may change these.
LEARNING_RATE = 0.05
MOMENTUM = 0.3
WEIGHT_DECAY = 0.01
BATCH_SIZE = 64
CONTEXT = 1

# Fixed for every run (like a fixed time budget), so results are comparable: do not tune it.
COMPUTE_BUDGET = 4 * 10**6  # work units; one unit is roughly one multiply-add
ALPHABET = "abcdefghijklmnopqrstuvwxyz ."


def make_language(rng: random.Random) -> tuple[list[str], dict[str, list[str]]]:
    """Invent a vocabulary of words built from syllables, and the words each one prefers next."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels] + ["qu" + v for v in "aei"]
    words = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(150)})
    return words, {w: rng.sample(words, 4) for w in words}


def make_text(rng: random.Random, language: tuple[list[str], dict[str, list[str]]], n: int) -> str:
    """Generate n characters of sentences in ``language``."""
    words, followers = language
    out, word, size = [], rng.choice(words), 0
    while size < n:
        out.append(word + (". " if rng.random() < 0.12 else " "))
        size += len(out[-1])
        if rng.random() < 0.7:
            word = rng.choice(followers[word])
        else:  # Zipf-like fallback: early words are far more common
            word = words[min(int(rng.paretovariate(1.1)) - 1, len(words) - 1)]
    return "".join(out)[:n]


def encode(text: str) -> list[int]:
    """Map characters to indices in ALPHABET."""
    index = {ch: i for i, ch in enumerate(ALPHABET)}
    return [index[ch] for ch in text]


def contexts(data: list[int], t: int) -> list[tuple[int, ...]]:
    """The 1..CONTEXT characters before position t (the text is padded on the left with '.')."""
    pad = len(ALPHABET) - 1
    history = tuple(data[i] if i >= 0 else pad for i in range(t - CONTEXT, t))
    return [history[len(history) - k :] for k in range(1, CONTEXT + 1)]


def log_probs(tables: list[dict], bias: list[float], keys: list[tuple[int, ...]]) -> list[float]:
    """Log-softmax over the next character: the bias plus one learned row per context length."""
    logits = list(bias)
    for table, key in zip(tables, keys, strict=True):
        row = table.get(key)
        if row is not None:
            logits = [a + b for a, b in zip(logits, row, strict=True)]
    top = max(logits)
    log_norm = top + math.log(sum(math.exp(x - top) for x in logits))
    return [x - log_norm for x in logits]


def main() -> int:
    rng = random.Random(1337)
    language = make_language(rng)
    train = encode(make_text(rng, language, 30_000))
    val = encode(make_text(rng, language, 3_000))
    vocab = len(ALPHABET)
    if not 0 <= CONTEXT <= 12 or BATCH_SIZE < 1:
        print("error: CONTEXT must be in 0..12 and BATCH_SIZE at least 1", file=sys.stderr)
        return 1

    # One table per context length, mapping the last k characters to a row of logits. Rows are
    # created on first use and only rows seen in a batch are updated (sparse SGD with momentum).
    tables: list[dict] = [{} for _ in range(CONTEXT)]
    velocity: list[dict] = [{} for _ in range(CONTEXT)]
    bias, bias_velocity = [0.0] * vocab, [0.0] * vocab
    step_cost = (BATCH_SIZE * (CONTEXT + 2) + 16) * vocab
    steps = max(1, min(COMPUTE_BUDGET // step_cost, 50_000))
    print(f"steps: {steps}  batch: {BATCH_SIZE}  context: {CONTEXT}")

    def update(w: list[float], v: list[float], g: list[float]) -> None:
        v[:] = [
            MOMENTUM * vi + gi / BATCH_SIZE + WEIGHT_DECAY * wi
            for vi, gi, wi in zip(v, g, w, strict=True)
        ]
        w[:] = [wi - LEARNING_RATE * vi for wi, vi in zip(w, v, strict=True)]

    for step in range(steps):
        grads: list[dict] = [{} for _ in range(CONTEXT)]
        bias_grad = [0.0] * vocab
        loss = 0.0
        for _ in range(BATCH_SIZE):
            t = rng.randrange(len(train))
            keys = contexts(train, t)
            lp = log_probs(tables, bias, keys)
            loss -= lp[train[t]]
            delta = [math.exp(x) for x in lp]
            delta[train[t]] -= 1.0
            bias_grad = [g + d for g, d in zip(bias_grad, delta, strict=True)]
            for grad, key in zip(grads, keys, strict=True):
                row = grad.get(key)
                grad[key] = (
                    delta if row is None else [g + d for g, d in zip(row, delta, strict=True)]
                )
        loss /= BATCH_SIZE * math.log(2)
        if not math.isfinite(loss) or loss > 50:
            print(f"error: training diverged at step {step} (loss {loss})", file=sys.stderr)
            return 1
        for table, vel, grad in zip(tables, velocity, grads, strict=True):
            for key, g in grad.items():
                update(table.setdefault(key, [0.0] * vocab), vel.setdefault(key, [0.0] * vocab), g)
        update(bias, bias_velocity, bias_grad)
        if step % max(1, steps // 4) == 0 or step == steps - 1:
            print(f"step {step:5d}  train_bpb {loss:.4f}")

    total = -sum(log_probs(tables, bias, contexts(val, t))[val[t]] for t in range(len(val)))
    val_bpb = total / (len(val) * math.log(2))
    if not math.isfinite(val_bpb):
        print("error: validation loss is not finite", file=sys.stderr)
        return 1
    print(f"val_bpb: {val_bpb:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
