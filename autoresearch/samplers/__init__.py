"""Samplers: which point of the search space the offline proposer tries next.

``local`` (ours, the default), ``random``, and Optuna's ``tpe`` and ``cmaes`` (the ``optuna``
extra). :func:`make_sampler` builds one by name.
"""

from __future__ import annotations

from autoresearch.config import SamplerName
from autoresearch.samplers.base import AskRequest, Sampler, Trial, config_key
from autoresearch.samplers.local import LocalSampler
from autoresearch.samplers.uniform import RandomSampler

__all__ = [
    "SAMPLERS",
    "AskRequest",
    "LocalSampler",
    "RandomSampler",
    "Sampler",
    "SamplerName",
    "Trial",
    "config_key",
    "make_sampler",
]

SAMPLERS: tuple[SamplerName, ...] = ("local", "random", "tpe", "cmaes")


def make_sampler(name: str, seed: int = 0, max_params_per_step: int | None = None) -> Sampler:
    """The sampler called ``name``; :class:`ConfigError` when Optuna is needed and missing."""
    if name == "local":
        return LocalSampler(max_params_per_step)
    if name == "random":
        return RandomSampler()
    if name in ("tpe", "cmaes"):
        from autoresearch.samplers.optuna import OptunaSampler

        return OptunaSampler("tpe" if name == "tpe" else "cmaes", seed)
    from autoresearch.errors import ConfigError

    raise ConfigError(
        f"sampler: {name!r} is not a sampler; choose one of {', '.join(SAMPLERS)}",
        field="sampler",
    )
