"""A tag that was not given is adopted from the repository, however the options were merged.

``tag=None`` means "not given": the worker chooses it when it prepares (the repository's, or
today's for new research). Merging options into a configuration keeps it not given, so
``create_research_worker(config, timeout_ms=...)`` adopts the tag as ``create_research_worker
(config)`` does; a tag that was given and differs is refused before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch import (
    ConfigError,
    NeuroLink,
    ResearchConfig,
    ResearchWorker,
    ScriptedProposer,
    load_config,
)
from tests.conftest import Recorder, base_config, git, snapshot
from tests.test_worker import set_x

pytestmark = pytest.mark.anyio


def untagged(repo: Path) -> ResearchConfig:
    options = base_config(repo)
    del options["tag"]
    return ResearchConfig.model_validate(options)


async def test_overrides_keep_the_tag_not_given_so_it_is_adopted(
    repo: Path, recorder: Recorder
) -> None:
    first = NeuroLink().create_research_worker(base_config(repo, tag="run7"))
    await first.run_experiment_cycle()
    await first.aclose()
    config = untagged(repo)
    assert config.tag is None
    neurolink = NeuroLink()
    neurolink.get_event_emitter().on("*", recorder)

    def make(config_or_merged: ResearchConfig, **options: int) -> ResearchWorker:
        proposer = ScriptedProposer([set_x(2.0 + len(made))])  # a new change each time
        made.append(
            neurolink.create_research_worker(config_or_merged, proposer=proposer, **options)
        )
        return made[-1]

    made: list[ResearchWorker] = []

    for worker in (
        make(config),
        make(config, timeout_ms=60_000),
        make(config, timeoutMs=30_000),
        make(load_config(config, max_repairs=2)),
    ):
        assert worker.config.tag is None  # chosen when the worker prepares
        result = await worker.run_experiment_cycle()
        await worker.aclose()
        assert worker.config.tag == "run7" and worker.config.branch == "autoresearch/run7"
        assert result.status in ("keep", "discard")
    assert git(repo, "branch", "--show-current") == "autoresearch/run7"
    assert {e.source.tag for e in recorder.events} == {"run7"}  # every event names it


async def test_a_given_tag_that_differs_is_refused_with_overrides_too(repo: Path) -> None:
    first = NeuroLink().create_research_worker(base_config(repo, tag="run7"))
    await first.run_experiment_cycle()
    await first.aclose()
    before = snapshot(repo)
    worker = NeuroLink().create_research_worker(untagged(repo), timeout_ms=60_000, tag="other")
    with pytest.raises(ConfigError, match=r"^tag: this repository's research runs on tag 'run7'"):
        await worker.prepare()
    assert snapshot(repo) == before


async def test_new_research_without_a_tag_gets_todays(repo: Path) -> None:
    from autoresearch.config import default_tag

    worker = NeuroLink().create_research_worker(untagged(repo), seed=3)
    await worker.prepare()
    await worker.aclose()
    assert worker.config.tag == default_tag()
    assert git(repo, "branch", "--show-current") == f"autoresearch/{default_tag()}"
