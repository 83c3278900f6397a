"""Reading what a coding agent said it did, and what it cost, from the end of its output.

The description of an agent's change comes from, in this order:

1. a line of JSON with a ``description`` (what the prompt asks the agent to end with), found
   anywhere in a line, the last one winning;
2. the agent's final message inside a JSON result: ``result`` (Claude Code's
   ``--output-format json``), ``response`` (Gemini CLI's), or the text of the last message
   event of a JSON-lines stream: the JSON line of (1) inside it if there is one, else the
   message's first line;
3. the last line of plain output that is not JSON;

and when the output says nothing, the caller describes the diff. Token counts and cost are read
from the last JSON object that reports them: a ``usage`` object (``input_tokens`` or
``prompt_tokens``, ``output_tokens`` or ``completion_tokens``, cache counts), or Gemini CLI's
``stats.models.*.tokens``, and a cost in ``total_cost_usd``, ``cost_usd``, ``costUsd`` or
``cost``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from autoresearch.proposers.agent_prompt import PLACEHOLDER
from autoresearch.proposers.replies import ReplyError, find_object, read_plan
from autoresearch.results import Usage

__all__ = ["AgentReport", "read_report"]

_MESSAGE_KEYS = ("result", "response")
_COST_KEYS = ("total_cost_usd", "cost_usd", "costUsd", "cost")
_INPUT_KEYS = ("input_tokens", "prompt_tokens", "inputTokens")
_OUTPUT_KEYS = ("output_tokens", "completion_tokens", "outputTokens")
_CACHE_READ_KEYS = ("cache_read_input_tokens", "cached_input_tokens", "cacheReadInputTokens")
_CACHE_WRITE_KEYS = ("cache_creation_input_tokens", "cacheCreationInputTokens")


@dataclass(frozen=True)
class AgentReport:
    """What the agent's output says: its own description and rationale, and its usage."""

    description: str | None
    rationale: str
    usage: Usage
    """``calls`` is 1 (one run of the agent); tokens and cost where the agent reported them."""


def _objects(lines: list[str]) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        text = line.strip()
        if text.startswith("{") and text.endswith("}"):
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def _plan_in(text: str) -> tuple[str, str] | None:
    """A ``{"description", "rationale"}`` JSON line in ``text``, the last one winning."""
    for line in reversed(text.splitlines()):
        if '"description"' not in line:
            continue
        try:
            description, rationale = read_plan(find_object(line))
        except ReplyError:
            continue
        if description != PLACEHOLDER:
            return description, rationale
    return None


def _message(data: dict[str, Any]) -> str | None:
    for key in _MESSAGE_KEYS:
        if isinstance(data.get(key), str) and data[key].strip():
            return str(data[key])
    item = data.get("item") or data.get("msg") or {}  # JSON-lines events (Codex)
    if isinstance(item, dict):
        for key in ("text", "message"):
            if isinstance(item.get(key), str) and item[key].strip():
                return str(item[key])
    return None


def _first_of(data: dict[str, Any], keys: tuple[str, ...]) -> float:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return 0.0


def _usage(data: dict[str, Any]) -> Usage | None:
    cost = _first_of(data, _COST_KEYS)
    counts = data.get("usage")
    apart = False  # Anthropic counts cached tokens apart from input_tokens; others include them
    if isinstance(counts, dict):
        apart = any(key in counts for key in (_CACHE_READ_KEYS[0], _CACHE_WRITE_KEYS[0]))
        tokens = (
            _first_of(counts, _INPUT_KEYS),
            _first_of(counts, _OUTPUT_KEYS),
            _first_of(counts, _CACHE_READ_KEYS),
            _first_of(counts, _CACHE_WRITE_KEYS),
        )
    else:
        tokens = _gemini_tokens(data.get("stats"))
    if not cost and not any(tokens):
        return None
    fresh, output, read, written = (int(n) for n in tokens)
    return Usage(
        input_tokens=fresh + read + written if apart else fresh,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=written,
        calls=1,
        cost_usd=cost,
    )


def _gemini_tokens(stats: Any) -> tuple[float, float, float, float]:
    models = stats.get("models") if isinstance(stats, dict) else None
    if not isinstance(models, dict):
        return (0.0, 0.0, 0.0, 0.0)
    prompt = output = cached = 0.0
    for entry in models.values():
        tokens = entry.get("tokens") if isinstance(entry, dict) else None
        if isinstance(tokens, dict):
            prompt += _first_of(tokens, ("prompt",))
            output += _first_of(tokens, ("candidates",)) + _first_of(tokens, ("thoughts",))
            cached += _first_of(tokens, ("cached",))
    return (prompt, output, cached, 0.0)


def read_report(output: str) -> AgentReport:
    """The agent's report in ``output`` (the end of what it printed); see the module docstring."""
    lines = output.splitlines()
    objects = _objects(lines)
    usage = next((u for u in map(_usage, reversed(objects)) if u is not None), Usage(calls=1))
    plan = _plan_in(output)
    if plan is None:
        message = next((m for m in map(_message, reversed(objects)) if m), None)
        if message is not None:
            plan = _plan_in(message) or _first_line(message)
    if plan is None:
        plain = [line for line in lines if line.strip() and not line.strip().startswith("{")]
        plan = _first_line(plain[-1]) if plain else None
    if plan is None:
        return AgentReport(None, "", usage)
    return AgentReport(plan[0], plan[1], usage)


def _first_line(text: str) -> tuple[str, str] | None:
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        description, _ = read_plan({"description": first})
    except ReplyError:
        return None
    return description, text.strip() if text.strip() != first.strip() else ""
