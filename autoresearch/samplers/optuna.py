"""Optuna's TPE and CMA-ES as samplers of the offline proposer (the ``optuna`` extra).

The parameters become Optuna distributions (log scales as ``log=True``, powers of two as an
integer exponent, ``log1m`` as a log-scaled ``1 - value``, choices as categorical); the
ledger's trials are added to an in-memory study and Optuna's ask-and-tell picks the next
point. TPE is seeded with the seed and the number of trials, so the same ledger gives the
same proposal after a restart. CMA-ES keeps its generations in the live study of one process;
after a restart it begins a new first generation (Optuna restores CMA-ES state from trial
attributes, a pickled optimizer, that the ledger does not keep).
"""

from __future__ import annotations

import importlib.util
import math
from typing import TYPE_CHECKING, Any, Literal

from autoresearch.errors import ConfigError
from autoresearch.params.model import Param, Value
from autoresearch.samplers.base import AskRequest, Config, Trial, config_key

if TYPE_CHECKING:
    import optuna

__all__ = ["INSTALL_HINT", "OptunaSampler", "optuna_available"]

INSTALL_HINT = "pip install 'autoresearch[optuna]'"
_ATTEMPTS = 20


def optuna_available() -> bool:
    """Whether Optuna can be imported."""
    try:
        return importlib.util.find_spec("optuna") is not None
    except ValueError:  # present in sys.modules as None: blocked
        return False


class OptunaSampler:
    """TPE (``kind="tpe"``) or CMA-ES (``kind="cmaes"``) through Optuna's ask-and-tell."""

    def __init__(self, kind: Literal["tpe", "cmaes"], seed: int = 0) -> None:
        if not optuna_available():
            raise ConfigError(
                f"sampler: {kind} needs Optuna, which is not installed; run {INSTALL_HINT} "
                "or choose --sampler local",
                field="sampler",
            )
        if kind == "cmaes" and importlib.util.find_spec("cmaes") is None:
            raise ConfigError(
                f"sampler: cmaes needs the cmaes package; run {INSTALL_HINT}", field="sampler"
            )
        self.name: str = kind
        self.kind = kind
        self.seed = seed
        self._trials: list[Trial] = []
        self._study: optuna.Study | None = None
        self._signature: tuple[Any, ...] = ()
        self._synced = 0
        self._asked: dict[tuple[tuple[str, str], ...], int] = {}

    def reset(self) -> None:
        """Forget every trial; the study is rebuilt on the next ask."""
        self._trials.clear()
        self._study = None

    def tell(self, trial: Trial) -> None:
        """Queue a finished trial; it reaches the study on the next ask."""
        self._trials.append(trial)

    def ask(self, request: AskRequest) -> Config | None:
        """Optuna's next point, decoded into values; None if it keeps proposing tried ones."""
        import optuna

        params = list(request.params)
        distributions = {p.key: _distribution(p) for p in params}
        signature = tuple((key, repr(d)) for key, d in sorted(distributions.items()))
        if self._study is None or signature != self._signature:
            self._study = self._new_study()
            self._signature, self._synced, self._asked = signature, 0, {}
        study = self._study
        self._sync(study, params, distributions)
        if self.kind == "tpe":
            study.sampler = optuna.samplers.TPESampler(seed=_derive(self.seed, len(self._trials)))
        for _ in range(_ATTEMPTS):
            trial = study.ask(distributions)
            config = {**request.incumbent}
            config.update({p.key: _decode(p, trial.params[p.key]) for p in params})
            key = config_key({p.key: config[p.key] for p in params})
            if not request.seen(config):
                self._asked[key] = trial.number
                return config
            known = self._score_of(key, params)
            if known is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, known)
        return None

    def _new_study(self) -> optuna.Study:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler: optuna.samplers.BaseSampler
        if self.kind == "tpe":
            sampler = optuna.samplers.TPESampler(seed=_derive(self.seed, len(self._trials)))
        else:
            # CMA-ES starts at the centre of the ranges, which for the default log ranges
            # (1/10x to 10x) is the baseline's value itself.
            sampler = optuna.samplers.CmaEsSampler(
                seed=_derive(self.seed, len(self._trials)), warn_independent_sampling=False
            )
        return optuna.create_study(direction="minimize", sampler=sampler)

    def _sync(
        self, study: optuna.Study, params: list[Param], distributions: dict[str, Any]
    ) -> None:
        import optuna

        state = optuna.trial.TrialState
        for trial in self._trials[self._synced :]:
            if not all(p.key in trial.params and p.contains(trial.params[p.key]) for p in params):
                continue
            key = config_key({p.key: trial.params[p.key] for p in params})
            number = self._asked.pop(key, None)
            if number is not None:
                if trial.score is None:
                    study.tell(number, state=state.FAIL)
                else:
                    study.tell(number, trial.score)
                continue
            study.add_trial(
                optuna.trial.create_trial(
                    params={p.key: _encode(p, trial.params[p.key]) for p in params},
                    distributions=distributions,
                    value=trial.score,
                    state=state.COMPLETE if trial.score is not None else state.FAIL,
                )
            )
        self._synced = len(self._trials)

    def _score_of(self, key: tuple[tuple[str, str], ...], params: list[Param]) -> float | None:
        for trial in reversed(self._trials):
            if config_key({p.key: trial.params.get(p.key) for p in params}) == key:  # type: ignore[misc]
                return trial.score
        return None


def _derive(seed: int, count: int) -> int:
    return (seed * 1_000_003 + count * 7919) % (2**31)


def _distribution(param: Param) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if param.kind == "choice":
        return CategoricalDistribution(list(param.choices or [param.value]))
    assert param.low is not None and param.high is not None
    low, high = sorted((param.low, param.high))
    if param.scale == "pow2":
        lo, hi = param.t_bounds()
        return IntDistribution(math.ceil(lo - 1e-9), math.floor(hi + 1e-9))
    if param.scale == "log1m":
        return FloatDistribution(1 - high, 1 - low, log=True)
    if param.scale == "log":
        if low < 0:
            low, high = -high, -low
        if param.kind == "int":
            return IntDistribution(max(1, math.ceil(low)), math.floor(high), log=True)
        return FloatDistribution(low, high, log=True)
    if param.kind == "int":
        return IntDistribution(math.ceil(low), math.floor(high))
    return FloatDistribution(low, high)


def _encode(param: Param, value: Value) -> Any:
    """``value`` in the distribution's terms (clipped to it)."""
    if param.kind == "choice":
        return value
    number = float(value)
    distribution = _distribution(param)
    if param.scale == "pow2":
        internal: float = round(param.to_t(value))
    elif param.scale == "log1m":
        internal = 1 - number
    elif param.scale == "log" and number < 0:
        internal = -number
    else:
        internal = number
    internal = min(max(internal, distribution.low), distribution.high)
    return round(internal) if param.kind == "int" or param.scale == "pow2" else internal


def _decode(param: Param, internal: Any) -> Value:
    """A value of ``param`` from the distribution's terms, rounded as our samplers round."""
    if param.kind == "choice":
        return internal  # type: ignore[no-any-return]
    if param.scale == "pow2":
        return int(2 ** int(internal))
    if param.scale == "log1m":
        return param.from_t(param.to_t(1 - float(internal)))
    if param.scale == "log" and param.low is not None and param.low < 0:
        return param.from_t(param.to_t(-float(internal)))
    if param.kind == "int":
        return int(internal)
    return param.from_t(param.to_t(float(internal)))
