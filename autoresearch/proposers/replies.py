"""Reading the model's replies: find one JSON object in free text and check its fields.

Models wrap JSON in many ways. :func:`find_object` accepts the object bare, inside a Markdown
code fence (```json or any other), or anywhere in surrounding prose (the first complete ``{...}``
that parses). A reply that is a single object cut off at the token limit is closed and read as
far as it goes, without its ``edits``. Strings may hold raw newlines and tabs, which local models
often emit. Unknown keys are ignored everywhere. Anything unreadable raises :class:`ReplyError`
with a one-line reason, which the engine records as the reason of an ``invalid`` cycle.

:data:`PLAN_REPLY` and :data:`EDITS_REPLY` are the same shapes as JSON schemas: sent with a
request, they let providers that support constrained output produce nothing else. What comes
back is still read by the same lenient rules (a server may ignore the schema), with two
allowances for constrained output: ``"edits": null`` in a plan means no edits, and an edit with
``content`` may carry empty ``search``/``replace`` fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from autoresearch.edits import Edit
from autoresearch.errors import ProposerError
from autoresearch.providers.base import ReplySchema

__all__ = [
    "EDITS_REPLY",
    "MAX_DESCRIPTION_CHARS",
    "MAX_RATIONALE_CHARS",
    "PLAN_REPLY",
    "ReplyError",
    "find_object",
    "read_edits",
    "read_plan",
    "with_paths",
]

MAX_DESCRIPTION_CHARS = 300
"""A plan's description is one line (it is the commit subject and a results.tsv cell)."""

MAX_RATIONALE_CHARS = 4000
"""A plan's rationale becomes the commit body; longer ones are cut."""

_PATH = {
    "type": "string",
    "minLength": 1,
    "description": "a mutable file, relative to the repo",
}
_EDIT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "path": _PATH,
                "search": {
                    "type": "string",
                    "minLength": 1,
                    "description": "text that occurs exactly once in the file",
                },
                "replace": {
                    "type": "string",
                    "description": "what replaces the search text",
                },
            },
            "required": ["path", "search", "replace"],
        },
        {
            "type": "object",
            "properties": {
                "path": _PATH,
                "content": {"type": "string", "description": "the whole new file"},
            },
            "required": ["path", "content"],
        },
    ]
}
_EDITS_SCHEMA: dict[str, Any] = {"type": "array", "items": _EDIT_SCHEMA}

PLAN_REPLY = ReplySchema(
    name="plan",
    description="One experiment: what to change and why, with its edits when known.",
    json_schema={
        "type": "object",
        "properties": {
            "description": {
                "type": "string",
                "minLength": 1,
                "description": "one line: what you change",
            },
            "rationale": {
                "type": "string",
                "description": "why it should help",
            },
            "edits": _EDITS_SCHEMA,
        },
        "required": ["description", "rationale"],
    },
)
"""The plan reply as a schema (``edits`` optional)."""

EDITS_REPLY = ReplySchema(
    name="edits",
    description="The edits that carry out the plan.",
    json_schema={
        "type": "object",
        "properties": {"edits": {**_EDITS_SCHEMA, "minItems": 1}},
        "required": ["edits"],
    },
)
"""The implement and repair reply as a schema."""


def with_paths(schema: ReplySchema, paths: Sequence[str]) -> ReplySchema:
    """``schema`` with every edit's ``path`` limited to ``paths`` (an ``enum``).

    For research whose mutable paths are all files: then no edit can name anything else, and a
    small model cannot copy a placeholder path from the instructions.
    """

    def limit(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: limit(value) for key, value in node.items()}
            path = out.get("properties", {}).get("path")
            if isinstance(path, dict):
                out["properties"]["path"] = {**path, "enum": list(paths)}
            return out
        if isinstance(node, list):
            return [limit(item) for item in node]
        return node

    return schema.model_copy(update={"json_schema": limit(schema.json_schema)})


_MAX_BRACES = 500  # how many '{' positions the prose scan tries before giving up
_FENCE = re.compile(r"(`{3,}|~{3,})[^\n`]*\n(.*?)\n?\1", re.DOTALL)
_EDIT_KEYS = frozenset(Edit.model_fields)
_DECODER = json.JSONDecoder(strict=False)


class ReplyError(ProposerError):
    """The model's reply could not be used; ``usage`` is what the unusable call cost."""


def _snippet(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _as_object(text: str) -> dict[str, Any] | None:
    try:
        value = _DECODER.decode(text.strip())
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def find_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: bare, fenced, or embedded in prose."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ReplyError("the model's reply is empty")
    found = _as_object(text)
    if found is not None:
        return found
    for match in _FENCE.finditer(text):
        found = _as_object(match.group(2))
        if found is not None:
            return found
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_BRACES:
        tries += 1
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    cut = _cut_off(text)
    if cut is not None:
        return cut
    raise ReplyError(f"the model's reply holds no JSON object (it begins: {_snippet(text)!r})")


def _cut_off(text: str) -> dict[str, Any] | None:
    """A reply that is one JSON object cut off at the token limit, closed as far as it went.

    Constrained output can only go wrong this way: a string runs on until ``max_tokens``. The
    open string, arrays and objects are closed, backing up to an earlier comma when the cut
    fell inside a key or before a value. ``edits`` are dropped from what is recovered: an edit
    whose text was cut must not be applied, so they are asked for again.
    """
    body = text.strip()
    if not body.startswith("{"):
        return None
    closers: list[str] = []
    commas: list[tuple[int, list[str]]] = []  # where a value ended, and what was open there
    in_string = escaped = False
    for index, char in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]" and closers:
            closers.pop()
        elif char == ",":
            commas.append((index, list(closers)))
    if not closers:
        return None  # complete (and unreadable for another reason), not cut off
    tail = ('"' if in_string and not escaped else "") + "".join(reversed(closers))
    attempts = [body + tail] + [
        body[:at] + "".join(reversed(open_)) for at, open_ in reversed(commas)
    ]
    for attempt in attempts[:_MAX_BRACES]:
        value = _as_object(attempt)
        if value is not None:
            value.pop("edits", None)
            return value
    return None


def _text_field(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReplyError(f"'{key}' in the model's reply must be a string, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    kinds = {dict: "an object", list: "a list", bool: "a boolean", str: "a string"}
    return "null" if value is None else kinds.get(type(value), "a number")


def read_plan(data: dict[str, Any]) -> tuple[str, str]:
    """The description (one line, capped) and the rationale of a plan reply."""
    description = " ".join((_text_field(data, "description") or "").split())
    if not description:
        keys = ", ".join(sorted(data)) or "none"
        raise ReplyError(f"the model's plan has no 'description' (keys: {keys})")
    if len(description) > MAX_DESCRIPTION_CHARS:
        description = description[: MAX_DESCRIPTION_CHARS - 1] + "…"
    rationale = (_text_field(data, "rationale") or "").strip()
    if len(rationale) > MAX_RATIONALE_CHARS:
        rationale = rationale[: MAX_RATIONALE_CHARS - 1] + "…"
    return description, rationale


def _edit_problem(index: int, exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"edit {index}: {where + ': ' if where else ''}{message}"


def read_edits(data: dict[str, Any]) -> list[Edit]:
    """The edits of a reply, checked for shape (an empty list is returned as it is).

    A single edit object instead of a list is accepted. Whether the paths may be written and
    whether the search text matches is for the engine to decide, not the parser.
    """
    if "edits" not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise ReplyError(f"the model's reply has no 'edits' (keys: {keys})")
    raw = data["edits"]
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise ReplyError(f"'edits' in the model's reply must be a list, not {_kind(raw)}")
    edits: list[Edit] = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ReplyError(f"edit {index} in the model's reply is not an object")
        fields = {k: v for k, v in item.items() if k in _EDIT_KEYS and v is not None}
        if fields.get("content") is not None and not fields.get("search"):
            fields.pop("search", None)  # constrained output fills every field
            if not fields.get("replace"):
                fields.pop("replace", None)
        try:
            edits.append(Edit.model_validate(fields))
        except ValidationError as exc:
            raise ReplyError(_edit_problem(index, exc)) from exc
    return edits
