"""The search space from the command line: params, --param edits, --sampler, end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from typer.testing import CliRunner

from autoresearch.cli import app
from tests.conftest import PY, git, make_repo, snapshot

runner = CliRunner()

ARGPARSE_TRAIN = """\
import argparse
import math

parser = argparse.ArgumentParser()
parser.add_argument("--learning-rate", type=float, default=0.01)
parser.add_argument("--width", type=int, default=32)
parser.add_argument("--steps", type=int, default=100)
parser.add_argument("--eval-interval", type=int, default=10)
args = parser.parse_args()
assert args.steps == 50, "the command's --steps must win"
loss = 1 + math.log2(args.learning_rate / 0.05) ** 2 + math.log2(args.width / 128) ** 2
print(f"loss: {loss:.6f}")
"""

YAML_CONFIG = """\
# model and optimiser (comments must survive)
model:
  width: 16      # hidden units
optim:
  lr: 0.01       # learning rate
  momentum: 0.5
log_interval: 10
"""

YAML_TRAIN = """\
import math
import yaml

cfg = yaml.safe_load(open("config.yaml"))
lr, width, momentum = cfg["optim"]["lr"], cfg["model"]["width"], cfg["optim"]["momentum"]
loss = 1 + math.log2(lr / 0.04) ** 2 + math.log2(width / 64) ** 2 + 4 * (momentum - 0.9) ** 2
print(f"loss: {loss:.6f}")
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def init_args(target: str, command: str) -> list[str]:
    return ["--target", target, "--run-command", command, "--metric-name", "loss", "--tag", "t"]


def test_params_preview_before_init_lists_and_explains(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": ARGPARSE_TRAIN})
    before = snapshot(repo)
    command = f"{PY} train.py --steps 50"
    code, out, err = invoke("params", str(repo), "--target", "train.py", "--run-command", command)
    assert code == 0, err
    assert "learning_rate" in out and "train.py:5" in out and "0.001..0.1 log" in out
    assert "left out: the run command passes --steps" in out
    assert "evaluation setting" in out
    code, out, _ = invoke(
        "params", str(repo), "--json", "--target", "train.py", "--run-command", command
    )
    data = json.loads(out)
    width = next(p for p in data["params"] if p["key"] == "width")
    assert (width["scale"], width["low"], width["high"], width["style"]) == (
        "pow2",
        4.0,
        256.0,
        "argparse",
    )
    assert snapshot(repo) == before  # a preview writes nothing


def test_end_to_end_on_an_argparse_script(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": ARGPARSE_TRAIN})
    args = init_args("train.py", f"{PY} train.py --steps 50")
    code, out, err = invoke("init", str(repo), *args, "--param", "width=8:512:pow2")
    assert code == 0, err
    assert "search space: 2 parameter(s) to tune (learning_rate, width)" in out
    assert "note: train.py:7: steps is set by --steps in the run command; left out" in out
    code, out, err = invoke("run", str(repo), "--max-runs", "8", "-q")
    assert code == 0, err
    records = [json.loads(line) for line in (repo / ".autoresearch/runs.jsonl").open()]
    assert len(records) == 8
    assert all(r["status"] in ("keep", "discard") for r in records), records
    kept = git(repo, "show", "autoresearch/t:train.py")
    assert kept != ARGPARSE_TRAIN  # something was kept, written as a default= literal
    for record in records[1:]:
        assert set(record["proposal"]["params"]) == {"learning_rate", "width"}
        width = record["proposal"]["params"]["width"]
        assert 8 <= width <= 512 and width & (width - 1) == 0
    code, out, _ = invoke("params", str(repo), "--json")
    saved = json.loads((repo / ".autoresearch/config.json").read_text())
    assert saved["sampler"] == "local"
    # config.json holds the space: your edit first, then every other tuned parameter as found.
    width, found = saved["params"]
    assert (width["name"], width["low"], width["discovered"]) == ("width", 8.0, False)
    assert (found["name"], found["low"], found["high"], found["scale"]) == (
        "learning_rate",
        0.001,
        0.1,
        "log",
    )
    assert found["discovered"] and found["reason"] == "1/10x to 10x, on a log scale"
    listed = json.loads(out)["params"]
    assert next(p for p in listed if p["key"] == "learning_rate")["reason"] == found["reason"]


def test_end_to_end_on_a_yaml_config(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"config.yaml": YAML_CONFIG, "train.py": YAML_TRAIN})
    code, out, err = invoke(
        "init", str(repo), *init_args("config.yaml", f"{PY} train.py"), "--immutable", "train.py"
    )
    assert code == 0, err
    assert "(model.width, optim.lr, optim.momentum)" in out
    code, out, err = invoke("run", str(repo), "--max-runs", "10", "-q")
    assert code == 0, err
    kept = git(repo, "show", "autoresearch/t:config.yaml")
    assert kept != YAML_CONFIG
    assert "# model and optimiser (comments must survive)" in kept
    assert "# hidden units" in kept and "# learning rate" in kept and "log_interval: 10" in kept
    assert len(kept.splitlines()) == len(YAML_CONFIG.splitlines())
    loaded = yaml.safe_load(kept)
    assert isinstance(loaded["optim"]["lr"], float) and 0 < loaded["optim"]["momentum"] < 1


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--param", "lr=0.1"], "give a range LOW:HIGH or choices A|B|C"),
        (["--param", "lr=1:x"], "'x' is not a number"),
        (["--param", "lr=1:2:cubic"], "'cubic' is not one of"),
        (["--param", "learning_rate=2:1"], "must have LOW < HIGH"),
        (["--param", "nothing_like_it=1:2"], "no parameter named nothing_like_it"),
        (["--sampler", "annealing"], "annealing"),
    ],
)
def test_bad_space_edits_are_one_line_and_write_nothing(
    tmp_path: Path, extra: list[str], words: str
) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": ARGPARSE_TRAIN})
    before = snapshot(repo)
    code, out, err = invoke("init", str(repo), *init_args("train.py", f"{PY} train.py"), *extra)
    assert code == 2, out
    assert words in err
    assert len(err.strip().splitlines()) == 1, err
    assert snapshot(repo) == before


def test_tpe_without_optuna_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": ARGPARSE_TRAIN})
    before = snapshot(repo)
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if the extra were not installed
    code, _, err = invoke(
        "init", str(repo), *init_args("train.py", f"{PY} train.py"), "--sampler", "tpe"
    )
    assert code == 2
    assert "pip install 'autoresearch[optuna]'" in err
    assert len(err.strip().splitlines()) == 1, err
    assert snapshot(repo) == before


def test_run_sampler_replaces_the_saved_one_and_each_proposal_names_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": ARGPARSE_TRAIN})
    code, _, err = invoke("init", str(repo), *init_args("train.py", f"{PY} train.py --steps 50"))
    assert code == 0, err
    code, _, err = invoke("run", str(repo), "--max-runs", "3", "-q", "--sampler", "random")
    assert code == 0, err
    saved = json.loads((repo / ".autoresearch/config.json").read_text())
    assert saved["sampler"] == "random"
    records = [json.loads(line) for line in (repo / ".autoresearch/runs.jsonl").open()]
    assert [r["proposal"]["sampler"] for r in records[1:]] == ["random", "random"]
