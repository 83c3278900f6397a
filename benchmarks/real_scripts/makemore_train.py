"""makemore-style: settings are argparse defaults; the run command passes --max-steps."""

import argparse

import numpy as np
from _mlp import MLP, names_data, seed_from

parser = argparse.ArgumentParser(description="next-letter MLP on names.txt")
parser.add_argument("--block-size", type=int, default=3, help="context length")
parser.add_argument("--n-embd", type=int, default=10, help="embedding size (even)")
parser.add_argument("--n-hidden", type=int, default=64, help="hidden units")
parser.add_argument("--learning-rate", "-l", type=float, default=0.02)
parser.add_argument("--momentum", type=float, default=0.5)
parser.add_argument("--weight-decay", type=float, default=0.0001)
parser.add_argument("--batch-size", "-b", type=int, default=32)
parser.add_argument("--max-steps", type=int, default=10000)
parser.add_argument("--eval-interval", type=int, default=500)
parser.add_argument("--seed", type=int, default=3407)
args = parser.parse_args()

assert args.n_embd % 2 == 0, "n_embd must be even (split into two halves)"
rng = np.random.default_rng(seed_from(args.seed))
(x, y), (xv, yv), vocab = names_data(args.block_size)
model = MLP(args.block_size, args.n_hidden, vocab, rng, vocab=vocab, n_embd=args.n_embd)
for step in range(args.max_steps):
    batch = rng.integers(0, len(x), args.batch_size)
    loss, grads = model.loss(x[batch], y[batch], grads=True)
    model.sgd(grads, args.learning_rate, args.momentum, args.weight_decay)
    if step % args.eval_interval == 0:
        print(f"step {step} loss {loss:.4f}")
val, _ = model.loss(xv, yv)
print(f"val_loss: {val:.6f}")
