"""modded-nanogpt-style: a dataclass of hyperparameters at the top of the script."""

from dataclasses import dataclass

import numpy as np
from _mlp import MLP, digits_data, seed_from


@dataclass
class Hyperparameters:
    num_iterations: int = 150
    batch_size: int = 64
    hidden: int = 32
    lr: float = 0.02
    momentum: float = 0.5
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    init_scale: float = 1.0
    val_loss_every: int = 50
    seed: int = 0


args = Hyperparameters()
rng = np.random.default_rng(seed_from(args.seed))
(x, y), (xv, yv), classes = digits_data()
model = MLP(x.shape[1], args.hidden, classes, rng, init_scale=args.init_scale)
for step in range(args.num_iterations):
    batch = rng.integers(0, len(x), args.batch_size)
    loss, grads = model.loss(x[batch], y[batch], smoothing=args.label_smoothing, grads=True)
    model.sgd(grads, args.lr, args.momentum, args.weight_decay)
    if step % args.val_loss_every == 0:
        print(f"step:{step} train_loss:{loss:.4f}")
val, _ = model.loss(xv, yv)
print(f"val_loss: {val:.6f}")
