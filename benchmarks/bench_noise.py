"""9. Noise: false keeps and final regret, single-run rule against the noise-aware rule.

A synthetic experiment with a known noise level and a known optimum: ``train.py`` (mutable)
holds three knobs, ``objective.py`` (read-only) prints ``val_loss = true_value(knobs) + noise``,
where ``true_value = 1 + |X1 - o1| + |X2 - o2| + |X3 - o3|`` and the noise is
``sigma x N(0, 1)`` drawn from ``AUTORESEARCH_SEED`` (and the replicate's seed). The benchmark
computes the true value of every commit itself, from the knobs in the commit.

Proposals: a scripted random walk, the same stream for every rule. Proposal ``i`` of replicate
``s`` moves one knob (chosen at random) of the best commit of that moment by
``+-STEP x m``, with ``m`` log-uniform in [0.5, 2] and a random sign, both drawn from
``(s, i)`` alone. Because the objective is a sum of absolute values, a move changes the true
value by exactly its size unless it crosses the optimum, so the typical true step is ``STEP``
(the median |change| over all proposals made is reported as a check), and sigma is stated
relative to it: 0.25, 0.5 and 1 x STEP. The start is 3 x STEP from the optimum on every knob
(true regret 0.9, nine typical steps). A scripted walk, not the offline local proposer: the
local proposer's next proposal depends on what it has seen, so the rules would not be judged
on the same proposals, and it has a noise heuristic of its own; the walk has no think time
and each rule simply uses a longer or shorter prefix of one fixed stream.

Rules (each a fresh repo and worker, ``NeuroLink().create_research_worker(config,
proposer=ScriptedProposer(walk))``):

- ``single``: the defaults (one run per commit, keep on any strict improvement).
- ``3/2/1``: ``baseline_repeats=3, repeats=2, confirm=1``, ``confidence`` 0.95 (the target
  is judged on this one). Three baseline runs give the pooled noise floor two degrees of
  freedom before the first candidate (with two the t quantile would be 6.3); two runs per
  candidate make every candidate add one unbiased degree of freedom to it (with one run, only
  confirmed winners add any, and their first run was selected for looking good); one
  confirmation run is the cheapest check against a lucky pair, paid by apparent winners only.
- ``3/1/1``: ``baseline_repeats=3, repeats=1, confirm=1`` (for information: one run per
  idea, the cheaper setting docs/noise.md mentions).

Every rule gets the same budget of experiment runs (``--budget``, 60; ``--quick`` 24): a
``before_cycle`` hook stops the worker before a cycle that could take the runs over it (a
noise-aware candidate may need ``repeats + confirm``), so a noise-aware session uses between
``budget - repeats - confirm + 1`` and ``budget`` runs, never more (the mean is reported).
10 replicate seeds per noise level (``--quick`` 2), sessions spread over 2 worker processes.
``--confidence`` sets the confidence of the noise-aware rules (0.95 by default).

Reported per noise level and rule: keeps (the baseline not counted), false keeps (a kept change
whose TRUE value is not lower than its parent's) and their share of the keeps, pooled over
replicates; final true regret (true value of the best commit at the end minus the optimum's),
median and quartiles, and also at a quarter and half of the budget; for diagnosis, candidates
tried, the share of them that were truly better, the share of those that were kept, and how far
the kept measurements (the incumbent's mean) sat below the kept commit's true value, in sigma.

Targets: with the 3/2/1 rule, false keeps <= 5 % of keeps at every noise level; and its median
final true regret <= the single-run rule's, at every noise level.
"""

from __future__ import annotations

import math
import os
import random
import re
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from _common import (
    PY,
    file_at,
    make_repo,
    parser,
    percentile,
    table,
    temp_dir,
    train_py,
    verdict,
    write_results,
)

STEP = 0.1
"""The typical move of a proposal, in knob units and (L1 objective) in the metric."""
OPTIMUM = {"X1": 0.37, "X2": -0.52, "X3": 1.21}
START = {"X1": 0.67, "X2": -0.82, "X3": 1.51}
"""Three typical steps from the optimum on every knob: true regret 0.9 at the start."""
SIGMAS = (0.25, 0.5, 1.0)
"""Noise sd as a multiple of STEP."""
RULES: dict[str, dict[str, Any]] = {
    "single": {},
    "3/2/1": {"baselineRepeats": 3, "repeats": 2, "confirm": 1},
    "3/1/1": {"baselineRepeats": 3, "repeats": 1, "confirm": 1},
}
PRIMARY = "3/2/1"
FALSE_KEEP_TARGET = 0.05
OPTIMUM_VALUE = 1.0

OBJECTIVE = '''\
"""The synthetic objective behind train.py (read-only for the research)."""
import os
import random

OPTIMUM = {optimum!r}
SIGMA = {sigma!r}
NOISE_SEED = {noise_seed!r}


def true_value(knobs):
    return 1.0 + sum(abs(knobs[name] - best) for name, best in OPTIMUM.items())


def run(namespace):
    knobs = {{name: namespace[name] for name in OPTIMUM}}
    seed = os.environ.get("AUTORESEARCH_SEED", "0")
    noise = random.Random(f"{{NOISE_SEED}}:{{seed}}").gauss(0.0, 1.0) * SIGMA
    print("training...")
    print(f"val_loss: {{true_value(knobs) + noise:.6f}}")
'''


def true_value(knobs: dict[str, float]) -> float:
    """The noise-free value (the same arithmetic as objective.py)."""
    return 1.0 + sum(abs(knobs[name] - best) for name, best in OPTIMUM.items())


KNOB_LINE = re.compile(r"^(X\d) = (.+)$", re.M)


def read_knobs(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in KNOB_LINE.findall(text)}


def move(seed: int, index: int) -> tuple[str, float]:
    """Proposal ``index`` of replicate ``seed``: which knob, and by how much (drawn from both)."""
    rng = random.Random(f"walk:{seed}:{index}")
    name = rng.choice(sorted(OPTIMUM))
    size = STEP * math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
    return name, size if rng.random() < 0.5 else -size


def walk(seed: int) -> Any:
    from autoresearch import Edit, ScriptedStep

    def step(index: int) -> ScriptedStep:
        name, delta = move(seed, index)

        def edits(context: Any) -> list[Edit]:
            text = context.mutable_files["train.py"]
            old = read_knobs(text)[name]
            new = re.sub(rf"^{name} = .+$", f"{name} = {round(old + delta, 6)!r}", text, flags=re.M)
            return [Edit(path="train.py", content=new)]

        return ScriptedStep(f"proposal {index + 1}: {name} {delta:+.4f}", edits)

    return step


def runs_of(record: Any) -> int:
    """How many times a cycle ran the experiment."""
    if record.status == "invalid":
        return 0
    return len(record.measurements) if record.measurements else 1


# -- one session (runs in a pool process) --------------------------------------------------


def run_session(
    sigma_ratio: float, seed: int, rule: str, budget: int, confidence: float, workdir: str
) -> dict:
    import anyio

    from autoresearch import NeuroLink, ScriptedProposer, Stop

    settings = dict(RULES[rule])
    if settings:
        settings["confidence"] = confidence
    sigma = sigma_ratio * STEP
    name = f"s{sigma_ratio}-r{seed}-{rule.replace('/', '')}"
    repo = make_repo(
        Path(workdir) / name,
        {
            "train.py": train_py(START),
            "objective.py": OBJECTIVE.format(optimum=OPTIMUM, sigma=sigma, noise_seed=seed),
            "program.md": "# Research program\nLower val_loss.\n",
        },
    )
    baseline_runs = settings.get("baselineRepeats", 1)
    candidate_runs = settings.get("repeats", 1) + settings.get("confirm", 0)

    async def main() -> dict[str, Any]:
        async with NeuroLink() as neurolink:
            worker = neurolink.create_research_worker(
                {
                    "repoPath": str(repo),
                    "mutablePaths": ["train.py"],
                    "immutablePaths": ["objective.py", "program.md"],
                    "runCommand": f"{PY} train.py",
                    "metric": {"name": "val_loss", "direction": "lower"},
                    "timeoutMs": 60_000,
                    "tag": "noise",
                    **settings,
                },
                proposer=ScriptedProposer(walk(seed)),
            )

            async def before_cycle(results: list[Any]) -> Stop | None:
                history = worker.history
                used = sum(runs_of(r) for r in history)
                cost = candidate_runs if history else baseline_runs
                if used + cost > budget:
                    return Stop("max-runs", f"{used} of {budget} runs used")
                return None

            start = time.perf_counter()
            await worker.run(before_cycle=before_cycle)
            elapsed = time.perf_counter() - start
            history = worker.history
            assert worker.state is not None
            best = worker.state.best_commit
            await worker.aclose()
        return {"history": history, "best": best, "seconds": elapsed}

    done = anyio.run(main)
    history = done["history"]
    texts = file_at(repo, [r.commit for r in history] + [done["best"]])
    truth = {c: true_value(read_knobs(t)) for c, t in texts.items()}
    records = []
    for r in history:
        values = [m.value for m in r.measurements] if r.measurements else [r.metric]
        records.append(
            {
                "cycle": r.cycle,
                "status": r.status,
                "baseline": r.baseline,
                "runs": runs_of(r),
                "true": truth[r.commit],
                "parent_true": math.nan,
                "values": values,
            }
        )
    # The parent of every candidate is the best commit when it was proposed (one cycle at a
    # time): its true value is that of the last keep before it.
    incumbent = math.nan
    for rec in records:
        if not rec["baseline"]:
            rec["parent_true"] = incumbent
        if rec["status"] == "keep":
            incumbent = rec["true"]
    return {
        "sigma_ratio": sigma_ratio,
        "seed": seed,
        "rule": rule,
        "records": records,
        "runs_used": sum(rec["runs"] for rec in records),
        "final_true": truth[done["best"]],
        "seconds": done["seconds"],
    }


# -- analysis ------------------------------------------------------------------------------


def regret_at(session: dict[str, Any], runs: int) -> float:
    """True regret of the best commit once ``runs`` experiment runs were used."""
    used, best = 0, math.nan
    for rec in session["records"]:
        used += rec["runs"]
        if used > runs:
            break
        if rec["status"] == "keep":
            best = rec["true"]
    return best - OPTIMUM_VALUE


def analyse(sessions: list[dict[str, Any]], sigma_ratio: float, budget: int) -> dict[str, Any]:
    sigma = sigma_ratio * STEP
    keeps = false = candidates = better = better_kept = 0
    bias: list[float] = []
    moves: list[float] = []
    for s in sessions:
        for rec in s["records"]:
            if rec["baseline"] or rec["status"] not in ("keep", "discard"):
                continue
            candidates += 1
            truly_better = rec["true"] < rec["parent_true"]
            better += truly_better
            moves.append(abs(rec["true"] - rec["parent_true"]))
            if rec["status"] == "keep":
                keeps += 1
                false += not truly_better
                better_kept += truly_better
                bias.append((statistics.fmean(rec["values"]) - rec["true"]) / sigma)
    final = [s["final_true"] - OPTIMUM_VALUE for s in sessions]
    quarter = [regret_at(s, budget // 4) for s in sessions]
    half = [regret_at(s, budget // 2) for s in sessions]
    return {
        "sessions": len(sessions),
        "keeps": keeps,
        "false_keeps": false,
        "false_share": false / keeps if keeps else math.nan,
        "candidates": candidates,
        "candidates_per_session": candidates / len(sessions),
        "truly_better_share": better / candidates if candidates else math.nan,
        "power": better_kept / better if better else math.nan,
        "kept_bias_sigma": statistics.fmean(bias) if bias else math.nan,
        "median_true_move": statistics.median(moves) if moves else math.nan,
        "runs_used_mean": statistics.fmean(s["runs_used"] for s in sessions),
        "regret": {
            "median": statistics.median(final),
            "p25": percentile(final, 25),
            "p75": percentile(final, 75),
            "mean": statistics.fmean(final),
            "values": final,
        },
        "regret_quarter_median": statistics.median(quarter),
        "regret_half_median": statistics.median(half),
        "seconds": sum(s["seconds"] for s in sessions),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, help="experiment runs per session (default 60; quick 24)")
    p.add_argument("--seeds", type=int, help="replicates per noise level (default 10; quick 2)")
    p.add_argument(
        "--confidence", type=float, default=0.95, help="of the noise-aware rules (default 0.95)"
    )
    args = p.parse_args()
    budget = args.budget or (24 if args.quick else 60)
    seeds = args.seeds or (2 if args.quick else 10)
    workers = max(1, min(2, os.cpu_count() or 1))
    started = time.perf_counter()
    jobs = [(sr, seed, rule) for sr in SIGMAS for seed in range(seeds) for rule in RULES]
    with (
        temp_dir("noise") as root,
        ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool,
    ):
        futures = [
            pool.submit(run_session, sr, s, rule, budget, args.confidence, str(root))
            for sr, s, rule in jobs
        ]
        sessions = [f.result() for f in futures]
    elapsed = time.perf_counter() - started

    report: dict[str, Any] = {}
    rows, diag_rows, checks = [], [], {}
    for sr in SIGMAS:
        per_rule = {}
        for rule in RULES:
            mine = [s for s in sessions if s["sigma_ratio"] == sr and s["rule"] == rule]
            per_rule[rule] = analyse(mine, sr, budget)
        single, primary = per_rule["single"], per_rule[PRIMARY]
        paired = [
            (a - b)
            for a, b in zip(primary["regret"]["values"], single["regret"]["values"], strict=True)
        ]
        false_ok = primary["false_share"] <= FALSE_KEEP_TARGET if primary["keeps"] else True
        regret_ok = primary["regret"]["median"] <= single["regret"]["median"]
        checks[str(sr)] = {"false_keeps": false_ok, "regret": regret_ok}
        report[str(sr)] = {
            "sigma": sr * STEP,
            "rules": per_rule,
            "paired_regret_primary_minus_single": paired,
            "primary_better_or_equal": sum(d <= 0 for d in paired),
            "passed_false_keeps": false_ok,
            "passed_regret": regret_ok,
        }
        for rule, a in per_rule.items():
            rows.append(
                [
                    f"{sr:g} x step",
                    rule,
                    f"{a['runs_used_mean']:.1f}",
                    f"{a['candidates_per_session']:.1f}",
                    a["keeps"],
                    a["false_keeps"],
                    f"{100 * a['false_share']:.1f} %" if a["keeps"] else "-",
                    f"{a['regret']['median']:.3f} ({a['regret']['p25']:.3f}-"
                    f"{a['regret']['p75']:.3f})",
                    f"{a['regret_quarter_median']:.3f} / {a['regret_half_median']:.3f}",
                ]
            )
            diag_rows.append(
                [
                    f"{sr:g} x step",
                    rule,
                    f"{a['median_true_move']:.3f}",
                    f"{100 * a['truly_better_share']:.0f} %",
                    f"{100 * a['power']:.0f} %",
                    f"{a['kept_bias_sigma']:+.2f}",
                    f"{a['seconds'] / a['sessions']:.1f}",
                ]
            )
    print(
        table(
            f"Noise: {seeds} replicates x {budget} runs per session, step {STEP}, start regret "
            f"{true_value(START) - OPTIMUM_VALUE:.2f}, confidence {args.confidence:g}",
            [
                "sigma",
                "rule",
                "runs used (mean)",
                "candidates / session",
                "keeps",
                "false keeps",
                "false share",
                "final true regret median (quartiles)",
                f"median regret at {budget // 4} / {budget // 2} runs",
            ],
            rows,
        )
    )
    print()
    print(
        table(
            "Why (diagnostics, all candidates that ran)",
            [
                "sigma",
                "rule",
                "median |true change| of a proposal",
                "truly better",
                "of those, kept",
                "kept mean - true value (sigma)",
                "s / session",
            ],
            diag_rows,
        )
    )
    print()
    for sr in SIGMAS:
        r = report[str(sr)]
        a, single = r["rules"][PRIMARY], r["rules"]["single"]
        print(
            f"sigma {sr:g} x step: {PRIMARY} false keeps {a['false_keeps']}/{a['keeps']} "
            f"(target <= {FALSE_KEEP_TARGET:.0%}): {verdict(r['passed_false_keeps'])}; "
            f"median final regret {a['regret']['median']:.3f} vs single "
            f"{single['regret']['median']:.3f} (target <=): {verdict(r['passed_regret'])}; "
            f"{PRIMARY} as good or better in {r['primary_better_or_equal']}/{seeds} replicates"
        )
    passed = all(c["false_keeps"] and c["regret"] for c in checks.values())
    print(f"\n{len(sessions)} engine sessions in {elapsed:.0f} s on {workers} worker processes")
    write_results(
        "noise",
        {
            "target": (
                f"{PRIMARY}: false keeps <= {FALSE_KEEP_TARGET:.0%} of keeps and median final "
                "true regret <= the single-run rule's, at every noise level"
            ),
            "passed": passed,
            "checks": checks,
            "primary": PRIMARY,
            "rules": RULES,
            "confidence": args.confidence,
            "budget": budget,
            "seeds": seeds,
            "step": STEP,
            "sigma_ratios": SIGMAS,
            "optimum": OPTIMUM,
            "start": START,
            "noise_levels": report,
            "seconds": elapsed,
        },
        args,
    )


if __name__ == "__main__":
    main()
