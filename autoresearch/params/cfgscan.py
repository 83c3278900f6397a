"""Discovery in YAML, JSON and TOML config files, the way timm-style projects keep settings.

Nested keys join with dots (``optimizer.lr``) and list elements get an index (``betas[1]``).
YAML is read with ruamel.yaml, which reports where each value starts, and JSON with a small
scanner of our own; both give the value's characters so the rewriter replaces exactly them.
TOML is read and rewritten with tomlkit, which keeps comments and layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from autoresearch.params.found import Found, Offsets
from autoresearch.params.model import Style, Value

__all__ = ["CONFIG_SUFFIXES", "scan_config", "toml_slots"]

CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml")
_NUMBER = re.compile(r"[-+]?(?:\.\d+|\d[\d_]*(?:\.\d*)?)(?:[eE][-+]?\d+)?")
_YAML_SCALAR = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s,#\]}][^,#\]}\n\r]*")


def scan_config(path: str, text: str) -> list[Found]:
    """The scalar values of a config file; empty when it does not parse."""
    suffix = path[path.rfind(".") :].lower()
    try:
        if suffix in (".yaml", ".yml"):
            return list(_scan_yaml(text))
        if suffix == ".json":
            return list(_JsonScanner(text).scan())
        if suffix == ".toml":
            return list(_scan_toml(text))
    except Exception:  # a config file that does not parse holds no parameters
        return []
    return []


def _leaf(
    name: str, key: str, line: int, style: Style, value: Any, *, span: tuple[int, int], text: str
) -> Found | None:
    if isinstance(value, bool | int | float | str) and not (
        isinstance(value, str) and (len(value) > 40 or "\n" in value)
    ):
        plain: Value = (
            value
            if isinstance(value, bool | str)
            else (int(value) if isinstance(value, int) else float(value))
        )
        return Found(key, name, line, style, plain, span[0], span[1], text[span[0] : span[1]])
    return None


def _scan_yaml(text: str) -> Iterator[Found]:
    from ruamel.yaml import YAML

    document = YAML(typ="rt").load(text)
    offsets = Offsets(text)

    def walk(node: Any, prefix: str) -> Iterator[Found]:
        if hasattr(node, "items") and hasattr(node, "lc"):
            items = [(str(k), node.lc.value(k), k) for k in node]
            for name, (line, col), k in items:
                yield from child(node[k], f"{prefix}{name}", name, line, col)
        elif isinstance(node, list) and hasattr(node, "lc"):
            for index, value in enumerate(node):
                line, col = node.lc.item(index)
                yield from child(
                    value,
                    f"{prefix[:-1]}[{index}].",
                    prefix.rstrip(".").rsplit(".", 1)[-1],
                    line,
                    col,
                )

    def child(value: Any, key: str, name: str, line: int, col: int) -> Iterator[Found]:
        if isinstance(value, dict | list):
            yield from walk(value, f"{key.rstrip('.')}.")
            return
        start = offsets.char(line + 1, col, utf8=False)
        match = _YAML_SCALAR.match(text, start)
        if match is None:
            return
        raw = match.group(0).rstrip()
        found = _leaf(
            name,
            key.rstrip("."),
            line + 1,
            "yaml",
            value,
            span=(start, start + len(raw)),
            text=text,
        )
        if found is not None:
            yield found

    yield from walk(document, "")


class _JsonScanner:
    """A JSON reader that remembers where each scalar is written."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offsets = Offsets(text)
        json.loads(text[self.offsets.bom :])  # refuse anything that is not JSON
        self.pos = self.offsets.bom

    def scan(self) -> Iterator[Found]:
        yield from self._value("", "")

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def _value(self, key: str, name: str) -> Iterator[Found]:
        self._skip()
        char = self.text[self.pos]
        if char == "{":
            self.pos += 1
            self._skip()
            while self.text[self.pos] != "}":
                sub, end = json.JSONDecoder().raw_decode(self.text, self.pos)
                self.pos = end
                self._skip()
                self.pos += 1  # the colon
                yield from self._value(f"{key}.{sub}" if key else str(sub), str(sub))
                self._skip()
                if self.text[self.pos] == ",":
                    self.pos += 1
                    self._skip()
            self.pos += 1
        elif char == "[":
            self.pos += 1
            self._skip()
            index = 0
            while self.text[self.pos] != "]":
                yield from self._value(f"{key}[{index}]", name)
                index += 1
                self._skip()
                if self.text[self.pos] == ",":
                    self.pos += 1
                    self._skip()
            self.pos += 1
        else:
            start = self.pos
            value, self.pos = json.JSONDecoder().raw_decode(self.text, start)
            found = _leaf(
                name,
                key,
                self.offsets.line_of(start),
                "json",
                value,
                span=(start, self.pos),
                text=self.text,
            )
            if found is not None:
                yield found


def toml_slots(document: Any, prefix: str = "") -> Iterator[tuple[str, str, Any, Any]]:
    """``(key, name, container, index)`` for every scalar of a tomlkit document."""
    items = document.items() if hasattr(document, "items") else enumerate(document)
    for sub, value in items:
        is_list = not hasattr(document, "items")
        key = f"{prefix[:-1]}[{sub}]" if is_list else f"{prefix}{sub}"
        name = prefix.rstrip(".").rsplit(".", 1)[-1] if is_list else str(sub)
        if hasattr(value, "items") or isinstance(value, list):
            yield from toml_slots(value, f"{key}.")
        else:
            yield key, name, document, sub


def _scan_toml(text: str) -> Iterator[Found]:
    import tomlkit

    document = tomlkit.parse(text)
    lines = text.splitlines()
    for key, name, container, index in toml_slots(document):
        value = container[index]
        raw = value.as_string() if hasattr(value, "as_string") else str(value)
        line = next(
            (
                n
                for n, row in enumerate(lines, 1)
                if re.match(rf"\s*\"?{re.escape(name)}\"?\s*=", row)
            ),
            0,
        )
        unwrapped = value.unwrap() if hasattr(value, "unwrap") else value
        found = _leaf(name, key, line, "toml", unwrapped, span=(0, 0), text="")
        if found is not None:
            found.text = raw
            yield found
