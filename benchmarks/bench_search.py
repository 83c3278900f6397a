"""6. Search efficiency of the offline ``local`` proposer against random search and Optuna TPE.

Four synthetic "training runs", each a repo with a mutable ``train.py`` holding 4-5 module-level
hyperparameters and an immutable ``objective.py`` that turns them into a validation loss:

- ``smooth``: a log-quadratic bowl in four float parameters;
- ``noisy``: the same kind of bowl in five parameters, plus Gaussian noise (sd 0.02) per run;
- ``int_crash``: a float and three integer parameters; the run crashes (exit 1, no metric) when
  the learning rate is past a divergence edge that depends on the batch size, and when batch
  size x width x depth is past a memory budget (the optimum sits close to both edges);
- ``coupled``: the best learning rate depends on the batch size and the best warmup on the
  learning rate (not separable); two of the five parameters are integers.

Methods, each with the same budget of evaluations (the first one is the default configuration
for all three, which is what the engine's baseline cycle runs):

- ``local``: the FULL engine (``NeuroLink().create_research_worker(...)`` with no provider, so the
  offline local proposer with ``seed=<seed>``), real repo, real commits, real subprocesses,
  ``worker.run(max_cycles=budget)``. Its answer is the configuration at the best commit.
- ``random``: uniform sampling in log space within the ranges below; answer = best observed.
- ``tpe``: Optuna's ``TPESampler(seed=<seed>)`` with its defaults, ask-and-tell on the same
  parameters and ranges, crashed runs told as ``FAIL``; answer = best observed. Needs the
  ``bench`` extra (``pip install -e '.[bench]'``); without Optuna the TPE column is skipped.

Ranges for random and TPE, stated once for every parameter: from 1/10 x to 10 x its default,
log-scale (integers: ``max(1, round(default / 10))`` to ``10 x default``, log-scale). Every
optimum lies inside its range. The local proposer uses the ranges its own search space gives
(floats the same 1/10x to 10x; integers 1/8x to 8x, powers of two in powers of two, so
``HIDDEN = 256`` can reach 512 or 1024 but not the optimum 768).
Random and TPE call the same ``evaluate`` function the engine's subprocess runs, in-process, with
the same noise stream (noise depends on the seed and the evaluation number only).

Regret = true (noise-free) loss of the method's answer - the known minimum. Reported per
objective and method: the median over seeds (and the quartiles). Target: local's median final
regret <= TPE's, for every objective.
"""

from __future__ import annotations

import ast
import math
import os
import random
import statistics
import sys
import textwrap
import time
import types
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from _common import PY, make_repo, parser, percentile, table, temp_dir, verdict, write_results

Number = int | float

OBJECTIVE_HEADER = '''\
"""The synthetic objective behind train.py (read-only for the research)."""
import math
import os
import random
import sys


def u(x, best):
    """Distance from the best value in decades (log10 ratio)."""
    return math.log10(x / best)


def noise(key, sd):
    return random.Random(f"noise:{key}").gauss(0.0, sd) if key is not None else 0.0


def run(namespace):
    params = {name: namespace[name] for name in PARAMS}
    key = f"{os.environ.get('BENCH_SEED', '0')}:{os.environ.get('AUTORESEARCH_CYCLE', '0')}"
    loss = evaluate(params, key)
    print("training...")
    if loss is None:
        print("loss is nan: the run diverged or ran out of memory")
        sys.exit(1)
    print(f"val_loss: {loss:.6f}")
'''


@dataclass(frozen=True)
class Objective:
    name: str
    summary: str
    defaults: dict[str, Number]
    optimum: dict[str, Number]
    body: str

    def source(self) -> str:
        params = f"PARAMS = {tuple(self.defaults)!r}\n\n\n"
        return OBJECTIVE_HEADER + "\n\n" + params + textwrap.dedent(self.body)

    def train_py(self, values: dict[str, Number] | None = None) -> str:
        values = values or self.defaults
        lines = [f'"""Synthetic training run ({self.name}): the settings below are tuned."""', ""]
        lines += [f"{k} = {v!r}" for k, v in values.items()]
        lines += [
            "",
            'if __name__ == "__main__":',
            "    from objective import run",
            "",
            "    run(globals())",
            "",
        ]
        return "\n".join(lines)

    def ranges(self) -> dict[str, tuple[Number, Number]]:
        out: dict[str, tuple[Number, Number]] = {}
        for k, v in self.defaults.items():
            if isinstance(v, int):
                out[k] = (max(1, round(v / 10)), v * 10)
            else:
                out[k] = (v / 10, v * 10)
        return out


OBJECTIVES = [
    Objective(
        "smooth",
        "4 floats, log-quadratic bowl",
        {"LEARNING_RATE": 0.001, "WEIGHT_DECAY": 0.01, "GRAD_CLIP": 1.0, "INIT_SCALE": 0.02},
        {"LEARNING_RATE": 0.004, "WEIGHT_DECAY": 0.05, "GRAD_CLIP": 0.3, "INIT_SCALE": 0.01},
        """\
        def evaluate(p, key=None):
            return (2.0 + 1.2 * u(p["LEARNING_RATE"], 0.004) ** 2
                    + 0.3 * u(p["WEIGHT_DECAY"], 0.05) ** 2
                    + 0.2 * u(p["GRAD_CLIP"], 0.3) ** 2
                    + 0.1 * u(p["INIT_SCALE"], 0.01) ** 2)
        """,
    ),
    Objective(
        "noisy",
        "5 floats, bowl + noise sd 0.02",
        {
            "LEARNING_RATE": 0.0003,
            "WEIGHT_DECAY": 0.1,
            "EMBED_LR_MULT": 1.0,
            "WARMUP_TOKENS": 100.0,
            "LABEL_SMOOTHING": 0.05,
        },
        {
            "LEARNING_RATE": 0.0015,
            "WEIGHT_DECAY": 0.02,
            "EMBED_LR_MULT": 4.0,
            "WARMUP_TOKENS": 300.0,
            "LABEL_SMOOTHING": 0.02,
        },
        """\
        def evaluate(p, key=None):
            if min(p.values()) <= 0:
                return None
            return (3.0 + 1.0 * u(p["LEARNING_RATE"], 0.0015) ** 2
                    + 0.25 * u(p["WEIGHT_DECAY"], 0.02) ** 2
                    + 0.3 * u(p["EMBED_LR_MULT"], 4.0) ** 2
                    + 0.15 * u(p["WARMUP_TOKENS"], 300.0) ** 2
                    + 0.1 * u(p["LABEL_SMOOTHING"], 0.02) ** 2
                    + noise(key, 0.02))
        """,
    ),
    Objective(
        "int_crash",
        "1 float + 3 ints, crash regions",
        {"LEARNING_RATE": 0.002, "BATCH_SIZE": 32, "N_LAYERS": 4, "HIDDEN": 256},
        {"LEARNING_RATE": 0.006, "BATCH_SIZE": 128, "N_LAYERS": 8, "HIDDEN": 768},
        """\
        def evaluate(p, key=None):
            lr, bs, depth, width = p["LEARNING_RATE"], p["BATCH_SIZE"], p["N_LAYERS"], p["HIDDEN"]
            if min(lr, bs, depth, width) <= 0:
                return None
            if lr > 0.008 * math.sqrt(bs / 128):  # diverges
                return None
            if bs * width * depth > 1.5 * 128 * 768 * 8:  # out of memory
                return None
            return (1.5 + 1.0 * u(lr, 0.006) ** 2 + 0.2 * u(bs, 128) ** 2
                    + 0.3 * u(depth, 8) ** 2 + 0.25 * u(width, 768) ** 2)
        """,
    ),
    Objective(
        "coupled",
        "3 floats + 2 ints, interacting",
        {
            "LEARNING_RATE": 0.001,
            "BATCH_SIZE": 64,
            "WARMUP_STEPS": 200,
            "WEIGHT_DECAY": 0.01,
            "EMA_STEPS": 100.0,
        },
        {
            "LEARNING_RATE": 0.004,
            "BATCH_SIZE": 256,
            "WARMUP_STEPS": 500,
            "WEIGHT_DECAY": 0.03,
            "EMA_STEPS": 400.0,
        },
        """\
        def evaluate(p, key=None):
            lr, bs, warm = p["LEARNING_RATE"], p["BATCH_SIZE"], p["WARMUP_STEPS"]
            if min(p.values()) <= 0:
                return None
            best_lr = 0.004 * math.sqrt(bs / 256)
            best_warm = 500 * lr / 0.004
            return (2.2 + 1.0 * u(lr, best_lr) ** 2 + 0.15 * u(bs, 256) ** 2
                    + 0.2 * u(warm, best_warm) ** 2 + 0.2 * u(p["WEIGHT_DECAY"], 0.03) ** 2
                    + 0.1 * u(p["EMA_STEPS"], 400.0) ** 2)
        """,
    ),
]
BY_NAME = {o.name: o for o in OBJECTIVES}


def load(objective: Objective) -> types.ModuleType:
    module = types.ModuleType(f"objective_{objective.name}")
    exec(compile(objective.source(), f"<objective {objective.name}>", "exec"), module.__dict__)
    return module


def true_loss(objective: Objective, params: dict[str, Number]) -> float | None:
    return load(objective).evaluate(params, None)  # type: ignore[no-any-return]


def read_params(text: str) -> dict[str, Number]:
    """The module-level numeric assignments of a train.py."""
    out: dict[str, Number] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value = ast.literal_eval(node.value)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[node.targets[0].id] = value
    return out


# -- the three methods ------------------------------------------------------------------------


def run_local(name: str, seed: int, budget: int, workdir: str) -> dict[str, Any]:
    """The full engine with the offline proposer, in a fresh repo (runs in a pool process)."""
    import anyio

    from autoresearch import NeuroLink

    objective = BY_NAME[name]
    repo = make_repo(
        Path(workdir) / f"{name}-{seed}",
        {
            "train.py": objective.train_py(),
            "objective.py": objective.source(),
            "program.md": f"# Research program\nLower val_loss of the {name} run.\n",
        },
    )

    async def main() -> dict[str, Any]:
        async with NeuroLink() as neurolink:
            worker = neurolink.create_research_worker(
                repo_path=str(repo),
                mutable_paths=["train.py"],
                immutable_paths=["objective.py", "program.md"],
                run_command=f"BENCH_SEED={seed} {PY} train.py",
                metric={
                    "name": "val_loss",
                    "pattern": r"^val_loss:\s+([\d.]+)",
                    "direction": "lower",
                },
                timeout_ms=120_000,
                tag=f"seed{seed}",
                seed=seed,
            )
            start = time.perf_counter()
            results = await worker.run(max_cycles=budget)
            elapsed = time.perf_counter() - start
            await worker.aclose()
        statuses = [r.status for r in results]
        best_params = read_params((repo / "train.py").read_text())
        observed = [r.metric_value for r in results if r.status == "keep"]
        return {
            "evaluations": len(results),
            "statuses": {s: statuses.count(s) for s in set(statuses)},
            "answer": best_params,
            "best_observed": min(observed) if observed else None,
            "seconds": elapsed,
        }

    return anyio.run(main)


def sample(rng: random.Random, low: Number, high: Number, integer: bool) -> Number:
    if integer:  # log-uniform over [low - 0.5, high + 0.5], rounded (as Optuna does)
        value = math.exp(rng.uniform(math.log(low - 0.5 if low > 1 else 0.5), math.log(high + 0.5)))
        return int(min(high, max(low, round(value))))
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def run_random(objective: Objective, seed: int, budget: int) -> dict[str, Any]:
    module = load(objective)
    rng = random.Random(f"random:{objective.name}:{seed}")
    ranges = objective.ranges()
    best: tuple[float, dict[str, Number]] | None = None
    crashes = 0
    for trial in range(1, budget + 1):
        if trial == 1:
            params = dict(objective.defaults)
        else:
            params = {
                k: sample(rng, lo, hi, isinstance(objective.defaults[k], int))
                for k, (lo, hi) in ranges.items()
            }
        loss = module.evaluate(params, f"{seed}:{trial}")
        if loss is None:
            crashes += 1
        elif best is None or loss < best[0]:
            best = (loss, params)
    assert best is not None
    return {"evaluations": budget, "crashes": crashes, "answer": best[1], "best_observed": best[0]}


def run_tpe(objective: Objective, seed: int, budget: int) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    module = load(objective)
    ranges = objective.ranges()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(dict(objective.defaults))
    crashes = 0
    for trial_number in range(1, budget + 1):
        trial = study.ask()
        params: dict[str, Number] = {}
        for k, (lo, hi) in ranges.items():
            if isinstance(objective.defaults[k], int):
                params[k] = trial.suggest_int(k, int(lo), int(hi), log=True)
            else:
                params[k] = trial.suggest_float(k, lo, hi, log=True)
        loss = module.evaluate(params, f"{seed}:{trial_number}")
        if loss is None:
            crashes += 1
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, loss)
    best = study.best_trial
    return {
        "evaluations": budget,
        "crashes": crashes,
        "answer": dict(best.params),
        "best_observed": best.value,
    }


# -- the benchmark ----------------------------------------------------------------------------


def have_optuna() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


def regret_of(objective: Objective, answer: dict[str, Number], minimum: float) -> float:
    loss = true_loss(objective, answer)
    return math.inf if loss is None else loss - minimum


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    p_seeds, p_budget = (2, 10) if args.quick else (10, 30)
    tpe = have_optuna()
    if not tpe:
        print(
            "optuna is not installed: the TPE column is skipped. Install the benchmark extra "
            "with: pip install -e '.[bench]'  (or: pip install 'optuna>=3')\n"
        )
    methods = ["local", "random"] + (["tpe"] if tpe else [])
    workers = max(1, min(2, os.cpu_count() or 1))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        o.name: {m: [] for m in methods} for o in OBJECTIVES
    }
    started = time.perf_counter()
    with (
        temp_dir("search") as root,
        ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool,
    ):
        futures = {
            (o.name, s): pool.submit(run_local, o.name, s, p_budget, str(root))
            for o in OBJECTIVES
            for s in range(p_seeds)
        }
        for o in OBJECTIVES:  # the in-process methods run while the engine jobs do
            for s in range(p_seeds):
                runs[o.name]["random"].append({"seed": s, **run_random(o, s, p_budget)})
                if tpe:
                    runs[o.name]["tpe"].append({"seed": s, **run_tpe(o, s, p_budget)})
        for (name, s), future in sorted(futures.items()):
            runs[name]["local"].append({"seed": s, **future.result()})
    elapsed = time.perf_counter() - started

    summary_rows = []
    report: dict[str, Any] = {}
    passed: bool | None = True if tpe else None
    for o in OBJECTIVES:
        minimum = true_loss(o, o.optimum)
        assert minimum is not None
        default_regret = regret_of(o, o.defaults, minimum)
        report[o.name] = {
            "summary": o.summary,
            "minimum": minimum,
            "default_regret": default_regret,
            "ranges": o.ranges(),
            "optimum": o.optimum,
            "methods": {},
        }
        medians: dict[str, float] = {}
        for m in methods:
            regrets = []
            for run in runs[o.name][m]:
                run["regret"] = regret_of(o, run["answer"], minimum)
                regrets.append(run["regret"])
            medians[m] = statistics.median(regrets)
            report[o.name]["methods"][m] = {
                "median_regret": medians[m],
                "p25": percentile(regrets, 25),
                "p75": percentile(regrets, 75),
                "runs": runs[o.name][m],
            }
        ok = medians["local"] <= medians["tpe"] if tpe else None
        if tpe:
            passed = bool(passed and ok)
        report[o.name]["passed"] = ok

        def cell(m: str, name: str = o.name) -> str:
            r = report[name]["methods"][m]
            return f"{r['median_regret']:.4f} ({r['p25']:.4f}-{r['p75']:.4f})"

        summary_rows.append(
            [
                o.name,
                o.summary,
                f"{default_regret:.4f}",
                cell("local"),
                cell("random"),
                cell("tpe") if tpe else "skipped (no optuna)",
                verdict(ok),
            ]
        )
    print(
        table(
            f"Search efficiency: median final regret (quartiles), {p_seeds} seeds x {p_budget} "
            "evaluations",
            [
                "objective",
                "parameters",
                "default",
                "local (engine)",
                "random",
                "Optuna TPE",
                "local <= TPE",
            ],
            summary_rows,
        )
    )
    crash_rows = []
    for o in OBJECTIVES:
        local_runs = runs[o.name]["local"]
        crashes = sum(r["statuses"].get("crash", 0) for r in local_runs)
        invalid = sum(r["statuses"].get("invalid", 0) for r in local_runs)
        evals = statistics.median(r["evaluations"] for r in local_runs)
        crash_rows.append(
            [
                o.name,
                evals,
                crashes,
                invalid,
                sum(r["crashes"] for r in runs[o.name]["random"]),
                sum(r["crashes"] for r in runs[o.name]["tpe"]) if tpe else "-",
            ]
        )
    print()
    print(
        table(
            "Evaluations and crashes (totals over seeds)",
            [
                "objective",
                "local cycles (median)",
                "local crashes",
                "local invalid",
                "random crashes",
                "TPE crashes",
            ],
            crash_rows,
        )
    )
    print(
        f"\n{len(OBJECTIVES) * p_seeds} engine sessions in {elapsed:.0f} s on {workers} "
        "worker processes"
    )
    write_results(
        "search",
        {
            "target": "median final regret of local <= that of Optuna TPE, per objective",
            "tpe_available": tpe,
            "seeds": p_seeds,
            "budget": p_budget,
            "passed": passed,
            "objectives": report,
            "seconds": elapsed,
        },
        args,
    )


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
