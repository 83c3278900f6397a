"""A tiny numpy MLP shared by the benchmark's scripts (read-only for the research).

Character-level next-letter prediction on names.txt (makemore's task) or digit classification
on scikit-learn's digits: embedding (for characters) -> tanh hidden layer -> softmax. Fixed
work per run, so a run takes a fraction of a second on one CPU core.
"""

import os

import numpy as np


def seed_from(default):
    """The training seed: the script's own, or BENCH_SEED when the benchmark re-evaluates."""
    return int(os.environ.get("BENCH_SEED", default))


def names_data(block_size, limit=6000):
    """(X, Y) pairs of (previous block_size characters, next character) from names.txt."""
    words = open("names.txt").read().split()[:limit]
    chars = sorted(set("".join(words)))
    index = {c: i + 1 for i, c in enumerate(chars)}
    xs, ys = [], []
    for word in words:
        context = [0] * block_size
        for ch in word + ".":
            target = index.get(ch, 0)
            xs.append(list(context))
            ys.append(target)
            context = context[1:] + [target]
    x, y = np.array(xs), np.array(ys)
    cut = int(0.85 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:]), len(chars) + 1


def digits_data():
    """Train/validation split of scikit-learn's digits (saved by the benchmark as digits.npz)."""
    data = np.load("digits.npz")
    x, y = data["x"] / 16.0, data["y"]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:]), 10


class MLP:
    """Optional embedding, one tanh hidden layer, softmax output; SGD-momentum or Adam."""

    def __init__(self, n_in, n_hidden, n_out, rng, vocab=None, n_embd=None, init_scale=1.0):
        self.p = {}
        if vocab is not None:
            self.p["emb"] = rng.normal(0, 1, (vocab, n_embd))
            n_in = n_in * n_embd
        self.p["w1"] = rng.normal(0, init_scale / np.sqrt(n_in), (n_in, n_hidden))
        self.p["b1"] = np.zeros(n_hidden)
        self.p["w2"] = rng.normal(0, 0.1 * init_scale / np.sqrt(n_hidden), (n_hidden, n_out))
        self.p["b2"] = np.zeros(n_out)
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.t = 0

    def _inputs(self, x):
        if "emb" in self.p:
            return self.p["emb"][x].reshape(len(x), -1)
        return x

    def loss(self, x, y, drop=0.0, rng=None, smoothing=0.0, grads=False):
        inp = self._inputs(x)
        h = np.tanh(inp @ self.p["w1"] + self.p["b1"])
        mask = None
        if drop > 0 and rng is not None:
            mask = (rng.random(h.shape) >= drop) / (1 - drop)
            h = h * mask
        logits = h @ self.p["w2"] + self.p["b2"]
        logits = logits - logits.max(1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        n, k = probs.shape
        target = np.full((n, k), smoothing / k)
        target[np.arange(n), y] += 1 - smoothing
        loss = float(-(target * np.log(probs + 1e-12)).sum() / n)
        if not grads:
            return loss, None
        d_logits = (probs - target) / n
        g = {"w2": h.T @ d_logits, "b2": d_logits.sum(0)}
        dh = d_logits @ self.p["w2"].T
        if mask is not None:
            dh = dh * mask
        dz = dh * (1 - (h if mask is None else np.tanh(inp @ self.p["w1"] + self.p["b1"])) ** 2)
        g["w1"], g["b1"] = inp.T @ dz, dz.sum(0)
        if "emb" in self.p:
            d_inp = (dz @ self.p["w1"].T).reshape(len(x), x.shape[1], -1)
            g["emb"] = np.zeros_like(self.p["emb"])
            np.add.at(g["emb"], x, d_inp)
        return loss, g

    def sgd(self, g, lr, momentum, weight_decay):
        for k, grad in g.items():
            self.m[k] = momentum * self.m[k] + grad + weight_decay * self.p[k]
            self.p[k] -= lr * self.m[k]

    def adam(self, g, lr, beta1, beta2, weight_decay, clip):
        norm = np.sqrt(sum(float((grad**2).sum()) for grad in g.values()))
        scale = min(1.0, clip / (norm + 1e-12)) if clip > 0 else 1.0
        self.t += 1
        for k, grad in g.items():
            grad = grad * scale
            self.m[k] = beta1 * self.m[k] + (1 - beta1) * grad
            self.v[k] = beta2 * self.v[k] + (1 - beta2) * grad**2
            m_hat = self.m[k] / (1 - beta1**self.t)
            v_hat = self.v[k] / (1 - beta2**self.t)
            self.p[k] -= lr * (m_hat / (np.sqrt(v_hat) + 1e-8) + weight_decay * self.p[k])
