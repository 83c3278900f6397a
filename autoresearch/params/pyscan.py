"""Discovery in Python files: constants, expressions, tuples, argparse/click, classes, dicts.

Every style real training scripts use to hold their settings:

- module-level constants in any case (``LR = 3e-4``, ``n_layer = 12``), including constant
  expressions (``2**19``, ``5 * 8``) and each element of a numeric tuple (``BETAS = (0.8, 0.95)``
  gives ``BETAS[0]`` and ``BETAS[1]``);
- argparse ``add_argument(..., default=...)`` and click ``@click.option(..., default=...)``,
  named by their destination (``--learning-rate`` gives ``learning_rate``);
- class attributes at module level, dataclasses included (``GPTConfig.n_layer``);
- dict literals and ``dict(...)`` calls, nested (``hyp.lr``, ``params.model.depth``).

A value is reported with its characters in the file, so the rewriter can replace exactly them.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterator

from autoresearch.params.found import Found, Offsets
from autoresearch.params.model import Style, Value
from autoresearch.params.pyuse import Usage, module_statements

__all__ = ["scan_python"]

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_MAX_STRING = 40


def scan_python(text: str) -> tuple[list[Found], int | None]:
    """Every candidate value in a Python source, and the line of a module-level ``exec(...)``.

    Values that are not hyperparameters come back with ``excluded`` set and the reason.
    A file that does not parse has none.
    """
    offsets = Offsets(text)
    try:
        tree = ast.parse(offsets.source)
    except (SyntaxError, ValueError):
        return [], None
    usage = Usage(tree)
    scanner = _Scanner(offsets, usage)
    for node in module_statements(tree.body):
        scanner.statement(node)
    scanner.arguments(tree)
    return scanner.found, usage.exec_line


class _Scanner:
    def __init__(self, offsets: Offsets, usage: Usage) -> None:
        self.offsets = offsets
        self.usage = usage
        self.found: list[Found] = []
        self._assigned: set[str] = set()

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.ClassDef):
            for inner in node.body:
                target, value = _single_target(inner)
                if target is not None and value is not None:
                    self.value(f"{node.name}.{target}", target, value, "class", None)
            return
        target, value = _single_target(node)
        if target is None or value is None or target in self._assigned:
            return
        self._assigned.add(target)
        excluded = self.usage.reason(target, node.lineno)
        if target.startswith("__") and target.endswith("__"):
            return
        self.value(target, target, value, "constant", excluded, dict_name=target)

    def value(
        self,
        key: str,
        name: str,
        node: ast.expr,
        style: Style,
        excluded: str | None,
        *,
        dict_name: str | None = None,
        top: str | None = None,
    ) -> None:
        """Report ``node`` (a number, tuple, dict or ``dict(...)``) under ``key``."""
        entries = _dict_entries(node)
        if entries is not None:
            for sub, inner in entries:
                why = excluded
                if dict_name is not None and why is None:
                    why = self.usage.key_reason(dict_name, sub)
                self.value(f"{key}.{sub}", sub, inner, "dict", why, top=top or dict_name)
            return
        if isinstance(node, ast.Tuple | ast.List) and node.elts:
            numbers = [_evaluate(element) for element in node.elts]
            if all(_is_number(n) for n in numbers):
                for index, element in enumerate(node.elts):
                    self._add(f"{key}[{index}]", name, element, "tuple", excluded)
            return
        if style in ("constant", "class") and not isinstance(node, ast.Constant | ast.UnaryOp):
            style = "expression"
        self._add(key, name, node, style, excluded)

    def arguments(self, tree: ast.Module) -> None:
        """Argparse ``add_argument`` and click ``option`` calls, anywhere in the module."""
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            method = func.attr if isinstance(func, ast.Attribute) else None
            if method not in ("add_argument", "option"):
                continue
            flags = [
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            if not flags or not all(f.startswith("-") for f in flags):
                continue
            default = keywords.get("default")
            if default is None:
                continue
            dest = _dest(flags, keywords.get("dest"))
            kind = keywords.get("type")
            integer = isinstance(kind, ast.Name) and kind.id == "int"
            choices = _choices(keywords.get("choices"))
            style: Style = "argparse" if method == "add_argument" else "click"
            self._add(dest, dest, default, style, None, integer=integer, choices=choices)

    def _add(
        self,
        key: str,
        name: str,
        node: ast.expr,
        style: Style,
        excluded: str | None,
        *,
        integer: bool = False,
        choices: list[Value] | None = None,
    ) -> None:
        value = _evaluate(node)
        if value is None or node.end_lineno is None or node.end_col_offset is None:
            return
        start = self.offsets.char(node.lineno, node.col_offset)
        end = self.offsets.char(node.end_lineno, node.end_col_offset)
        text = self.offsets.source[start - self.offsets.bom : end - self.offsets.bom]
        self.found.append(
            Found(
                key=key,
                name=name,
                line=node.lineno,
                style=style,
                value=value,
                start=start,
                end=end,
                text=text,
                integer=integer,
                excluded=excluded,
                choices=choices,
            )
        )


def _single_target(node: ast.AST) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name):
            return target.id, node.value
    if (
        isinstance(node, ast.AnnAssign)
        and node.value is not None
        and isinstance(node.target, ast.Name)
    ):
        return node.target.id, node.value
    return None, None


def _dict_entries(node: ast.expr) -> Iterator[tuple[str, ast.expr]] | None:
    if isinstance(node, ast.Dict):
        if not node.keys or not all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys
        ):
            return None
        return ((str(k.value), v) for k, v in zip(node.keys, node.values, strict=True))  # type: ignore[union-attr]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and node.keywords
        and all(k.arg for k in node.keywords)
    ):
        return ((str(k.arg), k.value) for k in node.keywords)
    return None


def _dest(flags: list[str], dest: ast.expr | None) -> str:
    if isinstance(dest, ast.Constant) and isinstance(dest.value, str):
        return dest.value
    long = [f for f in flags if f.startswith("--")]
    return (long[0] if long else flags[0]).lstrip("-").replace("-", "_")


def _choices(node: ast.expr | None) -> list[Value] | None:
    if not isinstance(node, ast.List | ast.Tuple):
        return None
    values = [_evaluate(e) for e in node.elts]
    if len(values) < 2 or any(v is None for v in values):
        return None
    return [v for v in values if v is not None]


def _is_number(value: Value | None) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _evaluate(node: ast.expr) -> Value | None:
    """The value of a literal or a constant arithmetic expression; None for anything else."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value if math.isfinite(value) else None
        if isinstance(value, str) and len(value) <= _MAX_STRING and "\n" not in value:
            return value
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _evaluate(node.operand)
        if not _is_number(inner):
            return None
        assert isinstance(inner, int | float)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if not (_is_number(left) and _is_number(right)):
            return None
        assert isinstance(left, int | float) and isinstance(right, int | float)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            return None
        try:
            result = _BINARY[type(node.op)](left, right)
        except (ArithmeticError, ValueError):
            return None
        if isinstance(result, complex) or not math.isfinite(result):
            return None
        return result
    return None
