"""The public names: one table, pinned here whole, loaded lazily, visible to type checkers.

``autoresearch/__init__.py`` lists each public name once, as an import inside
``if TYPE_CHECKING:``; at run time a name's module is imported when the name is first used.
The models' camelCase reads (``result.metricValue``) are declared for type checkers next to
each model, and the keyword options (``ResearchOptions``) list every setting in both spellings.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic.alias_generators import to_camel

import autoresearch
from autoresearch._lazy import read_table
from autoresearch._model import CamelModel
from autoresearch.config import ResearchConfig
from autoresearch.options import ConfigOptions, ResearchOptions
from tests.conftest import ROOT

PUBLIC = [
    "ALL_EVENTS",
    "EVENT_NAMES",
    "PHASES",
    "Analysis",
    "AuthenticationError",
    "AutoResearchError",
    "BadRequestError",
    "ChangeSet",
    "CommitCreatedEvent",
    "CommitRevertedEvent",
    "ConfigError",
    "CycleEndEvent",
    "CycleResult",
    "CycleStartEvent",
    "Edit",
    "EditError",
    "ErrorEvent",
    "Event",
    "EventEmitter",
    "EventSource",
    "EventStream",
    "GitError",
    "HeadMovedError",
    "LockedError",
    "MemoryOptions",
    "MemorySpec",
    "MetricOptions",
    "MetricRecordedEvent",
    "MetricSpec",
    "ModelPrice",
    "NeuroLink",
    "NotInitializedError",
    "NoticeEvent",
    "Param",
    "ParamSpec",
    "PhaseEnterEvent",
    "PhaseExitEvent",
    "Plan",
    "Proposer",
    "ProposerError",
    "ProviderConnectionError",
    "ProviderError",
    "RateLimitError",
    "ResearchConfig",
    "ResearchContext",
    "ResearchOptions",
    "ResearchState",
    "ResearchWorker",
    "RunRecord",
    "ScriptedChatModel",
    "ScriptedProposer",
    "ScriptedStep",
    "SearchSpace",
    "ServerError",
    "Status",
    "Stop",
    "StoppedEvent",
    "Task",
    "TaskBudget",
    "TaskCycle",
    "TaskError",
    "TaskInfo",
    "TaskManager",
    "TaskStatus",
    "TimeoutEvent",
    "Usage",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "current_event_source",
    "current_task_id",
    "event_slot",
    "event_source",
    "load_config",
    "parse_event",
]


def test_all_is_pinned_whole_and_every_name_is_what_the_table_says() -> None:
    assert autoresearch.__all__ == PUBLIC
    assert dir(autoresearch) == sorted(PUBLIC)
    table = read_table((ROOT / "autoresearch" / "__init__.py").read_text())
    assert sorted(table) == sorted(n for n in PUBLIC if n != "__version__")
    for name, (module, original) in table.items():
        assert getattr(autoresearch, name) is getattr(importlib.import_module(module), original)
    namespace: dict[str, Any] = {}
    exec("from autoresearch import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC)
    with pytest.raises(AttributeError, match="module 'autoresearch' has no attribute 'NeuroLnk'"):
        autoresearch.NeuroLnk  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_package_loads_no_engine_until_a_name_is_used() -> None:
    probe = (
        "import json, sys\n"
        "import autoresearch\n"
        "heavy = ('pydantic', 'pygit2', 'autoresearch.facade')\n"
        "before = sorted(m for m in heavy if m in sys.modules)\n"
        "autoresearch.NeuroLink\n"
        "print(json.dumps([before, 'autoresearch.facade' in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(proc.stdout) == [[], True]


def test_the_table_holds_only_plain_imports() -> None:
    with pytest.raises(ValueError, match=r"line 3: the public names' table holds only absolute"):
        read_table("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import os\n")
    with pytest.raises(ValueError, match="no `if TYPE_CHECKING:` block"):
        read_table("import os\n")


def test_the_keyword_options_are_every_setting_in_both_spellings() -> None:
    fields = ResearchConfig.model_fields
    every = {*fields, *(to_camel(f) for f in fields)}
    assert set(ConfigOptions.__annotations__) == every
    # The worker factories take ``proposer`` as their own parameter (an object or a name).
    assert set(ResearchOptions.__annotations__) == every - {"proposer"}


def _models() -> list[type[CamelModel]]:
    for info in pkgutil.walk_packages(autoresearch.__path__, "autoresearch."):
        if not info.name.startswith("autoresearch.cli") and info.name != "autoresearch.__main__":
            importlib.import_module(info.name)
    found: list[type[CamelModel]] = []
    todo = [CamelModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if not sub.__name__.startswith("_") and sub.__module__.startswith("autoresearch."):
                found.append(sub)
    return found


def _declared(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """(field -> annotation, camel name -> ClassVar annotation) as written in ``cls``'s source."""
    source = Path(inspect.getsourcefile(cls) or "").read_text()
    node = next(
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.ClassDef) and n.name == cls.__name__
    )
    fields: dict[str, str] = {}
    camel: dict[str, str] = {}
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            annotation = stmt.annotation
            if (
                isinstance(annotation, ast.Subscript)
                and ast.unparse(annotation.value) == "Annotated"
            ):
                assert isinstance(annotation.slice, ast.Tuple)
                annotation = annotation.slice.elts[0]
            fields[stmt.target.id] = ast.unparse(annotation)
        if isinstance(stmt, ast.If) and ast.unparse(stmt.test) == "TYPE_CHECKING":
            for inner in stmt.body:
                if isinstance(inner, ast.AnnAssign) and isinstance(inner.target, ast.Name):
                    camel[inner.target.id] = ast.unparse(inner.annotation)
    return fields, camel


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_camel_case_read_is_declared_for_type_checkers(model: type[CamelModel]) -> None:
    fields, camel = _declared(model)
    expected = {
        to_camel(name): f"ClassVar[{annotation}]"
        for name, annotation in fields.items()
        if name in model.model_fields and to_camel(name) != name
    }
    assert camel == expected
