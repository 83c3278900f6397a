"""The research options as keyword arguments, in both spellings, for type checkers and IDEs.

``create_research_worker(**options)``, ``init_research`` and ``load_research_worker`` take
their keyword arguments as ``**options: Unpack[ResearchOptions]``, ``load_config`` and
``ResearchConfig(...)`` as ``Unpack[ConfigOptions]`` (the same and ``proposer``): an IDE
completes every option in both spellings (``repo_path`` and ``repoPath``), and mypy and
pyright reject a misspelt one (``typoField=3``) or a value of the wrong type. At run time the
same mistakes are a :class:`~autoresearch.errors.ConfigError` naming the option.

The values are what the options accept (``repo_path`` a ``str`` or a path, ``metric`` a
:class:`~autoresearch.config.MetricSpec` or a dict); :class:`~autoresearch.config.ResearchConfig`
holds them checked and normalised. Every key may be left out here, because the options may
also come from a mapping or a ``ResearchConfig`` passed first; a required option missing from
all of them is a ``ConfigError`` at run time. A test keeps the keys and the configuration's
fields the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Required, TypedDict

if TYPE_CHECKING:
    from autoresearch.config import (
        MemorySpec,
        MetricSpec,
        ProgressSpec,
        ProposerKind,
        RaySpec,
        SamplerName,
    )
    from autoresearch.params import ParamSpec
    from autoresearch.params.model import Scale, Value

__all__ = [
    "ConfigOptions",
    "MemoryOptions",
    "MetricOptions",
    "ParamOptions",
    "ProgressOptions",
    "RayOptions",
    "ResearchOptions",
]

Paths = list[str] | tuple[str, ...]
"""Repository-relative paths (a plain ``str`` is refused: it is one path, not a list)."""


class MetricOptions(TypedDict, total=False):
    """``metric={...}``: the metric's name, the regex that reads it, and its direction."""

    name: Required[str]
    pattern: str | None
    direction: Literal["lower", "higher"]


class MemoryOptions(TypedDict, total=False):
    """``memory={...}``: read peak memory from the output instead of sampling it."""

    pattern: Required[str]
    unit: Literal["mb", "gb"]


class ProgressOptions(TypedDict, total=False):
    """``progress={...}``: early abort of runs whose learning curve falls behind."""

    pattern: Required[str]
    min_fraction: float
    minFraction: float
    margin: float


class RayOptions(TypedDict, total=False):
    """``ray={...}``: where the Ray cluster is and what each run asks it for (``RaySpec``)."""

    address: str | None
    num_gpus: float | None
    numGpus: float | None
    num_cpus: float
    numCpus: float
    memory: int | None
    resources: Mapping[str, float]
    shared_path: str | None
    sharedPath: str | None


class ParamOptions(TypedDict, total=False):
    """``params=[{...}]``: one edit of the search space, as a ``ParamSpec``."""

    name: Required[str]
    exclude: bool
    include: bool
    low: float | None
    high: float | None
    scale: Scale | None
    integer: bool | None
    choices: list[Value] | None
    reason: str | None
    discovered: bool


class ResearchOptions(TypedDict, total=False):
    """Every option of a research worker, in the Python and in the NeuroLink spelling.

    See :class:`~autoresearch.config.ResearchConfig` for what each one means.
    """

    repo_path: str | os.PathLike[str]
    repoPath: str | os.PathLike[str]
    mutable_paths: Paths
    mutablePaths: Paths
    immutable_paths: Paths
    immutablePaths: Paths
    program_path: str | None
    programPath: str | None
    run_command: str
    runCommand: str
    metric: MetricSpec | MetricOptions
    timeout_ms: int
    timeoutMs: int
    tag: str | None
    kill_grace_ms: int
    killGraceMs: int
    memory: MemorySpec | MemoryOptions | None
    validate_command: str | None
    validateCommand: str | None
    min_improvement: float
    minImprovement: float
    provider: str | None
    model: str | None
    base_url: str | None
    baseUrl: str | None
    provider_options: Mapping[str, str]
    providerOptions: Mapping[str, str]
    seed: int
    max_repairs: int
    maxRepairs: int
    context_budget: int
    contextBudget: int
    sandbox: Literal["none", "bwrap"]
    sandbox_paths: Paths
    sandboxPaths: Paths
    slots: int
    gpus: Sequence[int] | None
    gpus_per_slot: int
    gpusPerSlot: int
    baseline_repeats: int
    baselineRepeats: int
    repeats: int
    confirm: int
    confidence: float
    progress: ProgressSpec | ProgressOptions | None
    gpu_hour_usd: float | None
    gpuHourUsd: float | None
    agent_command: str | None
    agentCommand: str | None
    agent_timeout_ms: int
    agentTimeoutMs: int
    sampler: SamplerName
    params: Sequence[ParamSpec | ParamOptions]
    backend: Literal["local", "ray"]
    ray: RaySpec | RayOptions | None


class ConfigOptions(ResearchOptions, total=False):
    """The keyword arguments of ``ResearchConfig(...)`` and ``load_config``: every option.

    The worker factories take ``proposer`` as a parameter of their own (a proposer object or
    one of these names), so it is listed here and not in :class:`ResearchOptions`.
    """

    proposer: ProposerKind | None
