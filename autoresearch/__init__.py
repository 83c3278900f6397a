"""autoresearch: let an AI agent do experimental research on a codebase.

Point it at a git repository, name the files it may edit, the command that runs an experiment
and a regex that reads the metric; each cycle proposes a change, commits it on a dedicated
branch, runs it under a time limit and keeps it only if the metric improved.

>>> from autoresearch import NeuroLink                        # doctest: +SKIP
>>> worker = NeuroLink().create_research_worker(repo_path=..., ...)  # doctest: +SKIP
"""

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
    MetricRecordedEvent,
    PhaseEnterEvent,
    PhaseExitEvent,
    StoppedEvent,
    TimeoutEvent,
    parse_event,
)
from autoresearch.facade import NeuroLink
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
from autoresearch.worker import ResearchWorker
from autoresearch.workspace import ResearchState, Workspace

__version__ = "0.1.0"

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
    "EventStream",
    "GitError",
    "LockedError",
    "MemorySpec",
    "MetricRecordedEvent",
    "MetricSpec",
    "ModelPrice",
    "NeuroLink",
    "NotInitializedError",
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
    "ServerError",
    "Status",
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
    "current_task_id",
    "load_config",
    "parse_event",
]
