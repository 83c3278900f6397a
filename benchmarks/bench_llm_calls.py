"""Model calls and tokens per cycle of the LLM proposer, on the quickstart, with a scripted model.

The LLM proposer runs unchanged (real prompts, structured-reply schemas, reply parsing, the
engine's cycles) against :class:`~autoresearch.ScriptedChatModel`, which answers from a script,
so the number of calls and the size of the prompts are measured without a network or a key.
Two scripts, each a fresh copy of the quickstart example, 1 baseline + N cycles:

- ``combined``: every plan reply carries its edits (the protocol's one-call path);
- ``plan-then-edits``: plan replies carry no edits, so implement asks for them (two calls);
- ``hybrid``: the hybrid proposer (our sampler for the numbers, the model, answering as in
  ``combined``, on its turns), with its default turns.

The script doubles ``LEARNING_RATE`` as read from the prompt each cycle; no repair is ever
needed. Token counts are the scripted model's estimate, four characters a token. Target: at
most 2 calls per cycle without repair, for the llm and the hybrid proposer.

    python benchmarks/bench_llm_calls.py [--quick]
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common
import anyio

from autoresearch import NeuroLink, ScriptedChatModel
from autoresearch.cli.quickstart import create_quickstart
from autoresearch.proposers.base import Proposer
from autoresearch.proposers.hybrid import HybridProposer
from autoresearch.proposers.llm import LLMProposer
from autoresearch.proposers.local import LocalProposer
from autoresearch.providers.base import ChatRequest

_RATE = re.compile(r"LEARNING_RATE = ([0-9.e+-]+)")


def script(combined: bool) -> Any:
    """A reply function: a plan (with or without edits), or the edits when asked for them."""

    def reply(request: ChatRequest) -> str:
        found = _RATE.search(request.messages[0].content)
        old = found.group(1) if found else "0.05"
        edit = {
            "path": "train.py",
            "search": f"LEARNING_RATE = {old}\n",
            "replace": f"LEARNING_RATE = {float(old) * 2:g}\n",
        }
        if len(request.messages) > 1:  # implement: the plan was given, the edits are asked for
            return json.dumps({"edits": [edit]})
        plan: dict[str, Any] = {
            "description": f"LEARNING_RATE {old} -> {float(old) * 2:g}",
            "rationale": "a larger step may converge within the budget",
        }
        if combined:
            plan["edits"] = [edit]
        return json.dumps(plan)

    return reply


async def one_run(label: str, combined: bool, cycles: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"llm-calls-{label}-") as tmp:
        repo = await create_quickstart(Path(tmp) / "quickstart")
        model = ScriptedChatModel(script(combined))
        proposer: Proposer = LLMProposer(model)
        if label == "hybrid":
            proposer = HybridProposer(LocalProposer(seed=0), LLMProposer(model))
        worker = NeuroLink().create_research_worker(
            repo_path=repo,
            mutable_paths=["train.py"],
            immutable_paths=["program.md"],
            run_command=f"{sys.executable} train.py",
            metric=_common.METRIC,
            tag=label,
            proposer=proposer,
        )
        await worker.run(max_cycles=cycles + 1)
        await worker.aclose()
        records = worker.history[1:]
    usages = [r.usage for r in records if r.usage is not None]
    by_model = [r for r in records if (r.proposal or {}).get("by", "model") == "model"]
    return {
        "run": label,
        "cycles": len(records),
        "statuses": sorted({r.status for r in records}),
        "repairs": sum(1 for r in records if "repair" in r.description),
        "calls_per_cycle": _common.summary([r.usage.calls if r.usage else 0 for r in records]),
        # tokens per call of the model (the sampler's cycles send nothing)
        "input_tokens_per_cycle": _common.summary([u.input_tokens for u in usages if u.calls]),
        "output_tokens_per_cycle": _common.summary([u.output_tokens for u in usages if u.calls]),
        "requests": len(model.requests),
        "model_cycles": len(by_model),
    }


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    cycles = 4 if args.quick else 20
    runs = [
        anyio.run(one_run, "combined", True, cycles),
        anyio.run(one_run, "plan-then-edits", False, cycles),
        anyio.run(one_run, "hybrid", True, cycles),
    ]
    worst = max(r["calls_per_cycle"]["max"] for r in runs)
    rows = [
        (
            r["run"],
            r["cycles"],
            r["model_cycles"],
            ", ".join(r["statuses"]),
            _common.fmt(r["calls_per_cycle"]["mean"]),
            _common.fmt(r["calls_per_cycle"]["max"], 0),
            _common.fmt(r["input_tokens_per_cycle"]["median"], 0),
            _common.fmt(r["output_tokens_per_cycle"]["median"], 0),
        )
        for r in runs
    ]
    print(
        _common.table(
            f"LLM proposer on the quickstart with a scripted model, {cycles} cycles per run",
            [
                "script",
                "cycles",
                "model's",
                "statuses",
                "calls / cycle",
                "max",
                "input tokens (model cycle)",
                "output",
            ],
            rows,
        )
    )
    print(f"\ntarget <= 2 calls per cycle without repair: {_common.verdict(worst <= 2)}")
    _common.write_results("llm_calls", {"runs": runs, "target_max_calls": 2}, args)


if __name__ == "__main__":
    main()
