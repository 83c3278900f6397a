"""MkDocs hook: reference tables rendered from the pydantic models, so they cannot drift.

A page marks a table with an HTML comment pair and lists, as bullets, what only a person can
say; the hook replaces the block with a table whose names, aliases, types and defaults are read
from the model at build time:

    <!-- fields: autoresearch.config.ResearchConfig -->
    - `repo_path`: Root of the git working tree.
    <!-- /fields -->

renders one row per model field (field, alias, type, default, meaning). ``keys:`` renders the
camelCase JSON keys instead (key, type, meaning), for files such as ``runs.jsonl``. ``events``
renders the eleven events (name, model, when, payload) from ``autoresearch.events``; a top-level
bullet says when an event fires, nested bullets annotate its fields. ``options: run-once``
renders a CLI command's arguments and options (option, default, meaning) from the typer app;
a bullet's name may carry a metavar (``--target PATHS``), which the table shows.

A field without a bullet takes its meaning from its docstring in the source. A field with
neither, a bullet naming a field the model does not have, or an event without a bullet stops
the build with a message naming them. ``tests/test_docs_build.py`` runs the same expansion
without MkDocs. On GitHub the comments are invisible and the bullets read as a plain list.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

BLOCK = re.compile(
    r"<!-- (?P<kind>fields|keys|events|options)(?::\s*(?P<target>[\w. -]+?))? -->\n"
    r"(?P<body>.*?)"
    r"<!-- /(?P=kind) -->",
    re.DOTALL,
)
BULLET = re.compile(r"^(?P<indent>\s*)- `(?P<name>[^`]+)`:?\s*(?P<text>.*)$")

FACTORY_DEFAULTS = {"default_tag": "today, like `nov25`"}
"""How to show a default made by a function (its value depends on when the docs are built)."""

COMMON_EVENT_FIELDS = ("type", "at", "source")
"""Fields every event has; the page describes them once, above the table."""


class DocsDriftError(Exception):
    """The documentation and the models disagree; the message names what to fix."""


# -- reading what the page and the source say -------------------------------------------------


def _bullets(body: str, where: str) -> dict[str, tuple[str, dict[str, str]]]:
    """``name -> (text, {child name -> text})`` from a bullet list with wrapped lines.

    Top-level bullets start in column 0, nested ones are indented by four spaces or more, and
    any other line continues the bullet above it.
    """
    items: dict[str, tuple[str, dict[str, str]]] = {}
    current: str | None = None
    child: str | None = None
    for raw in body.splitlines():
        if not raw.strip():
            continue
        match = BULLET.match(raw)
        if match and not match["indent"]:
            current, child = match["name"], None
            items[current] = (match["text"].strip(), {})
        elif match and current is not None and len(match["indent"]) >= 4:
            child = match["name"]
            items[current][1][child] = match["text"].strip()
        elif current is not None:  # a wrapped line continues the last bullet
            text, children = items[current]
            if child is None:
                items[current] = (f"{text} {raw.strip()}", children)
            else:
                children[child] = f"{children[child]} {raw.strip()}"
        else:
            raise DocsDriftError(f"{where}: expected a '- `name`: text' bullet, got {raw!r}")
    return items


def _attribute_docs(model: type[Any]) -> dict[str, str]:
    """Docstrings written under field declarations (``x: int`` then a string), MRO included."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if cls is object or not issubclass(cls, BaseModel) or cls is BaseModel:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        for node, after in zip(body.body, [*body.body[1:], None], strict=True):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                text = " ".join(inspect.cleandoc(after.value.value).split())
                docs[node.target.id] = text.replace("``", "`")
    return docs


def _model(target: str | None, where: str) -> type[BaseModel]:
    if not target:
        raise DocsDriftError(f"{where}: name the model, like <!-- fields: package.module.Model -->")
    module_name, _, name = target.rpartition(".")
    model = getattr(importlib.import_module(module_name), name, None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise DocsDriftError(f"{where}: {target} is not a pydantic model")
    return model


# -- rendering types and defaults ---------------------------------------------------------------


def _type(annotation: Any, none: str = "None") -> str:
    """A type as a reader says it: ``str or None``, ``list of str``, ``"a"`` or ``"b"``.

    ``none`` is how the missing value is called (``null`` for JSON keys).
    """
    from autoresearch.events import PHASES

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        if tuple(args) == PHASES:
            return "a phase name (one of `PHASES`)"
        quoted = [f'`"{a}"`' for a in args]
        return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a, none) for a in args if a is not type(None)]
        return " or ".join(parts) + (f" or {none}" if type(None) in args else "")
    if origin is list:
        return f"list of {_type(args[0], none)}"
    if origin is dict:
        return f"dict of {_type(args[0], none)} to {_type(args[1], none)}"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"`{annotation.__name__}`"
    if isinstance(annotation, type):
        return annotation.__name__
    return f"`{annotation}`"


def _constraints(metadata: list[Any]) -> str:
    notes = []
    for item in metadata:
        for attr, word in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(item, attr, None) is not None:
                notes.append(f"{word} {_number(getattr(item, attr))}")
        if getattr(item, "min_length", None):
            notes.append(f"at least {item.min_length}")
    return f" ({', '.join(notes)})" if notes else ""


def _number(value: Any) -> str:
    return f"{value:_}" if isinstance(value, int) and abs(value) >= 10_000 else repr(value)


def _default(field: Any) -> str:
    if field.default_factory is not None:
        factory = field.default_factory
        name = getattr(factory, "__name__", "")
        if name in FACTORY_DEFAULTS:
            return FACTORY_DEFAULTS[name]
        return f"`{factory()!r}`" if factory in (list, dict) else f"`{name}()`"
    if field.default is PydanticUndefined:
        return "required"
    if isinstance(field.default, str):
        return f'`"{field.default}"`'
    return f"`{_number(field.default)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- the three kinds of block ---------------------------------------------------------------------


def _meanings(
    model: type[BaseModel], notes: dict[str, tuple[str, dict[str, str]]], where: str
) -> dict[str, str]:
    unknown = sorted(set(notes) - set(model.model_fields))
    if unknown:
        raise DocsDriftError(
            f"{where}: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a field "
            f"of {model.__name__} (renamed or removed?); fix the bullet"
        )
    docs = _attribute_docs(model)
    meanings = {
        name: notes[name][0] if name in notes else docs.get(name, "") for name in model.model_fields
    }
    missing = [name for name, text in meanings.items() if not text]
    if missing:
        raise DocsDriftError(
            f"{where}: {model.__name__}.{', '.join(missing)} "
            f"{'has' if len(missing) == 1 else 'have'} no description; add a '- `name`: …' "
            "bullet (or a docstring under the field)"
        )
    return meanings


def _fields_table(model: type[BaseModel], notes: dict[str, Any], where: str) -> str:
    meanings = _meanings(model, notes, where)
    rows = ["| field | alias | type | default | meaning |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        alias = field.alias if field.alias and field.alias != name else ""
        kind = _type(field.annotation) + _constraints(field.metadata)
        rows.append(
            f"| `{name}` | {f'`{alias}`' if alias else ''} | {_cell(kind)} | "
            f"{_cell(_default(field))} | {_cell(meanings[name])} |"
        )
    return "\n".join(rows)


def _keys_table(model: type[BaseModel], notes: dict[str, Any], where: str) -> str:
    meanings = _meanings(model, notes, where)
    rows = ["| key | type | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        rows.append(
            f"| `{field.alias or name}` | {_cell(_type(field.annotation, 'null'))} | "
            f"{_cell(meanings[name])} |"
        )
    return "\n".join(rows)


def _events_table(notes: dict[str, tuple[str, dict[str, str]]], where: str) -> str:
    from autoresearch.events import EVENT_MODELS

    unknown = sorted(set(notes) - set(EVENT_MODELS))
    missing = [name for name in EVENT_MODELS if name not in notes]
    if unknown or missing:
        raise DocsDriftError(
            f"{where}: the events block must describe exactly the {len(EVENT_MODELS)} events; "
            f"unknown: {', '.join(unknown) or '-'}; not described: {', '.join(missing) or '-'}"
        )
    rows = [
        "| name | model | fired when | payload fields (snake_case / camelCase) |",
        "|---|---|---|---|",
    ]
    for name, model in EVENT_MODELS.items():
        when, field_notes = notes[name]
        fields = {k: f for k, f in model.model_fields.items() if k not in COMMON_EVENT_FIELDS}
        unknown_fields = sorted(set(field_notes) - set(fields))
        if unknown_fields:
            raise DocsDriftError(
                f"{where}: {name} has no field {', '.join(unknown_fields)}; fix the bullet"
            )
        docs = _attribute_docs(model)
        payload = []
        for key, field in fields.items():
            label = f"`{key}`" + (f"/`{field.alias}`" if field.alias and field.alias != key else "")
            note = field_notes.get(key) or docs.get(key, "")
            payload.append(f"{label} {_type(field.annotation)}" + (f" ({note})" if note else ""))
        rows.append(
            f"| `{name}` | `{model.__name__}` | {_cell(when)} | {_cell('; '.join(payload))} |"
        )
    return "\n".join(rows)


def _click_command(path: str) -> Any:
    import typer.main

    from autoresearch.cli import app

    command: Any = typer.main.get_command(app)
    for name in path.split():
        sub = getattr(command, "commands", {}).get(name)
        if sub is None:
            raise DocsDriftError(f"there is no command `autoresearch {path}` (at {name!r})")
        command = sub
    return command


def _param_key(param: Any) -> str:
    """How a bullet names a parameter: its long option, or an argument's name in capitals."""
    if param.param_type_name == "argument":
        return str(param.name).upper()
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0] if longs else param.opts[0]


def _param_default(param: Any) -> str:
    shown = re.search(r"\[default: ([^\]]+)\]", getattr(param, "help", None) or "")
    if shown:
        return shown[1]
    if param.required:
        return "required"
    if getattr(param, "is_flag", False):
        return "off"
    default = param.default
    if default is None or default in ([], ()):
        return "none"
    value = getattr(default, "value", default)  # enums show their value
    return f"`{value}`"


def _options_table(path: str, notes: dict[str, tuple[str, dict[str, str]]], where: str) -> str:
    command = _click_command(path)
    params = [p for p in command.params if p.name != "help"]
    by_key = {_param_key(p): p for p in params}
    names = {name.split()[0]: name for name in notes}
    unknown = sorted(set(names) - set(by_key))
    if unknown:
        raise DocsDriftError(
            f"{where}: `autoresearch {path}` has no {', '.join(unknown)} (renamed or removed?)"
        )
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for key, param in by_key.items():
        label = names.get(key, key)
        is_option = param.param_type_name == "option"
        shorts = [o for o in param.opts if is_option and not o.startswith("--") and o != key]
        cell = ", ".join([f"`{o}`" for o in shorts] + [f"`{label}`"])
        meaning = notes[label][0] if label in notes else (getattr(param, "help", None) or "")
        meaning = re.sub(r"\s*\[default: [^\]]+\]", "", meaning).strip()
        if not meaning:
            raise DocsDriftError(
                f"{where}: `autoresearch {path}` {key} has no help and no bullet; add one"
            )
        rows.append(f"| {cell} | {_cell(_param_default(param))} | {_cell(meaning)} |")
    return "\n".join(rows)


def expand(markdown: str, where: str = "page") -> str:
    """Replace every marked block in ``markdown`` with its rendered table."""

    def render(match: re.Match[str]) -> str:
        kind, target = match["kind"], match["target"]
        notes = _bullets(match["body"], where)
        if kind == "events":
            return _events_table(notes, where) + "\n"
        if kind == "options":
            return _options_table(target or "", notes, where) + "\n"
        model = _model(target, where)
        table = _fields_table if kind == "fields" else _keys_table
        return table(model, notes, where) + "\n"

    return BLOCK.sub(render, markdown)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: expand the marked blocks of every page."""
    return expand(markdown, where=page.file.src_uri)
