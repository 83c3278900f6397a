"""The LLM proposer against a scripted chat model: prompts, budget, reply parsing, calls, usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoresearch import NeuroLink
from autoresearch.config import ResearchConfig
from autoresearch.edits import ChangeSet, Edit
from autoresearch.errors import ProposerError
from autoresearch.proposers.base import Analysis, Plan, Proposer, ResearchContext
from autoresearch.proposers.llm import LLMProposer
from autoresearch.proposers.prompts import TRUNCATION_ORDER, build_prompt
from autoresearch.proposers.replies import ReplyError, find_object, read_edits
from autoresearch.providers.base import ChatRequest, ChatResponse
from autoresearch.results import RunRecord, Status, Usage
from tests.conftest import TRAIN, base_config, git

pytestmark = pytest.mark.anyio

PROGRAM = "# Research program\nLower val_bpb by tuning X.\n"
CALL_USAGE = Usage(input_tokens=100, output_tokens=20, cache_read_tokens=5)


class ScriptedChat:
    """A ChatModel double: records every request and answers with scripted texts in order."""

    provider = "fake"
    model = "fake-model-1"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError("the model was called more often than scripted")
        return ChatResponse(text=self.replies.pop(0), usage=CALL_USAGE, model=self.model)


def config(**overrides: object) -> ResearchConfig:
    values: dict[str, object] = {
        "repo_path": "/tmp/llm-proposer-repo",
        "mutable_paths": ["train.py"],
        "immutable_paths": ["program.md", "data.cfg"],
        "run_command": "python train.py",
        "metric": {"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)", "direction": "lower"},
        "timeout_ms": 90_000,
    }
    values.update(overrides)
    return ResearchConfig.model_validate(values)


def make_context(**overrides: object) -> ResearchContext:
    return ResearchContext(
        config=config(**overrides),
        program=PROGRAM,
        mutable_files={"train.py": TRAIN},
        immutable_files={"program.md": PROGRAM, "data.cfg": "vocab = 256\nsplit = 0.9\n"},
        layout=["data.cfg", "program.md", "train.py"],
    )


def record(
    cycle: int, status: Status, metric: float | None, description: str, baseline: bool = False
) -> RunRecord:
    return RunRecord(
        cycle=cycle,
        commit=f"{cycle:040x}",
        status=status,
        metric=metric,
        description=description,
        baseline=baseline,
        started_at="2025-01-01T00:00:00Z",
    )


def make_analysis(rows: int = 3, log_tail: str | None = None) -> Analysis:
    recent = [record(1, "keep", 5.0, "baseline", baseline=True)]
    recent += [
        record(i, "discard", 5.0 + i / 100, f"attempt number {i}") for i in range(2, rows + 1)
    ]
    return Analysis(
        cycle=len(recent) + 1,
        best_metric=5.0,
        baseline_metric=5.0,
        best_commit="1" * 40,
        recent=recent,
        near_misses=[r for r in recent if r.status == "discard"][:1],
        last_failure_log_tail=log_tail,
        total_cycles=len(recent),
    )


PLAN = {"description": "lower X to 2.0", "rationale": "the loss is (X-1)^2+1"}
EDITS = {"edits": [{"path": "train.py", "search": "X = 3.0", "replace": "X = 2.0"}]}


def reply(*objects: dict[str, object]) -> str:
    merged: dict[str, object] = {}
    for obj in objects:
        merged.update(obj)
    return json.dumps(merged)


# -- what the model is shown -------------------------------------------------------------------


async def test_it_is_a_proposer_named_llm() -> None:
    proposer = LLMProposer(ScriptedChat())
    assert isinstance(proposer, Proposer)
    assert proposer.name == "llm"


async def test_system_text_holds_rules_metric_program_and_read_only_files() -> None:
    chat = ScriptedChat(reply(PLAN, EDITS))
    await LLMProposer(chat).plan(make_context(), make_analysis(), None)
    system = chat.requests[0].system
    assert "Only these paths may change: train.py" in system
    assert "val_bpb: lower is better" in system
    assert "time limit 90 s" in system
    assert "One idea per cycle" in system
    assert "Prefer simple changes" in system
    assert "build on what was kept; do not repeat what was discarded" in system
    assert "exactly ONE JSON object" in system
    assert "Lower val_bpb by tuning X." in system
    assert "## data.cfg" in system and "vocab = 256" in system
    assert system.count("Lower val_bpb by tuning X.") == 1  # the program is not shown twice
    assert "train.py" in system.split("# Files in the repository")[1]
    # The volatile parts stay out of the cacheable system text.
    assert "X = 3.0" not in system and "attempt number 2" not in system


async def test_higher_direction_and_margin_are_stated() -> None:
    context = make_context(
        metric={"name": "acc", "pattern": r"acc=([\d.]+)", "direction": "higher"},
        min_improvement=0.01,
        validate_command="python -m pyflakes train.py",
    )
    chat = ScriptedChat(reply(PLAN, EDITS))
    await LLMProposer(chat).plan(context, make_analysis(), None)
    system = chat.requests[0].system
    assert "acc: higher is better" in system
    assert "higher than the best so far by more than 0.01" in system
    assert "`python -m pyflakes train.py` must succeed" in system


async def test_context_message_has_numbered_code_history_failure_and_hint() -> None:
    chat = ScriptedChat(reply(PLAN, EDITS))
    analysis = make_analysis(rows=4, log_tail="Traceback (most recent call last):\nValueError: x")
    await LLMProposer(chat).plan(make_context(), analysis, "try a smaller X")
    request = chat.requests[0]
    assert [m.role for m in request.messages] == ["user"]
    text = request.messages[0].content
    assert "## train.py" in text
    assert "2 | X = 3.0" in text
    assert "9 | sys.exit(EXIT)" in text
    assert "not part of the files" in text
    assert "Best so far: 5 (commit 1111111). Baseline (unmodified code): 5." in text
    assert "#1 | keep | 5 | +0 | baseline (unmodified code)" in text
    assert "#4 | discard | 5.04 | +0.04 | attempt number 4" in text
    assert "# Near misses" in text and "attempt number 2" in text.split("# Near misses")[1]
    assert "ValueError: x" in text
    assert "# Hint from the user\ntry a smaller X" in text
    assert text.rstrip().endswith("if you can write them now.")
    assert request.max_tokens == 4096 and request.temperature is None


async def test_history_rows_limits_what_is_shown() -> None:
    chat = ScriptedChat(reply(PLAN, EDITS))
    proposer = LLMProposer(chat, history_rows=3, max_tokens=512, temperature=0.2)
    await proposer.plan(make_context(), make_analysis(rows=10), None)
    text = chat.requests[0].messages[0].content
    assert "The last 3 of 10 cycles" in text
    assert "attempt number 7" not in text.split("# Near misses")[0]
    assert "#8 |" in text and "#10 |" in text
    assert chat.requests[0].max_tokens == 512 and chat.requests[0].temperature == 0.2


# -- the context budget ------------------------------------------------------------------------


def big_context(budget: int) -> tuple[ResearchContext, Analysis]:
    code = "".join(f"VALUE_{i} = {i}\n" for i in range(150))  # about 2,000 characters
    program = "# Program\n" + "".join(f"Idea {i}: try something sensible.\n" for i in range(60))
    context = ResearchContext(
        config=config(context_budget=budget),
        program=program,
        mutable_files={"train.py": code},
        immutable_files={
            "data.cfg": "".join(f"key{i} = {i}\n" for i in range(150)),
            "notes.txt": "".join(f"note {i}\n" for i in range(150)),
        },
        layout=[f"dir/file{i}.py" for i in range(50)],
    )
    log = "".join(f"step {i} loss 1.0\n" for i in range(150)) + "RuntimeError: exploded\n"
    return context, make_analysis(rows=20, log_tail=log)


def test_everything_fits_in_a_large_budget() -> None:
    context, analysis = big_context(200_000)
    prompt = build_prompt(context, analysis, "hint")
    assert prompt.cuts == []
    assert "#1 | keep" in prompt.messages[0].content


def cut_stage(cuts: list[str]) -> int:
    """The furthest step of TRUNCATION_ORDER that shortened something (-1: none)."""
    names = [cut.split(":")[0] for cut in cuts]
    stages = [TRUNCATION_ORDER.index(name) for name in names if name in TRUNCATION_ORDER]
    return max(stages, default=-1)


def test_budget_truncation_follows_the_documented_order() -> None:
    full = build_prompt(*big_context(200_000), "hint").size
    seen_stages = set()
    for budget in range(full, 2_000, -40):
        context, analysis = big_context(budget)
        prompt = build_prompt(context, analysis, "hint")
        system, text = prompt.system, prompt.messages[0].content
        stage = cut_stage(prompt.cuts)
        seen_stages.add(stage)
        if stage < TRUNCATION_ORDER.index("mutable"):
            assert prompt.size <= budget, (budget, prompt.cuts)
        # An earlier kind of content is entirely gone before a later one is touched.
        if stage > TRUNCATION_ORDER.index("history"):
            assert "attempt number" not in text.split("# Near misses")[0]
        if stage > TRUNCATION_ORDER.index("layout"):
            assert "# Near misses" not in text and "# Files in the repository" not in system
        if stage > TRUNCATION_ORDER.index("log-tail"):
            assert "exploded" not in text
        if stage > TRUNCATION_ORDER.index("immutable"):
            assert "key0 = 0" not in system and "note 0" not in system
        if stage > TRUNCATION_ORDER.index("program"):
            assert "Idea 0" not in system
        if stage < TRUNCATION_ORDER.index("mutable"):
            assert "VALUE_149 = 149" in text
        # Never cut: the rules, the summary, the hint and the task.
        assert "Only these paths may change" in system
        assert "Best so far: 5" in text and "# Hint from the user\nhint" in text
        assert "# Your task" in text
    assert seen_stages >= set(range(len(TRUNCATION_ORDER)))


def test_oldest_rows_go_first_and_the_log_keeps_its_end() -> None:
    full = build_prompt(*big_context(200_000), "hint").size
    prompt = build_prompt(*big_context(full - 300), "hint")
    text = prompt.messages[0].content
    assert prompt.cuts[0].startswith("history:")
    assert "#1 | keep" not in text and "#20 | discard" in text
    assert "exploded" in text

    # Cut into the log tail: the end (the error) stays, the beginning goes, with a marker.
    for budget in range(full, 3_000, -100):
        prompt = build_prompt(*big_context(budget), "hint")
        if any(cut.startswith("log-tail:") and "characters" in cut for cut in prompt.cuts):
            break
    text = prompt.messages[0].content
    assert "RuntimeError: exploded" in text
    assert "step 0 loss" not in text and "earlier characters not shown]" in text


def test_immutable_files_are_cut_from_the_last_one_with_a_marker() -> None:
    full = build_prompt(*big_context(200_000), "hint").size
    for budget in range(full, 2_000, -100):
        prompt = build_prompt(*big_context(budget), "hint")
        if any(cut.startswith("immutable:") for cut in prompt.cuts):
            break
    assert prompt.cuts[-1].startswith("immutable:notes.txt")
    assert "key149 = 149" in prompt.system  # the first file is still whole
    assert "note 0" in prompt.system and "note 149" not in prompt.system
    assert "more characters not shown: cut to fit the context budget]" in prompt.system


def test_mutable_files_are_cut_last_with_a_visible_marker() -> None:
    prompt = build_prompt(*big_context(2_000), "hint")
    text = prompt.messages[0].content
    assert prompt.cuts[-1].startswith("mutable:train.py")
    assert "Idea 0" not in prompt.system
    assert "VALUE_149" not in text
    assert "do not edit past this point]" in text


async def test_plan_metadata_records_context_cuts_but_no_prompt() -> None:
    context, analysis = big_context(6_000)
    chat = ScriptedChat(reply(PLAN, EDITS))
    plan = await LLMProposer(chat).plan(context, analysis, None)
    assert plan.metadata["contextCuts"]
    assert set(plan.metadata) == {"provider", "model", "calls", "contextCuts"}


# -- reading replies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"description": "d", "rationale": "r"}',
        '```json\n{"description": "d", "rationale": "r"}\n```',
        'Sure! Here it is:\n```\n{"description": "d", "rationale": "r"}\n```\nGood luck.',
        'I will try this: {"description": "d", "rationale": "r", "confidence": 0.7} -- done',
        'Ideas {like this} are nice. {"description": "d", "rationale": "r"}',
        '~~~json\n{"description": "d",\n "rationale": "r"}\n~~~',
        '\ufeff  {"description": "d", "rationale": "r"}  ',
    ],
)
def test_replies_are_read_leniently(text: str) -> None:
    data = find_object(text)
    assert data["description"] == "d" and data["rationale"] == "r"


def test_raw_newlines_and_braces_inside_strings_are_fine() -> None:
    text = '{"edits": [{"path": "a.py", "content": "def f():\n\treturn {1: 2}\n"}]}'
    edits = read_edits(find_object(text))
    assert edits == [Edit(path="a.py", content="def f():\n\treturn {1: 2}\n")]


def test_unknown_keys_are_ignored_in_edits_and_a_single_edit_is_accepted() -> None:
    data = {"edits": {"path": "train.py", "search": "a", "replace": "b", "why": "because"}}
    assert read_edits(data) == [Edit(path="train.py", search="a", replace="b")]


def test_a_reply_cut_off_at_the_token_limit_is_read_as_far_as_it_goes() -> None:
    cut = '{"description": "lower X", "rationale": "closer to 1, since the loss is (X-1'
    assert find_object(cut) == {
        "description": "lower X",
        "rationale": "closer to 1, since the loss is (X-1",
    }
    assert find_object('{"description": "d", "ratio') == {"description": "d"}
    # Edits that were cut must never be applied: they are dropped, and asked for again.
    with_edits = (
        '{"description": "d", "rationale": "r", "edits": [{"path": "train.py", "search": "X'
    )
    assert find_object(with_edits) == {"description": "d", "rationale": "r"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the model's reply is empty"),
        ("I cannot help with that.", "holds no JSON object (it begins: 'I cannot help"),
        ("[1, 2, 3]", "holds no JSON object"),
        ('{"description": }', "holds no JSON object"),
        ('Here: {"description": "d", "rationale": ', "holds no JSON object"),
    ],
)
def test_unreadable_replies_raise_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ProposerError) as info:
        find_object(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"description": "d"}, "has no 'edits' (keys: description)"),
        ({"edits": "all of them"}, "'edits' in the model's reply must be a list, not a string"),
        ({"edits": [3]}, "edit 1 in the model's reply is not an object"),
        ({"edits": [{"search": "a", "replace": "b"}]}, "edit 1: path: Field required"),
        ({"edits": [{"path": "a", "search": "a"}]}, "edit 1: an edit needs either 'content'"),
        (
            {
                "edits": [
                    {"path": "a", "content": "x"},
                    {"path": "b", "content": "x", "search": "y"},
                ]
            },
            "edit 2: an edit has either 'content' or 'search'/'replace', not both",
        ),
    ],
)
def test_malformed_edits_raise_one_line_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ReplyError) as info:
        read_edits(data)
    assert message in str(info.value)


# -- calls per cycle ---------------------------------------------------------------------------


async def test_a_combined_reply_costs_one_call() -> None:
    chat = ScriptedChat("```json\n" + reply(PLAN, EDITS, {"mood": "confident"}) + "\n```")
    proposer = LLMProposer(chat)
    context = make_context()
    plan = await proposer.plan(context, make_analysis(), None)
    changes = await proposer.implement(context, plan)
    assert len(chat.requests) == 1
    assert plan.description == "lower X to 2.0"
    assert plan.rationale == "the loss is (X-1)^2+1"
    assert changes.edits == [Edit(path="train.py", search="X = 3.0", replace="X = 2.0")]
    assert plan.usage == CALL_USAGE.model_copy(update={"calls": 1})
    assert changes.usage == Usage()
    assert plan.metadata == {"provider": "fake", "model": "fake-model-1", "calls": 1}


async def test_plan_then_edits_costs_two_calls_with_the_same_opening() -> None:
    chat = ScriptedChat(
        "My plan: " + reply(PLAN),
        "Here are the edits:\n```json\n" + reply(EDITS) + "\n```",
    )
    proposer = LLMProposer(chat)
    context = make_context()
    plan = await proposer.plan(context, make_analysis(), "go")
    changes = await proposer.implement(context, plan)
    first, second = chat.requests
    assert second.system == first.system
    assert second.messages[0] == first.messages[0]  # a stable prefix for prompt caching
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]
    assert json.loads(second.messages[1].content) == PLAN
    assert "Now write the edits that carry out this plan" in second.messages[2].content
    assert changes.edits[0].replace == "X = 2.0"
    assert plan.usage is not None and changes.usage is not None
    total = plan.usage + changes.usage
    assert (total.input_tokens, total.output_tokens, total.calls) == (200, 40, 2)
    assert plan.metadata["calls"] == 2


async def test_unusable_edits_in_the_plan_reply_are_asked_for_again() -> None:
    broken = {"edits": [{"path": "train.py", "search": "X = 3.0"}]}
    chat = ScriptedChat(reply(PLAN, broken), reply(EDITS))
    proposer = LLMProposer(chat)
    plan = await proposer.plan(make_context(), make_analysis(), None)
    changes = await proposer.implement(make_context(), plan)
    assert len(chat.requests) == 2
    assert "could not be used: edit 1: an edit needs either" in chat.requests[1].messages[2].content
    assert changes.edits[0].replace == "X = 2.0"


async def test_an_empty_edit_list_in_the_plan_reply_means_ask_for_edits() -> None:
    chat = ScriptedChat(reply(PLAN, {"edits": []}), reply(EDITS))
    proposer = LLMProposer(chat)
    plan = await proposer.plan(make_context(), make_analysis(), None)
    await proposer.implement(make_context(), plan)
    assert len(chat.requests) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no idea, sorry", "holds no JSON object"),
        ('{"rationale": "r"}', "the model's plan has no 'description' (keys: rationale)"),
        ('{"description": ["a", "b"]}', "'description' in the model's reply must be a string"),
        ('{"description": "   "}', "has no 'description'"),
    ],
)
async def test_a_bad_plan_reply_is_a_proposer_error_carrying_usage(text: str, message: str) -> None:
    proposer = LLMProposer(ScriptedChat(text))
    with pytest.raises(ProposerError) as info:
        await proposer.plan(make_context(), make_analysis(), None)
    assert message in str(info.value)
    assert isinstance(info.value, ReplyError)
    assert info.value.usage is not None and info.value.usage.calls == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("garbage", "holds no JSON object"),
        ('{"edits": []}', "empty 'edits' list"),
        (reply(PLAN), "has no 'edits'"),
    ],
)
async def test_a_bad_edit_reply_is_a_proposer_error(text: str, message: str) -> None:
    proposer = LLMProposer(ScriptedChat(reply(PLAN), text))
    plan = await proposer.plan(make_context(), make_analysis(), None)
    with pytest.raises(ProposerError, match=message):
        await proposer.implement(make_context(), plan)


def test_the_constructor_checks_its_arguments() -> None:
    proposer = LLMProposer(ScriptedChat())
    assert proposer.history_rows == 20
    with pytest.raises(ValueError, match="history_rows"):
        LLMProposer(ScriptedChat(), history_rows=-1)
    with pytest.raises(ValueError, match="max_tokens"):
        LLMProposer(ScriptedChat(), max_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        LLMProposer(ScriptedChat(), temperature=2.5)


async def test_long_multiline_descriptions_are_flattened() -> None:
    text = json.dumps({"description": "a\n\tb  " + "c" * 500, "rationale": "r"})
    plan = await LLMProposer(ScriptedChat(text)).plan(make_context(), make_analysis(), None)
    assert plan.description.startswith("a b c") and "\n" not in plan.description
    assert len(plan.description) == 300


# -- repair ------------------------------------------------------------------------------------


async def test_repair_shows_the_problem_and_the_failed_edits() -> None:
    bad = {"edits": [{"path": "program.md", "content": "new program"}]}
    chat = ScriptedChat(reply(PLAN, bad), reply(EDITS))
    proposer = LLMProposer(chat)
    context = make_context()
    plan = await proposer.plan(context, make_analysis(), None)
    changes = await proposer.implement(context, plan)
    problem = "the edit was refused: 'program.md' is immutable (read-only for the agent)"
    repaired = await proposer.repair(context, plan, changes, problem)
    assert repaired is not None
    assert repaired.edits == [Edit(path="train.py", search="X = 3.0", replace="X = 2.0")]
    request = chat.requests[1]
    assert request.system == chat.requests[0].system
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    shown = json.loads(request.messages[1].content)
    assert shown["edits"] == [{"path": "program.md", "content": "new program"}]
    assert shown["description"] == PLAN["description"]
    assert problem in request.messages[2].content
    assert "send the complete corrected set" in request.messages[2].content
    # Usage: one call for the plan (with edits), one for the repair.
    assert plan.usage is not None and changes.usage is not None and repaired.usage is not None
    total = plan.usage + changes.usage + repaired.usage
    assert total.calls == 2 and total.input_tokens == 200 and total.cache_read_tokens == 10
    assert plan.metadata["calls"] == 2


async def test_an_empty_edit_list_gives_up_the_repair() -> None:
    chat = ScriptedChat(reply(PLAN, EDITS), 'I give up. {"edits": []}')
    proposer = LLMProposer(chat)
    plan = await proposer.plan(make_context(), make_analysis(), None)
    changes = await proposer.implement(make_context(), plan)
    problem = "the change does not validate: train.py:4: syntax error: invalid syntax"
    gave_up = await proposer.repair(make_context(), plan, changes, problem)
    assert gave_up is not None and gave_up.edits == []
    assert gave_up.usage is not None and gave_up.usage.calls == 1  # the engine still counts it
    assert "train.py:4: syntax error" in chat.requests[1].messages[-1].content


async def test_repair_with_garbage_is_a_proposer_error() -> None:
    chat = ScriptedChat(reply(PLAN, EDITS), "hmm")
    proposer = LLMProposer(chat)
    plan = await proposer.plan(make_context(), make_analysis(), None)
    changes = await proposer.implement(make_context(), plan)
    with pytest.raises(ProposerError, match="holds no JSON object"):
        await proposer.repair(make_context(), plan, changes, "search text occurs 3 times")


async def test_repair_of_a_plan_from_elsewhere_still_works() -> None:
    chat = ScriptedChat(reply(EDITS))
    proposer = LLMProposer(chat)
    plan = Plan(description="set X to 2", rationale="")
    changes = ChangeSet(edits=[Edit(path="train.py", search="X = 9", replace="X = 2.0")])
    repaired = await proposer.repair(make_context(), plan, changes, "search text was not found")
    assert repaired is not None and len(chat.requests) == 1


# -- through the engine ------------------------------------------------------------------------


def runs(repo: Path) -> list[dict[str, object]]:
    lines = (repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


async def test_the_engine_sums_usage_and_records_the_proposal(repo: Path) -> None:
    chat = ScriptedChat(
        reply(PLAN),
        reply({"edits": [{"path": "program.md", "content": "mine now"}]}),
        reply(EDITS),
    )
    worker = NeuroLink().create_research_worker(base_config(repo), proposer=LLMProposer(chat))
    baseline = await worker.run_experiment_cycle()
    assert baseline.status == "keep" and not chat.requests
    result = await worker.run_experiment_cycle()
    assert result.status == "keep", result.description
    assert result.metric_value == pytest.approx(2.0)
    assert len(chat.requests) == 3
    last = runs(repo)[-1]
    assert last["usage"] == {
        "inputTokens": 300,
        "outputTokens": 60,
        "cacheReadTokens": 15,
        "cacheWriteTokens": 0,
        "calls": 3,
    }
    assert last["proposal"] == {"provider": "fake", "model": "fake-model-1", "calls": 3}
    # The model saw the baseline row.
    assert "#1 | keep | 5 | +0 | baseline (unmodified code)" in chat.requests[0].messages[0].content


async def test_the_engine_marks_an_unrepairable_edit_invalid(repo: Path) -> None:
    chat = ScriptedChat(
        reply(PLAN, {"edits": [{"path": "../outside.py", "content": "x"}]}),
        reply({"edits": [{"path": "program.md", "content": "x"}]}),
    )
    worker = NeuroLink().create_research_worker(base_config(repo), proposer=LLMProposer(chat))
    await worker.run_experiment_cycle()
    best = git(repo, "rev-parse", "HEAD")
    result = await worker.run_experiment_cycle()
    assert result.status == "invalid"
    assert "'program.md' is immutable" in result.description
    assert "paths with '..' are refused" in chat.requests[1].messages[-1].content
    assert git(repo, "rev-parse", "HEAD") == best
    assert git(repo, "status", "--porcelain") == ""
    assert not (repo.parent / "outside.py").exists()
    assert runs(repo)[-1]["usage"]["calls"] == 2  # type: ignore[index]
