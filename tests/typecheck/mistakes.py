"""Mistakes that type checkers must reject: every line marked ``# wrong`` and no other.

``tests/test_type_checkers.py`` runs mypy --strict and pyright (strict) over this file and
compares the lines they report with the marked ones. Never run; only type-checked.
"""

from __future__ import annotations

from autoresearch import CycleResult, NeuroLink, NeuroLnk, ResearchConfig  # wrong

neurolink = NeuroLink()
neurolink.createResearchWorker(typoField=3)  # wrong
neurolink.create_research_worker(repo_path="/path/to/repo", timeout_ms="60s")  # wrong
neurolink.createResearchWorker(repoPath="/path/to/repo", mutablePaths="train.py")  # wrong
neurolink.create_research_worker(metric={"name": "val_bpb", "direction": "down"})  # wrong
ResearchConfig(repoPath="/path/to/repo", runComand="python3 train.py")  # wrong


def read(result: CycleResult, config: ResearchConfig) -> None:
    print(result.metricValu)  # wrong
    print(config.timeoutMS)  # wrong
    print(NeuroLnk)
