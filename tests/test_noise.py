"""Decisions that respect the noise: repeats, the pooled noise floor, confirmation runs.

The experiment prints a true value plus noise that depends only on AUTORESEARCH_SEED, so each
outcome is reproducible while repeats of one commit still differ.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep
from autoresearch.noise import NoiseFloor, one_sided_t, student_t_ppf
from tests.conftest import base_config, make_repo
from tests.test_reliability import assert_invariants
from tests.test_worker import runs

pytestmark = pytest.mark.anyio

NOISY = """\
import os
X = 3.0
seed = int(os.environ["AUTORESEARCH_SEED"])
noise = ((seed * 7919) % 101 - 50) / 1000  # within +-0.05, fixed by the seed
print(f"seed={seed} repeat={os.environ['AUTORESEARCH_REPEAT']}")
print(f"val_bpb: {(X - 1) ** 2 + 1 + noise:.6f}")
"""


def set_x(value: float) -> ScriptedStep:
    text = NOISY.replace("X = 3.0", f"X = {value}")
    return ScriptedStep(f"X -> {value}", [Edit(path="train.py", content=text)])


@pytest.fixture
def noisy(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"train.py": NOISY, "program.md": "p\n"})


def worker(repo: Path, steps: list[ScriptedStep], **settings: object):  # type: ignore[no-untyped-def]
    config = base_config(repo, **settings)
    return NeuroLink().create_research_worker(config, proposer=ScriptedProposer(steps))


async def test_a_change_inside_the_noise_is_discarded_with_the_reason(noisy: Path) -> None:
    w = worker(noisy, [set_x(2.99)], baselineRepeats=4, repeats=3)
    results = await w.run(max_cycles=2)
    await w.aclose()
    baseline, candidate = runs(noisy)
    assert len(baseline["measurements"]) == 4 and len(candidate["measurements"]) == 3
    # X 3.0 -> 2.99 moves the true value by 0.02, less than the noise can tell apart.
    assert candidate["status"] == "discard"
    assert "is within the noise (σ=" in candidate["description"]  # noqa: RUF001
    assert results[1].status == "discard"
    assert candidate["threshold"] > 0 and candidate["std"] > 0
    assert candidate["metric"] == pytest.approx(
        sum(m["value"] for m in candidate["measurements"]) / 3
    )
    assert_invariants(noisy)


async def test_a_real_improvement_is_kept_after_its_confirmation_runs(noisy: Path) -> None:
    w = worker(noisy, [set_x(2.0)], baselineRepeats=3, repeats=2, confirm=2)
    await w.run(max_cycles=2)
    await w.aclose()
    baseline, candidate = runs(noisy)
    assert candidate["status"] == "keep"
    assert len(candidate["measurements"]) == 4  # two runs, then two confirmation runs
    seeds = [m["seed"] for m in baseline["measurements"] + candidate["measurements"]]
    assert len(set(seeds)) == len(seeds)  # every run its own seed, recorded
    logs = noisy / ".autoresearch" / "logs"
    assert f"seed={seeds[-1]} repeat=4" in (logs / "2.r4.log").read_text()
    assert_invariants(noisy)


async def test_defaults_write_the_same_ledger_lines_as_before(noisy: Path) -> None:
    w = worker(noisy, [set_x(2.0), set_x(2.5)])
    await w.run(max_cycles=3)
    await w.aclose()
    for record in runs(noisy):
        assert set(record) == {
            "cycle", "commit", "parentCommit", "status", "metric", "memoryGb", "description",
            "hint", "startedAt", "durationMs", "exitCode", "logPath", "phaseDurationsMs",
            "usage", "baseline", "proposal",
        }  # fmt: skip
    assert [r["status"] for r in runs(noisy)] == ["keep", "keep", "discard"]


async def test_the_noise_floor_pools_every_commit_measured_twice(noisy: Path) -> None:
    w = worker(noisy, [set_x(2.0), set_x(2.99)], baselineRepeats=3, repeats=3)
    await w.run(max_cycles=3)
    noise = w._books.noise()  # the pooled estimate the decisions used
    await w.aclose()
    groups = [[m["value"] for m in r["measurements"]] for r in runs(noisy)]
    assert noise == NoiseFloor.pool(groups) and noise.df == 4
    # X -> 2.99 after X -> 2.0 is far worse: its repeats stopped after the first run.
    assert [len(g) for g in groups] == [3, 3, 1]


def test_the_t_test_matches_the_tables() -> None:
    assert student_t_ppf(0.95, 5) == pytest.approx(2.015, abs=1e-3)
    assert student_t_ppf(0.975, 30) == pytest.approx(2.042, abs=1e-3)
    noise = NoiseFloor(sigma=0.01, df=10)
    close = one_sided_t([0.995], [1.0], noise, lower_is_better=True, confidence=0.95, name="loss")
    assert not close.better and "within the noise" in close.reason
    far = one_sided_t([0.95, 0.951], [1.0, 1.001], noise, lower_is_better=True, confidence=0.95)
    assert far.better and far.gain == pytest.approx(0.05)
    none = one_sided_t([0.99], [1.0], NoiseFloor(None, 0), lower_is_better=True, confidence=0.95)
    assert none.better and none.reason == "improved"  # no estimate yet: as with single runs
    assert json.dumps(close.reason)  # plain text, ready for a record


def test_status_results_and_report_show_the_spread(noisy: Path) -> None:
    from typer.testing import CliRunner

    from autoresearch.cli import app

    async def research() -> None:
        w = worker(noisy, [set_x(2.99)], baselineRepeats=3, repeats=3)
        await w.run(max_cycles=2)
        await w.aclose()

    anyio.run(research)  # the CLI below runs its own event loop
    runner = CliRunner()
    results = runner.invoke(app, ["results", str(noisy)])
    assert results.exit_code == 0 and "(n=3)" in results.stdout and "±" in results.stdout
    status = runner.invoke(app, ["status", str(noisy)])
    assert "pooled over 4 degrees of freedom" in status.stdout
    report = runner.invoke(app, ["report", str(noisy), "-o", str(noisy.parent / "r.html")])
    assert report.exit_code == 0, report.stderr
    assert "pooled over 4 degrees of freedom" in (noisy.parent / "r.html").read_text()
