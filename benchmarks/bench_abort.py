"""10. Early abort: compute saved by ``progress`` on a suite of learning curves, winners lost.

A synthetic training run: ``train.py`` (mutable) holds three knobs, ``SPEED``, ``FLOOR`` and
``DIVERGE_AT``; ``objective.py`` (read-only) runs ``STEPS`` steps (80; ``--quick`` 40),
sleeping ``--nap`` seconds each (0.05 s; ``--quick`` 0.025 s), and prints
``step N loss V`` after each (flushed), then ``val_bpb: <the last loss>``. The curve is
``FLOOR + 3 / (1 + SPEED x step / 8)``, rising by 0.05 a step after ``DIVERGE_AT`` (0: never),
times ``1 + 0.3 % x N(0, 1)`` of jitter per point. The jitter is drawn from the knobs and the
step, so a candidate gives the same curve whichever side runs it, and the benchmark knows what
any candidate's full run would print without running it.

The same sequence of 20 candidates runs twice, on two identical repositories: once with the
defaults (every run to the end) and once with ``progress={pattern: "^step (\\d+) loss
([\\d.]+)", min_fraction: 0.3, margin: 0.05}`` (the defaults of min_fraction and margin).
Each candidate is a change of the best commit's knobs of that moment
(``NeuroLink().create_research_worker(config, proposer=ScriptedProposer(step))``):

- doomed (8): ``SPEED x 0.4`` (learns far slower), ``FLOOR + 0.15`` (ends 10 % or more
  worse), ``DIVERGE_AT = 35`` (blows up mid-run);
- winners (4): ``FLOOR - 0.03`` (below the incumbent all the way), ``SPEED x 1.4`` (faster);
- close (8): ``FLOOR + 0.004`` (a hair worse everywhere: runs to the end, discarded);
  ``SPEED x 0.85`` with the floor set so the run ends 0.5 % better (a close winner whose curve
  is behind the incumbent's by up to about 3 % after 30 % of the run, then crosses it); and
  ``SPEED x 1.2`` with the floor set to end 0.5 % worse (ahead early, behind at the end).

The two sides take turns cycle by cycle (the side that goes first alternates), so load on the
machine hits both alike. Reported: the total run time (the ``execute`` phase of every cycle,
the baseline included) and the total steps the runs printed, each side, and the share saved;
per kind of candidate, how many runs were stopped and the share of their time saved; the
latency from the point that triggered a stop to the last step the run printed; whether both
sides end on the same best commit with the same metric; and winners aborted: stopped runs whose
full run (known, see above) would have beaten the incumbent of that moment, i.e. been kept.

For information: the same research replayed on the known curves, without the engine, for
``min_fraction`` 0.1-0.5 and ``margin`` 0.02-0.1 (steps saved, winners aborted; the replay at
the engine's settings must stop the same candidates at the same steps as the engine did); and
a second short research (a baseline and two "late bloomers": slower learners with a lower
floor that end 1 % better, behind by 8-12 % at 30 % of the run) that runs with early abort
only, to show what the rule does to curves that cross late.

Targets: run time saved >= 30 % at an equal final best, and 0 winners aborted in the suite.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import anyio
from _common import (
    PY,
    file_at,
    make_repo,
    parser,
    summary,
    table,
    temp_dir,
    train_py,
    verdict,
    write_results,
)

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep

TARGET_SAVED = 0.30
PROGRESS = {"pattern": r"^step (\d+) loss ([\d.]+)", "minFraction": 0.3, "margin": 0.05}
START = {"SPEED": 1.0, "FLOOR": 1.0, "DIVERGE_AT": 0}
JITTER = 0.003

OBJECTIVE = '''\
"""The synthetic training run behind train.py (read-only for the research)."""
import random
import time

STEPS = {steps!r}
NAP = {nap!r}
JITTER = {jitter!r}


def loss_at(knobs, step):
    speed, floor, diverge = knobs["SPEED"], knobs["FLOOR"], knobs["DIVERGE_AT"]
    loss = floor + 3.0 / (1.0 + speed * step / 8.0)
    if diverge and step > diverge:
        loss += 0.05 * (step - diverge)
    key = f"{{speed!r}}:{{floor!r}}:{{diverge!r}}:{{step}}"
    return loss * (1.0 + random.Random(key).gauss(0.0, JITTER))


def run(namespace):
    knobs = {{name: namespace[name] for name in ("SPEED", "FLOOR", "DIVERGE_AT")}}
    for step in range(1, STEPS + 1):
        time.sleep(NAP)
        loss = loss_at(knobs, step)
        print(f"step {{step}} loss {{loss:.5f}}", flush=True)
    print(f"val_bpb: {{loss:.6f}}", flush=True)
'''


class Curves:
    """The objective, loaded in-process: what any candidate's full run prints."""

    def __init__(self, steps: int, nap: float) -> None:
        self.steps = steps
        self.source = OBJECTIVE.format(steps=steps, nap=nap, jitter=JITTER)
        self.module: dict[str, Any] = {}
        exec(compile(self.source, "<objective>", "exec"), self.module)

    def loss(self, knobs: dict[str, Any], step: int) -> float:
        return float(self.module["loss_at"](knobs, step))

    def final(self, knobs: dict[str, Any]) -> float:
        """The metric the full run reports (rounded as printed)."""
        return round(self.loss(knobs, self.steps), 6)

    def smooth_final(self, knobs: dict[str, Any]) -> float:
        return knobs["FLOOR"] + 3.0 / (1.0 + knobs["SPEED"] * self.steps / 8.0)


KNOB_LINE = re.compile(r"^(SPEED|FLOOR|DIVERGE_AT) = (.+)$", re.M)


def read_knobs(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in KNOB_LINE.findall(text):
        out[name] = int(value) if name == "DIVERGE_AT" else float(value)
    return out


# -- the suite -----------------------------------------------------------------------------

KINDS = {
    "slower": "doomed",
    "high-floor": "doomed",
    "diverges": "doomed",
    "lower-floor": "winner",
    "faster": "winner",
    "close-worse": "close",
    "close-better-crossing": "close",
    "close-worse-crossing": "close",
    "late-bloomer": "late bloomer",
}
SUITE = [
    "faster", "slower", "close-worse", "high-floor", "close-better-crossing", "diverges",
    "lower-floor", "close-worse-crossing", "slower", "close-worse", "high-floor",
    "close-better-crossing", "faster", "diverges", "close-worse-crossing", "slower",
    "close-worse", "lower-floor", "high-floor", "close-better-crossing",
]  # fmt: skip
QUICK_SUITE = [
    "faster", "slower", "close-worse", "high-floor", "close-better-crossing", "diverges",
    "lower-floor", "close-worse-crossing",
]  # fmt: skip
BLOOMERS = [("late-bloomer", 0.6), ("late-bloomer", 0.5)]


def change(kind: str, knobs: dict[str, Any], curves: Curves, factor: float = 0.6) -> dict:
    """The knobs of a ``kind`` candidate made from the best commit's ``knobs``."""
    new = dict(knobs)
    final = curves.smooth_final(knobs)

    def floor_for(speed: float, target: float) -> float:
        return round(target - 3.0 / (1.0 + speed * curves.steps / 8.0), 6)

    if kind == "slower":
        new["SPEED"] = round(knobs["SPEED"] * 0.4, 6)
    elif kind == "high-floor":
        new["FLOOR"] = round(knobs["FLOOR"] + 0.15, 6)
    elif kind == "diverges":
        new["DIVERGE_AT"] = round(curves.steps * 35 / 80)
    elif kind == "lower-floor":
        new["FLOOR"] = round(knobs["FLOOR"] - 0.03, 6)
    elif kind == "faster":
        new["SPEED"] = round(knobs["SPEED"] * 1.4, 6)
    elif kind == "close-worse":
        new["FLOOR"] = round(knobs["FLOOR"] + 0.004, 6)
    elif kind == "close-better-crossing":
        new["SPEED"] = round(knobs["SPEED"] * 0.85, 6)
        new["FLOOR"] = floor_for(new["SPEED"], final * 0.995)
    elif kind == "close-worse-crossing":
        new["SPEED"] = round(knobs["SPEED"] * 1.2, 6)
        new["FLOOR"] = floor_for(new["SPEED"], final * 1.005)
    elif kind == "late-bloomer":
        new["SPEED"] = round(knobs["SPEED"] * factor, 6)
        new["FLOOR"] = floor_for(new["SPEED"], final * 0.99)
    else:
        raise ValueError(kind)
    return new


def proposer(kinds: list[tuple[str, float]], curves: Curves) -> ScriptedProposer:
    def step(index: int) -> ScriptedStep | None:
        if index >= len(kinds):
            return None
        kind, factor = kinds[index]

        def edits(context: Any) -> list[Edit]:
            knobs = read_knobs(context.mutable_files["train.py"])
            return [Edit(path="train.py", content=train_py(change(kind, knobs, curves, factor)))]

        return ScriptedStep(f"[{kind}] candidate {index + 1}", edits)

    return ScriptedProposer(step)


# -- one side ------------------------------------------------------------------------------


class Side:
    """A repository researched with or without early abort, one cycle at a time."""

    def __init__(
        self, root: Path, name: str, curves: Curves, kinds: list[tuple[str, float]], abort: bool
    ) -> None:
        self.name, self.curves, self.abort = name, curves, abort
        self.repo = make_repo(
            root / name,
            {
                "train.py": train_py(START),
                "objective.py": curves.source,
                "program.md": "# Research program\nLower val_bpb.\n",
            },
        )
        self.neurolink = NeuroLink()
        config: dict[str, Any] = {
            "repoPath": str(self.repo),
            "mutablePaths": ["train.py"],
            "immutablePaths": ["objective.py", "program.md"],
            "runCommand": f"{PY} train.py",
            "metric": {"name": "val_bpb", "direction": "lower"},
            "timeoutMs": 120_000,
            "killGraceMs": 2_000,
            "tag": "abort" if abort else "full",
        }
        if abort:
            config["progress"] = PROGRESS
        self.worker = self.neurolink.create_research_worker(
            config, proposer=proposer(kinds, curves)
        )
        self.wall: list[float] = []

    async def cycle(self) -> None:
        start = time.perf_counter()
        await self.worker.run(max_cycles=1)
        self.wall.append(time.perf_counter() - start)

    async def close(self) -> None:
        await self.worker.aclose()
        await self.neurolink.aclose()

    def rows(self) -> list[dict[str, Any]]:
        """One dict per cycle: kind, status, run time, steps printed, what a full run gives."""
        history = self.worker.history
        texts = file_at(self.repo, [r.commit for r in history])
        out, incumbent = [], None
        for r, wall in zip(history, self.wall, strict=True):
            knobs = read_knobs(texts[r.commit])
            log = (self.repo / r.log_path).read_text() if r.log_path else ""
            steps = [int(m) for m in re.findall(r"^step (\d+) ", log, flags=re.M)]
            kind = "baseline" if r.baseline else re.match(r"^\[([\w-]+)\]", r.description)[1]
            stopped = re.search(r"stopped at step (\d+)", r.description)
            full = self.curves.final(knobs)
            gap = max(
                (
                    (self.curves.loss(knobs, s) - self.curves.loss(incumbent[0], s))
                    / self.curves.loss(incumbent[0], s)
                    for s in range(1, self.curves.steps + 1)
                    if s >= PROGRESS["minFraction"] * self.curves.steps
                ),
                default=0.0,
            ) if incumbent else None  # fmt: skip
            out.append(
                {
                    "cycle": r.cycle,
                    "kind": kind,
                    "group": KINDS.get(kind, kind),
                    "status": r.status,
                    "metric": r.metric,
                    "execute_ms": r.phase_durations_ms.get("execute", 0),
                    "cycle_wall_s": wall,
                    "steps_printed": max(steps, default=0),
                    "stopped_at": int(stopped[1]) if stopped else None,
                    "full_final": full,
                    "incumbent": incumbent[1] if incumbent else None,
                    "would_keep": incumbent is None or full < incumbent[1],
                    "max_gap_after_min_fraction": gap,
                    "knobs": knobs,
                    "description": r.description,
                }
            )
            if r.status == "keep":
                incumbent = (knobs, r.metric)
        return out


def replay(
    curves: Curves, plan: list[tuple[str, float]], min_fraction: float, margin: float
) -> dict[str, Any]:
    """The abort rule replayed on the known curves, without the engine and without latency.

    The same comparison as the engine's (a printed point worse than the incumbent's printed
    point at the same step by more than ``margin`` of it, once the step reaches
    ``min_fraction`` of the incumbent's last step) and the same keep rule (strictly lower
    final metric), so the research can take another path when a winner is stopped.
    """
    steps = curves.steps
    knobs = dict(START)
    best = curves.final(knobs)
    incumbent = [round(curves.loss(knobs, s), 5) for s in range(1, steps + 1)]
    run = full = steps
    stopped_at: list[int | None] = []
    winners_aborted = 0
    for kind, factor in plan:
        new = change(kind, knobs, curves, factor)
        final = curves.final(new)
        stop = None
        for s in range(1, steps + 1):
            if s < min_fraction * steps:
                continue
            theirs = incumbent[s - 1]
            if round(curves.loss(new, s), 5) - theirs > margin * abs(theirs):
                stop = s
                break
        stopped_at.append(stop)
        full += steps
        if stop is not None:
            run += stop
            winners_aborted += final < best
        else:
            run += steps
            if final < best:
                knobs, best = new, final
                incumbent = [round(curves.loss(knobs, s), 5) for s in range(1, steps + 1)]
    return {
        "min_fraction": min_fraction,
        "margin": margin,
        "saved_steps": 1 - run / full,
        "stopped": sum(s is not None for s in stopped_at),
        "stopped_at": stopped_at,
        "winners_aborted": winners_aborted,
        "final_best": best,
    }


GRID = [(f, m) for f in (0.1, 0.2, 0.3, 0.5) for m in (0.02, 0.05, 0.1)]


async def suite(root: Path, curves: Curves, kinds: list[str]) -> dict[str, Any]:
    plan = [(k, 0.6) for k in kinds]
    sides = {
        "full": Side(root, "full", curves, plan, abort=False),
        "abort": Side(root, "abort", curves, plan, abort=True),
    }
    try:
        for i in range(1 + len(kinds)):  # the baseline, then one cycle per candidate
            order = ["full", "abort"] if i % 2 == 0 else ["abort", "full"]
            for name in order:
                await sides[name].cycle()
            print(f"cycle {i + 1}/{1 + len(kinds)}", end="\r", flush=True)
        print()
        rows = {name: side.rows() for name, side in sides.items()}
        best = {name: side.worker.state.best_metric for name, side in sides.items()}  # type: ignore[union-attr]
    finally:
        for side in sides.values():
            await side.close()
    return {"rows": rows, "best_metric": best}


async def bloomers(root: Path, curves: Curves) -> list[dict[str, Any]]:
    side = Side(root, "bloomers", curves, BLOOMERS, abort=True)
    try:
        for _ in range(1 + len(BLOOMERS)):
            await side.cycle()
        return side.rows()
    finally:
        await side.close()


# -- report --------------------------------------------------------------------------------


def totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "execute_s": sum(r["execute_ms"] for r in rows) / 1000,
        "steps": sum(r["steps_printed"] for r in rows),
        "cycle_wall_s": sum(r["cycle_wall_s"] for r in rows),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--nap", type=float, help="seconds per step (default 0.05; quick 0.025)")
    p.add_argument("--steps", type=int, help="steps per full run (default 80; quick 40)")
    args = p.parse_args()
    steps = args.steps or (40 if args.quick else 80)
    nap = args.nap or (0.025 if args.quick else 0.05)
    kinds = QUICK_SUITE if args.quick else SUITE
    curves = Curves(steps, nap)
    started = time.perf_counter()
    with temp_dir("abort") as root:
        result = anyio.run(suite, root, curves, kinds)
        late = anyio.run(bloomers, root, curves)
    elapsed = time.perf_counter() - started
    full, abort = result["rows"]["full"], result["rows"]["abort"]
    t_full, t_abort = totals(full), totals(abort)
    saved_time = 1 - t_abort["execute_s"] / t_full["execute_s"]
    saved_steps = 1 - t_abort["steps"] / t_full["steps"]
    same_best = result["best_metric"]["full"] == result["best_metric"]["abort"]
    aligned = [a["knobs"] == f["knobs"] for a, f in zip(abort, full, strict=True)]
    stopped = [r for r in abort if r["stopped_at"] is not None]
    winners_aborted = [r for r in stopped if r["would_keep"]]
    kept_full = [r for r in full if r["status"] == "keep" and r["kind"] != "baseline"]

    print(
        table(
            f"Early abort: {len(kinds)} candidates + baseline, {steps} steps x {nap:g} s per full "
            "run, both sides taking turns",
            ["side", "run time s (execute)", "steps printed", "cycle wall s", "keeps", "stopped"],
            [
                [
                    name,
                    t["execute_s"],
                    t["steps"],
                    t["cycle_wall_s"],
                    sum(r["status"] == "keep" for r in rows) - 1,
                    sum(r["stopped_at"] is not None for r in rows),
                ]
                for name, t, rows in (
                    ("without abort", t_full, full),
                    ("with abort", t_abort, abort),
                )
            ],
        )
    )
    by_kind = []
    for kind in dict.fromkeys(r["kind"] for r in full):
        f_rows = [r for r in full if r["kind"] == kind]
        a_rows = [r for r in abort if r["kind"] == kind]
        f_time = sum(r["execute_ms"] for r in f_rows) / 1000
        a_time = sum(r["execute_ms"] for r in a_rows) / 1000
        trig = [r["stopped_at"] for r in a_rows if r["stopped_at"] is not None]
        gaps = [r["max_gap_after_min_fraction"] for r in a_rows if r["max_gap_after_min_fraction"]]
        by_kind.append(
            [
                kind,
                KINDS.get(kind, "-"),
                len(a_rows),
                sum(r["status"] == "keep" for r in f_rows),
                f"{sum(r['stopped_at'] is not None for r in a_rows)}/{len(a_rows)}",
                ", ".join(str(s) for s in trig) or "-",
                f"{100 * (1 - a_time / f_time):.0f} %" if f_time else "-",
                f"{100 * max(gaps):+.1f} %" if gaps else "-",
            ]
        )
    print()
    print(
        table(
            "Per kind of candidate",
            [
                "kind",
                "group",
                "candidates",
                "kept without abort",
                "stopped",
                "stopped at step",
                "run time saved",
                "worst gap after 30 % (smooth+jitter)",
            ],
            by_kind,
        )
    )
    latency = [
        (r["steps_printed"] - r["stopped_at"])
        for r in stopped
        if r["steps_printed"] >= r["stopped_at"]
    ]
    lat = summary([s * nap * 1000 for s in latency])
    print(
        f"\nstop latency (last step printed - step that triggered the stop): median "
        f"{summary(latency)['median']:.0f} steps ({lat['median']:.0f} ms), max "
        f"{summary(latency)['max']:.0f} steps; the curve is read every 0.25 s"
    )
    print(
        f"run time saved: {100 * saved_time:.1f} % (steps: {100 * saved_steps:.1f} %); "
        f"final best without abort {result['best_metric']['full']}, with abort "
        f"{result['best_metric']['abort']} ({'equal' if same_best else 'DIFFERENT'}); "
        f"the same candidates on both sides: {all(aligned)}"
    )
    print(
        f"winners aborted: {len(winners_aborted)} (of {len(kept_full)} candidates kept "
        f"without abort)"
        + "".join(f"\n  cycle {r['cycle']} {r['description']}" for r in winners_aborted)
    )
    plan = [(k, 0.6) for k in kinds]
    reference = replay(curves, plan, 1.0, 1e9)["final_best"]  # nothing stopped
    grid = []
    for f, m in GRID:
        r = replay(curves, plan, f, m)
        b = replay(curves, BLOOMERS, f, m)
        r["late_bloomers_aborted"] = b["winners_aborted"]
        r["same_final_best"] = r["final_best"] == reference
        grid.append(r)
    engine_default = replay(curves, plan, PROGRESS["minFraction"], PROGRESS["margin"])
    agrees = engine_default["stopped_at"] == [r["stopped_at"] for r in abort[1:]]
    print()
    print(
        table(
            "The rule replayed on the known curves for other settings (no engine, no latency)",
            [
                "min_fraction",
                "margin",
                "steps saved",
                "stopped",
                "winners aborted",
                "same final best",
                "late bloomers aborted (of 2)",
            ],
            [
                [
                    r["min_fraction"],
                    r["margin"],
                    f"{100 * r['saved_steps']:.1f} %",
                    r["stopped"],
                    r["winners_aborted"],
                    r["same_final_best"],
                    r["late_bloomers_aborted"],
                ]
                for r in grid
            ],
        )
    )
    print(
        f"the engine stopped the same candidates at the same steps as the replay with its "
        f"settings: {agrees}"
    )
    late_rows = [
        [
            r["cycle"],
            r["kind"],
            f"{r['knobs']['SPEED']:g}",
            f"{r['knobs']['FLOOR']:.4f}",
            r["status"],
            r["stopped_at"] or "-",
            f"{r['full_final']:.4f}",
            f"{r['incumbent']:.4f}" if r["incumbent"] else "-",
            r["would_keep"],
            f"{100 * r['max_gap_after_min_fraction']:+.1f} %"
            if r["max_gap_after_min_fraction"] is not None
            else "-",
        ]
        for r in late
    ]
    print()
    print(
        table(
            "For information: late bloomers (end 1 % better, behind early), with early abort",
            [
                "cycle",
                "kind",
                "SPEED",
                "FLOOR",
                "status",
                "stopped at",
                "full-run final",
                "incumbent",
                "would be kept",
                "worst gap after 30 %",
            ],
            late_rows,
        )
    )
    passed = saved_time >= TARGET_SAVED and same_best and not winners_aborted
    print(
        f"\ntarget: run time saved >= {TARGET_SAVED:.0%} at an equal final best, 0 winners "
        f"aborted: {verdict(passed)}  ({elapsed:.0f} s)"
    )
    write_results(
        "abort",
        {
            "target": (
                f"run time saved >= {TARGET_SAVED:.0%} at an equal final best, 0 winners aborted"
            ),
            "passed": passed,
            "progress": PROGRESS,
            "steps": steps,
            "nap_s": nap,
            "jitter": JITTER,
            "suite": kinds,
            "saved_run_time": saved_time,
            "saved_steps": saved_steps,
            "totals": {"full": t_full, "abort": t_abort},
            "same_final_best": same_best,
            "final_best": result["best_metric"],
            "same_candidates": all(aligned),
            "winners_aborted": len(winners_aborted),
            "kept_without_abort": len(kept_full),
            "stop_latency_steps": summary(latency),
            "stop_latency_ms": lat,
            "execute_ms": {
                "full": summary([r["execute_ms"] for r in full]),
                "abort": summary([r["execute_ms"] for r in abort]),
            },
            "per_kind": by_kind,
            "rows": result["rows"],
            "late_bloomers": late,
            "replay_grid": grid,
            "engine_agrees_with_replay": agrees,
            "seconds": elapsed,
        },
        args,
    )


if __name__ == "__main__":
    main()
