"""The public names, imported on first use from the one table that type checkers read.

``autoresearch/__init__.py`` lists every public name once, as an import inside
``if TYPE_CHECKING:``. Type checkers and IDEs read those lines as ordinary imports, so they
see every name, its type and where it is defined, and they reject a name that is not there.
At run time the block does not run (importing pydantic, pygit2 and the engine would make
``import autoresearch`` and the CLI's ``--help`` slow): the package's ``__getattr__`` calls
:func:`public_attribute`, which reads the block (once, when a public name is first used),
imports the name's module and keeps the value, so the next access is an ordinary attribute.

The approach is that of scientific Python's lazy loading (SPEC 1), which reads a stub file;
here the stub is the ``TYPE_CHECKING`` block itself, so there is nothing to keep in step.
"""

from __future__ import annotations

import ast
import importlib
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["public_attribute", "public_names", "read_table"]


def read_table(source: str) -> dict[str, tuple[str, str]]:
    """Public name -> (module, name there), from the first ``if TYPE_CHECKING:`` in ``source``.

    Only ``from MODULE import NAME as NAME`` lines count; anything else in the block is
    an error, so that the table cannot hold something the loader would not understand.
    """
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name):
            if node.test.id != "TYPE_CHECKING":
                continue
            table: dict[str, tuple[str, str]] = {}
            for stmt in node.body:
                if not isinstance(stmt, ast.ImportFrom) or stmt.module is None or stmt.level:
                    raise ValueError(
                        f"line {stmt.lineno}: the public names' table holds only absolute "
                        "`from MODULE import NAME as NAME` imports"
                    )
                for alias in stmt.names:
                    table[alias.asname or alias.name] = (stmt.module, alias.name)
            return table
    raise ValueError("no `if TYPE_CHECKING:` block lists the public names")


@cache
def _table(package: str) -> dict[str, tuple[str, str]]:
    source = Path(sys.modules[package].__file__ or "").read_text(encoding="utf-8")
    return read_table(source)


def public_names(package: str, extra: tuple[str, ...] = ()) -> list[str]:
    """``__all__`` of ``package``: its table's names and ``extra``, constants first, sorted."""
    return sorted([*_table(package), *extra], key=lambda name: (not name.isupper(), name))


def public_attribute(package: str, name: str, extra: tuple[str, ...] = ()) -> Any:
    """The value of ``package.name``, imported now and kept on the package for next time.

    ``__all__`` is computed the same way. Any other name is an :class:`AttributeError`, as
    for an ordinary module.
    """
    module = sys.modules[package]
    if name == "__all__":
        value: Any = public_names(package, extra)
    else:
        where = _table(package).get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[0]), where[1])
    setattr(module, name, value)
    return value
