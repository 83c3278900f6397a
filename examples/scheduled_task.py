"""The NeuroLink quickstart's "SDK: scheduled via TaskManager" example, in Python.

    python examples/scheduled_task.py [REPO] [--cycles N]

Saves a research task for REPO (or $AUTORESEARCH_EXAMPLE_REPO), then starts the task worker,
which runs it. Saving only stores the task; the worker is what runs it, and it checks the task's
status before every cycle, so ``autoresearch pause REPO`` from another terminal takes effect at
the next cycle.

Two things differ from the seed so that the script ends by itself: the task has ``maxRuns``
(N, default 5) and the worker is started with ``stop_when_idle=True``. Without them the worker
runs until it is cancelled, which is what a long-running service wants.

Without a REPO a scratch copy of the quickstart example is made in a new temporary directory,
and its task store is kept there too; otherwise the store is ``$AUTORESEARCH_HOME/tasks.db``
(default ``~/.autoresearch``). The offline ``local`` proposer is used unless
$AUTORESEARCH_PROVIDER names a provider.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import anyio

from autoresearch import NeuroLink
from autoresearch.cli.quickstart import create_quickstart

TASK_ID = "research-lr-schedule"


async def schedule_research(repo_path: Path, cycles: int, store: Path | None) -> None:
    neurolink = NeuroLink(
        provider=os.environ.get("AUTORESEARCH_PROVIDER"),  # the seed: "google-vertex"
        model=os.environ.get("AUTORESEARCH_MODEL"),  # the seed: "gemini-2.5-flash"
        task_store=store,
    )
    neurolink.getEventEmitter().on(
        "autoresearch:cycle:end",
        lambda e: print(f"cycle {e.cycle}: {e.status}, metric={e.metricValue}  {e.description}"),
    )

    # Save as a managed task
    await neurolink.saveTask(
        {
            "id": TASK_ID,
            "type": "autoresearch",
            "autoresearch": {
                "repoPath": str(repo_path),
                "mutablePaths": ["train.py"],
                "runCommand": f"{sys.executable} train.py",  # the seed: "python3 train.py"
                "metric": {
                    "name": "val_bpb",
                    "pattern": r"^val_bpb:\s+([\d.]+)",
                    "direction": "lower",
                },
            },
            "maxRuns": cycles,  # not in the seed: the task completes after this many cycles
        }
    )

    # Start the task worker to begin execution
    async with neurolink:
        await neurolink.startTaskWorker(stop_when_idle=True)  # the seed's runs until cancelled

    info = await neurolink.tasks.get(TASK_ID)
    print(f"task {TASK_ID}: {info.status}, {info.cycles} cycles")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", default=os.environ.get("AUTORESEARCH_EXAMPLE_REPO"))
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    store: Path | None = None
    if args.repo:
        repo = Path(args.repo)  # the configuration resolves it
    else:
        scratch = Path(tempfile.mkdtemp())
        repo = await create_quickstart(scratch / "quickstart")
        store = scratch / "tasks.db"
        print(f"(a scratch copy of the quickstart example: {repo})")
    await schedule_research(repo, args.cycles, store)


if __name__ == "__main__":
    anyio.run(main)
