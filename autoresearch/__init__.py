"""autoresearch: let an AI agent do experimental research on a codebase.

Point it at a git repository, name the files it may edit, the command that runs an experiment
and a regex that reads the metric; each cycle proposes a change, commits it on a dedicated
branch, runs it under a time limit and keeps it only if the metric improved.

>>> from autoresearch import NeuroLink                        # doctest: +SKIP
>>> worker = NeuroLink().create_research_worker(repo_path=..., ...)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public names, each once. Type checkers and IDEs read these imports as they are; at run
# time the block does not run, and the first use of a name imports its module (see
# autoresearch._lazy), so `import autoresearch` and the CLI's --help stay fast. `__all__` is
# these names and `__version__`.
if TYPE_CHECKING:
    from autoresearch.config import (
        MemorySpec as MemorySpec,
        MetricSpec as MetricSpec,
        ResearchConfig as ResearchConfig,
        load_config as load_config,
    )
    from autoresearch.edits import (
        ChangeSet as ChangeSet,
        Edit as Edit,
    )
    from autoresearch.emitter import (
        ALL_EVENTS as ALL_EVENTS,
        EventEmitter as EventEmitter,
        EventStream as EventStream,
    )
    from autoresearch.errors import (
        AuthenticationError as AuthenticationError,
        AutoResearchError as AutoResearchError,
        BadRequestError as BadRequestError,
        ConfigError as ConfigError,
        EditError as EditError,
        GitError as GitError,
        HeadMovedError as HeadMovedError,
        LockedError as LockedError,
        NotInitializedError as NotInitializedError,
        ProposerError as ProposerError,
        ProviderConnectionError as ProviderConnectionError,
        ProviderError as ProviderError,
        RateLimitError as RateLimitError,
        ServerError as ServerError,
        TaskError as TaskError,
        WorkspaceError as WorkspaceError,
    )
    from autoresearch.events import (
        EVENT_NAMES as EVENT_NAMES,
        PHASES as PHASES,
        CommitCreatedEvent as CommitCreatedEvent,
        CommitRevertedEvent as CommitRevertedEvent,
        CycleEndEvent as CycleEndEvent,
        CycleStartEvent as CycleStartEvent,
        ErrorEvent as ErrorEvent,
        Event as Event,
        EventSource as EventSource,
        MetricRecordedEvent as MetricRecordedEvent,
        NoticeEvent as NoticeEvent,
        PhaseEnterEvent as PhaseEnterEvent,
        PhaseExitEvent as PhaseExitEvent,
        StoppedEvent as StoppedEvent,
        TimeoutEvent as TimeoutEvent,
        current_event_source as current_event_source,
        event_slot as event_slot,
        event_source as event_source,
        parse_event as parse_event,
    )
    from autoresearch.facade import (
        NeuroLink as NeuroLink,
    )
    from autoresearch.options import (
        MemoryOptions as MemoryOptions,
        MetricOptions as MetricOptions,
        ResearchOptions as ResearchOptions,
    )
    from autoresearch.params import (
        Param as Param,
        ParamSpec as ParamSpec,
        SearchSpace as SearchSpace,
    )
    from autoresearch.proposers.base import (
        Analysis as Analysis,
        Plan as Plan,
        Proposer as Proposer,
        ResearchContext as ResearchContext,
    )
    from autoresearch.proposers.scripted import (
        ScriptedChatModel as ScriptedChatModel,
        ScriptedProposer as ScriptedProposer,
        ScriptedStep as ScriptedStep,
    )
    from autoresearch.results import (
        CycleResult as CycleResult,
        RunRecord as RunRecord,
        Status as Status,
        Usage as Usage,
    )
    from autoresearch.tasks import (
        ModelPrice as ModelPrice,
        Task as Task,
        TaskBudget as TaskBudget,
        TaskCycle as TaskCycle,
        TaskInfo as TaskInfo,
        TaskManager as TaskManager,
        TaskStatus as TaskStatus,
        current_task_id as current_task_id,
    )
    from autoresearch.worker import (
        ResearchWorker as ResearchWorker,
        Stop as Stop,
    )
    from autoresearch.workspace import (
        ResearchState as ResearchState,
        Workspace as Workspace,
    )

if not TYPE_CHECKING:  # for type checkers the imports above are the names, and only they

    def __getattr__(name: str) -> Any:
        from autoresearch._lazy import public_attribute

        return public_attribute(__name__, name, extra=("__version__",))

    def __dir__() -> list[str]:
        from autoresearch._lazy import public_names

        return public_names(__name__, extra=("__version__",))
