"""Research the classifier next to this file with a higher-is-better metric, offline.

    python examples/higher_is_better/research.py [DIRECTORY] [--cycles N]

Copies train.py, program.md and README.md into DIRECTORY (or $AUTORESEARCH_EXAMPLE_REPO, or a
new temporary directory), commits them in a fresh git repository, and runs N cycles (default
12) with the offline ``local`` proposer and ``direction="higher"``: a change is kept only when
the accuracy goes up. Prints one line per cycle and the best accuracy found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import anyio

from autoresearch import NeuroLink
from autoresearch.gitrepo import GitRepo

HERE = Path(__file__).resolve().parent
FILES = ("train.py", "program.md", "README.md")


def copy_example(target: Path) -> None:
    """Copy the example's files into ``target``, which must be new or empty."""
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        sys.exit(f"error: {target} is not empty; name a new directory")
    for name in FILES:
        shutil.copy2(HERE / name, target / name)
    (target / ".gitignore").write_text("__pycache__/\n")


async def make_repo(target: Path) -> Path:
    """A new git repository at ``target`` holding the example."""
    await anyio.to_thread.run_sync(copy_example, target)
    await GitRepo.init(target, "classifier example")
    return target


async def main(directory: Path, cycles: int) -> None:
    repo = await make_repo(directory)
    print(f"researching {repo}")
    neurolink = NeuroLink()  # no provider: the offline "local" proposer
    worker = neurolink.create_research_worker(
        repo_path=repo,
        tag="accuracy",
        mutable_paths=["train.py"],
        immutable_paths=["program.md"],
        run_command=f"{sys.executable} train.py",
        metric={"name": "accuracy", "pattern": r"^accuracy:\s+([\d.]+)", "direction": "higher"},
        timeout_ms=60_000,
    )
    neurolink.get_event_emitter().on(
        "autoresearch:cycle:end",
        lambda e: print(f"cycle {e.cycle:>2}  {e.status:<8} {e.metric_value}  {e.description}"),
    )
    async with worker:
        results = await worker.run(max_cycles=cycles)
    kept = [r for r in results if r.status == "keep"]
    print(f"baseline {kept[0].metric_value} -> best {kept[-1].metric_value} ({len(kept)} kept)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default=os.environ.get("AUTORESEARCH_EXAMPLE_REPO"))
    parser.add_argument("--cycles", type=int, default=12)
    args = parser.parse_args()
    where = Path(args.directory) if args.directory else Path(tempfile.mkdtemp()) / "classifier"
    anyio.run(main, where, args.cycles)
