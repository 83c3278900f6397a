"""The offline proposer: a search over the hyperparameters it finds in the mutable files.

:class:`LocalProposer` needs no network and no key. Each cycle it discovers the search space
(:mod:`autoresearch.params`: module constants, argparse/click defaults, config classes, dicts,
YAML/JSON/TOML files), asks a sampler (:mod:`autoresearch.samplers`: ours by default, random
search, Optuna's TPE or CMA-ES) for a configuration not tried before and not running in another
slot, and rewrites only the values that change. Every configuration it proposes is stored in
the plan's metadata (``proposal`` in runs.jsonl: ``params``, ``changed``, ``sampler``), so a
restarted proposer replays the ledger into trials and continues where it stopped. It also
learns which parameters have no effect: one whose change, made alone, leaves the metric exactly
equal to the best is not moved again.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Literal

from autoresearch.edits import ChangeSet, Edit
from autoresearch.errors import ProposerError
from autoresearch.params import Param, SearchSpace, discover_space
from autoresearch.params.domains import words
from autoresearch.params.model import Value
from autoresearch.params.rewrite import format_value, rewrite_files
from autoresearch.proposers.base import Analysis, Plan, ResearchContext
from autoresearch.results import RunRecord, Usage
from autoresearch.samplers import AskRequest, LocalSampler, Sampler, Trial, config_key, make_sampler

__all__ = ["LocalProposer"]

_WORD = re.compile(r"[a-z0-9]+")
Key = tuple[tuple[str, str], ...]


class LocalProposer:
    """Offline default proposer: discovered search space, pluggable sampler, ledger replay.

    ``sampler`` is ``local`` (ours), ``random``, ``tpe`` or ``cmaes`` (Optuna), or a
    :class:`~autoresearch.samplers.Sampler`. ``direction`` is the metric's, for samplers that
    model the metric itself. ``max_params_per_step`` caps how many parameters our sampler moves
    at once (``None``: two, or a third of them in a space of more than six).
    """

    name = "local"

    def __init__(
        self,
        seed: int = 0,
        max_params_per_step: int | None = None,
        *,
        sampler: str | Sampler = "local",
        direction: Literal["lower", "higher"] = "lower",
    ) -> None:
        if max_params_per_step is not None and max_params_per_step < 1:
            raise ValueError(f"max_params_per_step must be at least 1, got {max_params_per_step}")
        self.seed = seed
        self.max_params_per_step = max_params_per_step
        self.direction = direction
        self.sampler = (
            make_sampler(sampler, seed, max_params_per_step)
            if isinstance(sampler, str)
            else sampler
        )
        self._fallback = LocalSampler(max_params_per_step)
        self._observed = 0
        self._tried: set[Key] = set()
        self._told: set[Key] = set()
        self._best: float | None = None
        self._no_effect: dict[str, int] = {}
        self._space_cache: dict[tuple[tuple[str, str], ...], SearchSpace] = {}
        self._anchors: dict[str, Value] = {}

    @property
    def observed(self) -> int:
        """How many ledger records this proposer has learned from."""
        return self._observed

    @property
    def no_effect(self) -> dict[str, int]:
        """Parameters learned to have no effect, with the cycle that showed it."""
        return dict(self._no_effect)

    def step_size(self, key: str) -> float:
        """The default sampler's current step for ``key`` (1.0 means "double or halve")."""
        local = self.sampler if isinstance(self.sampler, LocalSampler) else self._fallback
        return local.step_size(key)

    def space(self, context: ResearchContext) -> SearchSpace:
        """The search space of ``context``'s mutable files (cached per file contents).

        Default ranges are built around the first values seen (the baseline's, also after a
        restart: they are read back from the ledger), so they stay put as the best moves.
        """
        config = context.config
        files = tuple(sorted(context.mutable_files.items()))
        cache_key = (*files, ("", config.run_command), ("", repr(config.params)))
        if cache_key not in self._space_cache:
            if len(self._space_cache) >= 16:
                self._space_cache.clear()

            def discover() -> SearchSpace:
                return discover_space(
                    context.mutable_files,
                    config.run_command,
                    config.params,
                    readable_files=context.immutable_files,
                    anchors=self._anchors,
                )

            found = discover()
            fresh = {p.key: p.value for p in found.params if p.key not in self._anchors}
            if fresh:  # first sight of these values: build their ranges around them
                self._anchors.update(fresh)
                found = discover()
            self._space_cache[cache_key] = found
        return self._space_cache[cache_key]

    async def prime(self, history: Sequence[RunRecord]) -> None:
        """Forget everything, then learn from the whole ledger, oldest record first."""
        self._observed = 0
        self._tried.clear()
        self._told.clear()
        self._best = None
        self._no_effect.clear()
        self._anchors.clear()
        self._space_cache.clear()
        self.sampler.reset()
        self._fallback.reset()
        for record in history:
            self._learn(record)

    async def observe(self, record: RunRecord) -> None:
        """Learn from one finished cycle."""
        self._learn(record)

    async def plan(self, context: ResearchContext, analysis: Analysis, hint: str | None) -> Plan:
        """Ask the sampler for a configuration not tried before and not running elsewhere."""
        space = self.space(context)
        pinned = {  # your own edits override what the search learned
            s.name
            for s in context.config.params
            if not s.discovered and (s.include or s.low is not None or s.choices)
        }
        tuned = [p for p in space.tuned if p.key not in self._no_effect or p.key in pinned]
        if not tuned:
            raise ProposerError(_nothing_to_tune(context, space, self._no_effect))
        keys = [p.key for p in tuned]
        incumbent: dict[str, Value] = {p.key: p.value for p in tuned}
        running = {
            _key(plan.metadata["params"], keys)
            for plan in analysis.in_flight
            if isinstance(plan.metadata.get("params"), Mapping)
        }
        tried = self._tried

        def seen(config: Mapping[str, Value]) -> bool:
            key = _key(config, keys)
            return key in tried or key in running

        scores = _hint_scores(hint, keys)
        request = AskRequest(
            params=tuned,
            incumbent=incumbent,
            seen=seen,
            rng=random.Random(f"local:{self.seed}:{self._observed}"),
            seed=self.seed,
            hint_weights={k: 1.0 + 12.0 * s**2 for k, s in scores.items()},
        )
        config = self.sampler.ask(request)
        if config is None and self.sampler is not self._fallback:
            config = self._fallback.ask(request)
        if config is None:
            raise ProposerError(
                "the local proposer found no untried configuration near the current best; "
                "every nearby setting has been run (widen a range with --param NAME=LOW:HIGH, "
                "or an LLM provider can try other changes)"
            )
        changed = {k: config[k] for k in keys if repr(config[k]) != repr(incumbent[k])}
        return self._make_plan(context, analysis, tuned, incumbent, changed)

    async def implement(self, context: ResearchContext, plan: Plan) -> ChangeSet:
        """Rewrite only the changed values; every other byte of the files stays as it was."""
        changed = plan.metadata.get("changed")
        if not isinstance(changed, Mapping) or not changed:
            raise ProposerError("the plan was not made by the local proposer (no 'changed' map)")
        params = {p.key: p for p in self.space(context).params}
        changes: dict[str, tuple[Param, Value]] = {}
        for key, pair in changed.items():
            param = params.get(key)
            if param is None:
                raise ProposerError(f"{key} is no longer a parameter in the mutable files")
            new = pair[1] if isinstance(pair, Sequence) and len(pair) == 2 else None
            if not _valid(param, new):
                raise ProposerError(f"the plan's new value for {key} does not fit it: {new!r}")
            assert new is not None
            if param.kind == "int" and isinstance(new, float) and new.is_integer():
                new = int(new)
            changes[key] = (param, new)
        texts = rewrite_files(context.mutable_files, changes)
        return ChangeSet(edits=[Edit(path=path, content=text) for path, text in texts.items()])

    async def repair(
        self, context: ResearchContext, plan: Plan, changes: ChangeSet, problem: str
    ) -> ChangeSet | None:
        """Give up: replacing a value with a value leaves nothing to repair."""
        return None

    def _learn(self, record: RunRecord) -> None:
        self._observed += 1
        score = self._score(record)
        proposal = record.proposal or {}
        params, changed = proposal.get("params"), proposal.get("changed")
        if record.baseline or not isinstance(params, Mapping) or not isinstance(changed, Mapping):
            if record.status == "keep" and score is not None:
                self._best = score
            return
        config = {str(k): v for k, v in params.items()}
        moves = {
            str(k): pair[0]
            for k, pair in changed.items()
            if isinstance(pair, Sequence) and len(pair) == 2 and repr(pair[0]) != repr(pair[1])
        }
        before = {**config, **moves}
        for key, value in before.items():
            self._anchors.setdefault(key, value)
        keys = list(config)
        before_key = _key(before, keys)
        if before_key not in self._told and self._best is not None:
            self._tell(Trial(record.cycle, before, {}, "keep", self._best, self._best))
            self._told.add(before_key)
        self._tried.update({_key(config, keys), before_key})
        if (
            record.status == "discard"
            and len(moves) == 1
            and score is not None
            and score == self._best
        ):
            self._no_effect.setdefault(next(iter(moves)), record.cycle)
        self._tell(Trial(record.cycle, config, moves, record.status, score, self._best))
        self._told.add(_key(config, keys))
        if record.status == "keep" and score is not None:
            self._best = score

    def _tell(self, trial: Trial) -> None:
        self.sampler.tell(trial)
        if self.sampler is not self._fallback:
            self._fallback.tell(trial)

    def _score(self, record: RunRecord) -> float | None:
        if record.status not in ("keep", "discard") or record.metric is None:
            return None
        if not math.isfinite(record.metric):
            return None
        return record.metric if self.direction == "lower" else -record.metric

    def _make_plan(
        self,
        context: ResearchContext,
        analysis: Analysis,
        tuned: list[Param],
        incumbent: dict[str, Value],
        changed: dict[str, Value],
    ) -> Plan:
        by_key = {p.key: p for p in tuned}
        description = ", ".join(
            f"{key} {format_value(by_key[key], incumbent[key])} -> {format_value(by_key[key], new)}"
            for key, new in changed.items()
        )
        reasons = self._reasons(changed, incumbent)
        metric = context.config.metric
        if analysis.best_metric is not None:
            reasons.append(
                f"best {metric.name} so far {analysis.best_metric:g} ({metric.direction})"
            )
        metadata: dict[str, object] = {
            "params": {**incumbent, **changed},
            "changed": {key: [incumbent[key], new] for key, new in changed.items()},
            "sampler": self.sampler.name,
        }
        if isinstance(self.sampler, LocalSampler):
            metadata["steps"] = {key: round(self.step_size(key), 4) for key in changed}
        label = "Local search" if self.sampler.name == "local" else f"Sampler {self.sampler.name}"
        return Plan(
            description=description,
            rationale=f"{label}: " + "; ".join(reasons) + ".",
            metadata=metadata,
            usage=Usage(),
        )

    def _reasons(self, changed: Mapping[str, Value], incumbent: Mapping[str, Value]) -> list[str]:
        if not isinstance(self.sampler, LocalSampler):
            return [f"{len(changed)} parameter(s) moved to the sampler's next point"]
        reasons = []
        for key, new in changed.items():
            up = _order(new) > _order(incumbent[key])
            direction, fails = self.sampler.direction(key), self.sampler.fails(key)
            if direction and (direction > 0) == up and fails == 0 and self._observed:
                reasons.append(f"{key} improved last time in this direction")
            elif fails:
                reasons.append(f"{key} did not help in {fails} recent tries, smaller steps")
            else:
                reasons.append(f"{key} is being explored")
        return reasons


def _order(value: Value) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _key(config: Mapping[str, object], keys: Sequence[str]) -> Key:
    return config_key({k: config[k] for k in keys if k in config})  # type: ignore[misc]


def _valid(param: Param, value: object) -> bool:
    if param.kind == "choice":
        return value in (param.choices or [param.value])
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _nothing_to_tune(
    context: ResearchContext, space: SearchSpace, no_effect: Mapping[str, int]
) -> str:
    names = sorted(context.mutable_files)
    files = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    left_out = len(space.params)
    found = (
        f"; {left_out} value(s) were found but left out or showed no effect "
        "(`autoresearch params` says why; --param NAME brings one back)"
        if left_out
        else ""
    )
    del no_effect
    return (
        "the local proposer found no parameter to tune in the mutable files "
        f"({files or 'none'}): it tunes numbers in module-level constants (NAME = <number>), "
        "argparse/click defaults, config classes, dicts and YAML/JSON/TOML files"
        f"{found}; configure an LLM provider to make other kinds of changes"
    )


def _hint_scores(hint: str | None, keys: list[str]) -> dict[str, float]:
    """Score each parameter by the fraction of its name words that the hint mentions."""
    if not hint:
        return {}
    mentioned = set(_WORD.findall(hint.lower()))
    scores = {}
    for key in keys:
        named = words(key.rsplit(":", 1)[-1])
        if named:
            scores[key] = sum(word in mentioned for word in named) / len(named)
    return scores
