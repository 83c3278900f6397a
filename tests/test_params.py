"""The search space: discovery in each config style, exclusions, overrides, rewrites, domains."""

from __future__ import annotations

import ast
import json
import random
import tomllib

import pytest
import yaml  # type: ignore[import-untyped]

from autoresearch.params import ParamSpec, discover_space
from autoresearch.params.rewrite import rewrite_files
from autoresearch.proposers.base import Analysis, Plan
from autoresearch.proposers.local import LocalProposer
from autoresearch.results import Status
from tests.test_local_proposer import make_context, record

pytestmark = pytest.mark.anyio

KARPATHY_STYLE = """\
import time
TOTAL_BATCH_SIZE = 2**19  # tokens per step
ADAM_BETAS = (0.8, 0.95)
WARMUP_RATIO = 0.0
FINAL_LR_FRAC = 0.05
DEPTH = 5 * 8
MATRIX_LR = 0.04
H100_BF16_PEAK_FLOPS = 989.5e12
EVAL_INTERVAL = 100
SEED = 42
ACTIVATION = "relu"
step = 0
total_training_time = 0
smooth_train_loss = 0
running_mfu = -1.0
LOGGED_ONLY = 7
while step < 10:
    t0 = time.time()
    step += 1
    total_training_time = total_training_time + time.time() - t0
    smooth_train_loss = 0.9 * smooth_train_loss + DEPTH * MATRIX_LR * TOTAL_BATCH_SIZE
    mfu = 1 / H100_BF16_PEAK_FLOPS
    running_mfu = mfu if running_mfu == -1.0 else 0.9 * running_mfu
    print(f"step {step} {LOGGED_ONLY}")
"""


def tuned(space):  # type: ignore[no-untyped-def]
    return {p.key: p for p in space.params if p.tuned}


def left_out(space):  # type: ignore[no-untyped-def]
    return {p.key: p.excluded for p in space.params if not p.tuned}


def test_module_constants_expressions_and_tuples() -> None:
    space = discover_space({"train.py": KARPATHY_STYLE}, "python train.py")
    found = tuned(space)
    assert set(found) == {
        "TOTAL_BATCH_SIZE",
        "ADAM_BETAS[0]",
        "ADAM_BETAS[1]",
        "WARMUP_RATIO",
        "FINAL_LR_FRAC",
        "DEPTH",
        "MATRIX_LR",
    }
    batch = found["TOTAL_BATCH_SIZE"]
    assert (batch.value, batch.scale, batch.style, batch.line) == (2**19, "pow2", "expression", 2)
    assert found["DEPTH"].value == 40
    beta = found["ADAM_BETAS[1]"]
    assert beta.scale == "log1m" and beta.high is not None and beta.high < 1
    assert found["WARMUP_RATIO"].low == 0 and found["WARMUP_RATIO"].high is not None
    assert found["WARMUP_RATIO"].high <= 1
    out = left_out(space)
    assert "updated in place" in (out["step"] or "")
    assert "assigned again" in (out["total_training_time"] or "")
    assert "assigned again" in (out["smooth_train_loss"] or "")
    assert "compared by equality" in (out["running_mfu"] or "") or "assigned again" in (
        out["running_mfu"] or ""
    )
    assert "only printed or logged" in (out["LOGGED_ONLY"] or "")
    assert "hardware constant" in (out["H100_BF16_PEAK_FLOPS"] or "")
    assert "evaluation" in (out["EVAL_INTERVAL"] or "")
    assert "seed" in (out["SEED"] or "")
    assert "list its choices" in (out["ACTIVATION"] or "")


def test_a_sentinel_compared_by_equality_is_left_out() -> None:
    source = "MODE = 3\nLR = 0.1\nif MODE == 3:\n    x = LR\n"
    out = left_out(discover_space({"t.py": source}))
    assert "compared by equality on line 3" in (out["MODE"] or "")


ARGPARSE = """\
import argparse
import click

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning-rate", "-l", type=float, default=5e-4, help="lr")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--type", default="transformer", choices=["bigram", "transformer"])
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--log-every", type=int, default=10)
    return parser.parse_args()

@click.command()
@click.option("--weight-decay", default=0.01)
def cli(weight_decay):
    pass
"""


def test_argparse_and_click_defaults_and_the_flag_override_warning() -> None:
    space = discover_space({"train.py": ARGPARSE}, "python train.py --max-steps 300")
    found = tuned(space)
    assert set(found) == {
        "learning_rate",
        "batch_size",
        "n_embd",
        "dropout",
        "type",
        "weight_decay",
    }
    assert found["learning_rate"].style == "argparse" and found["learning_rate"].text == "5e-4"
    assert found["weight_decay"].style == "click"
    assert found["type"].choices == ["bigram", "transformer"]
    assert found["dropout"].high is not None and found["dropout"].high < 1
    out = left_out(space)
    assert "--max-steps" in (out["max_steps"] or "")
    assert "logging" in (out["log_every"] or "")
    assert any("max_steps is set by --max-steps" in note for note in space.notes)


DATACLASS = """\
from dataclasses import dataclass

@dataclass
class Hyperparameters:
    train_seq_len: int = 48 * 1024
    num_iterations: int = 1770
    lr: float = 0.05
    betas: tuple = (0.9, 0.99)

args = Hyperparameters()
"""


def test_dataclass_attributes() -> None:
    found = tuned(discover_space({"train_gpt.py": DATACLASS}))
    assert set(found) >= {
        "Hyperparameters.train_seq_len",
        "Hyperparameters.lr",
        "Hyperparameters.betas[0]",
    }
    assert found["Hyperparameters.train_seq_len"].value == 48 * 1024
    assert found["Hyperparameters.lr"].style == "class"


DICTS = """\
hyp = {
    "lr": 0.1,  # initial
    "opt": {"momentum": 0.9, "nesterov": True},
}
params = dict(n_estimators=100, max_depth=3, learning_rate=0.1, random_state=0)
hyp["lr"] = 0.2
"""


def test_dict_literals_nested_and_dict_calls() -> None:
    space = discover_space({"fit.py": DICTS})
    found = tuned(space)
    assert set(found) == {
        "hyp.opt.momentum",
        "params.n_estimators",
        "params.max_depth",
        "params.learning_rate",
    }
    out = left_out(space)
    assert "assigned again on line 6" in (out["hyp.lr"] or "")


NANOGPT = """\
batch_size = 12
learning_rate = 6e-4
beta2 = 0.95
iter_num = 0
best_val_loss = 1e9
exec(open('configurator.py').read())
while iter_num < 10:
    iter_num += 1
    best_val_loss = min(best_val_loss, learning_rate * batch_size * beta2)
"""


def test_a_config_file_applied_over_module_globals_is_named_and_its_values_left_out() -> None:
    space = discover_space(
        {"train.py": NANOGPT},
        "python train.py config/small.py --beta2=0.99",
        readable_files={"config/small.py": "batch_size = 64\n"},
    )
    found, out = tuned(space), left_out(space)
    assert set(found) == {"learning_rate"}
    assert "config/small.py" in (out["batch_size"] or "")
    assert "--beta2=0.99" in (out["beta2"] or "")
    assert "iter_num" in out and "best_val_loss" in out
    assert any("overridden by config/small.py" in note for note in space.notes)


YAML_TEXT = """\
# training config (timm style)
model:
  hidden: 64      # width
  drop: 0.1
optimizer:
  lr: 0.05        # base learning rate
  momentum: 0.9
  betas: [0.9, 0.999]
  weight_decay: 1.0e-4
train:
  batch_size: 32
  log_interval: 50
seed: 42
"""
JSON_TEXT = '{\n  "lr": 0.001,\n  "layers": [64, 64],\n  "sched": {"warmup_ratio": 0.1}\n}\n'
TOML_TEXT = """\
# settings
[optim]
lr = 3e-4   # keep this comment
momentum = 0.9

[model]
depth = 6
"""


def test_config_files_yaml_json_toml() -> None:
    files = {"cfg.yaml": YAML_TEXT, "cfg.json": JSON_TEXT, "cfg.toml": TOML_TEXT}
    space = discover_space(files)
    found = tuned(space)
    assert {"model.hidden", "optimizer.lr", "optimizer.betas[1]", "train.batch_size"} <= set(found)
    assert {"optimizer.weight_decay", "sched.warmup_ratio", "layers[0]", "optim.lr"} <= set(found)
    assert "model.depth" in found
    assert found["optimizer.lr"].line == 6 and found["optimizer.lr"].style == "yaml"
    out = left_out(space)
    assert "train.log_interval" in out and "seed" in out
    # Duplicate names across files are qualified by their path.
    assert "cfg.json:lr" not in found  # the JSON key is plain "lr" and unique


def test_rewrites_keep_every_other_byte_and_parse() -> None:
    files = {
        "cfg.yaml": YAML_TEXT,
        "cfg.json": JSON_TEXT,
        "cfg.toml": TOML_TEXT,
        "train.py": KARPATHY_STYLE,
        "fit.py": DICTS,
    }
    space = discover_space(files)
    by_key = {p.key: p for p in space.params}
    changes = {
        "optimizer.lr": (by_key["optimizer.lr"], 0.02),
        "optimizer.weight_decay": (by_key["optimizer.weight_decay"], 3e-5),
        "optimizer.betas[1]": (by_key["optimizer.betas[1]"], 0.99),
        "model.hidden": (by_key["model.hidden"], 128),
        "sched.warmup_ratio": (by_key["sched.warmup_ratio"], 0.05),
        "optim.lr": (by_key["optim.lr"], 6e-4),
        "TOTAL_BATCH_SIZE": (by_key["TOTAL_BATCH_SIZE"], 2**20),
        "DEPTH": (by_key["DEPTH"], 80),
        "ADAM_BETAS[0]": (by_key["ADAM_BETAS[0]"], 0.85),
        "params.max_depth": (by_key["params.max_depth"], 5),
    }
    new = rewrite_files(files, changes)
    assert new["cfg.yaml"] == YAML_TEXT.replace("lr: 0.05 ", "lr: 0.02 ").replace(
        "1.0e-4", "3.0e-05"
    ).replace("0.999]", "0.99]").replace("hidden: 64 ", "hidden: 128 ")
    assert yaml.safe_load(new["cfg.yaml"])["optimizer"]["weight_decay"] == 3e-5  # a float
    assert json.loads(new["cfg.json"])["sched"]["warmup_ratio"] == 0.05
    assert new["cfg.json"] == JSON_TEXT.replace("0.1}", "0.05}")
    assert tomllib.loads(new["cfg.toml"])["optim"]["lr"] == 6e-4
    assert "# keep this comment" in new["cfg.toml"] and "# settings" in new["cfg.toml"]
    assert new["train.py"] == KARPATHY_STYLE.replace("2**19", "2**20").replace(
        "5 * 8", "10 * 8"
    ).replace("(0.8, 0.95)", "(0.85, 0.95)")
    assert "max_depth=5, learning_rate=0.1" in new["fit.py"]
    for path in ("train.py", "fit.py"):
        ast.parse(new[path])


def test_user_edits_set_ranges_choices_and_exclusions() -> None:
    specs = [
        ParamSpec(name="MATRIX_LR", low=0.01, high=0.1, scale="linear"),
        ParamSpec(name="ACTIVATION", choices=["relu", "gelu"]),
        ParamSpec(name="DEPTH", exclude=True),
        ParamSpec(name="EVAL_INTERVAL", low=10, high=1000, scale="log", integer=True),
    ]
    space = discover_space({"train.py": KARPATHY_STYLE}, specs=specs)
    found = tuned(space)
    assert (found["MATRIX_LR"].low, found["MATRIX_LR"].scale) == (0.01, "linear")
    assert found["ACTIVATION"].choices == ["relu", "gelu"]
    assert found["EVAL_INTERVAL"].kind == "int"
    assert "DEPTH" not in found


DOMAINS = """\
ADAM_BETAS = (0.8, 0.95)
WARMUP_RATIO = 0.0
DROPOUT = 0.1
OFFSET = -0.5
N_EMBD = 64
N_LAYER = 3
LR = 0.01
x = (ADAM_BETAS, WARMUP_RATIO, DROPOUT, OFFSET, N_EMBD, N_LAYER, LR)
"""


@pytest.mark.parametrize("sampler", ["local", "random", "tpe", "cmaes"])
async def test_domain_limits_hold_over_many_seeded_proposals(sampler: str) -> None:
    for seed in range(3):
        proposer = LocalProposer(seed=seed, sampler=sampler)
        context = make_context({"train.py": DOMAINS})
        rng = random.Random(seed)
        for cycle in range(25):
            plan = await proposer.plan(context, Analysis(cycle=cycle), None)
            p = plan.metadata["params"]
            assert 0 <= p["ADAM_BETAS[0]"] < 1 and 0 <= p["ADAM_BETAS[1]"] < 1
            assert 0 <= p["WARMUP_RATIO"] <= 1 and 0 <= p["DROPOUT"] < 1
            assert p["OFFSET"] < 0 and p["LR"] > 0
            assert p["N_EMBD"] >= 1 and p["N_EMBD"] & (p["N_EMBD"] - 1) == 0
            assert isinstance(p["N_LAYER"], int) and p["N_LAYER"] >= 1
            status: Status = "keep" if rng.random() < 0.3 else "discard"
            metric = rng.random() + cycle  # never a tie: no parameter learns "no effect"
            await proposer.observe(record(cycle, status, plan, metric))
            if status == "keep":
                changes = await proposer.implement(context, plan)
                files = {e.path: e.content or "" for e in changes.edits}
                context = make_context({**context.mutable_files, **files})


@pytest.mark.parametrize("sampler", ["local", "random", "tpe", "cmaes"])
async def test_no_sampler_proposes_a_configuration_running_in_another_slot(sampler: str) -> None:
    context = make_context({"train.py": "A = 2\nB = 3\nx = A + B\n"})
    proposer = LocalProposer(seed=1, sampler=sampler)
    running: list[Plan] = []
    for cycle in range(30):  # 8 x 12 = 96 configurations: many collisions to avoid
        plan = await proposer.plan(context, Analysis(cycle=cycle, in_flight=running), None)
        assert all(plan.metadata["params"] != other.metadata["params"] for other in running)
        running.append(plan)


async def test_a_parameter_with_no_effect_is_not_tried_again() -> None:
    context = make_context({"train.py": "LR = 0.1\nUNUSED_KNOB = 0.5\nx = LR\n"})
    proposer = LocalProposer(seed=0, max_params_per_step=1)
    best = 10.0
    await proposer.observe(record(0, "keep", None, best))  # the baseline
    for cycle in range(1, 30):
        plan = await proposer.plan(context, Analysis(cycle=cycle), None)
        changed = plan.metadata["changed"]
        if "UNUSED_KNOB" in changed:
            assert "UNUSED_KNOB" not in proposer.no_effect, "proposed after it showed no effect"
            await proposer.observe(record(cycle, "discard", plan, best))  # exactly the best
            assert proposer.no_effect == {"UNUSED_KNOB": cycle}
            continue
        lr = plan.metadata["params"]["LR"]
        await proposer.observe(record(cycle, "discard", plan, best + abs(lr - 0.2) + 0.001))
    assert "UNUSED_KNOB" in proposer.no_effect
