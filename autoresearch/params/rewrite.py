"""Writing new values into the files, in the style each value was written in.

Only the characters of each changed value are replaced, so comments, spacing and every other
byte stay as they were; TOML goes through tomlkit, which keeps its comments and layout. New
values follow the old text: ``2**19`` becomes ``2**20``, ``1024 * 8`` becomes ``2048 * 8``,
``3e-4`` stays in exponent form, ``1_000`` keeps its underscores, a YAML float is written so
that both YAML 1.1 (PyYAML) and 1.2 readers see a float.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from autoresearch.params.cfgscan import toml_slots
from autoresearch.params.model import Param, Value

__all__ = ["format_value", "rewrite_files"]

_POW2 = re.compile(r"^\s*2\s*\*\*\s*\d+\s*$")
_PRODUCT = re.compile(r"^\s*(\d+)\s*\*\s*(\d+)\s*$")


def rewrite_files(
    files: Mapping[str, str], changes: Mapping[str, tuple[Param, Value]]
) -> dict[str, str]:
    """The new text of every file that changes; ``changes`` maps a key to (param, new value)."""
    by_path: dict[str, list[tuple[Param, Value]]] = {}
    for param, value in changes.values():
        by_path.setdefault(param.path, []).append((param, value))
    out: dict[str, str] = {}
    for path, items in sorted(by_path.items()):
        text = files[path]
        if path.lower().endswith(".toml"):
            out[path] = _rewrite_toml(text, items)
            continue
        for param, value in sorted(items, key=lambda item: item[0].start, reverse=True):
            text = text[: param.start] + format_value(param, value) + text[param.end :]
        out[path] = text
    return out


def format_value(param: Param, value: Value) -> str:
    """``value`` written the way ``param``'s old value was written."""
    old = param.text
    if isinstance(value, str):
        if param.style in ("yaml", "toml") and old[:1] not in "\"'":
            return value
        quote = "'" if old.startswith("'") else '"'
        return f"{quote}{value}{quote}"
    if isinstance(value, bool):
        if param.style in ("json", "toml") or (param.style == "yaml" and old.islower()):
            return "true" if value else "false"
        return "True" if value else "False"
    if isinstance(value, int):
        if param.style == "expression" and _POW2.match(old) and value > 0:
            exponent = value.bit_length() - 1
            if 2**exponent == value:
                return f"2**{exponent}" if "**" in old.replace(" ", "") else old
        product = _PRODUCT.match(old)
        if param.style == "expression" and product and value % int(product.group(2)) == 0:
            spacing = " * " if " " in old else "*"
            return f"{value // int(product.group(2))}{spacing}{product.group(2)}"
        return f"{value:_}" if "_" in old else str(value)
    return _format_float(float(value), old, param.style)


def _format_float(value: float, old: str, style: str) -> str:
    exponent = "e" in old.lower() or (value != 0 and not 1e-4 <= abs(value) < 1e6)
    if not exponent:
        text = repr(value)
        if "e" not in text:
            return text
    mantissa, _, power = f"{value:.4e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    if style == "yaml" and "." not in mantissa:
        mantissa += ".0"  # YAML 1.1 reads 1e-05 as a string; 1.0e-05 is a float everywhere
    sign, digits = power[0], power[1:].lstrip("0") or "0"
    if style == "yaml":
        return f"{mantissa}e{sign}{digits.zfill(2)}"
    return f"{mantissa}e{'-' if sign == '-' else ''}{digits}"


def _rewrite_toml(text: str, items: list[tuple[Param, Value]]) -> str:
    import tomlkit

    document = tomlkit.parse(text)
    wanted = {param.key.split(":", 1)[-1]: value for param, value in items}
    for key, _name, container, index in toml_slots(document):
        if key in wanted:
            container[index] = wanted[key]
    return tomlkit.dumps(document)
