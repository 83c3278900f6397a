"""Early abort: a run whose learning curve falls clearly behind the incumbent's is stopped."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep
from tests.conftest import base_config, make_repo
from tests.test_reliability import assert_invariants
from tests.test_worker import runs

pytestmark = pytest.mark.anyio

CURVE = """\
import time
RATE = 1.0
loss = 5.0
for step in range(1, 21):
    loss = loss * (1 - 0.1 * RATE)
    print(f"step {step} loss {loss:.4f}", flush=True)
    time.sleep(0.05)
print(f"val_bpb: {loss:.6f}")
"""

PROGRESS = {"pattern": r"^step (\d+) loss ([\d.]+)", "minFraction": 0.3, "margin": 0.05}


def rate(value: float) -> ScriptedStep:
    text = CURVE.replace("RATE = 1.0", f"RATE = {value}")
    return ScriptedStep(f"RATE -> {value}", [Edit(path="train.py", content=text)])


@pytest.fixture
def curves(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"train.py": CURVE, "program.md": "p\n"})


async def test_a_doomed_run_is_stopped_and_a_winner_is_not(curves: Path) -> None:
    worker = NeuroLink().create_research_worker(
        base_config(curves, progress=PROGRESS), proposer=ScriptedProposer([rate(0.3), rate(1.5)])
    )
    await worker.run(max_cycles=3)
    await worker.aclose()
    baseline, doomed, winner = runs(curves)
    assert len(baseline["curve"]) == 20 and baseline["curve"][-1][0] == 20
    # RATE 0.3 learns three times slower: stopped once it is 30 % of the way and behind.
    assert doomed["status"] == "discard" and "stopped at step 6:" in doomed["description"]
    assert "vs incumbent" in doomed["description"] and doomed["metric"] is None
    log = (curves / ".autoresearch" / "logs" / "2.log").read_text()
    assert "step 20 " not in log and "val_bpb" not in log  # it did not run to the end
    # RATE 1.5 learns faster: it runs to the end and is kept.
    assert winner["status"] == "keep" and len(winner["curve"]) == 20
    assert not [p for p in psutil.process_iter() if _is_run(p, curves)]
    assert_invariants(curves)


async def test_without_an_incumbent_curve_nothing_is_stopped(curves: Path) -> None:
    worker = NeuroLink().create_research_worker(
        base_config(curves, progress={**PROGRESS, "pattern": r"^never (\d+) ([\d.]+)"}),
        proposer=ScriptedProposer([rate(0.3)]),
    )
    await worker.run(max_cycles=2)
    await worker.aclose()
    statuses = [r["status"] for r in runs(curves)]
    assert statuses == ["keep", "discard"]
    assert "curve" not in runs(curves)[1]  # no point printed, no curve recorded


def _is_run(proc: psutil.Process, repo: Path) -> bool:
    try:
        return proc.environ().get("AUTORESEARCH_TAG") == "t1" and str(repo) in proc.cwd()
    except psutil.Error:
        return False
