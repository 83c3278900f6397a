"""The search space of a repository on disk, as the offline proposer sees it after its ledger."""

from __future__ import annotations

import anyio

from autoresearch.config import ResearchConfig
from autoresearch.errors import ConfigError
from autoresearch.params.model import SearchSpace
from autoresearch.params.space import unknown_specs

__all__ = ["search_space_of"]


async def search_space_of(config: ResearchConfig, *, strict: bool = False) -> SearchSpace:
    """Discover ``config``'s space from its files; replay its ledger when it has one.

    ``strict``: a ``params`` edit that names no parameter is a :class:`ConfigError`.
    """
    from autoresearch.context import build_context
    from autoresearch.proposers.local import LocalProposer
    from autoresearch.workspace import Workspace

    context = await anyio.to_thread.run_sync(build_context, config)
    workspace = Workspace(config.repo_path)
    history = []
    if await anyio.to_thread.run_sync(workspace.config_path.exists):
        history = await workspace.load_runs(config.metric.name, repair=False)
    proposer = LocalProposer(seed=config.seed, sampler="local")
    await proposer.prime(history)
    space = proposer.space(context)
    unknown = unknown_specs(space, config.params)
    if strict and unknown:
        names = ", ".join(unknown)
        raise ConfigError(
            f"params: no parameter named {names} was found in the mutable files; "
            "`autoresearch params` lists the names",
            field="params",
        )
    quiet = proposer.no_effect
    if not quiet:
        return space
    params = [
        p.model_copy(
            update={
                "excluded": f"no effect: cycle {quiet[p.key]} left the metric exactly equal "
                "to the best (--param NAME brings it back)"
            }
        )
        if p.key in quiet and p.tuned
        else p
        for p in space.params
    ]
    return space.model_copy(update={"params": params})
