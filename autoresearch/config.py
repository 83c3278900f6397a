"""The research configuration: what to edit, how to run, what to measure.

:class:`ResearchConfig` holds everything that can be checked without touching the disk (types,
ranges, regex shape, path syntax). Checks that need the repository (does the path exist, does a
symlink leave the repo, is the tree clean) run when a worker prepares, in :mod:`autoresearch.edits`
and :mod:`autoresearch.gitrepo`, so that nothing blocks the event loop here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import regex
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel, to_snake

from autoresearch._model import CamelModel
from autoresearch.errors import ConfigError
from autoresearch.metrics import NUMBER_GROUP
from autoresearch.params.model import ParamSpec

if TYPE_CHECKING:
    from typing import Unpack

    from autoresearch.options import ConfigOptions

__all__ = [
    "RESERVED_DIRS",
    "BackendName",
    "Direction",
    "MemorySpec",
    "MetricSpec",
    "ProgressSpec",
    "ProposerKind",
    "RaySpec",
    "ResearchConfig",
    "SamplerName",
    "default_tag",
    "load_config",
]

Direction = Literal["lower", "higher"]
"""Which way the metric improves."""

ProposerKind = Literal["local", "llm", "agent", "hybrid"]
"""Who invents the changes: the offline tuner, a chat model, a coding-agent CLI, or the hybrid
(the offline tuner's sampler for numeric values, a chat model for code changes)."""
SamplerName = Literal["local", "random", "tpe", "cmaes"]
"""How the offline proposer picks the next configuration: ``local`` (ours, the default),
``random``, or Optuna's ``tpe`` and ``cmaes`` (the ``optuna`` extra)."""

BackendName = Literal["local", "ray"]
"""Where experiments run: ``local`` (this machine) or ``ray`` (a Ray cluster; the ``ray``
extra). The engine itself (proposing, committing, the ledger, decisions) always stays here."""

RESERVED_DIRS = (".git", ".autoresearch")
"""Top-level directories that are never mutable, whatever the configuration says."""

_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_TAG_MAX = 64


def _tag_problem(tag: str) -> str | None:
    """What keeps ``tag`` from naming the branch ``autoresearch/<tag>``, or ``None``."""
    if not tag:
        return "it is empty"
    if len(tag) > _TAG_MAX:
        return f"it has {len(tag)} characters, at most {_TAG_MAX} are allowed"
    if not (tag[0].isascii() and tag[0].isalnum()):
        return "it must start with a letter or digit"
    bad = sorted(set(tag) - _TAG_CHARS)
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        return f"it contains {shown}; use only letters, digits, '.', '_' and '-'"
    if ".." in tag:
        return "it cannot contain '..'"
    if tag.endswith((".", ".lock")):
        return "it cannot end with '.' or '.lock'"
    return None


def default_tag(today: date | None = None) -> str:
    """The tag used when none is given: the month and day, like ``nov25``."""
    today = today or date.today()
    return f"{today.strftime('%b').lower()}{today.day}"


def _check_pattern(pattern: str, groups: int = 1) -> str:
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise ValueError(f"the regex does not compile ({exc}); check its escaping") from exc
    try:
        regex.compile(pattern, regex.MULTILINE)  # what the engine matches with
    except regex.error as exc:
        raise ValueError(f"the regex is not supported ({exc}); check its escaping") from exc
    if compiled.groups != groups:
        what = (
            "exactly one capture group around the number"
            if groups == 1
            else "exactly two capture groups: the step, then the value"
        )
        raise ValueError(
            f"the regex must have {what}, it has {compiled.groups} (use (?:...) for other groups)"
        )
    return pattern


class MetricSpec(CamelModel):
    """The metric: its name, the regex that reads it from the output, and its direction.

    The pattern is applied with ``re.MULTILINE`` to the run's whole output; the last match wins
    and its single capture group must parse as a finite float, read whole (a capture that is
    only part of the number on its line, like ``1`` of ``1e-05``, fails the cycle). Without a
    pattern, :meth:`default_pattern` reads ``NAME: value`` or ``NAME=value`` at a line start.
    """

    name: str = Field(min_length=1, max_length=64)
    pattern: str = ""
    """The regex; when omitted (or ``None``) it is ``MetricSpec.default_pattern(name)``."""
    direction: Direction = "lower"

    @staticmethod
    def default_pattern(name: str) -> str:
        r"""The pattern used when none is given: ``NAME: value`` or ``NAME=value`` starting a line.

        Leading whitespace and spaces around ``:``/``=`` are allowed; the value is a signed
        decimal with an optional exponent (``-3.5e-06``, ``2.0E+3``, ``.5``). For ``val_loss``
        it is ``^[ \t]*val_loss[ \t]*[:=][ \t]*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)``.
        """
        return rf"^[ \t]*{re.escape(name)}[ \t]*[:=][ \t]*{NUMBER_GROUP}"

    @model_validator(mode="before")
    @classmethod
    def _fill_default_pattern(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("pattern") is None:
            name = data.get("name")
            if isinstance(name, str):
                return {**data, "pattern": cls.default_pattern(name)}
        return data

    @field_validator("pattern")
    @classmethod
    def _pattern_has_one_group(cls, value: str) -> str:
        return _check_pattern(value)

    @field_validator("name")
    @classmethod
    def _name_is_one_word(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("the metric name cannot contain whitespace (it is a TSV column)")
        return value


class MemorySpec(CamelModel):
    """How to read peak memory from the output instead of sampling the process tree."""

    pattern: str
    unit: Literal["mb", "gb"] = "gb"

    @field_validator("pattern")
    @classmethod
    def _pattern_has_one_group(cls, value: str) -> str:
        return _check_pattern(value)


class ProgressSpec(CamelModel):
    """Early abort: how to read a run's curve from its output, and when to stop a doomed run.

    ``pattern`` has two capture groups, the step and the value (last match per line). Once a
    run has reached ``min_fraction`` of the incumbent's last recorded step, it is stopped as
    soon as its value is worse than the incumbent's at the same step by more than ``margin``
    (a fraction of the incumbent's value: 0.05 is 5 %).
    """

    if TYPE_CHECKING:  # the camelCase read, for type checkers
        minFraction: ClassVar[float]

    pattern: str
    min_fraction: float = Field(default=0.3, gt=0, le=1)
    margin: float = Field(default=0.05, ge=0)

    @field_validator("pattern")
    @classmethod
    def _pattern_has_two_groups(cls, value: str) -> str:
        return _check_pattern(value, groups=2)


class RaySpec(CamelModel):
    """How runs go to a Ray cluster (``backend="ray"``): where it is and what a run asks for.

    Each run is one Ray actor that asks for ``num_gpus``, ``num_cpus``, ``memory`` and
    ``resources``; Ray places it on a node that has them and sets its ``CUDA_VISIBLE_DEVICES``.
    The candidate's tracked files are shipped with the run, unless ``shared_path`` says the
    repository sits on storage every node mounts at the same path (see docs/ray.md).
    """

    if TYPE_CHECKING:  # the camelCase read, for type checkers
        numGpus: ClassVar[float | None]
        numCpus: ClassVar[float]
        sharedPath: ClassVar[str | None]

    address: str | None = None
    """The cluster: ``auto`` (one started on this machine with ``ray start``), ``HOST:PORT``
    of a head node, or ``ray://HOST:10001`` (Ray Client). ``None``: ``RAY_ADDRESS`` if set,
    else a Ray instance started for this process alone."""
    num_gpus: float | None = Field(default=None, ge=0)
    """GPUs per run; ``None``: ``gpus_per_slot`` (1 unless set). Use 0 on a cluster without
    GPUs: a run that asks for more than any node has waits for such a node to join."""
    num_cpus: float = Field(default=1.0, ge=0)
    """CPUs per run (Ray's scheduling unit, not a hard limit)."""
    memory: int | None = Field(default=None, gt=0)
    """Memory per run in bytes, for Ray's scheduling (``None``: not asked for)."""
    resources: dict[str, float] = Field(default_factory=dict)
    """Custom Ray resources per run, e.g. ``{"accelerator_type:H100": 1}``."""
    shared_path: str | None = None
    """An absolute directory every node mounts at the same path. When the repository is
    inside it, runs use the files in place and nothing is uploaded."""

    @field_validator("shared_path")
    @classmethod
    def _check_shared(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or not PurePosixPath(value).is_absolute():
            raise ValueError(f"shared_path must be an absolute path, got {value!r}")
        return str(PurePosixPath(value))

    @field_validator("resources")
    @classmethod
    def _check_resources(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if not name or amount < 0:
                raise ValueError(f"resources: {name!r}: {amount} is not a name and an amount >= 0")
        return value


def _check_relative(value: str, field: str) -> str:
    if not value or not value.strip():
        raise ValueError(f"{field} contains an empty path")
    posix = PurePosixPath(value.replace("\\", "/"))
    if posix.is_absolute() or Path(value).is_absolute():
        raise ValueError(f"{value!r} is absolute; give paths relative to the repository root")
    if ".." in posix.parts:
        raise ValueError(f"{value!r} goes through '..'; paths must stay inside the repository")
    if posix.parts and posix.parts[0] in RESERVED_DIRS:
        raise ValueError(f"{value!r} is inside {posix.parts[0]}/, which autoresearch never edits")
    return posix.as_posix()


class ResearchConfig(CamelModel):
    """Everything a research worker needs; the seed's ``createResearchWorker`` options.

    Fields are snake_case with camelCase aliases, so ``ResearchConfig(repoPath=..., timeoutMs=...)``
    and ``ResearchConfig(repo_path=..., timeout_ms=...)`` are the same, and so are
    ``config.timeout_ms`` and ``config.timeoutMs``. The keyword arguments are
    :class:`~autoresearch.options.ConfigOptions`, which type checkers know.
    """

    if TYPE_CHECKING:  # what type checkers see: both spellings, in and out

        def __init__(self, **options: Unpack[ConfigOptions]) -> None: ...

        repoPath: ClassVar[Path]
        mutablePaths: ClassVar[list[str]]
        immutablePaths: ClassVar[list[str]]
        programPath: ClassVar[str | None]
        runCommand: ClassVar[str]
        timeoutMs: ClassVar[int]
        killGraceMs: ClassVar[int]
        validateCommand: ClassVar[str | None]
        minImprovement: ClassVar[float]
        baseUrl: ClassVar[str | None]
        providerOptions: ClassVar[dict[str, str]]
        maxRepairs: ClassVar[int]
        contextBudget: ClassVar[int]
        sandboxPaths: ClassVar[list[str]]
        gpusPerSlot: ClassVar[int]
        baselineRepeats: ClassVar[int]
        gpuHourUsd: ClassVar[float | None]
        agentCommand: ClassVar[str | None]
        agentTimeoutMs: ClassVar[int]

    repo_path: Path
    mutable_paths: list[str] = Field(min_length=1)
    immutable_paths: list[str] = Field(default_factory=list)
    program_path: str | None = None
    run_command: str = Field(min_length=1)
    metric: MetricSpec
    timeout_ms: int = 600_000
    tag: str | None = None
    """The run's name (the branch is ``autoresearch/<tag>``). ``None``, "not given", is chosen
    when the worker prepares (:meth:`with_tag`): the repository's current tag, or today's date
    (``nov25``) for new research. Until then ``worker.config.tag`` is ``None``."""
    kill_grace_ms: int = 5_000
    memory: MemorySpec | None = None
    validate_command: str | None = None
    min_improvement: float = 0.0
    proposer: ProposerKind | None = None
    """``local``, ``llm``, ``agent`` or ``hybrid``; None: ``agent`` with an ``agent_command``,
    else ``llm`` with a provider, else ``local``."""
    agent_command: str | None = None
    """The coding agent's shell command (the agent proposer); it reads the prompt from the file
    named by ``AUTORESEARCH_PROMPT_FILE``."""
    agent_timeout_ms: int = Field(default=1_800_000, gt=0)
    """Time limit of one run of the agent command, in ms."""
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    """Where the provider's API lives, when not its usual address (never holds a key)."""
    provider_options: dict[str, str] = Field(default_factory=dict)
    """Provider-specific settings: Azure ``api_version``, Vertex ``project``/``location``…"""
    seed: int = 0
    sampler: SamplerName = "local"
    """Which sampler the offline proposer uses (see :data:`SamplerName`)."""
    params: list[ParamSpec] = Field(default_factory=list)
    """Your edits of the offline proposer's search space: ranges, scales, choices, exclusions."""
    max_repairs: int = Field(default=1, ge=0, le=10)
    context_budget: int = Field(default=60_000, ge=2_000)
    """How many characters of context the agent is shown per call, at most."""
    sandbox: Literal["none", "bwrap"] = "none"
    """``bwrap``: run experiments with no network and a read-only filesystem but the repo."""
    sandbox_paths: list[str] = Field(default_factory=list)
    """Extra paths the sandboxed experiment may write (a dataset cache, an output folder)."""
    slots: int = Field(default=1, ge=1, le=64)
    """How many candidates run at once; above 1, each runs in its own git worktree."""
    gpus: list[int] | None = None
    """GPU indices to share out among the slots (``CUDA_VISIBLE_DEVICES`` of each run)."""
    gpus_per_slot: int = Field(default=1, ge=1, le=64)
    """How many of ``gpus`` each slot gets."""
    baseline_repeats: int = Field(default=1, ge=1, le=100)
    """How many times the baseline (and a re-measured incumbent) is run."""
    repeats: int = Field(default=1, ge=1, le=100)
    """How many times each candidate is run; the decision uses the mean."""
    confirm: int = Field(default=0, ge=0, le=100)
    """Extra runs for an apparent winner before it may be kept."""
    confidence: float = 0.95
    """How sure the one-sided t-test must be that a candidate beats the incumbent."""
    progress: ProgressSpec | None = None
    """Early abort of runs whose curve falls behind the incumbent's (off by default)."""
    gpu_hour_usd: float | None = Field(default=None, ge=0)
    """The price of one GPU-hour: run time is then costed next to tokens (task budgets)."""
    backend: BackendName = "local"
    """Where experiments run (see :data:`BackendName`); ``ray`` also reads ``ray``."""
    ray: RaySpec | None = None
    """The Ray settings (``backend="ray"``); ``None``: the defaults of :class:`RaySpec`."""

    @field_validator("repo_path", mode="before")
    @classmethod
    def _expand_repo(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            if not str(value).strip():
                raise ValueError("the repository path is empty")
            return Path(value).expanduser().resolve()
        return value

    @field_validator("mutable_paths")
    @classmethod
    def _check_mutable(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(_check_relative(v, "mutable_paths") for v in value))

    @field_validator("immutable_paths")
    @classmethod
    def _check_immutable(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(_check_relative(v, "immutable_paths") for v in value))

    @field_validator("program_path")
    @classmethod
    def _check_program(cls, value: str | None) -> str | None:
        return None if value is None else _check_relative(value, "program_path")

    @field_validator("run_command")
    @classmethod
    def _check_command(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the run command is empty")
        return value

    @field_validator("timeout_ms")
    @classmethod
    def _check_timeout(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"the timeout must be positive, got {value} ms")
        return value

    @field_validator("kill_grace_ms")
    @classmethod
    def _check_grace(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"the kill grace cannot be negative, got {value} ms")
        return value

    @field_validator("min_improvement")
    @classmethod
    def _check_min_improvement(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"min_improvement must be a finite number >= 0, got {value}")
        return value

    @field_validator("tag")
    @classmethod
    def _check_tag(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = _tag_problem(value)
        if problem is not None:
            raise ValueError(f"{value!r} cannot name a git branch: {problem}")
        return value

    @field_validator("confidence")
    @classmethod
    def _check_confidence(cls, value: float) -> float:
        if not 0.5 < value < 1:
            raise ValueError(f"must be between 0.5 and 1 (0.95 is usual), got {value:g}")
        return value

    @field_validator("params")
    @classmethod
    def _one_spec_per_name(cls, value: list[ParamSpec]) -> list[ParamSpec]:
        merged: dict[str, ParamSpec] = {}
        for spec in value:  # a later edit of the same name replaces the earlier one
            merged.pop(spec.name, None)
            merged[spec.name] = spec
        return list(merged.values())

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("gpus is empty; leave it out to run without GPUs")
        if any(gpu < 0 for gpu in value):
            raise ValueError(f"GPU indices cannot be negative, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"a GPU is listed twice in {value}; each slot needs its own")
        return value

    @model_validator(mode="after")
    def _check_gpu_count(self) -> ResearchConfig:
        needed = self.slots * self.gpus_per_slot
        if self.gpus is not None and len(self.gpus) < needed:
            raise ValueError(
                f"gpus: {self.slots} slot(s) x {self.gpus_per_slot} GPU(s) per slot need "
                f"{needed} GPUs, but only {len(self.gpus)} are listed ({self.gpus}); list more "
                "or use fewer slots"
            )
        return self

    @model_validator(mode="after")
    def _check_backend(self) -> ResearchConfig:
        if self.backend == "ray" and self.gpus is not None:
            raise ValueError(
                "gpus: with backend 'ray' Ray assigns the GPUs of each run; leave gpus out and "
                "set ray.num_gpus (or gpus_per_slot) instead"
            )
        if self.backend == "ray" and self.sandbox != "none" and self.ray_spec.shared_path is None:
            raise ValueError(
                "sandbox: with backend 'ray' the sandbox needs the repository at the same path "
                "on every node; set ray.shared_path or set sandbox to none"
            )
        return self

    @property
    def ray_spec(self) -> RaySpec:
        """The Ray settings in force: ``ray`` with ``num_gpus`` filled in (see :class:`RaySpec`)."""
        spec = self.ray or RaySpec()
        if spec.num_gpus is None:
            spec = spec.model_copy(update={"num_gpus": float(self.gpus_per_slot)})
        return spec

    def slot_gpus(self, slot: int) -> list[int] | None:
        """The GPUs of ``slot`` (1-based), or None when no GPUs are configured."""
        if self.gpus is None:
            return None
        first = (slot - 1) * self.gpus_per_slot
        return self.gpus[first : first + self.gpus_per_slot]

    @model_validator(mode="after")
    def _check_agent(self) -> ResearchConfig:
        command = self.agent_command
        if command is not None and not command.strip():
            raise ValueError("agent_command: the agent command is empty")
        if self.proposer == "agent" and command is None:
            raise ValueError(
                "agent_command: the agent proposer needs the command that runs your coding "
                'agent (--agent-command), for example: claude -p "$(cat '
                '"$AUTORESEARCH_PROMPT_FILE")" --permission-mode acceptEdits'
            )
        if self.proposer in ("local", "llm", "hybrid") and command is not None:
            raise ValueError(
                f"agent_command: only the agent proposer runs a command, not {self.proposer!r}; "
                "drop the command or choose proposer 'agent'"
            )
        return self

    @property
    def proposer_kind(self) -> ProposerKind:
        """The proposer this configuration gets (``proposer``, or what its other fields imply)."""
        if self.proposer is not None:
            return self.proposer
        if self.agent_command is not None:
            return "agent"
        return "llm" if self.provider not in (None, "local") else "local"

    @property
    def tunes_params(self) -> bool:
        """Whether this configuration's proposer tunes a search space (``local``, ``hybrid``)."""
        return self.proposer_kind in ("local", "hybrid")

    @model_validator(mode="after")
    def _check_overlap(self) -> ResearchConfig:
        for mutable in self.mutable_paths:
            for immutable in self.immutable_paths:
                if _inside(immutable, mutable):
                    continue  # a read-only file in an editable folder: the folder minus it
                if _inside(mutable, immutable) or mutable == immutable:
                    raise ValueError(
                        f"mutable_paths: {mutable!r} overlaps immutable path {immutable!r}; "
                        "a file cannot be both editable and read-only (a read-only path may "
                        "lie inside an editable folder, not the other way round)"
                    )
        return self

    def with_tag(self, research: str | None, configured: str | None = None) -> ResearchConfig:
        """A copy with the tag chosen: the one place where a tag not given is resolved.

        ``research`` is the tag the repository's research runs on (state.json), ``configured``
        the one its config.json names; either is ``None`` when there is none. A tag that was
        not given becomes ``research``, else ``configured``, else today's (:func:`default_tag`).
        A tag that was given must be ``research`` when there is one (:class:`ConfigError`,
        field ``tag``, if not): the cycles recorded belong to that branch until ``reset``.
        """
        if self.tag is None:
            return self.model_copy(update={"tag": research or configured or default_tag()})
        if research is not None and research != self.tag:
            raise ConfigError(
                f"tag: this repository's research runs on tag {research!r}, not {self.tag!r}; "
                "keep that tag (or leave it out), or run `autoresearch reset` to start over",
                field="tag",
            )
        return self

    @property
    def chosen_tag(self) -> str:
        """The tag, once chosen (given, or chosen by :meth:`with_tag` when the worker prepares)."""
        if self.tag is None:
            raise RuntimeError("the tag is chosen when the worker prepares (it was not given)")
        return self.tag

    @property
    def branch(self) -> str:
        """The dedicated branch the worker commits on, ``autoresearch/<tag>`` (tag chosen)."""
        return f"autoresearch/{self.chosen_tag}"

    def to_file_dict(self) -> dict[str, Any]:
        """The persisted form (config.json): camelCase, without the repo path or any key."""
        data = self.to_json_dict()
        data.pop("repoPath", None)
        return data


def _inside(path: str, folder: str) -> bool:
    """Whether the repo-relative ``path`` lies strictly inside ``folder``."""
    inner, outer = PurePosixPath(path).parts, PurePosixPath(folder).parts
    return len(inner) > len(outer) and inner[: len(outer)] == outer


def _canonical(key: str) -> str:
    """The snake_case name of a known setting given in either spelling; others unchanged."""
    snake = to_snake(key)
    known = snake in ResearchConfig.model_fields and to_camel(snake) == key
    return snake if known else key


def _field_name(loc: tuple[int | str, ...]) -> str:
    names = [to_snake(str(part)) for part in loc if isinstance(part, str)]
    return ".".join(names) or "config"


def load_config(
    data: ResearchConfig | Mapping[str, Any] | None = None, **overrides: Unpack[ConfigOptions]
) -> ResearchConfig:
    """Build a :class:`ResearchConfig` from a model, a mapping and/or keyword arguments.

    Both spellings are accepted for every key; ``overrides`` win over ``data``. Any problem
    (an unknown key among them) raises :class:`ConfigError` whose ``field`` is the snake_case
    name of the offending setting and whose message says how to fix it. A tag that ``data``
    left out stays "not given" (``None``) after merging, so it is still adopted from the
    repository.
    """
    if isinstance(data, ResearchConfig):
        if not overrides:
            return data
        merged: dict[str, Any] = data.model_dump(by_alias=False)
    else:
        merged = {_canonical(k): v for k, v in (data or {}).items()}
    merged.update({_canonical(k): v for k, v in overrides.items()})
    try:
        return ResearchConfig.model_validate(merged)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt option first: it is often why a required one is "missing".
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        field = _field_name(tuple(error["loc"]))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            field = ".".join(str(part) for part in error["loc"])  # as the user spelled it
            message = "is not a known setting (check its spelling)"
        elif error["type"] == "literal_error" and field.endswith("direction"):
            message = f"must be 'lower' or 'higher', got {error.get('input')!r}"
        named = re.match(r"^([a-z_]+): ", message)
        if field == "config" and named:
            field = named.group(1)
        text = message if message.startswith(f"{field}: ") else f"{field}: {message}"
        raise ConfigError(text, field=field) from exc
