"""The seed's SDK example, line for line in Python, on a copy of the quickstart example."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import psutil
import pytest

from autoresearch import NeuroLink
from tests.conftest import PY, base_config, git, make_repo

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart"


@pytest.fixture
def quickstart_repo(tmp_path: Path) -> Path:
    files = {name: (EXAMPLE / name).read_text() for name in ("train.py", "program.md")}
    return make_repo(tmp_path / "repo", files)


def test_seed_sdk_example_runs_as_is(
    quickstart_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def main() -> None:
        neurolink = NeuroLink()  # no provider: the offline "local" proposer
        worker = neurolink.createResearchWorker(
            repoPath=str(quickstart_repo),
            mutablePaths=["train.py"],
            immutablePaths=["program.md"],
            runCommand=f"{PY} train.py",
            metric={"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)", "direction": "lower"},
            timeoutMs=120_000,
        )
        emitter = neurolink.getEventEmitter()
        emitter.on("autoresearch:cycle:end", lambda e: print(e.cycle, e.status, e.metricValue))
        result = await worker.runExperimentCycle("Reduce validation loss")
        print(result.status, result.metricValue, result.commitHash)
        print(result.status, result.metric_value, result.commit_hash)
        second = await worker.run_experiment_cycle("Reduce validation loss")
        print(second.status, second.description)

    anyio.run(main)
    lines = capsys.readouterr().out.splitlines()
    cycle, status, value = lines[0].split()
    assert (cycle, status) == ("1", "keep") and float(value) > 0
    assert lines[1] == lines[2]
    assert lines[1].split()[2] == git(quickstart_repo, "rev-parse", "HEAD")
    # The second cycle is a real proposal from the local proposer: "NAME old -> new"
    assert lines[3].split()[:2] == ["2", lines[4].split()[0]]
    assert lines[4].split()[0] in {"keep", "discard", "crash"}
    assert "->" in lines[4]


@pytest.mark.anyio
async def test_flood_of_output_leaves_engine_memory_flat(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "chunk = ('x' * 1023 + '\\n') * 1024\n"
        "for _ in range(100): sys.stdout.write(chunk)\n"
        "print('val_bpb: 1.0')\n"
    )
    repo = make_repo(tmp_path / "flood", {"train.py": script, "program.md": "p\n"})
    worker = NeuroLink().create_research_worker(base_config(repo))
    me = psutil.Process()
    before = me.memory_info().rss
    result = await worker.run_experiment_cycle()
    growth = me.memory_info().rss - before
    assert result.metric_value == 1.0
    assert (repo / ".autoresearch" / "logs" / "1.log").stat().st_size == 100 * 1024 * 1024 + 13
    assert growth < 30 * 1024 * 1024, f"engine RSS grew by {growth / 2**20:.1f} MiB"
    shutil.rmtree(repo / ".autoresearch" / "logs")
