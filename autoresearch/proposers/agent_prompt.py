"""What a coding agent is told each cycle: the task, the rules, the program and the results.

Unlike a chat model, a coding agent reads and edits the files itself, so the prompt carries no
code: it says where the agent works, which paths it may change and which it must not touch,
what is measured and how, what was tried so far (with the difference to the best), the last
failure's log tail, the user's hint, and how to report what it did (a final line of JSON).
The wording may change between versions; the final-line contract does not.
"""

from __future__ import annotations

from pathlib import Path

from autoresearch.context import DEFAULT_PROGRAM
from autoresearch.proposers.base import Analysis, ResearchContext
from autoresearch.proposers.prompts import (
    failure_label,
    fenced,
    result_row,
    results_summary,
)

__all__ = ["PLACEHOLDER", "agent_prompt", "repair_section"]

PLACEHOLDER = "<one line: what you changed>"
"""The description in the prompt's example line; a report that only repeats it says nothing."""

HISTORY_ROWS = 20
"""How many of the latest results the agent is shown."""


def _rules(context: ResearchContext, root: Path) -> str:
    config = context.config
    metric = config.metric
    better = "lower" if metric.direction == "lower" else "higher"
    seconds = f"{config.timeout_ms / 1000:g}"
    margin = f" by more than {config.min_improvement:g}" if config.min_improvement else ""
    read_only = config.immutable_paths
    checks = "Changed .py, .json, .toml and .yaml files must still parse"
    if config.validate_command:
        checks += f", and `{config.validate_command}` must succeed"
    lines = [
        f"You are working in {root}, a git checkout that the autoresearch engine experiments "
        "on. Each cycle one change is made; the engine commits it, runs "
        f"`{config.run_command}` (time limit {seconds} s), reads the metric `{metric.name}` "
        f"from its output and keeps the change only if {metric.name} is {better} than the "
        f"best so far{margin}; otherwise it reverts it. This cycle's change is yours to make.",
        "",
        "## Rules",
        f"- Change only these paths: {', '.join(config.mutable_paths)}. Your edits to them "
        "are the change.",
    ]
    if read_only:
        lines.append(
            f"- Never change {', '.join(read_only)}: they define the experiment and how it is "
            "measured. A change to any of them discards the cycle."
        )
    lines += [
        "- Anything else you change or create is undone after you finish, and reported.",
        f"- {metric.name}: {better} is better. The run must finish within {seconds} s, print "
        "the metric and exit with status 0; a crash, a timeout or a missing metric is a failure.",
        f"- {checks}.",
        "- One idea per cycle, so that its effect can be measured. Prefer simple changes: a "
        "tiny gain that adds much complexity is not worth it; deleting code for an equal result "
        "is a win.",
        "- Learn from the results below: build on what was kept; do not repeat what was "
        "discarded or failed.",
        "- Do not commit, stash or switch branches: the engine commits, runs and measures. "
        "Quick checks are fine; do not run the full experiment.",
        "- When you are done, end your final message with one line of JSON saying what you did:",
        f'  {{"description": "{PLACEHOLDER}", "rationale": "<why it should help>"}}',
    ]
    return "\n".join(lines)


def _results(context: ResearchContext, analysis: Analysis) -> list[str]:
    best = analysis.best_metric
    rows = [result_row(r, best) for r in analysis.recent[-HISTORY_ROWS:]]
    block = f"## Results so far\n{results_summary(context, analysis)}"
    if rows:
        block += (
            "\nThe latest cycles, oldest first (cycle | status | metric | difference to the "
            "best so far | what was tried):\n" + "\n".join(rows)
        )
    blocks = [block]
    if analysis.near_misses:
        near = "\n".join(result_row(r, best) for r in analysis.near_misses)
        blocks.append(f"## Near misses (discarded, but within 2% of the best)\n{near}")
    if analysis.in_flight:
        running = "\n".join(f"- {plan.description}" for plan in analysis.in_flight)
        blocks.append(f"## Being measured right now (do not propose these again)\n{running}")
    if analysis.last_failure_log_tail:
        heading = failure_label(analysis).lstrip("# ")
        blocks.append(f"## {heading}\n{fenced(analysis.last_failure_log_tail.strip(chr(10)))}")
    return blocks


def agent_prompt(context: ResearchContext, analysis: Analysis, hint: str | None, root: Path) -> str:
    """The whole prompt for cycle ``analysis.cycle``, the agent working in ``root``."""
    blocks = [
        f"# Autoresearch cycle {analysis.cycle}: prepare one experiment",
        _rules(context, root),
    ]
    if context.program is not None:
        name = context.config.program_path or DEFAULT_PROGRAM
        blocks.append(f"## Research program ({name})\n\n{context.program.strip()}")
    blocks += _results(context, analysis)
    if hint and hint.strip():
        blocks.append(f"## Hint from the user\n{hint.strip()}")
    return "\n\n".join(blocks) + "\n"


def repair_section(problem: str, restored: bool) -> str:
    """What a repair run is told: why the change was not used and where to start from."""
    where = (
        "Your previous change is in the files again: fix it."
        if restored
        else "The files are back as they were before your change: make it again, corrected."
    )
    return (
        f"\n## Your change was not used\n{problem}\n{where} The same rules apply, and end "
        "with the same line of JSON.\n"
    )
