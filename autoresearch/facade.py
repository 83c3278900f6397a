"""``NeuroLink``: the entry point, named and shaped as in the seed.

One facade owns one :class:`EventEmitter`, shared by every worker it creates, and chooses the
proposer each worker uses: the offline ``local`` proposer when no provider is named, the LLM
proposer with one, the agent proposer when an agent command is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

import anyio

from autoresearch.config import ProposerKind, ResearchConfig, load_config
from autoresearch.emitter import EventEmitter
from autoresearch.errors import ConfigError
from autoresearch.proposers.base import Proposer
from autoresearch.providers.base import ChatModel
from autoresearch.worker import ResearchWorker
from autoresearch.workspace import Workspace

if TYPE_CHECKING:
    import httpx

    from autoresearch.history import CycleDetail
    from autoresearch.options import ResearchOptions
    from autoresearch.params import SearchSpace
    from autoresearch.proposers.local import LocalProposer
    from autoresearch.tasks import Task, TaskInfo, TaskManager

__all__ = ["LOCAL_PROVIDER", "NeuroLink", "ResetResult"]

LOCAL_PROVIDER = "local"
"""The provider name of the offline proposer (also used when no provider is given)."""


@dataclass(frozen=True)
class ResetResult:
    """Where :meth:`NeuroLink.reset_research` put the archived session."""

    folder: Path | None
    """The archive of ``.autoresearch/``'s files (None when there were none)."""
    refs: str | None
    """The prefix the candidates' references moved under (None when there were none)."""
    tag: str


class NeuroLink:
    """Creates research workers and owns the event emitter they report to.

    ``NeuroLink()`` with no provider uses the offline ``local`` proposer, which needs no network
    and no API key. ``provider``/``model`` given here apply to every worker whose configuration
    does not name its own.
    """

    def __init__(
        self,
        provider: str | None = None,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        task_store: str | Path | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self._api_key = api_key  # memory only: never written anywhere
        self._base_url = base_url
        self._max_retries = max_retries
        self._client = http_client
        self._owns_client = http_client is None
        self._emitter = EventEmitter()
        self._task_store = task_store
        self._tasks: TaskManager | None = None

    def get_event_emitter(self) -> EventEmitter:
        """The emitter every worker of this facade reports to."""
        return self._emitter

    @property
    def emitter(self) -> EventEmitter:
        """Same as :meth:`get_event_emitter`."""
        return self._emitter

    def create_research_worker(
        self,
        config: ResearchConfig | Mapping[str, Any] | None = None,
        /,
        *,
        proposer: Proposer | ProposerKind | None = None,
        **options: Unpack[ResearchOptions],
    ) -> ResearchWorker:
        """A worker for one repository.

        Pass the options as keyword arguments in either spelling (``repo_path=`` or
        ``repoPath=``; :class:`~autoresearch.options.ResearchOptions` lists them for type
        checkers and IDEs), as a mapping, or as a :class:`ResearchConfig`, which keyword
        arguments then override. Options are validated here (:class:`ConfigError` names the
        field, an unknown one included); checks that need the repository run before the first
        cycle. ``proposer`` is a proposer object, which replaces the one the configuration
        would give, or the configuration's ``proposer`` setting (``"local"``, ``"llm"``,
        ``"agent"``).
        """
        if isinstance(proposer, str):
            resolved = load_config(config, proposer=proposer, **options)
            proposer = None
        else:
            resolved = load_config(config, **options)
        if resolved.provider is None and self.provider is not None:
            resolved = resolved.model_copy(update={"provider": self.provider})
        if resolved.model is None and self.model is not None:
            resolved = resolved.model_copy(update={"model": self.model})
        chosen = proposer if proposer is not None else self._proposer_for(resolved)
        return ResearchWorker(resolved, emitter=self._emitter, proposer=chosen)

    async def init_research(
        self,
        config: ResearchConfig | Mapping[str, Any] | None = None,
        /,
        *,
        force: bool = False,
        proposer: Proposer | ProposerKind | None = None,
        **options: Unpack[ResearchOptions],
    ) -> ResearchWorker:
        """Set a repository up for research (what ``autoresearch init`` does) and return its worker.

        Checks everything, writes ``.autoresearch/config.json`` and creates and checks out
        ``autoresearch/<tag>``. A repository that is already initialised is refused unless
        ``force`` is true; with ``force`` the configuration is replaced and the results kept.
        """
        worker = self.create_research_worker(config, proposer=proposer, **options)
        if worker.config.tunes_params and not isinstance(proposer, Proposer):
            from autoresearch.params import frozen_specs
            from autoresearch.params.load import search_space_of

            # A bad --param is refused here, before anything is written.
            space = await search_space_of(worker.config, strict=True)
            frozen = frozen_specs(space, worker.config.params)
            stored = worker.config.model_copy(update={"params": frozen})
            worker = self.create_research_worker(stored, proposer=proposer)
        workspace = worker.workspace
        if not force and await anyio.to_thread.run_sync(workspace.config_path.exists):
            raise ConfigError(
                f"repo_path: {worker.config.repo_path} is already initialised; pass --force "
                "(force=True) to replace its configuration (results are kept)",
                field="repo_path",
            )
        await worker.prepare()
        await worker.announce_hooks()
        return worker

    async def load_research_worker(
        self,
        repo_path: str | Path,
        /,
        *,
        proposer: Proposer | ProposerKind | None = None,
        **overrides: Unpack[ResearchOptions],
    ) -> ResearchWorker:
        """A worker for a repository set up earlier, from its ``.autoresearch/config.json``.

        ``overrides`` replace persisted settings for this worker only (the file is not changed
        until the worker prepares). :class:`NotInitializedError` if the repo was never set up.
        """
        root = await anyio.to_thread.run_sync(lambda: Path(repo_path).expanduser().resolve())
        config = await Workspace(root).read_config()
        if overrides:
            config = load_config(config, **overrides)
        return self.create_research_worker(config, proposer=proposer)

    async def reset_research(self, repo_path: str | Path) -> ResetResult:
        """Archive a repository's research session so the next ``init`` starts afresh.

        Nothing is deleted: ``.autoresearch/``'s files move to ``.autoresearch/archive/<time>/``
        and the candidates' references ``refs/autoresearch/<tag>/<n>`` to
        ``refs/autoresearch/<tag>/archive/<time>/<n>``, so a new session on the same tag
        reuses no file or reference name. The branch ``autoresearch/<tag>`` stays where it is.
        Raises :class:`LockedError` while a worker runs on the repository.
        """
        from datetime import UTC, datetime

        from autoresearch.gitrepo import GitRepo

        root = await anyio.to_thread.run_sync(lambda: Path(repo_path).expanduser().resolve())
        workspace = Workspace(root)
        config = await workspace.read_config()
        lock = await workspace.acquire_lock()
        try:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            git = await GitRepo.open(root)
            prefix = f"refs/autoresearch/{config.chosen_tag}/"
            names = await git.refs_under(prefix)
            renames = {
                name: f"{prefix}archive/{stamp}/{name[len(prefix) :]}"
                for name in names
                if name[len(prefix) :].isdigit()
            }
            await git.rename_refs(renames)
            folder = await workspace.archive(stamp)
        finally:
            await workspace.release_lock(lock)
        return ResetResult(
            folder=folder,
            refs=f"{prefix}archive/{stamp}/" if renames else None,
            tag=config.chosen_tag,
        )

    async def search_space(
        self, config: ResearchConfig | Mapping[str, Any] | None = None, /, **options: Any
    ) -> SearchSpace:
        """The offline proposer's search space for a repository (``autoresearch params``).

        Give the options as for :meth:`create_research_worker`, or only ``repo_path`` of a
        repository set up earlier (its config.json is used; other options replace its
        settings). Reads only. Parameters the ledger showed to have no effect are listed as
        left out, with the cycle that showed it. :class:`ConfigError` names a ``params`` edit
        that matches no parameter.
        """
        from autoresearch.params.load import search_space_of

        if config is None and set(options) <= {"repo_path", "repoPath"}:
            root = options.get("repo_path", options.get("repoPath"))
            if root is None:
                raise ConfigError("repo_path: is required", field="repo_path")
            path = await anyio.to_thread.run_sync(lambda: Path(root).expanduser().resolve())
            resolved = await Workspace(path).read_config()
        else:
            resolved = load_config(config, **options)
        return await search_space_of(resolved)

    async def cycle_detail(self, repo_path: str | Path, cycle: int) -> CycleDetail:
        """One finished cycle in full: record, diff and log tail (reads only; no lock)."""
        from autoresearch.history import cycle_detail

        return await cycle_detail(repo_path, cycle)

    def http_client(self) -> httpx.AsyncClient:
        """The one HTTP client every provider of this facade shares (created on first use)."""
        if self._client is None:
            import httpx  # only models need it: keep `import autoresearch` light

            self._client = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))
            self._owns_client = True
        return self._client

    def chat_model(self, config: ResearchConfig) -> ChatModel:
        """The chat model ``config`` names (its provider, else this facade's)."""
        from autoresearch.providers import create_chat_model

        provider = config.provider or self.provider
        if provider is None or provider == LOCAL_PROVIDER:
            raise ConfigError("provider: the local proposer uses no model", field="provider")
        same_provider = provider == self.provider
        return create_chat_model(
            provider,
            config.model or self.model,
            client=self.http_client(),
            api_key=self._api_key if same_provider else None,
            base_url=config.base_url or (self._base_url if same_provider else None),
            max_retries=self._max_retries,
            options=config.provider_options or None,
        )

    def _proposer_for(self, config: ResearchConfig) -> Proposer:
        kind = config.proposer_kind
        if kind == "agent":
            from autoresearch.proposers.agent import AgentProposer

            assert config.agent_command is not None  # the configuration checks it
            return AgentProposer(
                config.agent_command,
                timeout_s=config.agent_timeout_ms / 1000,
                kill_grace_s=config.kill_grace_ms / 1000,
            )
        if kind == "local":
            return self._sampler_for(config)
        from autoresearch.proposers.llm import LLMProposer

        if (config.provider or self.provider or LOCAL_PROVIDER) == LOCAL_PROVIDER:
            raise ConfigError(
                f"provider: the {kind} proposer needs a model provider (--provider), for "
                "example anthropic, openai or ollama",
                field="provider",
            )
        model = LLMProposer(self.chat_model(config))
        if kind == "hybrid":
            from autoresearch.proposers.hybrid import HybridProposer

            return HybridProposer(self._sampler_for(config), model)
        return model

    @staticmethod
    def _sampler_for(config: ResearchConfig) -> LocalProposer:
        from autoresearch.proposers.local import LocalProposer

        return LocalProposer(
            seed=config.seed, sampler=config.sampler, direction=config.metric.direction
        )

    @property
    def tasks(self) -> TaskManager:
        """The task manager over this facade's store (default ``$AUTORESEARCH_HOME/tasks.db``)."""
        if self._tasks is None:
            from autoresearch.tasks import TaskManager

            self._tasks = TaskManager(self._task_store, neurolink=self)
        return self._tasks

    async def save_task(self, task: Task | Mapping[str, Any]) -> TaskInfo:
        """Check and persist a research task (the seed's ``saveTask``); the task worker runs it."""
        return await self.tasks.save(task)

    async def start_task_worker(
        self,
        *,
        concurrency: int | None = None,
        poll_interval: float = 1.0,
        stop_when_idle: bool = False,
        lease_seconds: float = 30.0,
    ) -> None:
        """Run the active saved tasks until cancelled (the seed's ``startTaskWorker``)."""
        await self.tasks.start_worker(
            concurrency=concurrency,
            poll_interval=poll_interval,
            stop_when_idle=stop_when_idle,
            lease_seconds=lease_seconds,
        )

    async def aclose(self) -> None:
        """Close the HTTP client if the facade created it; safe to call twice."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        self._client = None

    async def __aenter__(self) -> NeuroLink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # The seed's spellings.
    createResearchWorker = create_research_worker
    saveTask = save_task
    startTaskWorker = start_task_worker
    initResearch = init_research
    loadResearchWorker = load_research_worker
    resetResearch = reset_research
    cycleDetail = cycle_detail
    searchSpace = search_space
    getEventEmitter = get_event_emitter
