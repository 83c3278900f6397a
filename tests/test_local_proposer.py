"""The offline local proposer: finding constants, exact edits, learning, reproducibility."""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable

import pytest

from autoresearch.config import ResearchConfig
from autoresearch.errors import ProposerError
from autoresearch.proposers.base import Analysis, Plan, Proposer, ResearchContext
from autoresearch.proposers.local import LocalProposer
from autoresearch.results import RunRecord, Status

pytestmark = pytest.mark.anyio

TRAIN = """\
# a training script
import math

LEARNING_RATE = 0.01  # too low on purpose
MOMENTUM: float = 0.5
WIDTH = 16
OFFSET = -3.0
"""

SMALL = "A = 2\nB = 3\n"


def make_context(files: dict[str, str], direction: str = "lower") -> ResearchContext:
    config = ResearchConfig(
        repo_path="/tmp/example-repo",
        mutable_paths=sorted(files),
        run_command="python train.py",
        metric={"name": "loss", "pattern": r"^loss:\s+([\d.]+)", "direction": direction},
    )
    return ResearchContext(config=config, mutable_files=files)


def record(
    cycle: int, status: Status, plan: Plan | None = None, metric: float | None = None
) -> RunRecord:
    return RunRecord(
        cycle=cycle,
        commit=f"{cycle:040x}",
        status=status,
        metric=metric,
        started_at="2025-01-01T00:00:00Z",
        description=plan.description if plan else "baseline",
        baseline=plan is None,
        proposal=plan.metadata if plan else None,
    )


async def propose(
    proposer: LocalProposer, files: dict[str, str], hint: str | None = None
) -> tuple[Plan, dict[str, str]]:
    context = make_context(files)
    plan = await proposer.plan(context, Analysis(cycle=proposer.observed), hint)
    changes = await proposer.implement(context, plan)
    new_files = dict(files)
    for edit in changes.edits:
        assert edit.content is not None
        new_files[edit.path] = edit.content
    return plan, new_files


async def search(
    proposer: LocalProposer,
    files: dict[str, str],
    objective: Callable[[dict[str, float]], float | None],
    cycles: int,
) -> tuple[float, float, list[Plan]]:
    """Run the keep/revert loop in process; ``objective`` returns None for a crash."""
    baseline = objective(await params_of(files))
    assert baseline is not None
    best = baseline
    await proposer.observe(record(0, "keep", metric=baseline))
    plans = []
    for cycle in range(1, cycles + 1):
        plan, candidate = await propose(proposer, files)
        plans.append(plan)
        value = objective(plan.metadata["params"])
        if value is None:
            status: Status = "crash"
        elif value < best:
            status, best, files = "keep", value, candidate
        else:
            status = "discard"
        await proposer.observe(record(cycle, status, plan, value))
    return baseline, best, plans


async def params_of(files: dict[str, str]) -> dict[str, float]:
    plan = await LocalProposer().plan(make_context(files), Analysis(cycle=0), None)
    params: dict[str, float] = dict(plan.metadata["params"])
    for key, (old, _new) in plan.metadata["changed"].items():
        params[key] = old
    return params


async def test_local_proposer_satisfies_the_protocol() -> None:
    proposer = LocalProposer()
    assert isinstance(proposer, Proposer)
    assert proposer.name == "local"


async def test_finds_module_level_numbers_only() -> None:
    source = """\
import os
LR = 0.1
STEPS = 100
NEG = -2
NEG_FLOAT = -0.25
ANNOTATED: int = 7
FLAG = True
NAME = "model"
TUPLE_A, TUPLE_B = 1, 2
X = Y = 3
COMPUTED = 2 * 3
COMPLEX = 2j
SEED = 42
__version__ = 1
REASSIGNED = 5
REASSIGNED = os.cpu_count()
LATER = 1
LATER = 2

def train():
    LOCAL = 0.5
    return LOCAL

class Config:
    INNER = 3

if os.name:
    GUARDED = 4
"""
    plan, _ = await propose(LocalProposer(), {"train.py": source})
    # Expressions, class attributes and guarded constants count now; a negative int (a
    # sentinel), a name assigned twice, a seed and strings/booleans without choices do not.
    assert plan.metadata["params"].keys() == {
        "LR",
        "STEPS",
        "NEG_FLOAT",
        "ANNOTATED",
        "COMPUTED",
        "Config.INNER",
        "GUARDED",
    }
    current = {**plan.metadata["params"]}
    for key, (old, _new) in plan.metadata["changed"].items():
        current[key] = old
    assert current["COMPUTED"] == 6 and current["NEG_FLOAT"] == -0.25


async def test_same_name_in_two_files_is_qualified_by_path() -> None:
    files = {"a.py": "LR = 0.1\nDEPTH = 2\n", "b.py": "LR = 0.2\n", "notes.md": "LR = 9\n"}
    plan, _ = await propose(LocalProposer(), files)
    assert set(plan.metadata["params"]) == {"a.py:LR", "b.py:LR", "DEPTH"}


async def test_no_numbers_raises_a_helpful_error() -> None:
    files = {"train.py": "def main():\n    lr = 0.1\n", "broken.py": "def (:\n"}
    with pytest.raises(ProposerError) as info:
        await LocalProposer().plan(make_context(files), Analysis(cycle=0), None)
    message = str(info.value)
    assert "\n" not in message
    assert "NAME = <number>" in message
    assert "argparse/click defaults" in message
    assert "LLM provider" in message


async def test_edit_changes_only_the_literal() -> None:
    source = (
        "# -*- coding: utf-8 -*-\r\n"
        "ÉTÉ = 'summer'  # non-ASCII before the numbers\r\n"
        "LR   =    0.1     # spacing and comments stay\r\n"
        "WIDTH: int=64\r\n"
        "SHIFT = (\r\n    -1.5\r\n)\r\n"
        "print(LR, WIDTH)\r\n"
    )
    proposer = LocalProposer(seed=3)
    for cycle in range(30):
        plan, new_files = await propose(proposer, {"train.py": source})
        new = new_files["train.py"]
        ast.parse(new)
        expected = source
        for key, (old_value, new_value) in plan.metadata["changed"].items():
            old_text, new_text = format_number(old_value), format_number(new_value)
            pattern = {
                "LR": ("LR   =    {}     #", "LR   =    {}     #"),
                "WIDTH": ("WIDTH: int={}\r\n", "WIDTH: int={}\r\n"),
                "SHIFT": ("(\r\n    {}\r\n)", "(\r\n    {}\r\n)"),
            }[key]
            before, after = pattern[0].format(old_text), pattern[1].format(new_text)
            assert expected.count(before) == 1
            expected = expected.replace(before, after)
        assert new == expected
        await proposer.observe(record(cycle, "discard", plan, 1.0))


def format_number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


async def test_edit_keeps_a_byte_order_mark() -> None:
    source = "\ufeffLR = 0.1  # x\nstep = LR * 2\n"
    plan, new_files = await propose(LocalProposer(), {"train.py": source})
    new = new_files["train.py"]
    (old, value) = plan.metadata["changed"]["LR"]
    assert old == 0.1
    assert new == f"\ufeffLR = {value!r}  # x\nstep = LR * 2\n"


async def test_description_names_every_change() -> None:
    proposer = LocalProposer(seed=1)
    files = {"train.py": TRAIN}
    seen_pairs = False
    for cycle in range(40):
        plan, _ = await propose(proposer, files)
        changed = plan.metadata["changed"]
        expected = ", ".join(
            f"{key} {format_number(old)} -> {format_number(new)}"
            for key, (old, new) in changed.items()
        )
        assert plan.description == expected
        assert re.fullmatch(r"[A-Z_]+ \S+ -> \S+(, [A-Z_]+ \S+ -> \S+)?", plan.description)
        assert 1 <= len(changed) <= 2
        seen_pairs = seen_pairs or len(changed) == 2
        assert plan.metadata["params"] == {
            **(await params_of(files)),
            **{key: new for key, (_old, new) in changed.items()},
        }
        await proposer.observe(record(cycle, "discard", plan, 1.0))
    assert seen_pairs


async def test_single_parameter_per_step_when_asked() -> None:
    proposer = LocalProposer(max_params_per_step=1)
    for cycle in range(30):
        plan, _ = await propose(proposer, {"train.py": TRAIN})
        assert len(plan.metadata["changed"]) == 1
        await proposer.observe(record(cycle, "discard", plan, 1.0))


async def test_ints_stay_ints_and_floats_stay_readable() -> None:
    proposer = LocalProposer(seed=2)
    files = {"train.py": TRAIN}
    for cycle in range(60):
        plan, new_files = await propose(proposer, files)
        for old, new in plan.metadata["changed"].values():
            assert type(new) is type(old)
            assert new != old
            if isinstance(new, float):
                assert len(repr(new).replace("-", "").replace(".", "")) <= 8
        tree = ast.parse(new_files["train.py"])
        width = next(
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "WIDTH"
        )
        assert isinstance(width, ast.Constant) and type(width.value) is int
        status: Status = "keep" if cycle % 3 == 0 else "discard"
        if status == "keep":
            files = new_files
        await proposer.observe(record(cycle, status, plan, 1.0 - cycle / 100))


async def test_never_repeats_a_configuration_on_a_small_space() -> None:
    """Two small ints in their ranges (A 1..8, B 1..12): all 96 configurations, then an error."""
    proposer = LocalProposer(seed=5)
    files = {"train.py": SMALL}
    seen = {(2, 3)}
    best = 10.0
    exhausted = None
    for cycle in range(200):
        try:
            plan, candidate = await propose(proposer, files)
        except ProposerError as exc:
            exhausted = str(exc)
            break
        params = plan.metadata["params"]
        config = (params["A"], params["B"])
        assert config not in seen
        assert 1 <= config[0] <= 8 and 1 <= config[1] <= 12
        seen.add(config)
        value = abs(config[0] - 7.3) + abs(config[1] - 1) + 0.5
        status: Status = "discard"
        if value < best:
            status, best, files = "keep", value, candidate
        await proposer.observe(record(cycle, status, plan, value))
    assert best == pytest.approx(0.8)
    assert exhausted is not None and "no untried configuration" in exhausted
    assert len(seen) == 96


async def test_never_repeats_configurations_from_history() -> None:
    first = LocalProposer(seed=9)
    history = [record(0, "keep", metric=1.0)]
    for cycle in range(1, 40):
        plan, _ = await propose(first, {"train.py": SMALL})
        history.append(record(cycle, "discard", plan, 2.0))
        await first.observe(history[-1])
    tried = {json.dumps(r.proposal["params"], sort_keys=True) for r in history if r.proposal}
    assert len(tried) == 39
    restarted = LocalProposer(seed=123)
    await restarted.prime(history)
    for _ in range(10):
        plan, _ = await propose(restarted, {"train.py": SMALL})
        key = json.dumps(plan.metadata["params"], sort_keys=True)
        assert key not in tried
        assert plan.metadata["params"] != {"A": 2, "B": 3}
        tried.add(key)
        await restarted.observe(record(restarted.observed, "discard", plan, 2.0))


async def simulated_history(seed: int, cycles: int) -> list[RunRecord]:
    proposer = LocalProposer(seed=seed)
    files = {"train.py": TRAIN}
    history = [record(0, "keep", metric=10.0)]
    await proposer.observe(history[0])
    for cycle in range(1, cycles + 1):
        plan, candidate = await propose(proposer, files)
        status: Status = ("keep", "discard", "discard", "crash", "timeout")[cycle % 5]
        if status == "keep":
            files = candidate
        history.append(record(cycle, status, plan, 10.0 - cycle))
        await proposer.observe(history[-1])
    return history


async def test_same_seed_and_history_give_the_same_plan() -> None:
    history = await simulated_history(seed=4, cycles=12)
    files = {"train.py": TRAIN}
    first, second = LocalProposer(seed=4), LocalProposer(seed=4)
    await first.prime(history)
    await second.prime(history)
    plan_a, files_a = await propose(first, files, hint="try the momentum")
    plan_b, files_b = await propose(second, files, hint="try the momentum")
    assert plan_a == plan_b
    assert files_a == files_b
    # Planning twice without new results proposes the same thing again.
    plan_c, _ = await propose(first, files, hint="try the momentum")
    assert plan_c == plan_a


async def test_different_seeds_give_different_proposals() -> None:
    descriptions = set()
    for seed in range(4):
        proposer = LocalProposer(seed=seed)
        sequence = []
        for cycle in range(5):
            plan, _ = await propose(proposer, {"train.py": TRAIN})
            sequence.append(plan.description)
            await proposer.observe(record(cycle, "discard", plan, 1.0))
        descriptions.add(tuple(sequence))
    assert len(descriptions) == 4


async def test_prime_equals_observing_one_by_one() -> None:
    history = await simulated_history(seed=7, cycles=25)
    # Records written by another proposer and a JSON round trip must not matter.
    history.insert(3, record(3, "discard").model_copy(update={"proposal": {"edits": 2}}))
    history = [RunRecord.model_validate_json(r.model_dump_json()) for r in history]
    primed, stepped = LocalProposer(seed=7), LocalProposer(seed=7)
    await primed.prime(history)
    for item in history:
        await stepped.observe(item)
    assert primed.observed == stepped.observed == len(history)
    for key in ("LEARNING_RATE", "MOMENTUM", "WIDTH", "OFFSET"):
        assert primed.step_size(key) == stepped.step_size(key)
    files = {"train.py": TRAIN}
    assert (await propose(primed, files))[0] == (await propose(stepped, files))[0]
    # prime starts over: priming again with the same history changes nothing.
    await primed.prime(history)
    assert (await propose(primed, files))[0] == (await propose(stepped, files))[0]


async def test_step_grows_after_keep_and_shrinks_after_discard() -> None:
    proposer = LocalProposer(max_params_per_step=1)
    files = {"train.py": "LR = 0.1\n"}
    start = proposer.step_size("LR")
    plan, candidate = await propose(proposer, files)
    await proposer.observe(record(1, "keep", plan, 1.0))
    grown = proposer.step_size("LR")
    assert grown > start
    # After a keep the next move goes the same way, and further.
    old, new = plan.metadata["changed"]["LR"]
    plan2, _ = await propose(proposer, candidate)
    old2, new2 = plan2.metadata["changed"]["LR"]
    assert old2 == new
    assert math.copysign(1, new2 - old2) == math.copysign(1, new - old)
    assert abs(math.log(new2 / old2)) > abs(math.log(new / old)) * 0.9
    await proposer.observe(record(2, "discard", plan2, 2.0))
    shrunk = proposer.step_size("LR")
    assert shrunk < grown
    # After a discard the next move turns around.
    plan3, _ = await propose(proposer, candidate)
    old3, new3 = plan3.metadata["changed"]["LR"]
    assert math.copysign(1, new3 - old3) == -math.copysign(1, new2 - old2)
    await proposer.observe(record(3, "crash", plan3))
    assert proposer.step_size("LR") < shrunk * 0.7


async def test_steps_stay_within_bounds() -> None:
    proposer = LocalProposer(max_params_per_step=1)
    files = {"train.py": "LR = 0.1\n"}
    for cycle in range(30):
        plan, candidate = await propose(proposer, files)
        files = candidate
        await proposer.observe(record(cycle, "keep", plan, -cycle))
    assert proposer.step_size("LR") <= 2.0
    for cycle in range(30, 80):
        plan, _ = await propose(proposer, files)
        await proposer.observe(record(cycle, "discard", plan, 100.0))
    assert proposer.step_size("LR") >= 0.1


async def test_two_crashes_fence_off_what_lies_beyond() -> None:
    proposer = LocalProposer(seed=11, max_params_per_step=1)
    files = {"train.py": "LR = 0.1\n"}
    crashes: list[float] = []
    for cycle in range(40):
        plan, candidate = await propose(proposer, files)
        lr = plan.metadata["params"]["LR"]
        if len(crashes) >= 2:
            assert lr < min(crashes)
        if lr >= 0.5:
            crashes.append(lr)
            await proposer.observe(record(cycle, "crash", plan))
        elif lr > plan.metadata["changed"]["LR"][0]:
            files = candidate
            await proposer.observe(record(cycle, "keep", plan, 1.0 / lr))
        else:
            await proposer.observe(record(cycle, "discard", plan, 10.0 + cycle))
    assert len(crashes) >= 2


async def test_a_crash_at_one_value_does_not_fence_off_valid_values_beyond_it() -> None:
    """A divisibility assert: odd widths crash, even ones run, and wider is better."""
    proposer = LocalProposer(seed=3, max_params_per_step=1)
    files = {"train.py": "WIDTH = 20\n"}
    crashed: list[int] = []
    best_width = 20
    for cycle in range(40):
        plan, candidate = await propose(proposer, files)
        width = plan.metadata["params"]["WIDTH"]
        if width % 2:
            crashed.append(width)
            await proposer.observe(record(cycle, "crash", plan))
        elif width > best_width:
            best_width, files = width, candidate
            await proposer.observe(record(cycle, "keep", plan, 1000.0 / width))
        else:
            await proposer.observe(record(cycle, "discard", plan, 1000.0 / width + cycle))
    assert crashed, "the search never hit an odd width"
    assert best_width > min(crashed)  # valid values beyond a crash were still tried and kept


async def test_hint_biases_which_parameter_moves() -> None:
    source = "LEARNING_RATE = 0.1\nMOMENTUM = 0.5\nWIDTH = 16\nDEPTH = 3\nDROPOUT = 0.1\n"
    counts = {"hinted": 0, "plain": 0}
    for seed in range(20):
        hinted, _ = await propose(
            LocalProposer(seed=seed), {"t.py": source}, "Tune the learning rate"
        )
        plain, _ = await propose(LocalProposer(seed=seed), {"t.py": source}, "make it better")
        counts["hinted"] += "LEARNING_RATE" in hinted.metadata["changed"]
        counts["plain"] += "LEARNING_RATE" in plain.metadata["changed"]
    assert counts["hinted"] >= 15
    assert counts["plain"] <= 10


async def test_repair_gives_up() -> None:
    proposer = LocalProposer()
    context = make_context({"train.py": TRAIN})
    plan = await proposer.plan(context, Analysis(cycle=0), None)
    changes = await proposer.implement(context, plan)
    assert await proposer.repair(context, plan, changes, "syntax error") is None


async def test_implement_rejects_plans_it_cannot_apply() -> None:
    proposer = LocalProposer()
    context = make_context({"train.py": TRAIN})
    with pytest.raises(ProposerError, match="not made by the local proposer"):
        await proposer.implement(context, Plan(description="other"))
    gone = Plan(description="x", metadata={"changed": {"GONE": [1, 2]}})
    with pytest.raises(ProposerError, match="GONE is no longer"):
        await proposer.implement(context, gone)
    text = Plan(description="x", metadata={"changed": {"WIDTH": [16, "16; import os"]}})
    with pytest.raises(ProposerError, match="new value for WIDTH does not fit it"):
        await proposer.implement(context, text)
    assert context.mutable_files == {"train.py": TRAIN}


async def test_plan_metadata_is_json_ready() -> None:
    proposer = LocalProposer()
    plan, _ = await propose(proposer, {"train.py": TRAIN})
    assert json.loads(json.dumps(plan.metadata)) == plan.metadata
    assert set(plan.metadata) >= {"params", "changed", "steps"}


def smooth_loss(params: dict[str, float]) -> float | None:
    lr, momentum, width, dropout = (
        params["LEARNING_RATE"],
        params["MOMENTUM"],
        params["WIDTH"],
        params["DROPOUT"],
    )
    if lr > 3.0 or momentum >= 1.0 or width < 1:
        return None  # diverged / invalid
    return (
        1.0
        + math.log2(lr / 0.3) ** 2
        + 8.0 * (momentum - 0.9) ** 2
        + math.log2(width / 96) ** 2
        + 10.0 * max(dropout, 0.0)
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
async def test_search_improves_a_smooth_objective(seed: int) -> None:
    source = "LEARNING_RATE = 0.01\nMOMENTUM = 0.5\nWIDTH = 8\nDROPOUT = 0.3\n"
    baseline, best, plans = await search(
        LocalProposer(seed=seed), {"train.py": source}, smooth_loss, cycles=30
    )
    assert baseline > 40
    assert best < baseline * 0.4
    configs = [json.dumps(p.metadata["params"], sort_keys=True) for p in plans]
    assert len(set(configs)) == len(configs)


async def test_after_a_crash_integer_sizes_move_in_multiples_of_eight() -> None:
    proposer = LocalProposer(seed=2, max_params_per_step=1)
    files = {"train.py": "WIDTH = 100\n"}
    plan, _ = await propose(proposer, files)
    await proposer.observe(record(1, "crash", plan))  # say, an assert on the width
    widths = []
    for cycle in range(2, 12):
        plan, _ = await propose(proposer, files)
        widths.append(plan.metadata["params"]["WIDTH"])
        await proposer.observe(record(cycle, "discard", plan, 10.0 + cycle))
    assert all(w % 8 == 0 for w in widths), widths
