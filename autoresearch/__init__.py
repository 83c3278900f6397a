"""autoresearch: let an AI agent do experimental research on a codebase.

Point it at a git repository, name the files it may edit, the command that runs an experiment
and a regex that reads the metric; each cycle proposes a change, commits it on a dedicated
branch, runs it under a time limit and keeps it only if the metric improved.

>>> from autoresearch import NeuroLink                        # doctest: +SKIP
>>> worker = NeuroLink().create_research_worker(repo_path=..., ...)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoresearch.config import MemorySpec, MetricSpec, ResearchConfig, load_config
    from autoresearch.edits import ChangeSet, Edit
    from autoresearch.emitter import ALL_EVENTS, EventEmitter, EventStream
    from autoresearch.errors import (
        AuthenticationError,
        AutoResearchError,
        BadRequestError,
        ConfigError,
        EditError,
        GitError,
        HeadMovedError,
        LockedError,
        NotInitializedError,
        ProposerError,
        ProviderConnectionError,
        ProviderError,
        RateLimitError,
        ServerError,
        TaskError,
        WorkspaceError,
    )
    from autoresearch.events import (
        EVENT_NAMES,
        PHASES,
        CommitCreatedEvent,
        CommitRevertedEvent,
        CycleEndEvent,
        CycleStartEvent,
        ErrorEvent,
        Event,
        EventSource,
        MetricRecordedEvent,
        NoticeEvent,
        PhaseEnterEvent,
        PhaseExitEvent,
        StoppedEvent,
        TimeoutEvent,
        current_event_source,
        event_slot,
        event_source,
        parse_event,
    )
    from autoresearch.facade import NeuroLink
    from autoresearch.params import Param, ParamSpec, SearchSpace
    from autoresearch.proposers.base import Analysis, Plan, Proposer, ResearchContext
    from autoresearch.proposers.scripted import ScriptedProposer, ScriptedStep
    from autoresearch.results import CycleResult, RunRecord, Status, Usage
    from autoresearch.tasks import (
        ModelPrice,
        Task,
        TaskBudget,
        TaskCycle,
        TaskInfo,
        TaskManager,
        TaskStatus,
        current_task_id,
    )
    from autoresearch.worker import ResearchWorker, Stop
    from autoresearch.workspace import ResearchState, Workspace

__version__ = "0.1.0"

# Public name -> the module that defines it. Imported on first use, so `import autoresearch`
# (and the CLI's --help) stay fast: pydantic models, pygit2 and the engine load only when needed.
_EXPORTS: dict[str, str] = {
    "ALL_EVENTS": "autoresearch.emitter",
    "Analysis": "autoresearch.proposers.base",
    "AuthenticationError": "autoresearch.errors",
    "AutoResearchError": "autoresearch.errors",
    "BadRequestError": "autoresearch.errors",
    "ChangeSet": "autoresearch.edits",
    "CommitCreatedEvent": "autoresearch.events",
    "CommitRevertedEvent": "autoresearch.events",
    "ConfigError": "autoresearch.errors",
    "CycleEndEvent": "autoresearch.events",
    "CycleResult": "autoresearch.results",
    "CycleStartEvent": "autoresearch.events",
    "EVENT_NAMES": "autoresearch.events",
    "Edit": "autoresearch.edits",
    "EditError": "autoresearch.errors",
    "ErrorEvent": "autoresearch.events",
    "Event": "autoresearch.events",
    "EventEmitter": "autoresearch.emitter",
    "EventSource": "autoresearch.events",
    "EventStream": "autoresearch.emitter",
    "GitError": "autoresearch.errors",
    "HeadMovedError": "autoresearch.errors",
    "LockedError": "autoresearch.errors",
    "MemorySpec": "autoresearch.config",
    "MetricRecordedEvent": "autoresearch.events",
    "NoticeEvent": "autoresearch.events",
    "MetricSpec": "autoresearch.config",
    "ModelPrice": "autoresearch.tasks",
    "NeuroLink": "autoresearch.facade",
    "NotInitializedError": "autoresearch.errors",
    "PHASES": "autoresearch.events",
    "PhaseEnterEvent": "autoresearch.events",
    "PhaseExitEvent": "autoresearch.events",
    "Param": "autoresearch.params",
    "ParamSpec": "autoresearch.params",
    "Plan": "autoresearch.proposers.base",
    "Proposer": "autoresearch.proposers.base",
    "ProposerError": "autoresearch.errors",
    "ProviderConnectionError": "autoresearch.errors",
    "ProviderError": "autoresearch.errors",
    "RateLimitError": "autoresearch.errors",
    "ResearchConfig": "autoresearch.config",
    "ResearchContext": "autoresearch.proposers.base",
    "SearchSpace": "autoresearch.params",
    "ResearchState": "autoresearch.workspace",
    "ResearchWorker": "autoresearch.worker",
    "Stop": "autoresearch.worker",
    "RunRecord": "autoresearch.results",
    "ScriptedProposer": "autoresearch.proposers.scripted",
    "ScriptedStep": "autoresearch.proposers.scripted",
    "ServerError": "autoresearch.errors",
    "Status": "autoresearch.results",
    "StoppedEvent": "autoresearch.events",
    "Task": "autoresearch.tasks",
    "TaskBudget": "autoresearch.tasks",
    "TaskCycle": "autoresearch.tasks",
    "TaskError": "autoresearch.errors",
    "TaskInfo": "autoresearch.tasks",
    "TaskManager": "autoresearch.tasks",
    "TaskStatus": "autoresearch.tasks",
    "TimeoutEvent": "autoresearch.events",
    "Usage": "autoresearch.results",
    "Workspace": "autoresearch.workspace",
    "WorkspaceError": "autoresearch.errors",
    "current_event_source": "autoresearch.events",
    "current_task_id": "autoresearch.tasks",
    "event_slot": "autoresearch.events",
    "event_source": "autoresearch.events",
    "load_config": "autoresearch.config",
    "parse_event": "autoresearch.events",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autoresearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
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
    "MemorySpec",
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
    "ResearchState",
    "ResearchWorker",
    "RunRecord",
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
