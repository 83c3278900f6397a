"""The hybrid proposer on the quickstart: the sampler moves numbers, the model changes code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from autoresearch import NeuroLink, ScriptedChatModel
from autoresearch.cli.quickstart import create_quickstart
from autoresearch.errors import ConfigError
from autoresearch.proposers.hybrid import HybridProposer
from autoresearch.proposers.llm import LLMProposer
from autoresearch.proposers.local import LocalProposer
from autoresearch.providers.base import ChatRequest
from autoresearch.results import RunRecord
from tests.conftest import git

pytestmark = pytest.mark.anyio

# A code change a model might propose: start the bias from the log unigram frequencies, with
# a new knob for how much of them (which the sampler should tune from then on).
PRIOR = {
    "description": "start the bias from the log unigram frequencies",
    "rationale": "the model begins from the marginal distribution instead of uniform",
    "edits": [
        {
            "path": "train.py",
            "search": "# Hyperparameters: the research agent may change these.\n",
            "replace": (
                "# Hyperparameters: the research agent may change these.\n"
                "PRIOR_WEIGHT = 1.0  # how much of the log frequencies the bias starts from\n"
            ),
        },
        {
            "path": "train.py",
            "search": "    bias, bias_velocity = [0.0] * vocab, [0.0] * vocab\n",
            "replace": (
                "    bias, bias_velocity = [0.0] * vocab, [0.0] * vocab\n"
                "    counts = [1.0 + train.count(c) for c in range(vocab)]\n"
                "    bias = [PRIOR_WEIGHT * math.log(n / sum(counts)) for n in counts]\n"
            ),
        },
    ],
}


COMMENT = {
    "description": "name the update rule",
    "rationale": "a comment",
    "edits": [{"path": "train.py", "search": "import sys\n", "replace": "import sys  # exit\n"}],
}


def code_change(request: ChatRequest) -> str:
    """The prior first; once the code has it, a harmless second change."""
    shown = request.messages[0].content
    return json.dumps(COMMENT if "PRIOR_WEIGHT" in shown else PRIOR)


def config(repo: Path) -> dict[str, Any]:
    return {
        "repo_path": str(repo),
        "mutable_paths": ["train.py"],
        "run_command": "python train.py",
        "metric": {"name": "val_bpb", "direction": "lower"},
        "tag": "hybrid",
        "timeout_ms": 60_000,
    }


def ledger(repo: Path) -> list[RunRecord]:
    path = repo / ".autoresearch" / "runs.jsonl"
    return [RunRecord.model_validate_json(line) for line in path.read_text().splitlines()]


async def test_the_sampler_tunes_numbers_and_the_model_changes_code(tmp_path: Path) -> None:
    repo = await create_quickstart(tmp_path / "qs")
    model = ScriptedChatModel(code_change)
    hybrid = HybridProposer(LocalProposer(seed=0), LLMProposer(model), patience=2, code_every=3)
    worker = NeuroLink().create_research_worker(config(repo), proposer=hybrid)
    results = await worker.run(max_cycles=9)
    await worker.aclose()
    records = ledger(repo)
    assert [r.status for r in results] == [r.status for r in records]
    by = [(r.proposal or {}).get("by") for r in records]
    assert by[0] is None and records[0].baseline
    # The model has a turn only when the sampler stalled or after code_every sampler cycles.
    model_cycles = [i for i, who in enumerate(by) if who == "model"]
    assert model_cycles, by
    first = model_cycles[0]
    sampler_run = by[1:first]
    assert sampler_run and set(sampler_run) == {"sampler"}
    stalled = all(r.status != "keep" for r in records[first - 2 : first])
    assert stalled or len(sampler_run) == 3
    assert (records[first].proposal or {})["turn"]
    # Every model call is a model turn's (one each: the plan carries its edits), none on the
    # sampler's cycles.
    assert len(model.requests) == len(model_cycles)
    assert all((records[i].proposal or {})["calls"] == 1 for i in model_cycles)
    # The model was told about the numeric search: the space at the sampler's best point.
    context = model.requests[0].messages[0].content
    assert "# The numeric search (a sampler tunes these values)" in context
    best = next(r for r in reversed(records[:first]) if r.status == "keep")
    shown = git(repo, "show", f"{best.commit}:train.py")
    best_rate = re.search(r"^LEARNING_RATE = (\S+)", shown, re.M)
    assert best_rate is not None
    assert f"- LEARNING_RATE = {best_rate.group(1)} (train.py line " in context
    # The code change was kept, and the sampler went on tuning the new code, its knob included.
    assert records[first].status == "keep", records[first].description
    assert records[first].description == PRIOR["description"]
    after = [r for r in records[first + 1 :] if (r.proposal or {}).get("by") == "sampler"]
    assert after
    assert all("PRIOR_WEIGHT" in (r.proposal or {})["params"] for r in after)


async def test_a_restarted_hybrid_takes_the_turn_where_the_ledger_left_it(tmp_path: Path) -> None:
    repo = await create_quickstart(tmp_path / "qs")
    live = HybridProposer(
        LocalProposer(seed=1), LLMProposer(ScriptedChatModel([json.dumps(PRIOR)])), patience=5
    )
    worker = NeuroLink().create_research_worker(config(repo), proposer=live)
    await worker.run(max_cycles=4)
    await worker.aclose()
    restarted = HybridProposer(
        LocalProposer(seed=1), LLMProposer(ScriptedChatModel([])), patience=5
    )
    await restarted.prime(ledger(repo))
    assert (restarted.since_model, restarted.stalled) == (live.since_model, live.stalled)
    assert restarted.since_model == 3  # three sampler cycles after the baseline
    assert restarted.next_turn() == live.next_turn()


async def test_with_nothing_to_tune_every_cycle_is_the_models(tmp_path: Path) -> None:
    repo = await create_quickstart(tmp_path / "qs")
    edit = {"path": "train.py", "search": "import sys\n", "replace": "import sys  # noqa\n"}
    reply = json.dumps({"description": "a comment", "rationale": "-", "edits": [edit]})

    def answer(request: ChatRequest) -> str:
        return reply

    model = ScriptedChatModel(answer)
    hybrid = HybridProposer(LocalProposer(), LLMProposer(model))
    options = {**config(repo), "params": [{"name": n, "exclude": True} for n in _KNOBS]}
    worker = NeuroLink().create_research_worker(options, proposer=hybrid)
    results = await worker.run(max_cycles=2)
    await worker.aclose()
    assert len(model.requests) == 1
    proposal = ledger(repo)[1].proposal or {}
    assert proposal["by"] == "model"
    assert proposal["turn"].startswith("the sampler has nothing to try")
    assert results[1].description == "a comment"
    assert "(The sampler found no numeric hyperparameter" in model.requests[0].messages[0].content


_KNOBS = ["LEARNING_RATE", "MOMENTUM", "WEIGHT_DECAY", "BATCH_SIZE", "CONTEXT"]


async def test_the_hybrid_proposer_needs_a_model_provider(tmp_path: Path) -> None:
    repo = await create_quickstart(tmp_path / "qs")
    with pytest.raises(ConfigError, match=r"provider: the hybrid proposer needs a model provider"):
        NeuroLink().create_research_worker(config(repo), proposer="hybrid")
    worker = NeuroLink(provider="openai", api_key="sk-test").create_research_worker(
        config(repo), proposer="hybrid"
    )
    assert isinstance(worker.proposer, HybridProposer)
    assert worker.proposer.sampler.sampler.name == "local"


async def test_only_the_proposers_that_tune_build_a_sampler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The llm proposer never uses the sampler, so a sampler it cannot build is no error."""
    import sys

    repo = await create_quickstart(tmp_path / "qs")
    monkeypatch.setitem(sys.modules, "optuna", None)  # Optuna not installed
    neurolink = NeuroLink(provider="openai", api_key="sk-test")
    worker = neurolink.create_research_worker(config(repo), proposer="llm", sampler="tpe")
    assert isinstance(worker.proposer, LLMProposer)
    with pytest.raises(ConfigError, match="sampler: tpe needs Optuna"):
        neurolink.create_research_worker(config(repo), proposer="hybrid", sampler="tpe")
