"""What the LLM agent is shown: the system text, the context message, and the budget over both.

The **system text** changes only when the configuration, the program or the read-only files
change, so providers can cache it: the role and the rules (which paths may change, the metric and
its direction, the time limit, the reply shapes), the research program, the read-only files and
the repository's file list. The **context message** (the first user message) changes every
cycle: every mutable file in full with line numbers, the results so far, the last failure's log
tail, near misses, a brief from another proposer (the hybrid proposer's numeric search), the
user's hint and the task. Later messages of the same cycle (the plan the
model gave, a refused edit and why) follow it.

``config.context_budget`` bounds the characters of the system text plus all messages. When a
prompt is over budget, :func:`build_prompt` shortens it in the order of :data:`TRUNCATION_ORDER`,
one step at a time, and stops as soon as it fits. The rules, the metric summary, the brief, the
hint, the task and the follow-up messages are never shortened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from autoresearch.config import ResearchConfig
from autoresearch.context import DEFAULT_PROGRAM
from autoresearch.edits import Edit
from autoresearch.gitfiles import under
from autoresearch.proposers.base import Analysis, Plan, ResearchContext
from autoresearch.providers.base import ChatMessage
from autoresearch.results import RunRecord

__all__ = [
    "PLAN_TASK",
    "TRUNCATION_ORDER",
    "Prompt",
    "build_prompt",
    "echo",
    "failure_label",
    "fenced",
    "implement_task",
    "number_lines",
    "repair_task",
    "result_row",
    "results_summary",
    "system_rules",
]

TRUNCATION_ORDER = (
    "history",
    "near-misses",
    "layout",
    "log-tail",
    "immutable",
    "program",
    "mutable",
)
"""What is shortened, first to last, when a prompt is over the context budget.

``history``: result rows are dropped, oldest first. ``near-misses``: the section is dropped.
``layout``: the repository file list is dropped. ``log-tail``: the last failure's log loses its
beginning (its end is what explains a crash), then goes. ``immutable``: read-only files are cut
from their end, the last file first, down to nothing. ``program``: the research program is cut
from its end. ``mutable``: a last resort when everything else is gone, the last file first, from
its end, with a marker telling the model the file goes on and must not be edited past it.
"""

LAYOUT_ENTRIES = 200
"""At most this many repository paths are listed."""

DESCRIPTION_CHARS = 160
"""Each result row shows this much of what was tried."""

ECHO_FIELD_CHARS = 4000
"""A long string in an echoed edit is shortened to this when shown back to the model."""

_CUT_SLACK = 120  # room for the marker that replaces a cut


def system_rules(config: ResearchConfig) -> str:
    """The role and the rules: what may change, what is measured, how to answer."""
    metric = config.metric
    better = "lower" if metric.direction == "lower" else "higher"
    seconds = f"{config.timeout_ms / 1000:g}"
    margin = f" by more than {config.min_improvement:g}" if config.min_improvement else ""
    paths = ", ".join(config.mutable_paths)
    inside = [p for p in config.immutable_paths if under(p, config.mutable_paths)]
    if inside:
        paths += f" (except the read-only {', '.join(inside)})"
    checks = "Changed .py, .json, .toml and .yaml files must still parse"
    if config.validate_command:
        checks += f", and `{config.validate_command}` must succeed"
    return f"""\
You are a research agent. You improve an experiment by changing its code, one idea per cycle.
Each cycle the engine applies your change, commits it, runs `{config.run_command}` (time limit \
{seconds} s) and reads the metric `{metric.name}` from its output. The change is kept only if \
{metric.name} is {better} than the best so far{margin}; otherwise it is reverted.

Rules:
- Only these paths may change: {paths}. Edits to anything else (the research program, the \
read-only files, .git/, .autoresearch/, paths outside the repository) are refused.
- {metric.name}: {better} is better. The run must finish within {seconds} s, print the metric \
and exit with status 0; a crash, a timeout or a missing metric is a failure.
- {checks}.
- One idea per cycle, so that its effect can be measured.
- Prefer simple changes. A tiny gain that adds much complexity is not worth it; deleting code \
for an equal result is a win.
- Learn from the results: build on what was kept; do not repeat what was discarded or failed.
- Answer with exactly ONE JSON object and nothing else.

Reply shapes:
- plan: {{"description": "one line: what you change", "rationale": "why it should help"}}
- edits: {{"edits": [{{"path": "file", "search": "exact old text", "replace": "new text"}}, \
{{"path": "file", "content": "the whole new file"}}]}}
A plan may carry its "edits" in the same object; that saves a request.

Edits:
- "search" must occur exactly once in the file, character for character (indentation too); \
include neighbouring lines to make it unique, but keep it short.
- "content" replaces the whole file (or creates it under a mutable path).
- Files are shown with line numbers ("12 | code"). The numbers are not part of the files: never \
put them in "search", "replace" or "content".
- The edits of one reply are applied in order, all or none, to the files as shown."""


PLAN_TASK = """\
# Your task
Propose the next experiment: ONE change to the mutable files that you expect to improve the \
metric, given the results so far. Reply with ONE JSON object: {"description": "...", \
"rationale": "..."}. Add "edits" (the reply shape from the rules) to the same object if you can \
write them now."""


def implement_task(problem: str | None = None) -> str:
    """The follow-up that asks for the edits carrying out the plan just given."""
    text = "Now write the edits that carry out this plan. Reply with ONE JSON object: "
    text += '{"edits": [...]}.'
    if problem:
        text = f"The edits in your reply could not be used: {problem}\n{text}"
    return text


def repair_task(problem: str) -> str:
    """The follow-up that explains why the edits failed and asks for a corrected set."""
    return (
        f"Your edits were not applied: {problem}\n"
        "The files are back as shown in the first message. Your next edits replace these ones "
        "and are applied from scratch, so send the complete corrected set, not only the part "
        'that failed. Reply with ONE JSON object: {"edits": [...]}, or {"edits": []} to give '
        "up on this plan."
    )


def _short(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters not repeated here]"


def echo(plan: Plan, edits: Sequence[Edit] = ()) -> str:
    """The model's own answer as it is shown back to it: the plan and, if given, its edits."""
    data: dict[str, object] = {"description": plan.description, "rationale": plan.rationale}
    if edits:
        data["edits"] = [
            {key: _short(value, ECHO_FIELD_CHARS) for key, value in edit if value is not None}
            for edit in edits
        ]
    return json.dumps(data, ensure_ascii=False, indent=1)


def number_lines(text: str) -> str:
    """``text`` with a right-aligned line number and ``" | "`` before every line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    width = len(str(len(lines)))
    out = []
    for number, line in enumerate(lines, start=1):
        prefix = f"{number:>{width}} |"
        out.append(f"{prefix} {line}" if line else prefix)
    return "\n".join(out)


def fenced(text: str, info: str = "") -> str:
    """``text`` in a Markdown code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


@dataclass(frozen=True)
class Prompt:
    """One request's text: the cacheable system text, the messages and what was shortened."""

    system: str
    messages: list[ChatMessage]
    cuts: list[str]
    """What the budget shortened, in :data:`TRUNCATION_ORDER` (empty when everything fit)."""

    @property
    def size(self) -> int:
        """Characters of the system text plus every message (what the budget counts)."""
        return len(self.system) + sum(len(m.content) for m in self.messages)


@dataclass
class _Parts:
    """The sections of a prompt, shortened in place until it fits."""

    rules: str
    program_name: str
    program: str | None
    layout: list[str]
    immutable: dict[str, str]
    mutable: dict[str, str]
    summary: str
    history: list[str]
    total_cycles: int
    near: list[str]
    running: list[str]
    """What other slots are measuring now (with parallel slots)."""
    log_label: str
    log_tail: str | None
    hint: str | None
    task: str
    follow_ups: list[ChatMessage]
    brief: str | None = None
    """A section another proposer adds before the hint (the hybrid's numeric search)."""
    cut: dict[str, int] = field(default_factory=dict)
    """Characters removed per section key (``program``, ``immutable:<path>`` …)."""
    dropped: list[str] = field(default_factory=list)
    rows_dropped: int = 0


def _program_name(context: ResearchContext) -> str:
    return context.config.program_path or DEFAULT_PROGRAM


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def result_row(record: RunRecord, best: float | None) -> str:
    """One result as the model sees it: ``#cycle | status | metric | delta | what``."""
    metric = _fmt(record.metric) if record.metric is not None else "-"
    delta = "-"
    if record.metric is not None and best is not None:
        delta = f"{record.metric - best:+.4g}"
    what = "baseline (unmodified code)" if record.baseline else record.description
    what = " ".join(what.split()) or "-"
    if len(what) > DESCRIPTION_CHARS:
        what = what[: DESCRIPTION_CHARS - 1] + "…"
    return f"#{record.cycle} | {record.status} | {metric} | {delta} | {what}"


def results_summary(context: ResearchContext, analysis: Analysis) -> str:
    """The metric, its direction, the best and baseline values and the cycle count, one line."""
    metric = context.config.metric
    parts = [f"Metric: {metric.name}, {metric.direction} is better."]
    if analysis.best_metric is not None:
        commit = f" (commit {analysis.best_commit[:7]})" if analysis.best_commit else ""
        parts.append(f"Best so far: {_fmt(analysis.best_metric)}{commit}.")
    else:
        parts.append("No successful run yet.")
    if analysis.baseline_metric is not None:
        parts.append(f"Baseline (unmodified code): {_fmt(analysis.baseline_metric)}.")
    parts.append(f"Cycles run: {max(analysis.total_cycles, len(analysis.recent))}.")
    return " ".join(parts)


def failure_label(analysis: Analysis) -> str:
    """The heading over the last failed run's log tail (which cycle, which status)."""
    failed = next((r for r in reversed(analysis.recent) if r.status in ("crash", "timeout")), None)
    if failed is None:
        return "# The last failed run: end of its output"
    return f"# The last failed run (#{failed.cycle}, {failed.status}): end of its output"


def _parts(
    context: ResearchContext,
    analysis: Analysis,
    hint: str | None,
    *,
    task: str,
    follow_ups: Sequence[ChatMessage],
    history_rows: int,
    brief: str | None = None,
) -> _Parts:
    program_name = _program_name(context)
    program = context.program
    if program_name in context.mutable_files:
        program = None  # it is shown, numbered, with the mutable files
    immutable = {
        path: text
        for path, text in context.immutable_files.items()
        if not (program is not None and path == program_name)
    }
    recent = analysis.recent[-history_rows:] if history_rows > 0 else []
    best = analysis.best_metric
    return _Parts(
        rules=system_rules(context.config),
        program_name=program_name,
        program=program,
        layout=list(context.layout),
        immutable=immutable,
        mutable=dict(context.mutable_files),
        summary=results_summary(context, analysis),
        history=[result_row(r, best) for r in recent],
        total_cycles=max(analysis.total_cycles, len(analysis.recent)),
        near=[result_row(r, best) for r in analysis.near_misses],
        running=[plan.description for plan in analysis.in_flight],
        log_label=failure_label(analysis),
        log_tail=analysis.last_failure_log_tail or None,
        hint=hint.strip() if hint and hint.strip() else None,
        task=task,
        follow_ups=list(follow_ups),
        brief=brief,
    )


def _head_marker(parts: _Parts, key: str, mutable: bool = False) -> str:
    removed = parts.cut.get(key)
    if not removed:
        return ""
    if mutable:
        return (
            f"\n… [the rest of this file ({removed} characters) is not shown: cut to fit the "
            "context budget; do not edit past this point]"
        )
    return f"\n… [{removed} more characters not shown: cut to fit the context budget]"


def _file_block(parts: _Parts, path: str, text: str, key: str) -> str:
    if not text and parts.cut.get(key):
        return f"## {path}\n[not shown: {parts.cut[key]} characters, cut to fit the context budget]"
    body = text.rstrip("\n") + _head_marker(parts, key)
    return f"## {path}\n{fenced(body)}"


def _render_system(parts: _Parts) -> str:
    blocks = [parts.rules]
    if parts.program is not None:
        body = parts.program.strip("\n") + _head_marker(parts, "program")
        blocks.append(f"# Research program ({parts.program_name})\n\n{body}")
    if parts.immutable:
        files = [
            _file_block(parts, path, text, f"immutable:{path}")
            for path, text in parts.immutable.items()
        ]
        heading = "# Read-only files (for reference; edits to them are refused)"
        blocks.append(heading + "\n\n" + "\n\n".join(files))
    if parts.layout:
        shown = parts.layout[:LAYOUT_ENTRIES]
        more = len(parts.layout) - len(shown)
        listing = "\n".join(shown) + (f"\n… and {more} more" if more > 0 else "")
        blocks.append(f"# Files in the repository\n{listing}")
    return "\n\n".join(blocks)


def _render_context(parts: _Parts) -> str:
    files = []
    for path, text in parts.mutable.items():
        key = f"mutable:{path}"
        numbered = number_lines(text) + _head_marker(parts, key, mutable=True)
        files.append(f"## {path}\n{fenced(numbered)}")
    blocks = [
        "# Mutable files (the only files you may change)\n"
        "Line numbers are for reference only; they are not part of the files.\n\n"
        + ("\n\n".join(files) if files else "(none found)")
    ]
    results = f"# Results so far\n{parts.summary}"
    if parts.history:
        results += (
            f"\nThe last {len(parts.history)} of {parts.total_cycles} cycles, oldest first "
            "(cycle | status | metric | difference to the best so far | what was tried):\n"
            + "\n".join(parts.history)
        )
    elif parts.rows_dropped:
        results += "\n(The result rows are not shown: cut to fit the context budget.)"
    blocks.append(results)
    if parts.near:
        blocks.append(
            "# Near misses (discarded, but within 2% of the best: worth refining)\n"
            + "\n".join(parts.near)
        )
    if parts.running:
        blocks.append(
            "# Being measured right now (do not propose these again)\n"
            + "\n".join(f"- {what}" for what in parts.running)
        )
    if parts.log_tail is not None:
        removed = parts.cut.get("log-tail")
        head = f"[… {removed} earlier characters not shown]\n" if removed else ""
        tail = head + parts.log_tail.strip("\n")
        blocks.append(f"{parts.log_label}\n{fenced(tail)}")
    elif "log-tail" in parts.dropped:
        blocks.append(f"{parts.log_label}\n(not shown: cut to fit the context budget)")
    if parts.brief:
        blocks.append(parts.brief)
    if parts.hint:
        blocks.append(f"# Hint from the user\n{parts.hint}")
    blocks.append(parts.task)
    return "\n\n".join(blocks)


def _size(parts: _Parts) -> int:
    follow = sum(len(m.content) for m in parts.follow_ups)
    return len(_render_system(parts)) + len(_render_context(parts)) + follow


def _keep_head(text: str, over: int) -> int:
    """How much of the start of ``text`` to keep to save ``over`` characters (a line break)."""
    keep = max(0, len(text) - over - _CUT_SLACK)
    newline = text.rfind("\n", 0, keep)
    return newline + 1 if newline > keep // 2 else keep


def _cut_head(parts: _Parts, key: str, text: str, over: int) -> str:
    keep = _keep_head(text, over)
    parts.cut[key] = parts.cut.get(key, 0) + len(text) - keep
    return text[:keep]


def _drop_history(parts: _Parts, over: int) -> bool:
    if not parts.history:
        return False
    parts.history.pop(0)
    parts.rows_dropped += 1
    return True


def _drop_near(parts: _Parts, over: int) -> bool:
    if not parts.near:
        return False
    parts.near = []
    parts.dropped.append("near-misses")
    return True


def _drop_layout(parts: _Parts, over: int) -> bool:
    if not parts.layout:
        return False
    parts.layout = []
    parts.dropped.append("layout")
    return True


def _cut_log(parts: _Parts, over: int) -> bool:
    tail = parts.log_tail
    if tail is None:
        return False
    keep = len(tail) - over - _CUT_SLACK
    if keep <= 0:
        parts.log_tail = None
        parts.dropped.append("log-tail")
        return True
    start = len(tail) - keep
    newline = tail.find("\n", start)
    if 0 <= newline < start + keep // 2:
        start = newline + 1
    parts.cut["log-tail"] = parts.cut.get("log-tail", 0) + start
    parts.log_tail = tail[start:]
    return True


def _cut_last_file(parts: _Parts, files: dict[str, str], prefix: str, over: int) -> bool:
    for path in reversed(files):
        if files[path]:
            files[path] = _cut_head(parts, f"{prefix}:{path}", files[path], over)
            return True
    return False


def _cut_immutable(parts: _Parts, over: int) -> bool:
    return _cut_last_file(parts, parts.immutable, "immutable", over)


def _cut_program(parts: _Parts, over: int) -> bool:
    if not parts.program:
        return False
    parts.program = _cut_head(parts, "program", parts.program, over)
    return True


def _cut_mutable(parts: _Parts, over: int) -> bool:
    return _cut_last_file(parts, parts.mutable, "mutable", over)


_STEPS: tuple[Callable[[_Parts, int], bool], ...] = (
    _drop_history,
    _drop_near,
    _drop_layout,
    _cut_log,
    _cut_immutable,
    _cut_program,
    _cut_mutable,
)


def _describe_cuts(parts: _Parts) -> list[str]:
    cuts = []
    if parts.rows_dropped:
        cuts.append(f"history: {parts.rows_dropped} oldest rows")
    cuts.extend(name for name in ("near-misses", "layout") if name in parts.dropped)
    if "log-tail" in parts.dropped:
        cuts.append("log-tail: dropped")
    elif "log-tail" in parts.cut:
        cuts.append(f"log-tail: {parts.cut['log-tail']} characters")
    for prefix in ("immutable", "program", "mutable"):
        for key, removed in parts.cut.items():
            if key == prefix or key.startswith(f"{prefix}:"):
                cuts.append(f"{key}: {removed} characters")
    return cuts


def build_prompt(
    context: ResearchContext,
    analysis: Analysis,
    hint: str | None,
    *,
    task: str = PLAN_TASK,
    follow_ups: Sequence[ChatMessage] = (),
    history_rows: int = 20,
    brief: str | None = None,
) -> Prompt:
    """The system text and messages for one call, shortened to ``context_budget`` if needed.

    ``follow_ups`` come after the context message (the model's earlier answer, a problem to
    fix). If the prompt is still over budget once everything in :data:`TRUNCATION_ORDER` is
    exhausted, it is sent as it is: the rules, the task and the follow-ups are never cut.
    """
    parts = _parts(
        context,
        analysis,
        hint,
        task=task,
        follow_ups=follow_ups,
        history_rows=history_rows,
        brief=brief,
    )
    budget = context.config.context_budget
    over = _size(parts) - budget
    for step in _STEPS:
        while over > 0 and step(parts, over):
            over = _size(parts) - budget
        if over <= 0:
            break
    messages = [ChatMessage(role="user", content=_render_context(parts)), *parts.follow_ups]
    return Prompt(_render_system(parts), messages, _describe_cuts(parts))
