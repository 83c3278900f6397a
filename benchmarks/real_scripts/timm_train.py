"""timm-style: the script reads its settings from config.yaml."""

import numpy as np
import yaml
from _mlp import MLP, digits_data, seed_from

cfg = yaml.safe_load(open("config.yaml"))
m, o, t = cfg["model"], cfg["optimizer"], cfg["train"]
rng = np.random.default_rng(seed_from(cfg["seed"]))
(x, y), (xv, yv), classes = digits_data()
model = MLP(x.shape[1], m["hidden"], classes, rng)
steps = t["epochs"] * len(x) // t["batch_size"]
for step in range(steps):
    lr = o["lr"] * min(1.0, (step + 1) / (t["warmup_steps"] + 1))
    batch = rng.integers(0, len(x), t["batch_size"])
    loss, grads = model.loss(x[batch], y[batch], drop=m["drop"], rng=rng, grads=True)
    model.sgd(grads, lr, o["momentum"], o["weight_decay"])
    if step % t["log_interval"] == 0:
        print(f"step {step} loss {loss:.4f}")
val, _ = model.loss(xv, yv)
print(f"val_loss: {val:.6f}")
