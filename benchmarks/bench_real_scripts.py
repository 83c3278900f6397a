"""9. The offline proposer on real-style training scripts: samplers side by side.

Five small training scripts written for this benchmark in the config styles real projects use,
each on real data, each run taking well under a second on one CPU core (the scikit-learn one
about two, most of it importing scikit-learn):

- ``makemore``: argparse defaults (makemore's style); a next-letter MLP on makemore's
  names.txt; the run command passes ``--max-steps 400``; an ``assert`` that ``n_embd`` is even;
- ``nanogpt``: module globals, then ``exec(open('configurator.py').read())`` (nanoGPT's style);
  the run command passes ``config/names.py`` (sets batch_size, block_size) and
  ``--max_iters=300``; loop state (``iter_num``, ``best_val_loss``, the ``running_mfu = -1.0``
  sentinel) in the same module; Adam with warmup and cosine decay on names.txt;
- ``dataclass``: a ``@dataclass Hyperparameters`` (modded-nanogpt's style); an MLP on
  scikit-learn's digits;
- ``sklearn``: a ``params = {...}`` dict passed to ``GradientBoostingRegressor`` (scikit-learn's
  example style) on the diabetes data; ``min_samples_split`` < 2 and ``subsample`` = 0 crash;
- ``timm``: an immutable script reading a mutable ``config.yaml`` (timm's style); an MLP with
  dropout on digits.

For each script: the parameters the proposer discovers against the list a practitioner would
tune (named below per script), and the best metric after 15 and 30 runs for each sampler
(``local``, ours and the default; ``random``; Optuna ``tpe`` and ``cmaes``), 3 seeds each. Every
session is the FULL engine (``NeuroLink().create_research_worker(..., sampler=...)``, a real
repo, commits, subprocesses). The runs during the search use the script's own training seed; the
best commit after 15 and after 30 runs is then re-evaluated: run again with three other
training seeds (``BENCH_SEED`` 1001-1003), and the mean is what the table reports (a crash
counts as no answer). The baseline's re-evaluated metric is shown for scale.

Also counted over every proposal of every session: proposals that move a parameter discovery
left out, and proposals that move a parameter after it showed no effect.

Targets: the default sampler's re-evaluated best <= TPE's (lower is better) at 15 and at 30
runs on every script (median over seeds); 0 proposals touching a left-out or no-effect parameter.
``--quick``: one seed, 10 runs, local and TPE only (a smoke test).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from _common import PY, git, make_repo, parser, table, temp_dir, verdict, write_results

HERE = Path(__file__).resolve().parent / "real_scripts"
NAMES = Path(
    os.environ.get("BENCH_NAMES_TXT")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"
)
"""makemore's names.txt: ../shared/data/names.txt beside the checkout, or $BENCH_NAMES_TXT."""
REEVAL_SEEDS = (1001, 1002, 1003)


@dataclass(frozen=True)
class Script:
    name: str
    files: dict[str, str]  # repo path -> file in real_scripts/
    mutable: list[str]
    command: str
    metric: str
    practitioner: frozenset[str]
    data: tuple[str, ...]


SCRIPTS = [
    Script(
        "makemore",
        {"train.py": "makemore_train.py", "_mlp.py": "_mlp.py"},
        ["train.py"],
        f"{PY} train.py --max-steps 400",
        "val_loss",
        frozenset(
            {
                "block_size",
                "n_embd",
                "n_hidden",
                "learning_rate",
                "momentum",
                "weight_decay",
                "batch_size",
            }
        ),
        ("names.txt",),
    ),
    Script(
        "nanogpt",
        {
            "train.py": "nanogpt_train.py",
            "_mlp.py": "_mlp.py",
            "configurator.py": "configurator.py",
            "config/names.py": "config/names.py",
        },
        ["train.py"],
        f"{PY} train.py config/names.py --max_iters=300",
        "val_loss",
        frozenset(
            {
                "n_embd",
                "n_hidden",
                "learning_rate",
                "weight_decay",
                "beta1",
                "beta2",
                "grad_clip",
                "warmup_iters",
                "min_lr",
            }
        ),
        ("names.txt",),
    ),
    Script(
        "dataclass",
        {"train_gpt.py": "dataclass_train.py", "_mlp.py": "_mlp.py"},
        ["train_gpt.py"],
        f"{PY} train_gpt.py",
        "val_loss",
        frozenset(
            f"Hyperparameters.{n}"
            for n in (
                "batch_size",
                "hidden",
                "lr",
                "momentum",
                "weight_decay",
                "label_smoothing",
                "init_scale",
            )
        ),
        ("digits.npz",),
    ),
    Script(
        "sklearn",
        {"fit.py": "sklearn_fit.py"},
        ["fit.py"],
        f"{PY} fit.py",
        "val_mse",
        frozenset(
            f"params.{n}"
            for n in (
                "n_estimators",
                "max_depth",
                "min_samples_split",
                "learning_rate",
                "subsample",
            )
        ),
        (),
    ),
    Script(
        "timm",
        {"train.py": "timm_train.py", "_mlp.py": "_mlp.py", "config.yaml": "timm_config.yaml"},
        ["config.yaml"],
        f"{PY} train.py",
        "val_loss",
        frozenset(
            {
                "model.hidden",
                "model.drop",
                "optimizer.lr",
                "optimizer.momentum",
                "optimizer.weight_decay",
                "train.batch_size",
                "train.warmup_steps",
            }
        ),
        ("digits.npz",),
    ),
]
BY_NAME = {s.name: s for s in SCRIPTS}


def make_data(folder: Path) -> None:
    """names.txt (makemore's, from ../shared/data) and digits.npz (from scikit-learn)."""
    import numpy as np
    from sklearn.datasets import load_digits

    if not NAMES.is_file():
        sys.exit(
            f"this benchmark needs makemore's names.txt, not found at {NAMES}: download it "
            "(github.com/karpathy/makemore) and set BENCH_NAMES_TXT to its path"
        )
    shutil.copy(NAMES, folder / "names.txt")
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    np.savez(folder / "digits.npz", x=digits.data[order], y=digits.target[order])


def build_repo(script: Script, path: Path, data: Path) -> Path:
    files = {repo: (HERE / source).read_text() for repo, source in script.files.items()}
    repo = make_repo(path, files)
    for name in script.data:
        shutil.copy(data / name, repo / name)
    git(repo, "add", *script.data) if script.data else None
    if script.data:
        git(repo, "commit", "-q", "-m", "data")
    return repo


def metric_of(output: str, name: str) -> float | None:
    for line in reversed(output.splitlines()):
        if line.startswith(f"{name}:"):
            return float(line.split(":", 1)[1])
    return None


def reevaluate(repo: Path, commit: str, script: Script, where: Path) -> float | None:
    """Mean metric of ``commit`` over the re-evaluation seeds (None if any run fails)."""
    archive = subprocess.run(
        ["git", "archive", commit], cwd=repo, check=True, capture_output=True
    ).stdout
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    values = []
    for seed in REEVAL_SEEDS:
        env = {**os.environ, "BENCH_SEED": str(seed)}
        done = subprocess.run(
            script.command,
            shell=True,
            cwd=where,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        value = metric_of(done.stdout, script.metric) if done.returncode == 0 else None
        if value is None:
            return None
        values.append(value)
    return statistics.fmean(values)


def session(name: str, sampler: str, seed: int, budget: int, root: str) -> dict[str, Any]:
    """One full-engine session, then the re-evaluations (runs in a pool process)."""
    import anyio

    from autoresearch import NeuroLink

    script = BY_NAME[name]
    base = Path(root)
    repo = build_repo(script, base / f"{name}-{sampler}-{seed}", base / "data")

    async def main() -> dict[str, Any]:
        async with NeuroLink() as neurolink:
            config = {
                "repo_path": str(repo),
                "mutable_paths": script.mutable,
                "run_command": script.command,
                "metric": {"name": script.metric, "direction": "lower"},
                "timeout_ms": 120_000,
                "tag": "bench",
                "seed": seed,
                "sampler": sampler,
            }
            space = await neurolink.search_space(config)
            worker = neurolink.create_research_worker(config)
            start = time.perf_counter()
            await worker.run(max_cycles=budget)
            elapsed = time.perf_counter() - start
            await worker.aclose()
        return {"space": space, "seconds": elapsed}

    ran = anyio.run(main)
    space = ran["space"]
    records = [json.loads(line) for line in (repo / ".autoresearch" / "runs.jsonl").open()]
    left_out = {p.key for p in space.params if not p.tuned}
    touched_left_out, touched_no_effect = 0, 0
    no_effect: set[str] = set()
    best = None
    for record in records:
        changed = (record.get("proposal") or {}).get("changed") or {}
        touched_left_out += bool(set(changed) & left_out)
        touched_no_effect += bool(set(changed) & no_effect)
        metric = record.get("metric")
        if record["status"] == "discard" and len(changed) == 1 and metric == best:
            no_effect.update(changed)
        if record["status"] == "keep":
            best = metric
    finals: dict[str, float | None] = {}
    for cut in sorted({min(15, budget), budget}):
        kept = [r for r in records if r["cycle"] <= cut and r["status"] == "keep"]
        commit = kept[-1]["commit"]
        finals[str(cut)] = reevaluate(repo, commit, script, base / f"eval-{name}-{sampler}-{seed}")
    baseline = reevaluate(repo, records[0]["commit"], script, base / f"eval-{name}-base-{seed}")
    statuses = [r["status"] for r in records]
    shutil.rmtree(repo, ignore_errors=True)
    return {
        "script": name,
        "sampler": sampler,
        "seed": seed,
        "finals": finals,
        "baseline": baseline,
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "touched_left_out": touched_left_out,
        "touched_no_effect": touched_no_effect,
        "tuned": sorted(p.key for p in space.params if p.tuned),
        "left_out": {p.key: p.excluded for p in space.params if not p.tuned},
        "seconds": ran["seconds"],
    }


def median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    if len(present) * 2 <= len(values):
        return None  # most seeds gave no answer
    return statistics.median(v if v is not None else float("inf") for v in values)


def fmt(value: float | None) -> str:
    return "crash" if value is None else f"{value:.4g}"


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    from autoresearch.samplers.optuna import optuna_available

    if not optuna_available():
        sys.exit("this benchmark needs the bench extra: pip install -e '.[bench]'")
    seeds, budget = (1, 10) if args.quick else (3, 30)
    samplers = ["local", "tpe"] if args.quick else ["local", "random", "tpe", "cmaes"]
    cuts = sorted({str(min(15, budget)), str(budget)}, key=int)
    started = time.perf_counter()
    with temp_dir("realscripts") as root:
        (root / "data").mkdir()
        make_data(root / "data")
        jobs = [(s.name, m, seed) for s in SCRIPTS for seed in range(seeds) for m in samplers]
        # The slow scikit-learn sessions first, so the two workers finish together.
        jobs.sort(key=lambda job: job[0] != "sklearn")
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(session, *job, budget, str(root)) for job in jobs]
            results = [f.result() for f in futures]
    elapsed = time.perf_counter() - started

    rows, space_rows = [], []
    summary: dict[str, Any] = {}
    passed = True
    touched = sum(r["touched_left_out"] + r["touched_no_effect"] for r in results)
    for script in SCRIPTS:
        mine = [r for r in results if r["script"] == script.name]
        tuned = set(mine[0]["tuned"])
        space_rows.append(
            [
                script.name,
                len(tuned & script.practitioner),
                len(script.practitioner),
                ", ".join(sorted(script.practitioner - tuned)) or "-",
                ", ".join(sorted(tuned - script.practitioner)) or "-",
                ", ".join(sorted(mine[0]["left_out"])),
            ]
        )
        baseline = median_or_none([r["baseline"] for r in mine])
        medians = {
            (m, cut): median_or_none([r["finals"][cut] for r in mine if r["sampler"] == m])
            for m in samplers
            for cut in cuts
        }
        summary[script.name] = {
            "baseline": baseline,
            **{f"{m}@{cut}": medians[m, cut] for m in samplers for cut in cuts},
        }
        for cut in cuts:
            ours, tpe = medians["local", cut], medians["tpe", cut]
            ok = ours is not None and (tpe is None or ours <= tpe)
            passed = passed and ok
            rows.append(
                [script.name, cut, fmt(baseline)]
                + [fmt(medians[m, cut]) for m in samplers]
                + [verdict(ok)]
            )
    print(
        table(
            "Search space: discovered vs a practitioner's list",
            ["script", "found", "of", "missed", "extra", "left out (why: see JSON)"],
            space_rows,
        )
    )
    print(
        table(
            f"Re-evaluated best (mean of 3 training seeds; median over {seeds} seed(s))",
            ["script", "runs", "baseline", *samplers, "local <= tpe"],
            rows,
        )
    )
    print(f"proposals touching a left-out or no-effect parameter: {touched}")
    print(f"total time {elapsed:.0f} s")
    payload = {
        "seeds": seeds,
        "budget": budget,
        "samplers": samplers,
        "results": results,
        "summary": summary,
        "cuts": cuts,
        "touched": touched,
        "passed": passed and touched == 0,
        "seconds": elapsed,
    }
    write_results("real_scripts", payload, args)


if __name__ == "__main__":
    main()
