"""nanoGPT-style: module globals, overridden by a config file and --key=value flags."""

import math

import numpy as np
from _mlp import MLP, names_data, seed_from

# I/O and evaluation
eval_interval = 100
eval_iters = 20
log_interval = 50
# data
batch_size = 12
block_size = 8
# model
n_embd = 16
n_hidden = 64
# optimiser
learning_rate = 1e-3
max_iters = 5000
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0
warmup_iters = 20
min_lr = 1e-4
seed = 1337
exec(open("configurator.py").read())  # overrides from the command line or a config file

rng = np.random.default_rng(seed_from(seed))
(x, y), (xv, yv), vocab = names_data(block_size)
model = MLP(block_size, n_hidden, vocab, rng, vocab=vocab, n_embd=n_embd)


def get_lr(it):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    ratio = (it - warmup_iters) / max(1, max_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(ratio, 1.0))) * (learning_rate - min_lr)


iter_num = 0
best_val_loss = 1e9
running_mfu = -1.0
while iter_num < max_iters:
    lr = get_lr(iter_num)
    batch = rng.integers(0, len(x), batch_size)
    loss, grads = model.loss(x[batch], y[batch], grads=True)
    model.adam(grads, lr, beta1, beta2, weight_decay, grad_clip)
    if iter_num % eval_interval == 0:
        val, _ = model.loss(xv[: eval_iters * 50], yv[: eval_iters * 50])
        best_val_loss = min(best_val_loss, val)
        mfu = 0.5
        running_mfu = mfu if running_mfu == -1.0 else 0.9 * running_mfu + 0.1 * mfu
    if iter_num % log_interval == 0:
        print(f"iter {iter_num}: loss {loss:.4f}, mfu {running_mfu:.2f}")
    iter_num += 1
val, _ = model.loss(xv, yv)
print(f"val_loss: {val:.6f}")
