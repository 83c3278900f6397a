"""The NeuroLink quickstart's "SDK: single experiment cycle" example, in Python.

    python examples/sdk_single_cycle.py [REPO]

REPO (or $AUTORESEARCH_EXAMPLE_REPO) is a git repository with ``train.py`` and ``program.md``,
like ``examples/quickstart``. Without one, a scratch copy of the quickstart example is made in a
new temporary directory. On a repository that has not been researched yet, the first cycle is
the baseline: it runs the unmodified code to get the number every change must beat. Run the
script again on the same REPO to see a change proposed, run and kept or reverted.

The offline ``local`` proposer is used unless $AUTORESEARCH_PROVIDER names a provider, as the
seed does: ``AUTORESEARCH_PROVIDER=google-vertex AUTORESEARCH_MODEL=gemini-2.5-flash``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import anyio

from autoresearch import NeuroLink
from autoresearch.cli.quickstart import create_quickstart


async def run_one_experiment(repo_path: Path) -> None:
    neurolink = NeuroLink(
        provider=os.environ.get("AUTORESEARCH_PROVIDER"),  # None: the offline proposer
        model=os.environ.get("AUTORESEARCH_MODEL"),
    )

    worker = neurolink.createResearchWorker(
        repoPath=repo_path,
        mutablePaths=["train.py"],
        immutablePaths=["program.md"],
        runCommand=f"{sys.executable} train.py",  # the seed says "python3 train.py"
        metric={
            "name": "val_bpb",
            "pattern": r"^val_bpb:\s+([\d.]+)",
            "direction": "lower",
        },
        timeoutMs=120_000,
    )

    # Listen for events
    emitter = neurolink.getEventEmitter()
    emitter.on("autoresearch:cycle:start", lambda e: print(f"Cycle {e.cycle} starting"))
    emitter.on(
        "autoresearch:cycle:end",
        lambda e: print(f"Cycle {e.cycle}: {e.status}, metric={e.metricValue}"),
    )

    # Run one cycle (the worker holds the repository's lock until the block ends)
    async with neurolink, worker:
        result = await worker.runExperimentCycle(
            "Reduce validation loss by improving the learning rate schedule",
        )

    print("Status:", result.status)
    print("Metric:", result.metricValue)
    print("Commit:", result.commitHash)


async def main() -> None:
    given = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTORESEARCH_EXAMPLE_REPO")
    if given:
        repo = Path(given)
    else:
        repo = await create_quickstart(Path(tempfile.mkdtemp()) / "quickstart")
        print(f"(a scratch copy of the quickstart example: {repo})")
    await run_one_experiment(repo)


if __name__ == "__main__":
    anyio.run(main)
