"""Soak test: many cycles with random outcomes, every invariant checked after every cycle.

    python benchmarks/soak.py               # 1000 cycles
    python benchmarks/soak.py --cycles 100  # a quick look

Each cycle the scripted proposer picks an outcome at random — an improvement, a regression, a
tie, a crash, a NaN metric, a timeout, a syntax error, an edit to a forbidden path, an empty
change — and writes train.py accordingly. After the cycle the script checks, from the files
on disk and git itself, that: HEAD is the best commit; the working tree is clean; state.json's
cycleCount and keepCount match runs.jsonl; results.tsv has one row per record; cycle numbers
run 1..N with none lost or doubled; the best metric is the best kept metric; every candidate
commit is reachable under refs/autoresearch/<tag>/<cycle>. It prints the counts at the end and
exits 1 at the first broken invariant.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep
from autoresearch.proposers.base import ResearchContext

OUTCOMES = {
    "better": 30,
    "worse": 30,
    "tie": 5,
    "crash": 10,
    "nan": 5,
    "timeout": 2,
    "syntax": 8,
    "forbidden": 5,
    "empty": 5,
}

TEMPLATE = "import sys, time\nVALUE = {value!r}\n{body}\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(root: Path) -> Path:
    repo = root / "soak"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "soak")
    _git(repo, "config", "user.email", "soak@localhost")
    (repo / "train.py").write_text(TEMPLATE.format(value=100.0, body="print(f'loss: {VALUE}')"))
    (repo / "program.md").write_text("Make loss lower.\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start")
    return repo


class Script:
    """Chooses each cycle's outcome; remembers the current best value to move from."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.best = 100.0
        self.chosen: Counter[str] = Counter()

    def step(self, index: int) -> ScriptedStep:
        outcome = self.rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()))[0]
        self.chosen[outcome] += 1
        return ScriptedStep(f"{outcome} #{index}", lambda ctx: self._edits(outcome, ctx))

    def _edits(self, outcome: str, context: ResearchContext) -> list[Edit]:
        current = context.mutable_files["train.py"]
        best = float(current.split("VALUE = ", 1)[1].split("\n", 1)[0])
        value = {
            "better": best * self.rng.uniform(0.9, 0.999),
            "worse": best * self.rng.uniform(1.001, 1.2),
        }.get(outcome, best)
        body = {
            "crash": "sys.exit(3)",
            "nan": "print('loss: nan')",
            "timeout": "time.sleep(30)",
            "syntax": "print(f'loss: {VALUE}'",
        }.get(outcome, "print(f'loss: {VALUE}')")
        if outcome == "forbidden":
            return [Edit(path="program.md", content="hacked\n")]
        if outcome == "empty":
            return [Edit(path="train.py", content=current)]
        if outcome == "tie":  # same metric, different bytes: a real candidate that ties
            body = "print(f'loss: {VALUE}')  # tie"
        return [Edit(path="train.py", content=TEMPLATE.format(value=value, body=body))]


def check(repo: Path, tag: str) -> str | None:
    """The first broken invariant, or None."""
    ar = repo / ".autoresearch"
    runs = [json.loads(line) for line in (ar / "runs.jsonl").read_text().splitlines()]
    tsv = (ar / "results.tsv").read_text().splitlines()[1:]
    state = json.loads((ar / "state.json").read_text())
    kept = [r for r in runs if r["status"] == "keep"]
    problems = {
        "cycles are not 1..N": [r["cycle"] for r in runs] != list(range(1, len(runs) + 1)),
        "cycleCount != ledger rows": state["cycleCount"] != len(runs),
        "results.tsv rows != runs.jsonl rows": len(tsv) != len(runs),
        "keepCount is wrong": state["keepCount"] != len(kept),
        "phase is not idle": state["phase"] != "idle" or state["currentCycle"] is not None,
        "HEAD is not the best commit": _git(repo, "rev-parse", "HEAD") != state["bestCommit"],
        "the tree is not clean": _git(repo, "status", "--porcelain") != "",
        "bestMetric is not the last kept metric": bool(kept)
        and state["bestMetric"] != kept[-1]["metric"],
    }
    last = runs[-1]
    if last["commit"] != last["parentCommit"] and last["status"] != "keep":
        ref = f"refs/autoresearch/{tag}/{last['cycle']}"
        problems["candidate not reachable"] = _git(repo, "rev-parse", ref) != last["commit"]
    return next((name for name, broken in problems.items() if broken), None)


async def soak(cycles: int, seed: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        script = Script(seed)
        neurolink = NeuroLink()
        worker = neurolink.create_research_worker(
            repo_path=repo,
            mutable_paths=["train.py"],
            immutable_paths=["program.md"],
            run_command=f"{sys.executable} train.py",
            metric={"name": "loss", "pattern": r"^loss:\s+(\S+)", "direction": "lower"},
            timeout_ms=1_000,
            kill_grace_ms=200,
            max_repairs=0,
            tag="soak",
            proposer=ScriptedProposer(script.step),
        )
        statuses: Counter[str] = Counter()
        started = time.monotonic()
        async with worker:
            for n in range(1, cycles + 1):
                result = await worker.run_experiment_cycle()
                statuses[result.status] += 1
                broken = check(repo, "soak")
                if broken:
                    print(f"cycle {n}: INVARIANT BROKEN: {broken}", file=sys.stderr)
                    return 1
                if n % 100 == 0:
                    print(f"{n} cycles, invariants hold ({time.monotonic() - started:.0f} s)")
        print(f"\n{cycles} cycles in {time.monotonic() - started:.0f} s; every invariant held")
        print("outcomes chosen:", dict(sorted(script.chosen.items())))
        print("statuses:       ", dict(sorted(statuses.items())))
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.exit(anyio.run(soak, args.cycles, args.seed))


if __name__ == "__main__":
    main()
