"""How a Python module uses its names: which are state, sentinels or only logged.

A number assigned at module level is a hyperparameter only if the program reads it as one. This
module answers, for each module-level name, the questions discovery asks before tuning it: is it
assigned again or mutated (loop state, accumulators), compared by equality (a sentinel like
``running_mfu = -1.0``), or read only inside print and logging calls.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

__all__ = ["Usage", "module_statements"]

_LOG_FUNCS = {"print", "pprint"}
_LOG_METHODS = {
    "info",
    "debug",
    "warning",
    "warn",
    "log",
    "write",
    "add_scalar",
    "set_postfix",
    "set_description",
    "print",
}
_MUTATORS = {"append", "extend", "update", "insert", "pop", "clear", "setdefault", "add"}


def module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Top-level statements, looking into ``if``/``with``/``try`` blocks but not functions."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from module_statements(node.body)
            yield from module_statements(node.orelse)
        elif isinstance(node, ast.With):
            yield from module_statements(node.body)
        elif isinstance(node, ast.Try):
            for part in (node.body, node.orelse, node.finalbody):
                yield from module_statements(part)


class Usage:
    """Facts about every module-level name of one parsed module."""

    def __init__(self, tree: ast.Module) -> None:
        self.stores: dict[str, list[int]] = {}
        self.augmented: dict[str, int] = {}
        self.mutated: dict[str, int] = {}
        self.key_stores: dict[tuple[str, str], int] = {}
        self.compared: dict[str, int] = {}
        self.loads: dict[str, int] = {}
        self.logged: dict[str, int] = {}
        self.exec_line: int | None = None
        self._walk_scope(tree.body, globals_=None)
        for node in ast.walk(tree):
            self._note_use(node)
        self._mark_logged(tree)

    def reason(self, name: str, line: int) -> str | None:
        """Why module-level ``name`` (first assigned on ``line``) is not a hyperparameter."""
        again = [n for n in self.stores.get(name, []) if n != line]
        if name in self.augmented:
            return f"updated in place on line {self.augmented[name]} (loop state or an accumulator)"
        if again:
            return f"assigned again on line {again[0]} (loop state or a value the code computes)"
        if name in self.mutated:
            return f"mutated on line {self.mutated[name]}"
        if name in self.compared:
            return f"compared by equality on line {self.compared[name]} (a sentinel or a switch)"
        if self.loads.get(name) and self.logged.get(name) == self.loads[name]:
            return "only printed or logged, never used by the computation"
        return None

    def key_reason(self, name: str, key: str) -> str | None:
        """Why entry ``key`` of dict ``name`` is not a hyperparameter (it is written later)."""
        line = self.key_stores.get((name, key))
        return None if line is None else f"assigned again on line {line}"

    def _walk_scope(self, body: list[ast.stmt], globals_: set[str] | None) -> None:
        """Record stores at module scope, and in functions for names they declare global."""
        for node in body:
            for sub in _walk_shallow(node):
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                    declared = {
                        name
                        for inner in ast.walk(sub)
                        if isinstance(inner, ast.Global)
                        for name in inner.names
                    }
                    self._walk_scope(sub.body, declared)
                    continue
                self._note_store(sub, globals_)

    def _note_store(self, node: ast.AST, globals_: set[str] | None) -> None:
        def counts(name: str) -> bool:
            return globals_ is None or name in globals_

        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and counts(node.id):
            self.stores.setdefault(node.id, []).append(node.lineno)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            if counts(node.target.id):
                self.augmented.setdefault(node.target.id, node.lineno)
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "exec"
            and globals_ is None
        ):
            self.exec_line = self.exec_line or node.lineno

    def _note_use(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            self.loads[node.id] = self.loads.get(node.id, 0) + 1
        elif isinstance(node, ast.Subscript | ast.Attribute) and isinstance(
            node.ctx, ast.Store | ast.Del
        ):
            base = node.value
            if isinstance(base, ast.Name):
                if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                    key = str(node.slice.value)
                    self.key_stores.setdefault((base.id, key), node.lineno)
                else:
                    self.mutated.setdefault(base.id, node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _MUTATORS
            and isinstance(node.func.value, ast.Name)
        ):
            self.mutated.setdefault(node.func.value.id, node.lineno)
        elif isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq | ast.Is | ast.IsNot) for op in node.ops
        ):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Name):
                    self.compared.setdefault(side.id, node.lineno)

    def _mark_logged(self, tree: ast.Module) -> None:
        """Count the loads that only display a name: ``print(x)``, ``f"{x}"``, ``"%d" % x``.

        A name inside a computation within the call (``print(f"loss: {x * y}")``) is used by
        that computation, so it does not count as only logged.
        """
        shown: dict[int, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_logging(node):
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    for displayed in _displayed(arg):
                        shown[id(displayed)] = displayed.id
        for name in shown.values():
            self.logged[name] = self.logged.get(name, 0) + 1


def _displayed(node: ast.expr) -> list[ast.Name]:
    """The names ``node`` shows as they are (not through a computation)."""
    if isinstance(node, ast.Name):
        return [node]
    if isinstance(node, ast.JoinedStr):
        return [
            part.value
            for part in node.values
            if isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name)
        ]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        right = node.right
        items = right.elts if isinstance(right, ast.Tuple) else [right]
        return [item for item in items if isinstance(item, ast.Name)]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    ):
        return [a for a in node.args if isinstance(a, ast.Name)]
    return []


def _is_logging(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in _LOG_FUNCS
    return isinstance(func, ast.Attribute) and func.attr in _LOG_METHODS


def _walk_shallow(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` that yields function definitions but enters no other scope."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(current, ast.ClassDef | ast.comprehension):
            continue  # class bodies and comprehensions are scopes of their own
        todo.extend(ast.iter_child_nodes(current))
